"""`coverage`: from the bucket listing, how complete each camera's recording is, day by day."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from services.bucket.catalog import measure_stored, stored_spans
from services.bucket.client import S3Problem, make_client
from services.common.config import EnvReader
from services.common.settings import SEGMENT_DURATION
from services.common.spans import Coverage, Span, day_window
from services.uploader.config import UploaderConfig, read_uploader_config


def parse_day(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date in YYYY-MM-DD form: {text!r}") from None


NAME = "coverage"
HELP = "percentage of each day recorded in the bucket, and the gaps"
EXIT_CODES = {0: "the report was printed (gaps are not an error)", 1: "the bucket could not be listed"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--camera", type=int, action="append", metavar="N", help="camera id (repeatable)")
    parser.add_argument("--date", type=parse_day, required=True, metavar="YYYY-MM-DD", help="first day (UTC)")
    parser.add_argument("--to", type=parse_day, metavar="YYYY-MM-DD", help="last day (UTC), default --date")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


@dataclass(frozen=True)
class Settings:
    uploader: UploaderConfig
    segment_duration: int


def read_settings(env: EnvReader) -> Settings:
    segment_duration = env.get(SEGMENT_DURATION)
    return Settings(read_uploader_config(env), segment_duration)


def camera_coverage(client, config: UploaderConfig, camera_id: int, window: Span,
                    segment_duration: int) -> Coverage:
    return measure_stored(stored_spans(client, config.bucket, config.prefix, camera_id, window, segment_duration),
                          window)


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S") if moment.time() != datetime.min.time() else moment.strftime("%m-%d %H:%M:%S")


def describe(camera_id: int, day: datetime, result: Coverage) -> list[str]:
    lines = [f"camera {camera_id}  {day:%Y-%m-%d}  {result.percent:6.2f}% covered "
             f"({result.covered_seconds / 3600:.2f} h of {result.window.seconds / 3600:.2f} h, "
             f"{result.segments} segments, {len(result.gaps)} gaps)"]
    for gap in result.gaps:
        lines.append(f"    gap {_clock(gap.start)} - {_clock(gap.end)} UTC  ({gap.seconds:.0f} s)")
    return lines


def run(args: argparse.Namespace, settings: Settings) -> int:
    config, segment_duration = settings.uploader, settings.segment_duration
    cameras = args.camera or sorted({cid for cid, _ in config.camera_names}) or []
    if not cameras:
        print("coverage: name a camera with --camera N")
        return 2
    last = args.to or args.date
    if last < args.date:
        print("coverage: --to is before --date")
        return 2
    client = make_client(config)
    now = datetime.now(timezone.utc)
    report = []
    try:
        for camera_id in cameras:
            day = args.date
            while day <= last:
                window = day_window(day, now)
                if window.seconds > 0:
                    result = camera_coverage(client, config, camera_id, window, segment_duration)
                    report.append((camera_id, day, result))
                day += timedelta(days=1)
    except S3Problem as problem:
        print(f"coverage: {problem}")
        return 1
    if args.json:
        print(json.dumps([{"camera": c, "date": f"{d:%Y-%m-%d}", "percent": round(r.percent, 3),
                           "covered_seconds": round(r.covered_seconds, 3), "segments": r.segments,
                           "gaps": [{"start": g.start.isoformat(), "end": g.end.isoformat(),
                                     "seconds": round(g.seconds, 3)} for g in r.gaps]}
                          for c, d, r in report], indent=2))
    else:
        for camera_id, day, result in report:
            print("\n".join(describe(camera_id, day, result)))
    return 0
