"""`make bench`: every benchmark in turn; results in data/bench/results/*.json.

    python -m tests.bench.run [--only recorder scale replay-source upload crypt-upload safety fsync backup viewer
        viewer-load stall-inputs] [--quick]

BENCH_QUICK=1 (or --quick) runs a short version: 30-s windows, a ~1 GB backlog, fewer
part-size combinations, one scale step (16 cameras, one round, 2 Mbit/s), the replay source at
1 and 16 clients, the viewer in one round, the viewer under load in one idle and one loaded window
of 40 s. Environment knobs for the synthetic cameras:
BENCH_MOUNTS (2, live server), BENCH_FPS (15), BENCH_SIZE (1280x720), BENCH_KBPS (2000).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

BENCHES = ("recorder", "scale", "replay-source", "upload", "crypt-upload", "safety", "fsync", "backup", "viewer",
           "viewer-load", "stall-inputs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=BENCHES, default=list(BENCHES))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        os.environ["BENCH_QUICK"] = "1"
    from tests.bench import (
        bench_backup,
        bench_encrypted_upload,
        bench_fsync,
        bench_recorder,
        bench_replay_source,
        bench_scale,
        bench_stall_inputs,
        bench_time_to_safety,
        bench_upload,
        bench_viewer,
        bench_viewer_load,
    )
    modules = {"recorder": bench_recorder, "scale": bench_scale, "replay-source": bench_replay_source,
               "upload": bench_upload, "crypt-upload": bench_encrypted_upload, "safety": bench_time_to_safety,
               "fsync": bench_fsync, "backup": bench_backup, "viewer": bench_viewer,
               "viewer-load": bench_viewer_load, "stall-inputs": bench_stall_inputs}
    codes = {}
    started = time.monotonic()
    for name in args.only:
        print(f"\n==== {name} ====", flush=True)
        t0 = time.monotonic()
        codes[name] = modules[name].main([])
        print(f"({name}: {time.monotonic() - t0:.0f} s, exit {codes[name]})", flush=True)
    print(f"\nall benchmarks: {time.monotonic() - started:.0f} s; " +
          ", ".join(f"{k} {'ok' if v == 0 else 'FAILED'}" for k, v in codes.items()))
    return 0 if not any(codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
