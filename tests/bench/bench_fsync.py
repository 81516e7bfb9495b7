"""Benchmark 5: what FSYNC_INTERVAL costs, against the same recorder with it off (0).

For each N: one RTSP server, then the recorder with N cameras, with FSYNC_INTERVAL and with 0,
in R rounds, each round starting with the other setting. Per run, over a fixed window once
every camera records (600-s segments as by default, so no hand-off fsync muddles the window):
  - CPU seconds of the recorder tree (daemon + FFmpeg) and the whole machine's busy share
    (the kernel's own writeback threads belong to no process tree);
  - the recorder's own fsync latencies, from its state file (the fsyncs of its last 60 s);
  - write() latency of a camera-like writer beside it on the same file system: 32 KiB (FFmpeg's
    I/O buffer) appended every 0.1 s, never fsynced. FFmpeg's writes wait the same way when
    an fsync holds the file system's journal.

    python -m tests.bench.bench_fsync [--cameras 4 16] [--rounds 2] [--seconds 60] [--interval 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

from services.common.data_layout import DataLayout
from services.recorder.durability import LATENCY_SECONDS
from tests.bench.bench_recorder import all_recording, camera_env, server_settings, system_busy
from tests.bench.common import BenchCameraServer, TreeSampler, percentile, quick, remove, save, table, workspace
from tests.support.processes import Daemon, read_status, wait_for, write_env

SEGMENT = 600
PROBE_BLOCK = 32 * 1024
PROBE_EVERY = 0.1


class WriteProbe:
    """Appends PROBE_BLOCK to a file every PROBE_EVERY seconds in a thread, timing each write()."""

    def __init__(self, path: Path):
        self.path, self.latencies = path, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "WriteProbe":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        block = os.urandom(PROBE_BLOCK)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            while not self._stop.wait(PROBE_EVERY):
                started = time.perf_counter()
                os.write(fd, block)
                self.latencies.append(time.perf_counter() - started)
        finally:
            os.close(fd)

    def result(self) -> dict:
        ms = [1000 * v for v in self.latencies]
        return {"writes": len(ms), "p50_ms": round(percentile(ms, 50), 3), "p99_ms": round(percentile(ms, 99), 3),
                "max_ms": round(max(ms), 3) if ms else None}


def run_once(server: BenchCameraServer, count: int, interval: float, seconds: float, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    layout = DataLayout(work / "data")
    env = write_env(work / ".env", {"DATA_DIR": layout.root, "SEGMENT_DURATION": SEGMENT, "STALL_TIMEOUT": 30,
                                    "FSYNC_INTERVAL": interval, "LOG_LEVEL": "INFO", **camera_env(server, count)})
    recorder = Daemon("services.video_recorder", env, work / "recorder.log").start()
    try:
        wait_for(lambda: all_recording(layout, count), 90, f"{count} cameras recording")
        time.sleep(3)
        sampler = TreeSampler([recorder.proc.pid])
        busy0, total0 = system_busy()
        with WriteProbe(layout.root / "probe.bin") as probe:
            sampler.run(seconds)
        busy1, total1 = system_busy()
        state = read_status(layout.state / "recorder.json")
        result = {"fsync_interval": interval, **sampler.result(),
                  "system_busy_percent_of_all_cores": round(100 * (busy1 - busy0) / max(1, total1 - total0), 1),
                  "probe_write": probe.result(), "fsync": state.get("fsync"),
                  "restarts": sum(c.get("restarts", 0) for c in state.get("cameras", {}).values())}
        result["recorder_exit"] = recorder.stop(timeout=90)
        return result
    finally:
        recorder.stop(timeout=90)


def summarize(count: int, interval: float, runs: list[dict]) -> dict:
    """Medians over the rounds of each setting, and the median of the per-round CPU ratios."""
    on = [r for r in runs if r["fsync_interval"]]
    off = [r for r in runs if not r["fsync_interval"]]
    median = lambda rs, get: round(statistics.median(get(r) for r in rs), 3)  # noqa: E731
    cpu = lambda r: 100 * r["cpu_s"] / r["wall_s"]  # noqa: E731
    fsync = lambda key: median(on, lambda r: (r["fsync"] or {}).get(key, float("nan")))  # noqa: E731
    return {
        "cameras": count, "fsync_interval": interval, "rounds": len(on),
        "cpu_percent_of_one_core": {"fsync": median(on, cpu), "off": median(off, cpu)},
        "cpu_ratio_fsync_over_off": median(list(zip(on, off)), lambda p: p[0]["cpu_s"] / p[1]["cpu_s"]),
        "system_busy_percent": {"fsync": median(on, lambda r: r["system_busy_percent_of_all_cores"]),
                                "off": median(off, lambda r: r["system_busy_percent_of_all_cores"])},
        "probe_write_ms": {k: {"fsync": median(on, lambda r, k=k: r["probe_write"][k]),
                               "off": median(off, lambda r, k=k: r["probe_write"][k])}
                           for k in ("p50_ms", "p99_ms", "max_ms")},
        "recorder_fsync_ms": {k: fsync(k) for k in ("file_p50_ms", "file_p99_ms", "file_max_ms",
                                                     "round_p50_ms", "round_p99_ms", "round_max_ms")},
        "recorder_fsync_skipped": sum((r["fsync"] or {}).get("skipped", 0) for r in on),
        "restarts": sum(r["restarts"] for r in runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, nargs="*", default=[4, 16])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30 if quick() else LATENCY_SECONDS)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args(argv)
    results: dict = {"segment_duration": SEGMENT, "window_s": args.seconds, "fsync_interval": args.interval,
                     "probe": {"block_bytes": PROBE_BLOCK, "every_s": PROBE_EVERY},
                     "kernel": {name: int(Path(f"/proc/sys/vm/{name}").read_text()) for name in
                                ("dirty_expire_centisecs", "dirty_writeback_centisecs")},
                     "per_n": []}
    rows = []
    for count in args.cameras:
        server = BenchCameraServer(**server_settings()).start()
        results["camera_server"] = server.describe()
        work = workspace(f"fsync-{count}")
        runs = []
        try:
            for round_no in range(args.rounds):
                order = (args.interval, 0.0) if round_no % 2 == 0 else (0.0, args.interval)
                for interval in order:
                    print(f"{count} cameras, FSYNC_INTERVAL={interval:g}, round {round_no + 1}, "
                          f"{args.seconds:.0f} s ...", flush=True)
                    runs.append({"round": round_no + 1,
                                 **run_once(server, count, interval, args.seconds, work / f"r{round_no}-{interval:g}")})
        finally:
            server.stop()
            remove(work)
        summary = summarize(count, args.interval, runs)
        results["per_n"].append({**summary, "runs": runs})
        fs = summary["recorder_fsync_ms"]
        for label in ("fsync", "off"):
            rows.append([count, f"FSYNC_INTERVAL={args.interval:g}" if label == "fsync" else "FSYNC_INTERVAL=0",
                         summary["cpu_percent_of_one_core"][label], summary["system_busy_percent"][label],
                         summary["probe_write_ms"]["p50_ms"][label], summary["probe_write_ms"]["p99_ms"][label],
                         summary["probe_write_ms"]["max_ms"][label],
                         f"{fs['file_p50_ms']}/{fs['file_p99_ms']}/{fs['round_max_ms']}" if label == "fsync" else ""])
        rows.append([count, "ratio fsync/off (CPU)", summary["cpu_ratio_fsync_over_off"], "", "", "", "", ""])
        print(table(["N", "what", "tree CPU %", "machine busy %", "write p50 ms", "write p99 ms", "write max ms",
                     "fsync p50/p99 file, max round ms"], rows), flush=True)
    print(f"results: {save('fsync', results)}")
    return 0 if all(e["restarts"] == 0 for e in results["per_n"]) else 1


if __name__ == "__main__":
    sys.exit(main())
