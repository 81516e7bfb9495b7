"""Shared helpers for the benchmarks: workspaces, the RTSP test cameras, process-tree accounting.

Everything is started by PID and stopped in `finally`; servers listen on 127.0.0.1 only.
Results go to data/bench/results/<name>.json (data/ is git-ignored); scratch files go to
data/bench/tmp/ and are deleted after each benchmark.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.processes import REPO, CameraServer
from tests.support.replay_camera_server import ReplayCameraServer

BENCH_ROOT = REPO / "data" / "bench"
RESULTS = BENCH_ROOT / "results"
TICKS = os.sysconf("SC_CLK_TCK")


def quick() -> bool:
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


def workspace(name: str) -> Path:
    (BENCH_ROOT / "tmp").mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=BENCH_ROOT / "tmp"))


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[:1]
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {"nproc": os.cpu_count(), "cpu_model": model, "memory_gb": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(), "ffmpeg": ffmpeg[0].split(" Copyright")[0] if ffmpeg else "?",
            "python": platform.python_version(), "loadavg_at_start": os.getloadavg()}


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "quick": quick(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(), **data}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# --- RTSP cameras ---------------------------------------------------------------------------

# The test server's moving ball compresses to ~0.6 Mbit/s whatever --kbps says; noise ("snow")
# makes x264 spend the whole budget, so segments have a realistic size. The server file is not
# changed: its launch line is patched in the child interpreter.
_SERVER_CODE = """
import sys
sys.path.insert(0, {support!r})
import rtsp_camera_server as server
original = server.launch_line
server.launch_line = lambda *a: original(*a).replace("pattern=ball", {pattern!r})
sys.argv = ["rtsp_camera_server"] + {argv!r}
sys.exit(server.main())
"""


class BenchCameraServer(CameraServer):
    """The GStreamer test server with a realistic bitrate: M shared mounts, many clients each."""

    def __init__(self, mounts: int, fps: int, size: str, kbps: int, pattern: str = "pattern=snow"):
        super().__init__({f"m{i}": "h264:none" for i in range(1, mounts + 1)}, fps=fps)
        self.size, self.kbps, self.pattern = size, kbps, pattern

    def start(self) -> "BenchCameraServer":
        argv = ["--port", "0", "--fps", str(self.fps), "--size", self.size, "--kbps", str(self.kbps)]
        for path, kinds in self.mounts.items():
            argv += ["--mount", f"/{path}={kinds}"]
        code = _SERVER_CODE.format(support=str(REPO / "tests/support"), pattern=self.pattern, argv=argv)
        self.proc = subprocess.Popen(["/usr/bin/python3", "-c", code], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"RTSP test server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def camera_url(self, index: int) -> str:
        """Camera `index` (0-based) reads mount index % M."""
        names = list(self.mounts)
        return self.url(names[index % len(names)])

    def describe(self) -> dict:
        return {"mounts": len(self.mounts), "fps": self.fps, "size": self.size, "kbps": self.kbps,
                "source": f"videotestsrc {self.pattern} + timeoverlay, x264enc ultrafast zerolatency, GOP = fps"}


class ReplaySource(ReplayCameraServer):
    """The replay server (clips encoded once, served by copying): M shared mounts, the source
    cost taken out of the measurement of the recorder."""

    def __init__(self, mounts: int, fps: int, size: str, kbps: int, kind: str = "h264:none"):
        super().__init__({f"m{i}": kind for i in range(1, mounts + 1)}, fps=fps, size=size, kbps=kbps)
        self.kind = kind

    def camera_url(self, index: int) -> str:
        """Camera `index` (0-based) reads mount index % M."""
        names = list(self.mounts)
        return self.url(names[index % len(names)])

    def describe(self) -> dict:
        return {"mounts": len(self.mounts), "fps": self.fps, "size": self.size, "kbps": self.kbps, "kind": self.kind,
                "source": "tests/support/replay_camera_server.py: 10-s clips encoded once (x264/x265, GOP 1 s, "
                          "no B-frames), looped with continuous timestamps, RTP packets of 1400 bytes"}


# --- process accounting ---------------------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()   # fields from 3 (state) on


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: list[int], include_reaped: bool = True) -> float:
    """utime+stime of the processes (+ children they already reaped, e.g. ffprobe)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
            if include_reaped:
                total += int(fields[13]) + int(fields[14])
    return total / TICKS


def memory_kb(pids: list[int]) -> tuple[int, int]:
    """(PSS, RSS) in kB summed over the processes."""
    pss = rss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
        except OSError:
            pass
    return pss, rss


class TreeSampler:
    """CPU over a window and memory samples for a set of process trees."""

    def __init__(self, roots: list[int]):
        self.roots = roots
        self.samples: list[tuple[int, int]] = []
        self.cpu_start = self.cpu_end = 0.0
        self.t_start = self.t_end = 0.0

    def pids(self) -> list[int]:
        return [pid for root in self.roots for pid in descendants(root)]

    def begin(self) -> None:
        self.t_start, self.cpu_start = time.monotonic(), cpu_seconds(self.pids())

    def sample(self) -> None:
        self.samples.append(memory_kb(self.pids()))

    def end(self) -> None:
        self.t_end, self.cpu_end = time.monotonic(), cpu_seconds(self.pids())

    def run(self, seconds: float, interval: float = 2.0, tick=None) -> None:
        self.begin()
        deadline = self.t_start + seconds
        while time.monotonic() < deadline:
            self.sample()
            if tick:
                tick()
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        self.end()

    def result(self) -> dict:
        pss = [s[0] for s in self.samples] or [0]
        rss = [s[1] for s in self.samples] or [0]
        wall = self.t_end - self.t_start
        cpu = self.cpu_end - self.cpu_start
        return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 3), "cpu_percent_of_one_core": round(100 * cpu / wall, 2),
                "pss_mb_mean": round(sum(pss) / len(pss) / 1024, 2), "pss_mb_max": round(max(pss) / 1024, 2),
                "rss_mb_mean": round(sum(rss) / len(rss) / 1024, 2), "rss_mb_max": round(max(rss) / 1024, 2)}
