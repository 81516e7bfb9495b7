"""`cost`: measure the recorded bitrate per camera, then price a month of it."""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

from services.bucket.lifecycle import LifecyclePolicy, read_policy
from services.commands.cost_estimate import Prices, Usage, estimate, read_prices
from services.commands.status import human_bytes
from services.common.config import EnvReader
from services.common.data_layout import DataLayout
from services.common.mp4_fragments import video_duration
from services.common.segment_names import parse_name
from services.common.settings import SEGMENT_DURATION
from services.uploader.config import UploaderConfig, read_uploader_config

SAMPLE_PER_CAMERA = 20


NAME = "cost"
HELP = "monthly S3 cost estimate from the measured bitrate and retention"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """None besides --env-file."""


@dataclass(frozen=True)
class Settings:
    uploader: UploaderConfig
    policy: LifecyclePolicy
    prices: Prices
    segment_duration: int


def read_settings(env: EnvReader) -> Settings:
    config = read_uploader_config(env)
    policy = read_policy(env, config.prefix)
    prices = read_prices(env)
    segment_duration = env.get(SEGMENT_DURATION)
    env.check()
    return Settings(config, policy, prices, segment_duration)


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


def run(args: argparse.Namespace, settings: Settings) -> int:
    config, policy, prices, segment_duration = (settings.uploader, settings.policy, settings.prices,
                                                settings.segment_duration)
    rates = measured_bitrates(DataLayout(config.common.data_dir))
    if not rates:
        print("cost: no recorded segments to measure yet; run the recorder for a few minutes first")
        return 1
    for camera_id, rate in sorted(rates.items()):
        print(f"camera {camera_id}: {rate * 8 / 1000:,.0f} kbit/s measured, {human_bytes(rate * 86400)}/day")
    bytes_per_day = sum(rates.values()) * 86400
    segment_bytes = sum(rates.values()) / len(rates) * segment_duration
    parts = math.ceil(segment_bytes / config.part_size) if segment_bytes > config.multipart_threshold else 0
    usage = Usage(bytes_per_day, len(rates) * 86400 / segment_duration, parts)
    result = estimate(usage, prices, config.storage_class, policy.transition_days, policy.transition_class,
                      policy.expire_days)
    print(f"\n{len(rates)} cameras, {human_bytes(bytes_per_day)}/day; lifecycle: "
          f"{config.storage_class} for {policy.transition_days or 'all'} days"
          + (f", then {policy.transition_class}" if policy.transition_days else "")
          + (f", deleted after {policy.expire_days} days" if policy.expire_days else ", kept for ever"))
    for label, amount in result.lines:
        print(f"  {label:<60} {amount:>10,.2f} USD/month")
    print(f"  {'total':<60} {result.total:>10,.2f} USD/month")
    print("prices: AWS S3 us-east-1 list prices by default; set COST_PRICE_* in .env for yours")
    return 0
