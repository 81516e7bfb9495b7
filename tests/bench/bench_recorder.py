"""Benchmark 1: the recorder's cost per camera, against bare FFmpeg (4, the scale search, is bench_scale).

For each N: one RTSP server process (M shared live mounts, cameras spread over them), then
  a) the recorder daemon with N cameras, 10-second segments, measured over a fixed window:
     CPU seconds and PSS/RSS of the daemon plus its FFmpeg children;
  b) N bare FFmpeg processes with the exact argv of build_record_command, same window.
The ratio a/b is the cost of supervision. Gaps between consecutive segments of a camera are
counted from the finished files (name = start, video_duration = length).

The scale search (recorder + uploader + local S3 against bare FFmpeg, on a source that costs
almost nothing) is tests/bench/bench_scale.py; --scale N... runs it from here.

    python -m tests.bench.bench_recorder [--cameras 4 16] [--seconds 60] [--scale 16 32 64]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from services.common.data_layout import DataLayout
from services.common.mp4_fragments import read_stamp, video_duration
from services.common.segment_names import parse_name
from services.common.spans import Span, measure, segment_spans
from services.recorder.config import CameraConfig
from services.recorder.ffmpeg_command import FFMPEG_ENV_TZ, StreamInfo, build_record_command, parse_version
from tests.bench.common import BenchCameraServer, TreeSampler, cpu_seconds, quick, remove, save, table, workspace
from tests.support.processes import Daemon, read_status, stop_pid, wait_for, write_env
from tests.support.s3_server import S3Server

SEGMENT = 10
BUCKET = "bench-scale"


def system_busy() -> tuple[float, float]:
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def gap_tolerance() -> float:
    """Names truncate the start to the second (up to 1 s early) and a segment's summed sample
    durations can come out one frame short (a 1 s + 1 frame hole was seen at the first cut of
    a run): a hole under 1 s + one frame + 20 ms is not counted as lost footage."""
    return 1.0 + 1.0 / server_settings()["fps"] + 0.02


def gaps_and_rate(files: list[Path]) -> dict:
    """Per camera: segments, gaps (see gap_tolerance), largest hole, bitrate."""
    by_camera: dict[int, list[tuple]] = {}
    total_bytes = total_seconds = 0.0
    unreadable = 0
    for path in files:
        name = parse_name(path.name)
        if name is None:
            continue
        duration = video_duration(path)
        if duration is None:
            unreadable += 1
            continue
        # The recorder's segments carry their first frame's time (bare FFmpeg's only the name).
        by_camera.setdefault(name.camera_id, []).append((read_stamp(path) or name.start, duration))
        total_bytes += path.stat().st_size
        total_seconds += duration
    gaps, holes = [], []
    for camera_id, starts in sorted(by_camera.items()):
        spans = segment_spans(starts, SEGMENT)
        window = Span(min(s.start for s in spans), max(s.end for s in spans))
        ordered = sorted(spans)
        holes.extend((b.start - a.end).total_seconds() for a, b in zip(ordered, ordered[1:]))
        for gap in measure(spans, window, tolerance=gap_tolerance()).gaps:
            gaps.append({"camera": camera_id, "start": gap.start.isoformat(), "seconds": round(gap.seconds, 2)})
    return {"cameras_with_segments": len(by_camera), "segments": sum(len(v) for v in by_camera.values()),
            "gaps": len(gaps), "gap_tolerance_s": round(gap_tolerance(), 3), "gap_list": gaps[:20],
            "largest_hole_s": round(max(holes), 3) if holes else None, "unreadable": unreadable,
            "mbit_per_s_per_camera": round(8 * total_bytes / total_seconds / 1e6, 3) if total_seconds else 0}


def camera_env(server: BenchCameraServer, count: int) -> dict[str, object]:
    return {f"CAMERA_{i + 1}_URL": server.camera_url(i) for i in range(count)}


def all_recording(layout: DataLayout, count: int) -> bool:
    cameras = read_status(layout.root / "state" / "recorder.json").get("cameras", {})
    return len(cameras) == count and all(c.get("state") == "recording" for c in cameras.values())


def run_recorder(server: BenchCameraServer, count: int, seconds: float, work: Path,
                 s3: S3Server | None = None, on_window: Callable[[int, float], None] | None = None) -> dict:
    """`on_window(recorder_pid, seconds)` is called as the window opens (e.g. to start a profiler)."""
    work.mkdir(parents=True, exist_ok=True)
    layout = DataLayout(work / "data")
    values: dict[str, object] = {"DATA_DIR": layout.root, "SEGMENT_DURATION": SEGMENT, "STALL_TIMEOUT": 30,
                                 "LOG_LEVEL": "INFO", **camera_env(server, count)}
    if s3:
        # Default retention (24 h): the verified copies stay in uploaded/ for the gap check.
        values.update({"MIN_FREE_DISK_MB": 0, "RESCAN_INTERVAL": 10, **s3.env(BUCKET)})
    env = write_env(work / ".env", values)
    recorder = Daemon("services.video_recorder", env, work / "recorder.log").start()
    uploader = Daemon("services.s3_uploader", env, work / "uploader.log").start() if s3 else None
    backlog: list[int] = []
    try:
        wait_for(lambda: all_recording(layout, count), max(90, count), f"{count} cameras recording")
        time.sleep(3)
        sampler = TreeSampler([recorder.proc.pid])
        up = TreeSampler([uploader.proc.pid]) if uploader else None
        srv = cpu_seconds([server.proc.pid], include_reaped=False)
        busy0, total0 = system_busy()
        load_start = os.getloadavg()[0]
        if on_window:
            on_window(recorder.proc.pid, seconds)
        if up:
            up.begin()

        def tick() -> None:
            backlog.append(len(list(layout.completed.glob("*.mp4"))))
            if up:
                up.sample()

        sampler.run(seconds, tick=tick)
        if up:
            up.end()
        busy1, total1 = system_busy()
        srv = cpu_seconds([server.proc.pid], include_reaped=False) - srv
        result = sampler.result()
        result["camera_server_cpu_percent"] = round(100 * srv / result["wall_s"], 1)
        result["system_busy_percent_of_all_cores"] = round(100 * (busy1 - busy0) / max(1, total1 - total0), 1)
        result["loadavg_1min"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]
        result["restarts"] = sum(c.get("restarts", 0) for c in
                                 read_status(layout.root / "state" / "recorder.json").get("cameras", {}).values())
        if up:
            result["uploader"] = up.result()
            result["backlog_end_of_window"] = backlog[-1] if backlog else 0
            result["backlog_max"] = max(backlog or [0])
        code = recorder.stop(timeout=90)
        result["recorder_exit"] = code
        if uploader:
            started = time.monotonic()
            try:
                wait_for(lambda: not list(layout.completed.glob("*.mp4")), 120, "the upload backlog to drain")
                result["drain_after_stop_s"] = round(time.monotonic() - started, 1)
            except AssertionError:
                result["drain_after_stop_s"] = None
            uploader.stop()
        folder = layout.uploaded if s3 else layout.completed
        result.update(gaps_and_rate(sorted(folder.glob("*.mp4"))))
        return result
    finally:
        recorder.stop(timeout=90)
        if uploader:
            uploader.stop()


def run_bare(server: BenchCameraServer, count: int, seconds: float, work: Path) -> dict:
    version = parse_version(subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout)
    procs: list[subprocess.Popen] = []
    run_dirs = []
    env = dict(os.environ, TZ=FFMPEG_ENV_TZ)
    logs = []
    try:
        for i in range(count):
            camera = CameraConfig(id=i + 1, url=server.camera_url(i), name=f"camera_{i + 1}", audio="auto")
            run_dir = work / f"camera_{i + 1}"
            run_dir.mkdir(parents=True)
            run_dirs.append(run_dir)
            plan = build_record_command("ffmpeg", camera, StreamInfo("h264", None), run_dir, version=version,
                                        segment_duration=SEGMENT, video_codec="copy", socket_timeout_s=35)
            log = open(run_dir / "ffmpeg.log", "wb")
            logs.append(log)
            procs.append(subprocess.Popen(plan.argv, env=env, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=log))
        wait_for(lambda: all(list(d.glob("*.mp4")) for d in run_dirs), 120, "bare FFmpeg writing")
        time.sleep(3)
        sampler = TreeSampler([p.pid for p in procs])
        srv = cpu_seconds([server.proc.pid], include_reaped=False)
        busy0, total0 = system_busy()
        load_start = os.getloadavg()[0]
        sampler.run(seconds)
        busy1, total1 = system_busy()
        srv = cpu_seconds([server.proc.pid], include_reaped=False) - srv
        result = sampler.result()
        result["camera_server_cpu_percent"] = round(100 * srv / result["wall_s"], 1)
        result["system_busy_percent_of_all_cores"] = round(100 * (busy1 - busy0) / max(1, total1 - total0), 1)
        result["loadavg_1min"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            stop_pid(proc, timeout=30)
        result["exited_early"] = sum(1 for p in procs if p.returncode not in (0, 255, -15))
        result.update(gaps_and_rate(sorted(f for d in run_dirs for f in d.glob("*.mp4"))))
        return result
    finally:
        for proc in procs:
            stop_pid(proc, timeout=10)
        for log in logs:
            log.close()


def server_settings() -> dict:
    return {"mounts": int(os.environ.get("BENCH_MOUNTS", "2")), "fps": int(os.environ.get("BENCH_FPS", "15")),
            "size": os.environ.get("BENCH_SIZE", "1280x720"), "kbps": int(os.environ.get("BENCH_KBPS", "2000"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, nargs="*", default=[4, 16])
    parser.add_argument("--scale", type=int, nargs="*", default=[],
                        help="also run the scale search (bench_scale) at these N, with its defaults otherwise")
    parser.add_argument("--seconds", type=float, default=30 if quick() else 60)
    args = parser.parse_args(argv)
    settings = server_settings()
    results: dict = {"segment_duration": SEGMENT, "window_s": args.seconds, "camera_server": None, "per_n": []}
    rows = []
    for count in args.cameras:
        server = BenchCameraServer(**settings).start()
        results["camera_server"] = server.describe()
        work = workspace(f"recorder-{count}")
        try:
            print(f"recorder, {count} cameras, {args.seconds:.0f} s ...", flush=True)
            rec = run_recorder(server, count, args.seconds, work / "recorder")
            print(f"bare FFmpeg, {count} processes, {args.seconds:.0f} s ...", flush=True)
            bare = run_bare(server, count, args.seconds, work / "bare")
        finally:
            server.stop()
            remove(work)
        entry = {"cameras": count, "recorder": rec, "bare_ffmpeg": bare,
                 "cpu_ratio": round(rec["cpu_s"] / bare["cpu_s"], 3) if bare["cpu_s"] else None,
                 "pss_ratio": round(rec["pss_mb_mean"] / bare["pss_mb_mean"], 3) if bare["pss_mb_mean"] else None}
        results["per_n"].append(entry)
        for label, r in (("recorder", rec), ("bare ffmpeg", bare)):
            rows.append([count, label, 100 * r["cpu_s"] / r["wall_s"] / count, r["pss_mb_mean"] / count,
                         r["rss_mb_mean"] / count, r["camera_server_cpu_percent"], r["mbit_per_s_per_camera"],
                         r["segments"], r["gaps"]])
        rows.append([count, "ratio rec/bare", entry["cpu_ratio"], entry["pss_ratio"], "", "", "", "", ""])
        print(table(["N", "what", "CPU %/cam", "PSS MB/cam", "RSS MB/cam", "server CPU %", "Mbit/s/cam",
                     "segments", "gaps"], rows), flush=True)
    if args.cameras:
        print(f"results: {save('recorder', results)}")
    code = 0 if all(e["recorder"]["gaps"] == 0 for e in results["per_n"]) else 1
    if args.scale:
        from tests.bench import bench_scale
        code |= bench_scale.main(["--cameras", *map(str, args.scale)])
    return code


if __name__ == "__main__":
    sys.exit(main())
