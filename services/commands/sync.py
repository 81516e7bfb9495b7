"""`sync [--dry-run] [--verify [--fix]]`: upload everything waiting now, or check local against the bucket."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from services.bucket.catalog import folder_sizes
from services.bucket.client import classify, make_client
from services.bucket.keys import stored_key
from services.commands.status import human_bytes
from services.commands.sync_source import dry_run_sources, progress_of, survey, verify_sources
from services.commands.sync_verify import Finding, compare, local_segments, requeue
from services.common.config import EnvReader
from services.common.data_layout import DataLayout
from services.common.segment_names import parse_name
from services.common.state_file import read_snapshot
from services.uploader import daemon as uploader_daemon
from services.uploader.config import UploaderConfig, read_uploader_config
from services.uploader.report import STATE_FILE, UploaderSnapshot

NAME = "sync"
HELP = "upload everything waiting now, or --verify local copies against the bucket"
EXIT_CODES = {0: "everything waiting was uploaded (--verify: every local segment is in the bucket)",
              1: "something is left or wrong; the reason is printed (--verify: missing or different objects)",
              75: "the uploader is running on this DATA_DIR (it uploads them)"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="list what would be uploaded")
    parser.add_argument("--verify", action="store_true", help="compare local segments with the bucket")
    parser.add_argument("--fix", action="store_true", help="with --verify: queue missing or different files again")
    parser.add_argument("--json", action="store_true", help="with --verify or --dry-run: machine-readable output")


def read_settings(env: EnvReader) -> UploaderConfig:
    return read_uploader_config(env)


def verify(args: argparse.Namespace, config: UploaderConfig) -> int:
    if config.sources is not None:
        return verify_sources(args, config, lambda keys: folder_sizes(make_client(config), config.bucket, keys))
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
    problems = [f for f in findings if f.problem]
    moved = requeue(problems, layout) if problems and args.fix else []
    if args.json:
        print(json.dumps({"findings": [finding_data(f) for f in findings], "counts": counts,
                          "requeued": [p.name for p in moved]}, indent=2))
        return 1 if problems else 0
    for finding in problems:
        remote_text = "no object" if finding.remote_size is None else f"{finding.remote_size} bytes in the bucket"
        print(f"{finding.verdict:<14} {finding.path.parent.name}/{finding.path.name} "
              f"({finding.local_size} bytes locally, {remote_text})")
    print(", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "no local segments")
    if args.fix and problems:
        print(f"moved {len(moved)} files back to completed/ for the uploader")
    return 1 if problems else 0


def finding_data(finding: Finding) -> dict:
    return {"file": f"{finding.path.parent.name}/{finding.path.name}", "key": finding.key,
            "verdict": finding.verdict, "local_size": finding.local_size, "remote_size": finding.remote_size}


def run(args: argparse.Namespace, config: UploaderConfig) -> int:
    if args.json and not (args.verify or args.dry_run):
        print("sync: --json goes with --verify or --dry-run")
        return 2
    if args.verify:
        return verify(args, config)
    layout = DataLayout(config.common.data_dir)
    if config.sources is not None and args.dry_run:
        return dry_run_sources(args, config)
    waiting = sorted(layout.completed.glob("camera_*.mp4")) if config.sources is None else \
        [f.path for f in survey(config) if f.key and not f.verified]
    if args.dry_run:
        plan = [(path.name, stored_key(config.prefix, parse_name(path.name), config.crypt is not None)
                 if parse_name(path.name) else None) for path in waiting]
        if args.json:
            print(json.dumps([{"file": name, "key": key, "bucket": config.bucket} for name, key in plan], indent=2))
            return 0
        print(f"{len(waiting)} segments waiting ({human_bytes(sum(p.stat().st_size for p in waiting))})")
        for name, key in plan:
            print(f"would upload {name} -> s3://{config.bucket}/{key}" if key
                  else f"would skip {name} (not a segment name)")
        return 0
    print(f"{len(waiting)} segments waiting ({human_bytes(sum(p.stat().st_size for p in waiting))})")
    argv = ["--once"] + (["--env-file", args.env_file] if args.env_file else [])
    if not sys.stdout.isatty():
        return uploader_daemon.main(argv)   # its log lines are the output
    done_of = (lambda sizes: progress_of(config, sizes)) if config.sources is not None else progress
    return upload_with_progress(argv, waiting, layout, done_of)


def upload_with_progress(argv: list[str], waiting: list[Path], layout: DataLayout,
                         done_of: Callable[[dict[Path, int]], tuple[int, int, int, int]] | None = None) -> int:
    """On a terminal: the uploader runs as a child, a progress bar follows completed/, and a
    failure ends with the reason (the child's error lines, else its state file's last error)."""
    sizes = {path: path.stat().st_size for path in waiting if path.exists()}
    done_of = done_of or progress
    with tempfile.TemporaryFile(mode="w+", prefix="sync-") as output:
        child = subprocess.Popen([sys.executable, "-m", "services.s3_uploader", *argv],
                                 stdout=output, stderr=subprocess.STDOUT, text=True)
        while child.poll() is None:
            print("\r" + progress_line(*done_of(sizes)), end="", flush=True)
            time.sleep(0.5)
        print("\r" + progress_line(*done_of(sizes)))
        output.seek(0)
        log = output.read()
    if child.returncode != 0:
        snapshot = read_snapshot(layout.state / STATE_FILE, UploaderSnapshot)
        ours = snapshot if snapshot is not None and snapshot.pid == child.pid else None
        for line in failure_lines(log, ours, child.returncode):
            print(f"sync: {line}")
    return child.returncode


def progress(sizes: dict[Path, int]) -> tuple[int, int, int, int]:
    """(files done, files, bytes done, bytes): a file is done once it has left completed/."""
    done = [path for path in sizes if not path.exists()]
    return len(done), len(sizes), sum(sizes[p] for p in done), sum(sizes.values())


def failure_lines(log: str, snapshot: UploaderSnapshot | None, code: int) -> list[str]:
    """Why the uploader child failed: S3 refusing the settings (its state file says so without
    the daemon's "next try" wording), else its error lines (a bad .env, a held lock, files that
    kept failing), else the last error it recorded, else just the exit code."""
    if snapshot is not None and snapshot.config_error:
        return [f"uploads blocked: {snapshot.config_error}"]
    errors = [line.split("| ", 2)[-1].strip() for line in log.splitlines()
              if "ERROR" in line or line.startswith("config error") or "is running on this DATA_DIR" in line]
    if errors:
        return list(dict.fromkeys(errors))[-5:]
    if snapshot is not None and snapshot.last_error:
        return [f"last error: {snapshot.last_error.message}"]
    return [f"the uploader exited with {code} and gave no reason"]


def progress_line(done_files: int, files: int, done_bytes: int, total_bytes: int, width: int = 30) -> str:
    filled = int(width * done_bytes / total_bytes) if total_bytes else (width if done_files == files else 0)
    return (f"[{'#' * filled}{'-' * (width - filled)}] {done_files}/{files} files, "
            f"{human_bytes(done_bytes)} of {human_bytes(total_bytes)}")
