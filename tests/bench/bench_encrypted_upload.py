"""Benchmark 2b: encrypted upload (rclone crypt format) against `rclone copy` to a crypt remote.

Same local `rclone serve s3`, same backlog of random-byte segments, same run; both produce
`<name>.bin` objects that one rclone crypt remote reads. Reports MB/s of plaintext and the ratio.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import time
import zlib
from typing import Callable

from nacl.bindings import crypto_secretbox

from services.common.data_layout import DataLayout
from services.crypt.format import encrypted_size
from tests.bench.bench_upload import make_backlog, reset, timed
from tests.bench.common import cpu_seconds, quick, remove, save, table, workspace
from tests.support.processes import REPO, write_env
from tests.support.s3_server import S3Server, list_keys, rclone_binary

BUCKET = "bench-crypt"
PASSWORD, SALT = "benchmark passphrase", "benchmark salt"


def primitive_speeds(megabytes: int = 256) -> dict[str, float]:
    """MB/s of the per-byte work on one core: the hashes and the cipher the upload path uses."""
    block = os.urandom(1024 * 1024)
    key, nonce = os.urandom(32), os.urandom(24)
    speeds = {}
    for name, work in (("md5", hashlib.md5().update), ("sha256", hashlib.sha256().update),
                       ("crc32", zlib.crc32),
                       ("secretbox (64 KiB blocks)", lambda data: [crypto_secretbox(data[i:i + 65536], nonce, key)
                                                                   for i in range(0, len(data), 65536)])):
        started = time.perf_counter()
        for _ in range(megabytes):
            work(block)
        speeds[name] = round(megabytes * 1.048576 / (time.perf_counter() - started))
    return speeds


def check(s3: S3Server, prefix: str, sizes: dict[str, int]) -> str:
    found = {key.rsplit("/", 1)[-1]: size for key, size in list_keys(s3.client(), BUCKET, prefix).items()}
    wrong = [n for n, size in sizes.items() if found.get(n + ".bin") != encrypted_size(size)]
    return f"{len(wrong)} objects missing or of the wrong size" if wrong else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8 if quick() else 20)
    parser.add_argument("--min-mb", type=int, default=25)
    parser.add_argument("--max-mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs per client, rotating which goes first")
    args = parser.parse_args(argv)
    work = workspace("crypt-upload")
    layout = DataLayout(work / "data")
    s3 = S3Server(work / "s3", log=work / "s3.log")
    runs = []
    try:
        paths = make_backlog(layout.completed, args.files, args.min_mb, args.max_mb)
        sizes = {p.name: p.stat().st_size for p in paths}
        total = sum(sizes.values())
        print(f"backlog: {len(paths)} files, {total / 1e9:.2f} GB", flush=True)
        s3.start()
        s3.create_bucket(BUCKET)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        env.pop("JOURNAL_STREAM", None)
        obscure = lambda text: subprocess.run([rclone_binary(), "obscure", text], capture_output=True,  # noqa: E731
                                              text=True, check=True).stdout.strip()
        rclone_env = dict(env, RCLONE_CONFIG_STORE_TYPE="s3", RCLONE_CONFIG_STORE_PROVIDER="Other",
                          RCLONE_CONFIG_STORE_ENDPOINT=s3.endpoint, RCLONE_CONFIG_STORE_ACCESS_KEY_ID=s3.access_key,
                          RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY=s3.secret_key,
                          RCLONE_CONFIG_STORE_FORCE_PATH_STYLE="true", RCLONE_CONFIG_SEALED_TYPE="crypt",
                          RCLONE_CONFIG_SEALED_PASSWORD=obscure(PASSWORD), RCLONE_CONFIG_SEALED_PASSWORD2=obscure(SALT),
                          RCLONE_CONFIG_SEALED_FILENAME_ENCRYPTION="off",
                          RCLONE_CONFIG_SEALED_DIRECTORY_NAME_ENCRYPTION="false")

        def ours(prefix: str) -> tuple[list[str], dict[str, str]]:
            env_file = write_env(work / "uploader.env", {
                "DATA_DIR": layout.root, "MIN_FREE_DISK_MB": 0, "S3_PREFIX": prefix,
                "ENCRYPTION_PASSWORD": PASSWORD, "ENCRYPTION_SALT": SALT, **s3.env(BUCKET)})
            return [sys.executable, "-m", "services.s3_uploader", "--once", "--env-file", str(env_file)], env

        def rclone(*options: str) -> Callable[[str], tuple[list[str], dict[str, str]]]:
            def command(prefix: str) -> tuple[list[str], dict[str, str]]:
                return ([rclone_binary(), "copy", "--config", "/dev/null", *options, str(layout.completed), "sealed:"],
                        dict(rclone_env, RCLONE_CONFIG_SEALED_REMOTE=f"store:{BUCKET}/{prefix}"))
            return command

        # rclone's defaults PUT files below 200 MiB whole; the second rclone run uploads in
        # 16 MiB parts like ours, so that the server does the same work for both.
        clients = [("s3_uploader --once, encrypted (defaults)", "ours", ours),
                   ("rclone copy to a crypt remote (defaults)", "rclone", rclone()),
                   ("rclone copy to a crypt remote, 16 MiB parts like ours", "rclone-parts",
                    rclone("--s3-upload-cutoff", "16M", "--s3-chunk-size", "16M"))]
        # Rotate who goes first (round r starts with client r mod 3, so every client takes every
        # place), and flush dirty pages before each run, so that write-back of the backlog or of
        # the previous run's objects does not land on one client only. Each run gets a fresh
        # prefix (rclone serve s3 caches listings), deleted on disk afterwards.
        for round_ in range(args.rounds):
            shift = round_ % len(clients)
            for label, kind, command in clients[shift:] + clients[:shift]:
                prefix = f"{kind}-{round_ + 1}"
                argv, run_env = command(prefix)
                print(f"  round {round_ + 1}: {label} ...", end=" ", flush=True)
                server_before = cpu_seconds([s3.proc.pid], include_reaped=False)
                result = timed(argv, run_env, work / f"{kind}.log")
                result["server_cpu_s"] = round(cpu_seconds([s3.proc.pid], include_reaped=False) - server_before, 2)
                problem = check(s3, prefix + "/", sizes) if result["exit"] == 0 else f"exit {result['exit']}"
                runs.append({"label": label, "client": kind, "round": round_ + 1, **result, "problem": problem,
                             "mb_per_s": round(total / 1e6 / result["wall_s"], 1)})
                print(f"{runs[-1]['mb_per_s']} MB/s {problem}", flush=True)
                reset(layout, s3.root / BUCKET / prefix)
    finally:
        s3.stop()
        remove(work)
    print(table(["client", "round", "wall s", "MB/s (plaintext)", "client CPU s", "client peak RSS MB",
                 "server CPU s", "result"],
                [[r["label"], r["round"], r["wall_s"], r["mb_per_s"], r["client_cpu_s"], r["client_max_rss_mb"],
                  r["server_cpu_s"], r["problem"] or "ok"] for r in runs]))
    medians = {kind: {field: round(statistics.median(r[field] for r in runs if r["client"] == kind), 2)
                      for field in ("mb_per_s", "client_cpu_s", "client_max_rss_mb", "server_cpu_s")}
               for _, kind, _ in clients}
    for kind, median in medians.items():
        print(f"median {kind}: {median['mb_per_s']} MB/s, client CPU {median['client_cpu_s']} s, "
              f"peak RSS {median['client_max_rss_mb']} MB, server CPU {median['server_cpu_s']} s")
    ratios = {kind: round(medians["ours"]["mb_per_s"] / median["mb_per_s"], 2)
              for kind, median in medians.items() if kind != "ours" and median["mb_per_s"]}
    for kind, ratio in ratios.items():
        print(f"ours / {kind} (median MB/s): {ratio}")
    speeds = primitive_speeds()
    print("one core, MB/s: " + ", ".join(f"{name} {speed}" for name, speed in speeds.items()))
    print(f"results: {save('crypt-upload', {'files': len(sizes), 'total_bytes': total, 'rounds': args.rounds, 'ratios': ratios, 'medians': medians, 'primitive_mb_per_s': speeds, 'runs': runs})}")
    return 0 if runs and not any(r["problem"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
