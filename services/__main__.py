"""Operator commands: `python -m services <command> [--env-file F]`.

Exit codes: 0 all well, 1 a problem was found (one line says which), 78 bad configuration.
Each command's module is imported only when it runs, so `status` works on a host without
boto3 credentials and a broken optional piece never stops the others.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from services.common.config import EX_CONFIG, ConfigError, EnvReader, load_env, resolve_env_file
from services.common.settings import MIN_FREE_DISK_MB, S3_BUCKET_NAME, STATUS_BACKLOG_MAX_MINUTES
from services.common.startup import add_env_file_argument, load_config_or_exit


def _status_settings(env: EnvReader):
    from services.commands.status import Thresholds
    from services.recorder.config import read_recorder_config
    config = read_recorder_config(env)
    thresholds = Thresholds(
        backlog_max_age=env.get(STATUS_BACKLOG_MAX_MINUTES) * 60.0,
        min_free_bytes=env.get(MIN_FREE_DISK_MB) * 1024 * 1024,
    )
    env.check()
    return config, thresholds


def cmd_status(args: argparse.Namespace) -> int:
    from services.commands.status import build_report
    from services.common.data_layout import DataLayout
    config, thresholds = load_config_or_exit(args.env_file, _status_settings)
    report = build_report(DataLayout(config.common.data_dir), [c.id for c in config.cameras], thresholds)
    print(json.dumps(report.data, indent=2, default=str) if args.json else "\n".join(report.lines))
    return report.exit_code


def cmd_doctor(args: argparse.Namespace) -> int:
    from services.commands.doctor import run_recorder_checks, summary
    env_path, _ = resolve_env_file(args.env_file)
    try:
        env = load_env(args.env_file)
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return EX_CONFIG
    min_free = env.get(MIN_FREE_DISK_MB) * 1024 * 1024
    checks = run_recorder_checks(env_path if env_path.is_file() else None, env, min_free)
    if env.get(S3_BUCKET_NAME):
        from services.commands.doctor import run_bucket_checks
        checks += run_bucket_checks(EnvReader(env.values, env.source), already=checks)
    text, code = summary(checks)
    print(text)
    return code


def cmd_sync(args: argparse.Namespace) -> int:
    from services.commands import sync as sync_cli
    return sync_cli.run(args, args.env_file, load_config_or_exit(args.env_file, sync_cli.read_settings))


def cmd_coverage(args: argparse.Namespace) -> int:
    from services.commands import coverage as coverage_cli
    return coverage_cli.run(args, *load_config_or_exit(args.env_file, coverage_cli.read_settings))


def cmd_clip(args: argparse.Namespace) -> int:
    from services.commands import clip as clip_cli
    return clip_cli.run(args, load_config_or_exit(args.env_file, clip_cli.Settings))


def cmd_lifecycle(args: argparse.Namespace) -> int:
    from services.commands import lifecycle as lifecycle_cli
    return lifecycle_cli.run(args, *load_config_or_exit(args.env_file, lifecycle_cli.read_settings))


def cmd_cost(args: argparse.Namespace) -> int:
    from services.commands import cost as cost_cli
    return cost_cli.run(args, *load_config_or_exit(args.env_file, cost_cli.read_settings))


def cmd_iam_policy(args: argparse.Namespace) -> int:
    from services.commands import iam_policy
    return iam_policy.run(args, load_config_or_exit(args.env_file, iam_policy.read_settings))


def _decrypt_settings(env: EnvReader):
    from services.crypt.config import read_encryption
    keys = read_encryption(env)
    uploader = None
    if env.get(S3_BUCKET_NAME):
        from services.uploader.config import read_uploader_config
        uploader = read_uploader_config(env)
    env.check()
    return keys, uploader


def cmd_decrypt(args: argparse.Namespace) -> int:
    from services.commands import decrypt as decrypt_cli
    keys, uploader = load_config_or_exit(args.env_file, _decrypt_settings)
    client = None
    if uploader is not None and args.source.startswith("s3://"):
        from services.bucket.client import make_client
        client = make_client(uploader)
    return decrypt_cli.run(args, keys, client)


def _day(text: str):
    from services.commands.coverage import parse_day
    return parse_day(text)


def _time(text: str):
    from services.commands.clip import parse_time
    return parse_time(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, run: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        add_env_file_argument(sub)
        sub.set_defaults(run=run)
        return sub

    status = command("status", cmd_status, "services, cameras, upload backlog and disk at a glance")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    command("doctor", cmd_doctor, "check configuration, FFmpeg, cameras, disk, units and the bucket")
    sync = command("sync", cmd_sync, "upload everything waiting now, or --verify local copies against the bucket")
    sync.add_argument("--dry-run", action="store_true", help="list what would be uploaded")
    sync.add_argument("--verify", action="store_true", help="compare local segments with the bucket")
    sync.add_argument("--fix", action="store_true", help="with --verify: queue missing or different files again")
    coverage = command("coverage", cmd_coverage, "percentage of each day recorded in the bucket, and the gaps")
    coverage.add_argument("--camera", type=int, action="append", metavar="N", help="camera id (repeatable)")
    coverage.add_argument("--date", type=_day, required=True, metavar="YYYY-MM-DD", help="first day (UTC)")
    coverage.add_argument("--to", type=_day, metavar="YYYY-MM-DD", help="last day (UTC), default --date")
    coverage.add_argument("--json", action="store_true", help="machine-readable output")
    clip = command("clip", cmd_clip, "cut a time range of one camera into one MP4 (no re-encoding)")
    clip.add_argument("--camera", type=int, required=True, metavar="N")
    clip.add_argument("--start", type=_time, required=True, metavar="TIME",
                      help="e.g. 2026-01-24T14:30:00Z (UTC if no offset)")
    clip.add_argument("--end", type=_time, required=True, metavar="TIME")
    clip.add_argument("-o", "--output", default="clip.mp4", help="output file (default clip.mp4)")
    clip.add_argument("--presign", action="store_true", help="print time-limited download URLs instead")
    clip.add_argument("--expires", type=int, default=3600, help="URL lifetime in seconds (default 3600)")
    lifecycle = command("lifecycle", cmd_lifecycle, "apply the bucket lifecycle rule (colder class, expiry)")
    lifecycle.add_argument("--dry-run", action="store_true", help="show the rule, change nothing")
    command("cost", cmd_cost, "monthly S3 cost estimate from the measured bitrate and retention")
    from services.commands.decrypt import add_arguments as decrypt_arguments
    decrypt_arguments(command("decrypt", cmd_decrypt,
                              "turn an encrypted object (s3://BUCKET/KEY) or .bin file back into the MP4"))
    iam = command("iam-policy", cmd_iam_policy, "print the least-privilege IAM policies (JSON) for the bucket")
    iam.add_argument("--which", choices=("uploader", "admin", "both"), default="both",
                     help="uploader (the recording host), admin (lifecycle, doctor's bucket settings) or both")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
