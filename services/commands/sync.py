"""`sync [--dry-run] [--verify [--fix]]`: upload everything waiting now, or check local against the bucket."""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

from services.bucket.catalog import folder_sizes
from services.bucket.client import classify, make_client
from services.bucket.keys import stored_key
from services.commands.status import human_bytes
from services.commands.sync_verify import compare, local_segments, requeue
from services.common.config import EnvReader
from services.common.data_layout import DataLayout
from services.common.segment_names import parse_name
from services.uploader import daemon as uploader_daemon
from services.uploader.config import UploaderConfig, read_uploader_config

NAME = "sync"
HELP = "upload everything waiting now, or --verify local copies against the bucket"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="list what would be uploaded")
    parser.add_argument("--verify", action="store_true", help="compare local segments with the bucket")
    parser.add_argument("--fix", action="store_true", help="with --verify: queue missing or different files again")


def read_settings(env: EnvReader) -> UploaderConfig:
    return read_uploader_config(env)


def verify(args: argparse.Namespace, config: UploaderConfig) -> int:
    layout = DataLayout(config.common.data_dir)
    paths = local_segments(layout)
    encrypted = config.crypt is not None
    keys = [stored_key(config.prefix, parse_name(p.name), encrypted) for p in paths]
    try:
        remote = folder_sizes(make_client(config), config.bucket, keys)
    except Exception as exc:  # noqa: BLE001
        print(f"sync: {classify(exc, 'listing the bucket')}")
        return 1
    findings = compare(paths, remote, config.prefix, layout, encrypted)
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.verdict] = counts.get(finding.verdict, 0) + 1
        if finding.problem:
            remote_text = "no object" if finding.remote_size is None else f"{finding.remote_size} bytes in the bucket"
            print(f"{finding.verdict:<14} {finding.path.parent.name}/{finding.path.name} "
                  f"({finding.local_size} bytes locally, {remote_text})")
    print(", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "no local segments")
    problems = [f for f in findings if f.problem]
    if problems and args.fix:
        moved = requeue(problems, layout)
        print(f"moved {len(moved)} files back to completed/ for the uploader")
    return 1 if problems else 0


def run(args: argparse.Namespace, config: UploaderConfig) -> int:
    if args.verify:
        return verify(args, config)
    layout = DataLayout(config.common.data_dir)
    waiting = sorted(layout.completed.glob("camera_*.mp4"))
    print(f"{len(waiting)} segments waiting ({human_bytes(sum(p.stat().st_size for p in waiting))})")
    if args.dry_run:
        for path in waiting:
            print(f"would upload {path.name} -> s3://{config.bucket}/"
                  f"{stored_key(config.prefix, parse_name(path.name), config.crypt is not None)}"
                  if parse_name(path.name) else f"would skip {path.name} (not a segment name)")
        return 0
    argv = ["--once"] + (["--env-file", args.env_file] if args.env_file else [])
    if not sys.stdout.isatty():
        return uploader_daemon.main(argv)
    # On a terminal: the uploader runs as a child and a progress bar follows completed/.
    child = subprocess.Popen([sys.executable, "-m", "services.s3_uploader", *argv],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    total_files, total_bytes = len(waiting), sum(p.stat().st_size for p in waiting if p.exists()) or 1
    while child.poll() is None:
        left = [p for p in waiting if p.exists()]
        left_bytes = sum(p.stat().st_size for p in left if p.exists())
        print("\r" + progress_line(total_files - len(left), total_files, total_bytes - left_bytes, total_bytes),
              end="", flush=True)
        time.sleep(0.5)
    print("\r" + progress_line(total_files - sum(p.exists() for p in waiting), total_files, total_bytes,
                                 total_bytes))
    errors = [line for line in child.stderr.read().splitlines() if "ERROR" in line or "config error" in line]
    print("\n".join(errors[-5:]))
    return child.returncode


def progress_line(done_files: int, files: int, done_bytes: int, total_bytes: int, width: int = 30) -> str:
    filled = int(width * done_bytes / total_bytes) if total_bytes else width
    return (f"[{'#' * filled}{'-' * (width - filled)}] {done_files}/{files} files, "
            f"{human_bytes(done_bytes)} of {human_bytes(total_bytes)}")
