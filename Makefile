# Two entry points for a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := python3-venv ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
	gstreamer1.0-plugins-ugly gstreamer1.0-libav faketime exfatprogs exfat-fuse fuse3 \
	dosfstools fusefat ntfs-3g chromium nodejs
NODE_DIR := tests/support/node
PYTEST_ARGS ?=

.PHONY: setup system-deps venv node-deps test unit integration demo bench drills clean

setup: system-deps venv node-deps

# Installs only what is missing; needs root or sudo the first time.
system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:" $$missing; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-alerts.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

# s3rver, the npm S3 server of tests/integration/test_stores.py, as locked in $(NODE_DIR)/package-lock.json
# (stock Debian packages npm apart from nodejs).
node-deps: $(NODE_DIR)/node_modules/.installed

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@command -v npm >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm; }
	npm ci --prefix $(NODE_DIR) --no-audit --no-fund
	touch $@

test: setup
	$(PY) -m pytest tests/unit tests/integration $(PYTEST_ARGS)

unit: venv
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: setup
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

# The fault drills: the short ones also run in `make test`, the long ones only here.
drills: setup
	rm -f data/drills/figures.jsonl
	$(PY) -m pytest tests/drills tests/integration/test_drill_clock_step.py tests/integration/test_drill_disk_full.py \
		tests/integration/test_recorder.py tests/integration/test_uploader_s3.py $(PYTEST_ARGS)
	$(PY) -m tests.support.figures

demo: setup
	$(PY) -m tests.support.demo

# Benchmarks (not part of `make test`): about 20-25 min before the scale search, which adds ~30-35 min
# per bitrate (28 min for N = 32-150, 3 rounds, at 2 Mbit/s); BENCH_QUICK=1 for a short run. Results: data/bench/results/
bench: setup
	$(PY) -m tests.bench.run

clean:
	rm -rf $(VENV) .pytest_cache $(NODE_DIR)/node_modules
