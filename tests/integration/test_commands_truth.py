"""The operator commands as a user runs them, telling the truth: read-only commands leave no
folders, a closed pipe is quiet, `sync` on a terminal says why it failed, unknown `.env` keys
are named, data comes as JSON where asked, and `pip install .` gives a working command."""
import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services import __version__
from tests.support.processes import REPO, run_module, write_env
from tests.support.s3_fixtures import BUCKET, drop_segment, run_once
from tests.support.s3_server import S3Server

NOON = "2026-01-24T12:00:00Z"


def cli(*args, env_file):
    return run_module("services", *args, env_file=env_file)


@pytest.fixture
def bucket_env(tmp_path, s3_server):
    """A .env for the bucket on the test server and a DATA_DIR that does not exist."""
    path = write_env(tmp_path / ".env", {"DATA_DIR": tmp_path / "data", "CAMERA_1_URL": "rtsp://127.0.0.1:9/x",
                                         **s3_server.env(BUCKET)})
    path.chmod(0o600)
    return path


READ_ONLY = {"status": ["status"], "doctor": ["doctor"],
             "coverage": ["coverage", "--camera", "1", "--date", "2026-01-24"],
             "clip --presign": ["clip", "--camera", "1", "--start", NOON, "--end", "2026-01-24T12:10:00Z",
                                "--presign"],
             "cost": ["cost"], "cost --cameras": ["cost", "--cameras", "2", "--bitrate", "4"],
             "iam-policy": ["iam-policy"], "lifecycle --dry-run": ["lifecycle", "--dry-run"],
             "sync --verify": ["sync", "--verify"], "sync --dry-run": ["sync", "--dry-run"]}


@pytest.mark.parametrize("command", READ_ONLY)
def test_read_only_commands_create_no_folder(command, bucket_env, tmp_path):
    code, out = cli(*READ_ONLY[command], env_file=bucket_env)
    assert "Traceback" not in out and code in (0, 1), out
    assert not (tmp_path / "data").exists(), f"{command} created DATA_DIR"


def test_json_output_of_every_data_command(bucket_env, tmp_path):
    runs = {"doctor": ["doctor", "--json"], "cost": ["cost", "--cameras", "3", "--bitrate", "2", "--json"],
            "sync --verify": ["sync", "--verify", "--json"], "sync --dry-run": ["sync", "--dry-run", "--json"],
            "lifecycle --dry-run": ["lifecycle", "--dry-run", "--json"],
            "clip --presign": READ_ONLY["clip --presign"] + ["--json"]}
    found = {}
    for name, argv in runs.items():
        proc = subprocess.run([sys.executable, "-m", "services", *argv, "--env-file", str(bucket_env)], cwd=REPO,
                              env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True)
        found[name] = json.loads(proc.stdout)   # stdout is the JSON document and nothing else
    assert found["doctor"]["failed"] >= 1 and {"level", "name", "detail", "hint"} <= set(found["doctor"]["checks"][0])
    assert found["cost"]["source"] == "given" and list(found["cost"]["cameras"]) == ["1", "2", "3"]
    assert found["cost"]["total_usd_per_month"] > 0
    assert found["sync --verify"] == {"findings": [], "counts": {}, "requeued": []}
    assert found["sync --dry-run"] == []
    assert found["lifecycle --dry-run"]["applied"] is False and found["lifecycle --dry-run"]["rule"]["ID"]
    assert found["clip --presign"]["urls"] == [] and found["clip --presign"]["gaps"][0]["seconds"] == 600


def test_a_closed_pipe_ends_any_command_quietly(bucket_env):
    """`doctor | head -1`: the reader is gone before the command writes; no traceback, exit 141."""
    for argv in (["doctor"], ["iam-policy"], ["--help"]):
        read_end, write_end = os.pipe()
        os.close(read_end)
        env_file = ["--env-file", str(bucket_env)] if argv[0] != "--help" else []
        proc = subprocess.run([sys.executable, "-m", "services", *argv, *env_file], cwd=REPO,
                              env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=write_end,
                              stderr=subprocess.PIPE, text=True)
        os.close(write_end)
        # argparse itself ignores a failed write of --help (exit 0); a command's output exits 141.
        assert proc.returncode == (0 if argv == ["--help"] else 141) and proc.stderr == "", (argv, proc.stderr)


def in_terminal(argv: list[str], timeout: float = 90) -> tuple[int, str]:
    """Run `python -m services ...` with a pseudo-terminal as stdout (sync's progress-bar path)."""
    main, child_end = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "services", *argv], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), stdin=subprocess.DEVNULL,
                            stdout=child_end, stderr=child_end)
    os.close(child_end)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:   # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    return proc.wait(timeout), b"".join(chunks).decode(errors="replace")


def test_sync_on_a_terminal_says_why_it_failed(tmp_path, s3_server):
    data = tmp_path / "data"
    env = write_env(tmp_path / "wrong.env", {"DATA_DIR": data, **s3_server.env("no-such-bucket"),
                                             "CONFIG_ERROR_RETRY_SECONDS": 1})
    (data / "videos" / "completed").mkdir(parents=True)
    (data / "videos" / "completed" / "camera_1_2026-01-24_14-00-00.mp4").write_bytes(b"x" * 4096)
    code, out = in_terminal(["sync", "--env-file", str(env)])
    assert code == 1, out
    assert "[" + "-" * 30 + "] 0/1 files" in out, out          # not a full bar: nothing was uploaded
    assert "sync: " in out and "NoSuchBucket" in out, out       # and the reason


def test_unknown_keys_warned_at_start_and_failed_by_doctor(tmp_path, s3_server, data_layout):
    """Only the file's keys are judged: the process environment holds many keys of other programs."""
    env = write_env(tmp_path / ".env", {"DATA_DIR": data_layout.root, **s3_server.env(BUCKET),
                                        "SEGMENT_DURATON": 60, "CAMERA1_URL": "rtsp://127.0.0.1:9/x"})
    env.chmod(0o600)
    drop_segment(data_layout, "camera_1_2026-01-24_14-00-00.mp4")
    os.environ["CAMERA7_URL"] = "from the environment, not the file"
    try:
        proc = run_once(env)
    finally:
        del os.environ["CAMERA7_URL"]
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "unknown key SEGMENT_DURATON (did you mean SEGMENT_DURATION?)" in out
    assert "unknown key CAMERA1_URL (did you mean CAMERA_1_URL?)" in out
    assert "CAMERA7_URL" not in out
    code, out = cli("doctor", env_file=env)
    assert code == 1 and "fix: rename it to SEGMENT_DURATION in .env" in out, out
    assert "all keys valid" not in out


def test_version_and_exit_codes_in_help():
    proc = subprocess.run([sys.executable, "-m", "services", "--version"], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"python -m services {__version__}"
    proc = subprocess.run([sys.executable, "-m", "services", "sync", "--help"], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True)
    assert "exit codes:" in proc.stdout and "75" in proc.stdout and "78" in proc.stdout


def project_names(requirements: list[str]) -> set[str]:
    """The normalised project names of requirement lines (versions and comments dropped)."""
    names = (re.match(r"\s*([A-Za-z0-9][\w.-]*)", line) for line in requirements)
    return {re.sub(r"[-_.]+", "-", found[1]).lower() for found in names if found}


def test_pip_install_gives_the_command(tmp_path):
    """`pip install .` from a copy of the sources (the checkout stays clean), then the command
    runs from elsewhere, found through the installed package only."""
    source = tmp_path / "src"
    shutil.copytree(REPO / "services", source / "services", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "requirements.txt", "requirements-alerts.txt"):
        shutil.copy(REPO / name, source / name)
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    str(source)], check=True, capture_output=True, timeout=300)
    env = dict(os.environ, PYTHONPATH=str(target))
    proc = subprocess.run([str(target / "bin" / "camera-recorder"), "--version"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"camera-recorder {__version__}", proc.stderr
    metadata = (target / f"camera_recorder-{__version__}.dist-info" / "METADATA").read_text()
    required = [line.split(":", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    extra = [line for line in required if 'extra == "alerts"' in line]
    assert project_names([line for line in required if line not in extra]) == project_names(
        (REPO / "requirements.txt").read_text().splitlines())
    assert project_names(extra) == project_names((REPO / "requirements-alerts.txt").read_text().splitlines()) \
        == {"apprise"}
    env_file = write_env(tmp_path / ".env", {"DATA_DIR": tmp_path / "data"})
    proc = subprocess.run([str(target / "bin" / "camera-recorder"), "cost", "--cameras", "1", "--bitrate", "2",
                           "--env-file", str(env_file)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "total" in proc.stdout, proc.stderr


def operations_wrapper(tmp_path: Path, env_file: Path) -> Path:
    """docs/operations.md's `camctl`, pointed at this checkout and `env_file` (no sudo here)."""
    doc = (REPO / "docs" / "operations.md").read_text()
    script = re.search(r"/usr/local/bin/camctl >/dev/null <<'EOF'\n(.*?)\nEOF\n", doc, re.S)[1]
    for installed, here in (("sudo -u s3-uploader ", ""), ("/etc/video-recorder/uploader.env", str(env_file)),
                            ("/opt/video-recorder/.venv/bin/python", sys.executable),
                            ("/opt/video-recorder", str(REPO))):
        assert installed in script, installed
        script = script.replace(installed, here)
    path = tmp_path / "camctl"
    path.write_text(script + "\n")
    path.chmod(0o755)
    return path


def test_the_operations_wrapper_passes_every_argument(tmp_path):
    env_file = write_env(tmp_path / ".env", {"DATA_DIR": tmp_path / "data", "SEGMENT_DURATION": 600})
    camctl = operations_wrapper(tmp_path, env_file)
    run = lambda *argv: subprocess.run([str(camctl), *argv], cwd=tmp_path, capture_output=True, text=True)  # noqa: E731
    assert run("--version").stdout.strip() == f"python -m services {__version__}"
    assert "required: command" in run().stderr                     # not "invalid choice: '<the .env>'"
    done = run("cost", "--json", "--cameras", "1", "--bitrate", "8")
    assert done.returncode == 0 and json.loads(done.stdout)["bytes_per_day"] == 86_400_000_000, done.stderr
    missing = run("decrypt", "-o", str(tmp_path / "out.mp4"), "--", str(tmp_path / "-odd.bin"))
    assert missing.returncode == 78 and "unrecognized" not in missing.stderr   # the .env was read: no password
