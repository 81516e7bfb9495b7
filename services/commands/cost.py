"""`cost`: price a month of recording, from the bitrate measured in local footage or given by hand."""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

from services.bucket.lifecycle import LifecyclePolicy, read_policy
from services.commands.cost_estimate import Estimate, Prices, Usage, estimate, read_prices
from services.commands.status import human_bytes
from services.common.config import EnvReader
from services.common.data_layout import DataLayout
from services.common.mp4_fragments import video_duration
from services.common.segment_names import parse_name
from services.common.settings import (DATA_DIR, MULTIPART_PART_SIZE_MB, MULTIPART_THRESHOLD_MB, S3_STORAGE_CLASS,
                                      SEGMENT_DURATION)

SAMPLE_PER_CAMERA = 20
MB = 1024 * 1024


NAME = "cost"
HELP = "monthly S3 cost estimate from the measured (or a given) bitrate and retention"
EXIT_CODES = {0: "the estimate was printed", 1: "no footage to measure yet (give --cameras and --bitrate)"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cameras", type=int, metavar="N", help="estimate for N cameras instead of measuring "
                        "(with --bitrate; nothing needs to be recorded yet)")
    parser.add_argument("--bitrate", type=float, metavar="MBIT", help="Mbit/s per camera, with --cameras")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


@dataclass(frozen=True)
class Settings:
    """What the estimate depends on; no bucket or credentials, so it works before anything is set up."""
    data_dir: Path
    storage_class: str
    multipart_threshold: int
    part_size: int
    policy: LifecyclePolicy
    prices: Prices
    segment_duration: int


def read_settings(env: EnvReader) -> Settings:
    settings = Settings(data_dir=Path(env.get(DATA_DIR)).expanduser().resolve(),
                        storage_class=env.get(S3_STORAGE_CLASS).upper(),
                        multipart_threshold=env.get(MULTIPART_THRESHOLD_MB) * MB,
                        part_size=env.get(MULTIPART_PART_SIZE_MB) * MB,
                        policy=read_policy(env, ""), prices=read_prices(env),
                        segment_duration=env.get(SEGMENT_DURATION))
    env.check()
    return settings


def measured_bitrates(layout: DataLayout) -> dict[int, float]:
    """Bytes per second of video for each camera, from its newest local segments."""
    by_camera: dict[int, list[Path]] = {}
    for folder in (layout.completed, layout.uploaded):
        for path in folder.glob("camera_*.mp4"):
            name = parse_name(path.name)
            if name is not None:
                by_camera.setdefault(name.camera_id, []).append(path)
    rates = {}
    for camera_id, paths in by_camera.items():
        total_bytes = total_seconds = 0.0
        for path in sorted(paths, key=lambda p: p.name)[-SAMPLE_PER_CAMERA:]:
            seconds = video_duration(path)
            if seconds:
                total_bytes += path.stat().st_size
                total_seconds += seconds
        if total_seconds:
            rates[camera_id] = total_bytes / total_seconds
    return rates


def given_bitrates(cameras: int, mbit: float) -> dict[int, float]:
    """`--cameras N --bitrate MBIT`: bytes per second for cameras 1..N (Mbit = 10^6 bits)."""
    return {camera_id: mbit * 1_000_000 / 8 for camera_id in range(1, cameras + 1)}


def usage_of(rates: dict[int, float], settings: Settings) -> Usage:
    """A day's bytes, segments and multipart parts of these cameras."""
    segment_bytes = sum(rates.values()) / len(rates) * settings.segment_duration
    parts = math.ceil(segment_bytes / settings.part_size) if segment_bytes > settings.multipart_threshold else 0
    return Usage(sum(rates.values()) * 86400, len(rates) * 86400 / settings.segment_duration, parts)


def as_data(rates: dict[int, float], measured: bool, usage: Usage, result: Estimate, settings: Settings) -> dict:
    policy = settings.policy
    return {"source": "measured" if measured else "given",
            "cameras": {str(c): {"kbit_per_second": round(r * 8 / 1000, 3), "bytes_per_day": round(r * 86400)}
                        for c, r in sorted(rates.items())},
            "bytes_per_day": round(usage.bytes_per_day),
            "lifecycle": {"storage_class": settings.storage_class, "transition_days": policy.transition_days,
                          "transition_class": policy.transition_class, "expire_days": policy.expire_days},
            "lines": [{"item": label, "usd_per_month": round(amount, 4)} for label, amount in result.lines],
            "stored_gb": {cls: round(gb, 3) for cls, gb in result.stored_gb.items()},
            "total_usd_per_month": round(result.total, 4)}


def describe(rates: dict[int, float], measured: bool, usage: Usage, result: Estimate, settings: Settings) -> list[str]:
    policy = settings.policy
    how = "measured" if measured else "given"
    lines = [f"camera {c}: {r * 8 / 1000:,.0f} kbit/s {how}, {human_bytes(r * 86400)}/day"
             for c, r in sorted(rates.items())]
    lines.append(f"\n{len(rates)} cameras, {human_bytes(usage.bytes_per_day)}/day; lifecycle: "
                 f"{settings.storage_class} for {policy.transition_days or 'all'} days"
                 + (f", then {policy.transition_class}" if policy.transition_days else "")
                 + (f", deleted after {policy.expire_days} days" if policy.expire_days else ", kept for ever"))
    lines += [f"  {label:<60} {amount:>10,.2f} USD/month" for label, amount in result.lines]
    lines.append(f"  {'total':<60} {result.total:>10,.2f} USD/month")
    lines.append("prices: AWS S3 us-east-1 list prices by default; set COST_PRICE_* in .env for yours")
    return lines


def run(args: argparse.Namespace, settings: Settings) -> int:
    if (args.cameras is None) != (args.bitrate is None):
        print("cost: --cameras and --bitrate go together")
        return 2
    if args.cameras is not None and (args.cameras < 1 or args.bitrate <= 0):
        print("cost: --cameras must be at least 1 and --bitrate above 0")
        return 2
    measured = args.cameras is None
    rates = measured_bitrates(DataLayout(settings.data_dir)) if measured else given_bitrates(args.cameras, args.bitrate)
    if not rates:
        print("cost: no recorded segments to measure yet; run the recorder for a few minutes first, "
              "or estimate with --cameras N --bitrate MBIT")
        return 1
    usage = usage_of(rates, settings)
    policy = settings.policy
    result = estimate(usage, settings.prices, settings.storage_class, policy.transition_days,
                      policy.transition_class, policy.expire_days)
    if args.json:
        print(json.dumps(as_data(rates, measured, usage, result, settings), indent=2))
    else:
        print("\n".join(describe(rates, measured, usage, result, settings)))
    return 0
