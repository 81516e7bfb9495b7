# Two entry points for a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := python3-venv ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
	gstreamer1.0-plugins-ugly gstreamer1.0-libav faketime exfatprogs exfat-fuse fuse3 chromium
PYTEST_ARGS ?=

.PHONY: setup system-deps venv test unit integration demo bench drills clean

setup: system-deps venv

# Installs only what is missing; needs root or sudo the first time.
system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:" $$missing; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
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

# Benchmarks (not part of `make test`), 17-19 min; BENCH_QUICK=1 for a short run. Results: data/bench/results/
bench: setup
	$(PY) -m tests.bench.run

clean:
	rm -rf $(VENV) .pytest_cache
