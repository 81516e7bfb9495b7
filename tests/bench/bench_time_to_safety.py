"""Benchmark 3: time to safety, from FFmpeg closing a segment to the verified object in the bucket.

Several cameras (default 4, 5-second segments, ~2 minutes) with the recorder and the uploader
running against a local `rclone serve s3`. Measured from outside, per segment:
  closed    = the file's mtime: FFmpeg's last write to a segment is its final fragment, flushed
              when it closes the segment (the hand-off and the moves keep the mtime);
  handed    = first seen in completed/ (folders polled every 0.1 s);
  in bucket = first seen in the bucket listing (ListObjectsV2 polled every 0.2 s);
  verified  = first seen in uploaded/: the uploader moves a file there only after its HEAD
              check of size and checksum succeeded. This is the headline figure.
Only segments closed during the steady window count (not the ones closed by the final stop).

    python -m tests.bench.bench_time_to_safety [--cameras 4] [--segment 5] [--seconds 120]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from services.common.data_layout import DataLayout
from tests.bench.bench_recorder import all_recording, server_settings
from tests.bench.common import BenchCameraServer, percentile, quick, remove, save, table, workspace
from tests.support.processes import Daemon, wait_for, write_env
from tests.support.s3_server import S3Server, list_keys

BUCKET = "bench-safety"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--segment", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60 if quick() else 120)
    args = parser.parse_args(argv)
    work = workspace("safety")
    layout = DataLayout(work / "data")
    server = BenchCameraServer(**server_settings()).start()
    s3 = S3Server(work / "s3", log=work / "s3.log").start()
    completed_seen: dict[str, float] = {}
    uploaded_seen: dict[str, float] = {}
    bucket_seen: dict[str, float] = {}
    mtimes: dict[str, float] = {}
    recorder = uploader = None
    try:
        s3.create_bucket(BUCKET)
        env = write_env(work / ".env", {
            "DATA_DIR": layout.root, "SEGMENT_DURATION": args.segment, "STALL_TIMEOUT": 30, "MIN_FREE_DISK_MB": 0,
            **{f"CAMERA_{i + 1}_URL": server.camera_url(i) for i in range(args.cameras)}, **s3.env(BUCKET)})
        recorder = Daemon("services.video_recorder", env, work / "recorder.log").start()
        uploader = Daemon("services.s3_uploader", env, work / "uploader.log").start()
        wait_for(lambda: all_recording(layout, args.cameras), 90, "cameras recording")
        client = s3.client()
        started = time.time()
        deadline = started + args.seconds
        next_list = 0.0
        print(f"{args.cameras} cameras, {args.segment}-s segments, {args.seconds:.0f} s ...", flush=True)
        while time.time() < deadline:
            now = time.time()
            for folder, seen in ((layout.completed, completed_seen), (layout.uploaded, uploaded_seen)):
                for entry in os.scandir(folder) if folder.exists() else ():
                    if entry.name.endswith(".mp4") and entry.name not in seen:
                        seen[entry.name] = now
                        try:
                            mtimes.setdefault(entry.name, entry.stat().st_mtime)
                        except OSError:
                            pass
            if now >= next_list:
                next_list = now + 0.2
                for key in list_keys(client, BUCKET):
                    bucket_seen.setdefault(key.rsplit("/", 1)[-1], time.time())
            time.sleep(0.1)
        recorder.stop(timeout=60)
        uploader.stop()
    finally:
        if recorder:
            recorder.stop(timeout=60)
        if uploader:
            uploader.stop()
        s3.stop()
        server.stop()
        remove(work)

    # Segments closed during the window, seen in uploaded/ by the end (those still in flight at
    # the end are counted as not measured, listed in the results).
    # Two segment lengths for short segments, two minutes for 10-minute ones (a 150-MB upload).
    names = [n for n, m in mtimes.items() if started + 1 < m < deadline - min(2 * args.segment, 120)]
    measured = [n for n in names if n in uploaded_seen]
    stages = {
        "closed_to_completed_s": [completed_seen[n] - mtimes[n] for n in measured if n in completed_seen],
        "closed_to_in_bucket_s": [bucket_seen[n] - mtimes[n] for n in measured if n in bucket_seen],
        "closed_to_verified_s": [uploaded_seen[n] - mtimes[n] for n in measured],
    }
    summary = {"cameras": args.cameras, "segment_duration": args.segment, "window_s": args.seconds,
               "camera_server": server.describe(), "segments_closed_in_window": len(names),
               "segments_measured": len(measured), "not_verified_in_window": sorted(set(names) - set(measured)),
               "poll_interval_s": {"folders": 0.1, "bucket_listing": 0.2},
               "load_average_at_end": os.getloadavg()}
    rows = []
    for stage, values in stages.items():
        summary[stage] = {"p50": round(percentile(values, 50), 3), "p99": round(percentile(values, 99), 3),
                          "max": round(max(values), 3) if values else None, "n": len(values)}
        rows.append([stage, len(values), percentile(values, 50), percentile(values, 99),
                     max(values) if values else float("nan")])
    print(table(["from FFmpeg closing the segment to", "segments", "p50 s", "p99 s", "max s"], rows))
    print(f"results: {save('time_to_safety', summary)}")
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())
