"""`sync [--dry-run] [--verify [--fix]]`: upload everything waiting now, or check local against the bucket."""
from __future__ import annotations

import argparse

from services import s3_uploader
from services.config import EnvReader
from services.data_layout import DataLayout
from services.s3_client import classify, make_client
from services.s3_keys import object_key
from services.segment_names import parse_name
from services.status_report import human_bytes
from services.sync_verify import compare, list_day_folders, local_segments, requeue
from services.uploader_config import UploaderConfig, read_uploader_config


def read_settings(env: EnvReader) -> UploaderConfig:
    return read_uploader_config(env)


def verify(args: argparse.Namespace, config: UploaderConfig) -> int:
    layout = DataLayout(config.common.data_dir)
    paths = local_segments(layout)
    keys = [object_key(config.prefix, parse_name(p.name)) for p in paths]
    try:
        remote = list_day_folders(make_client(config), config.bucket, keys)
    except Exception as exc:  # noqa: BLE001
        print(f"sync: {classify(exc, 'listing the bucket')}")
        return 1
    findings = compare(paths, remote, config.prefix, layout)
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


def run(args: argparse.Namespace, env_file: str | None, config: UploaderConfig) -> int:
    if args.verify:
        return verify(args, config)
    layout = DataLayout(config.common.data_dir)
    waiting = sorted(layout.completed.glob("camera_*.mp4"))
    print(f"{len(waiting)} segments waiting ({human_bytes(sum(p.stat().st_size for p in waiting))})")
    if args.dry_run:
        for path in waiting:
            print(f"would upload {path.name} -> s3://{config.bucket}/{object_key(config.prefix, parse_name(path.name))}"
                  if parse_name(path.name) else f"would skip {path.name} (not a segment name)")
        return 0
    argv = ["--once"] + (["--env-file", env_file] if env_file else [])
    return s3_uploader.main(argv)
