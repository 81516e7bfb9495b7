"""Benchmark 4: how many cameras one host records, with the source's cost taken out.

Source: tests/support/replay_camera_server.py (clips encoded once, served by copying; M shared
mounts, camera i reads mount i mod M). For each bitrate and each N, R rounds of two runs each:
  a) the recorder with N cameras + the uploader + a local S3 server (rclone serve s3), 10-s
     segments: a run passes when no camera has a gap, every camera wrote segments and the
     uploader kept up (backlog at the end of the window <= one segment per camera, drained
     after the recorder stopped);
  b) the control: N bare FFmpeg with the recorder's argv, same source, same window.
A gap in (a) but not in (b) is the recorder's; a gap in both is the source's or the machine's.
The order of (a) and (b) rotates from round to round. Per N: min/median/max over the rounds of
CPU, PSS, gaps, uploader backlog, the whole machine's busy share and load average. The search
for a bitrate stops after the first N at which no recorder run passed (unless --keep-going).
Results: data/bench/results/scale-<kbps>k.json, small enough to copy to docs/bench/.

    python -m tests.bench.bench_scale [--cameras 16 32 64 96 128 150] [--kbps 2000 4000] [--rounds 3]
        [--seconds 45] [--mounts 8] [--py-spy DIR]

--py-spy DIR records the recorder daemon's Python stacks over each recorder window with py-spy
(not installed by the project: `.venv/bin/pip install py-spy`), and puts its top functions in
the result.
"""
from __future__ import annotations

import argparse
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from tests.bench.bench_recorder import BUCKET, run_bare, run_recorder, server_settings
from tests.bench.common import RESULTS, ReplaySource, quick, remove, save, table, workspace
from tests.support.processes import REPO
from tests.support.s3_server import S3Server

KEEP = ("wall_s", "cpu_percent_of_one_core", "pss_mb_mean", "pss_mb_max", "camera_server_cpu_percent",
        "system_busy_percent_of_all_cores", "loadavg_1min", "restarts", "backlog_end_of_window", "backlog_max",
        "drain_after_stop_s", "recorder_exit", "exited_early", "cameras_with_segments", "segments", "gaps",
        "largest_hole_s", "unreadable", "mbit_per_s_per_camera", "error")


def recorder_passed(r: dict, count: int) -> bool:
    return (r.get("gaps") == 0 and r.get("cameras_with_segments") == count
            and r.get("backlog_end_of_window", 10**9) <= count and r.get("drain_after_stop_s") is not None)


def bare_passed(r: dict, count: int) -> bool:
    return r.get("gaps") == 0 and r.get("cameras_with_segments") == count and not r.get("exited_early")


def slim(r: dict) -> dict:
    """The figures a reader checks; the gap list cut to its first five."""
    out = {k: r[k] for k in KEEP if k in r}
    if r.get("gap_list"):
        out["first_gaps"] = r["gap_list"][:5]
    if r.get("uploader"):
        out["uploader"] = {k: r["uploader"][k] for k in ("cpu_percent_of_one_core", "pss_mb_mean")}
    return out


def profile_summary(raw: Path, top: int = 15) -> dict:
    """py-spy's collapsed stacks -> the functions with the most samples, own (leaf) and inclusive."""
    own, inclusive, total = Counter(), Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    share = lambda c: [[frame, round(100 * n / max(1, total), 1)] for frame, n in c.most_common(top)]  # noqa: E731
    return {"samples": total, "own_percent": share(own), "inclusive_percent": share(inclusive)}


def task_runtime_ns(pid: int) -> dict[int, int]:
    """CPU time in ns of each thread of `pid` (schedstat: exact, where stat's clock ticks round a
    thread that runs 50 us twice a second down to nothing)."""
    runtime = {}
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            runtime[int(stat.parent.name)] = int(stat.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return runtime


class Profiler:
    """py-spy on the recorder daemon for the length of its window, and its CPU per kind of thread.

    py-spy's samples count a thread blocked in read() or fsync() as active, so they show where
    the threads are, not what costs CPU; the kernel's per-thread CPU times do, and `py-spy dump`
    names the threads (the camera's FFmpeg readers, the hand-off, the fsync thread, the main loop).
    """

    def __init__(self, folder: Path | None):
        self.folder, self.proc, self.output = folder, None, None
        self.spy = shutil.which("py-spy", path=str(Path(sys.executable).parent))
        if folder and not self.spy:
            raise RuntimeError("--py-spy needs py-spy: .venv/bin/pip install py-spy")
        self.names: dict[int, str] = {}
        self.runtime: list[tuple[float, dict[int, int]]] = []   # (time, ns per thread) at both ends
        self.timer: threading.Timer | None = None

    def start(self, name: str):
        if not self.folder:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        self.output = self.folder / f"{name}.txt"

        def begin(pid: int, seconds: float) -> None:
            dump = subprocess.run([self.spy, "dump", "--pid", str(pid), "--nonblocking"], capture_output=True,
                                  text=True).stdout
            self.names = {int(m[1], 0): m[2] for m in re.finditer(r'^Thread (\S+) \(\w+\): "([^"]*)"', dump, re.M)}
            self.runtime = [(time.monotonic(), task_runtime_ns(pid))]
            self.timer = threading.Timer(seconds, lambda: self.runtime.append((time.monotonic(), task_runtime_ns(pid))))
            self.timer.start()
            self.proc = subprocess.Popen([self.spy, "record", "--pid", str(pid), "--duration", str(int(seconds)),
                                          "--rate", "50", "--nonblocking", "--format", "raw", "--output",
                                          str(self.output)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return begin

    def finish(self) -> dict | None:
        if not self.proc:
            return None
        self.proc.wait(60)
        self.timer.join()
        self.proc = None
        summary = profile_summary(self.output) if self.output.is_file() else {}
        if len(self.runtime) == 2:
            (t0, before), (t1, after) = self.runtime
            kinds: Counter = Counter()
            for tid, ns in after.items():
                name = self.names.get(tid, "?")
                kind = re.sub(r"^camera .*-(stdout|stderr)$", r"the cameras' \1 readers (all)", name)
                kinds[kind] += ns - before.get(tid, 0)
            per_ns = 100 / 1e9 / (t1 - t0)
            summary["threads"] = len(after)
            summary["cpu_percent_of_one_core_by_thread"] = {k: round(v * per_ns, 2) for k, v in kinds.most_common()}
        return summary


def keep_logs(run: Path, tag: str) -> str:
    """A failed run's daemon logs and segment list outlive its workspace, to look at the gap."""
    folder = RESULTS / "scale-failed" / tag
    folder.mkdir(parents=True, exist_ok=True)
    for log in ("recorder.log", "uploader.log"):
        if (run / log).is_file():
            shutil.copy(run / log, folder / log)
    names = sorted(p.name for p in (run / "data" / "videos").rglob("*.mp4"))
    (folder / "segments.txt").write_text("\n".join(names) + "\n")
    return str(folder)


def one_round(source: ReplaySource, count: int, seconds: float, order: list[str], profiler: Profiler,
              tag: str) -> dict:
    out = {}
    for what in order:
        work = workspace(f"scale-{count}-{what}")
        try:
            if what == "recorder":
                s3 = S3Server(work / "s3", log=work / "s3.log").start()
                try:
                    s3.create_bucket(BUCKET)
                    try:
                        r = run_recorder(source, count, seconds, work / "run", s3=s3, on_window=profiler.start(tag))
                    except AssertionError as exc:
                        r = {"error": str(exc), "gaps": None}
                finally:
                    s3.stop()
                out["recorder"] = {**slim(r), "passed": recorder_passed(r, count)}
                if not out["recorder"]["passed"]:
                    out["recorder"]["logs_kept"] = keep_logs(work / "run", tag)
                profile = profiler.finish()
                if profile:
                    out["recorder"]["py_spy"] = profile
            else:
                try:
                    r = run_bare(source, count, seconds, work / "bare")
                except AssertionError as exc:
                    r = {"error": str(exc), "gaps": None}
                out["bare_ffmpeg"] = {**slim(r), "passed": bare_passed(r, count)}
        finally:
            remove(work)
    return out


def spread(values: list) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def summarize(count: int, rounds: list[dict]) -> dict:
    rec = [r["recorder"] for r in rounds]
    bare = [r["bare_ffmpeg"] for r in rounds]
    up = [r.get("uploader") or {} for r in rec]
    summary = {
        "cameras": count, "rounds": len(rounds),
        "recorder_passed": sum(r["passed"] for r in rec), "bare_passed": sum(r["passed"] for r in bare),
        "recorder_cpu_percent": spread([r.get("cpu_percent_of_one_core") for r in rec]),
        "recorder_cpu_percent_per_camera": spread([r["cpu_percent_of_one_core"] / count for r in rec
                                                   if "cpu_percent_of_one_core" in r]),
        "bare_cpu_percent": spread([r.get("cpu_percent_of_one_core") for r in bare]),
        "recorder_pss_mb": spread([r.get("pss_mb_mean") for r in rec]),
        "bare_pss_mb": spread([r.get("pss_mb_mean") for r in bare]),
        "uploader_cpu_percent": spread([u.get("cpu_percent_of_one_core") for u in up]),
        "uploader_pss_mb": spread([u.get("pss_mb_mean") for u in up]),
        "recorder_gaps": spread([r.get("gaps") for r in rec]), "bare_gaps": spread([r.get("gaps") for r in bare]),
        "backlog_max": spread([r.get("backlog_max") for r in rec]),
        "drain_after_stop_s": spread([r.get("drain_after_stop_s") for r in rec]),
        "system_busy_percent_recorder_runs": spread([r.get("system_busy_percent_of_all_cores") for r in rec]),
        "system_busy_percent_bare_runs": spread([r.get("system_busy_percent_of_all_cores") for r in bare]),
        "loadavg_1min": spread([v for r in rec + bare for v in r.get("loadavg_1min", [])]),
        "source_cpu_percent": spread([r.get("camera_server_cpu_percent") for r in rec + bare]),
    }
    rec_fail, bare_fail = summary["recorder_passed"] < len(rounds), summary["bare_passed"] < len(rounds)
    summary["verdict"] = ("pass" if not rec_fail and not bare_fail else "recorder" if not bare_fail
                          else "source or machine (the control failed too)" if rec_fail else "control only")
    return summary


def _m(d: dict | None) -> object:
    return "" if not d else d["median"] if d["min"] == d["max"] else f"{d['median']} ({d['min']}-{d['max']})"


def git_head() -> str:
    """The commit the daemons ran from (others may commit while a long search runs); '+' if services/ was edited."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "services"], capture_output=True, text=True,
                           cwd=REPO).stdout
    return head.strip() + ("+" if dirty.strip() else "")


def _interrupt(*_args: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, nargs="*", default=[16] if quick() else [16, 32, 64, 96, 128, 150])
    parser.add_argument("--kbps", type=int, nargs="*", default=[2000] if quick() else [2000, 4000])
    parser.add_argument("--rounds", type=int, default=1 if quick() else 3)
    parser.add_argument("--seconds", type=float, default=30 if quick() else 45)
    parser.add_argument("--mounts", type=int, default=8)
    parser.add_argument("--kind", default="h264:none", help="VIDEO:AUDIO of every mount")
    parser.add_argument("--keep-going", action="store_true",
                        help="go on after an N at which every recorder run failed")
    parser.add_argument("--py-spy", type=Path, help="folder for py-spy profiles of the recorder daemon")
    args = parser.parse_args(argv)
    # Started in the background, a benchmark gets SIGINT ignored: SIGTERM then stops it through
    # the same `finally` blocks, which stop every server, daemon and FFmpeg it started.
    signal.signal(signal.SIGTERM, _interrupt)
    settings = server_settings()
    profiler = Profiler(args.py_spy)
    code = 0
    for kbps in args.kbps:
        describe = ReplaySource(args.mounts, settings["fps"], settings["size"], kbps, args.kind).describe()
        result = {"segment_duration": 10, "window_s": args.seconds, "rounds": args.rounds, "source": describe,
                  "tried": args.cameras, "per_n": []}
        rows = []
        for count in args.cameras:
            source = ReplaySource(args.mounts, settings["fps"], settings["size"], kbps, args.kind).start()
            rounds = []
            try:
                for round_ in range(args.rounds):
                    order = ["recorder", "bare"] if round_ % 2 == 0 else ["bare", "recorder"]
                    print(f"{kbps} kbit/s, {count} cameras, round {round_ + 1}: {' then '.join(order)}, "
                          f"{args.seconds:.0f} s each ...", flush=True)
                    started = time.monotonic()
                    tag = f"{kbps}k-{count}-r{round_ + 1}"
                    rounds.append({"round": round_ + 1, "order": order,
                                   **one_round(source, count, args.seconds, order, profiler, tag)})
                    rounds[-1]["round_wall_s"] = round(time.monotonic() - started)
            finally:
                source.stop()
            summary = summarize(count, rounds)
            result["per_n"].append({**summary, "git_head": git_head(), "runs": rounds})
            rows.append([count, f"{summary['recorder_passed']}/{args.rounds}",
                         f"{summary['bare_passed']}/{args.rounds}",
                         _m(summary["recorder_gaps"]), _m(summary["bare_gaps"]), _m(summary["recorder_cpu_percent"]),
                         _m(summary["bare_cpu_percent"]), _m(summary["uploader_cpu_percent"]),
                         _m(summary["recorder_pss_mb"]), _m(summary["backlog_max"]),
                         _m(summary["system_busy_percent_recorder_runs"]), _m(summary["loadavg_1min"]),
                         _m(summary["source_cpu_percent"]), summary["verdict"]])
            print(table(["N", "rec ok", "bare ok", "rec gaps", "bare gaps", "rec CPU %", "bare CPU %", "upl CPU %",
                         "rec PSS MB", "backlog max", "busy %", "load 1m", "source CPU %", "verdict"], rows),
                  flush=True)
            if summary["recorder_passed"] == 0 and not args.keep_going:
                break
        passing = [e["cameras"] for e in result["per_n"] if e["recorder_passed"] == e["rounds"]]
        result["largest_n_passing_every_round"] = max(passing) if passing else None
        first = next((e["cameras"] for e in result["per_n"] if e["verdict"] == "recorder"), None)
        result["first_n_failing_in_recorder_only"] = first
        print(f"{kbps} kbit/s: largest N passing every round: {result['largest_n_passing_every_round']}; "
              f"first N where only the recorder failed: {first}; results: {save(f'scale-{kbps}k', result)}", flush=True)
        code |= 0 if result["largest_n_passing_every_round"] else 1
    return code


if __name__ == "__main__":
    sys.exit(main())
