"""Starting and stopping test servers and daemons by PID, and waiting with deadlines."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

REPO = Path(__file__).resolve().parents[2]
FAKETIME_LIBRARY = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll `condition` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def stop_pid(proc: subprocess.Popen, timeout: float = 15) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def pids_with_argument(text: str) -> list[int]:
    """Processes whose command line mentions `text` (e.g. a test's data folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return [pid for pid in found if pid != os.getpid()]


class CameraServer:
    """The GStreamer RTSP test server (tests/support/rtsp_camera_server.py) in a subprocess."""

    def __init__(self, mounts: dict[str, str], auth: str | None = None, fps: int = 10, *extra: str,
                 clock_offset: float = 0.0):
        self.mounts, self.auth, self.fps = mounts, auth, fps
        self.extra = list(extra)  # more server flags, e.g. "--kbps", "2000", "--pattern", "snow"
        self.clock_offset = clock_offset   # seconds the camera's clock (its RTCP sender reports) is off
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> "CameraServer":
        argv = ["/usr/bin/python3", str(REPO / "tests/support/rtsp_camera_server.py"),
                "--port", str(self.port), "--fps", str(self.fps), *self.extra]
        for path, kinds in self.mounts.items():
            argv += ["--mount", f"/{path}={kinds}"]
        if self.auth:
            argv += ["--auth", self.auth]
        env = None
        if self.clock_offset:   # libfaketime (the faketime package) in the server itself, whose PID we stop;
            # the wall clock only: GStreamer's timers run on the monotonic one.
            env = dict(os.environ, LD_PRELOAD=FAKETIME_LIBRARY, FAKETIME=f"{self.clock_offset:+g}s",
                       FAKETIME_DONT_FAKE_MONOTONIC="1")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"RTSP test server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def url(self, path: str, credentials: str | None = None) -> str:
        auth = f"{credentials}@" if credentials else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}/{path}"

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            stop_pid(self.proc)
            self.proc = None


class Daemon:
    """`python -m services.<module>` with its output in a log file."""

    def __init__(self, module: str, env_file: Path, log: Path, extra_env: dict[str, str] | None = None):
        self.module, self.env_file, self.log = module, env_file, log
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Daemon":
        # Test hosts often have no NTP client (the kernel says unsynchronised): record at once.
        # The environment wins over .env, so a test that wants the wait passes it in extra_env.
        env = {**os.environ, "PYTHONPATH": str(REPO), "CLOCK_SYNC_TIMEOUT": "0", **self.extra_env}
        env.pop("JOURNAL_STREAM", None)
        self._out = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", self.module, "--env-file", str(self.env_file)],
                                     cwd=REPO, env=env, stdout=self._out, stderr=subprocess.STDOUT)
        return self

    def stop(self, timeout: float = 30) -> int | None:
        code = stop_pid(self.proc, timeout) if self.proc else None
        self._out.close()
        return code

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(5)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def read_status(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run_module(*argv: str, env_file: Path, timeout: float = 120) -> tuple[int, str]:
    """`python -m <argv> --env-file F` from the repository, as a user runs it: (exit code, output)."""
    out = subprocess.run([sys.executable, "-m", *argv, "--env-file", str(env_file)], cwd=REPO,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=timeout)
    return out.returncode, out.stdout + out.stderr


def write_env(path: Path, values: dict[str, object]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path
