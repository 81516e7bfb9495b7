"""Operator commands: `python -m services <command> [--env-file F]`.

Exit codes: 0 all well, 1 a problem was found (one line says which), 78 bad configuration.
"""
from __future__ import annotations

import argparse
import json
import sys

from services.cli_common import add_env_file_argument, load_config_or_exit
from services.config import EX_CONFIG, ConfigError, EnvReader, load_env, resolve_env_file
from services.doctor import run_recorder_checks, summary
from services.data_layout import DataLayout
from services.recorder_config import RecorderConfig, read_recorder_config
from services.status_report import Thresholds, build_report


def _status_settings(env: EnvReader) -> tuple[RecorderConfig, Thresholds]:
    config = read_recorder_config(env)
    thresholds = Thresholds(
        backlog_max_age=env.integer("STATUS_BACKLOG_MAX_MINUTES", 60, minimum=1) * 60.0,
        min_free_bytes=env.integer("MIN_FREE_DISK_MB", 2048, minimum=0) * 1024 * 1024,
    )
    env.check()
    return config, thresholds


def _day(text: str):
    from services.coverage_cli import parse_day
    return parse_day(text)


def cmd_status(args: argparse.Namespace) -> int:
    config, thresholds = load_config_or_exit(args.env_file, _status_settings)
    report = build_report(DataLayout(config.common.data_dir), [c.id for c in config.cameras], thresholds)
    if args.json:
        print(json.dumps(report.data, indent=2, default=str))
    else:
        print("\n".join(report.lines))
    return report.exit_code


def cmd_doctor(args: argparse.Namespace) -> int:
    env_path, _ = resolve_env_file(args.env_file)
    try:
        env = load_env(args.env_file)
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return EX_CONFIG
    min_free = env.integer("MIN_FREE_DISK_MB", 2048, minimum=0) * 1024 * 1024
    text, code = summary(run_recorder_checks(env_path if env_path.is_file() else None, env, min_free))
    print(text)
    return code


def cmd_coverage(args: argparse.Namespace) -> int:
    from services import coverage_cli
    config, segment_duration = load_config_or_exit(args.env_file, coverage_cli.read_settings)
    return coverage_cli.run(args, config, segment_duration)


def cmd_clip(args: argparse.Namespace) -> int:
    from services import clip_cli
    settings = load_config_or_exit(args.env_file, clip_cli.Settings)
    return clip_cli.run(args, settings)


def cmd_lifecycle(args: argparse.Namespace) -> int:
    from services import lifecycle_cli
    config, policy = load_config_or_exit(args.env_file, lifecycle_cli.read_settings)
    return lifecycle_cli.run(args, config, policy)


def cmd_sync(args: argparse.Namespace) -> int:
    from services import sync_cli
    config = load_config_or_exit(args.env_file, sync_cli.read_settings)
    return sync_cli.run(args, args.env_file, config)


def cmd_cost(args: argparse.Namespace) -> int:
    from services import cost_cli
    return cost_cli.run(args, *load_config_or_exit(args.env_file, cost_cli.read_settings))


def _time(text: str):
    from services.clip_cli import parse_time
    return parse_time(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="services, cameras, upload backlog and disk at a glance")
    add_env_file_argument(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=cmd_status)
    doctor = commands.add_parser("doctor", help="check configuration, FFmpeg, cameras, disk and units")
    add_env_file_argument(doctor)
    doctor.set_defaults(run=cmd_doctor)
    coverage = commands.add_parser("coverage", help="percentage of each day recorded in the bucket, and the gaps")
    add_env_file_argument(coverage)
    coverage.add_argument("--camera", type=int, action="append", metavar="N", help="camera id (repeatable)")
    coverage.add_argument("--date", type=_day, required=True, metavar="YYYY-MM-DD", help="first day (UTC)")
    coverage.add_argument("--to", type=_day, metavar="YYYY-MM-DD", help="last day (UTC), default --date")
    coverage.add_argument("--json", action="store_true", help="machine-readable output")
    coverage.set_defaults(run=cmd_coverage)
    clip = commands.add_parser("clip", help="cut a time range of one camera into one MP4 (no re-encoding)")
    add_env_file_argument(clip)
    clip.add_argument("--camera", type=int, required=True, metavar="N")
    clip.add_argument("--start", type=_time, required=True, metavar="TIME", help="e.g. 2026-01-24T14:30:00Z (UTC if no offset)")
    clip.add_argument("--end", type=_time, required=True, metavar="TIME")
    clip.add_argument("-o", "--output", default="clip.mp4", help="output file (default clip.mp4)")
    clip.add_argument("--presign", action="store_true", help="print time-limited download URLs instead")
    clip.add_argument("--expires", type=int, default=3600, help="URL lifetime in seconds (default 3600)")
    clip.set_defaults(run=cmd_clip)
    lifecycle = commands.add_parser("lifecycle", help="apply the bucket lifecycle rule (colder class, expiry)")
    add_env_file_argument(lifecycle)
    lifecycle.add_argument("--dry-run", action="store_true", help="show the rule, change nothing")
    lifecycle.set_defaults(run=cmd_lifecycle)
    sync = commands.add_parser("sync", help="upload everything waiting now, or --verify local copies against the bucket")
    add_env_file_argument(sync)
    sync.add_argument("--dry-run", action="store_true", help="list what would be uploaded")
    sync.add_argument("--verify", action="store_true", help="compare local segments with the bucket")
    sync.add_argument("--fix", action="store_true", help="with --verify: queue missing or different files again")
    sync.set_defaults(run=cmd_sync)
    cost = commands.add_parser("cost", help="monthly S3 cost estimate from the measured bitrate and retention")
    add_env_file_argument(cost)
    cost.set_defaults(run=cmd_cost)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
