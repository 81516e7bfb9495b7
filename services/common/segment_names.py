"""Segment file names: `camera_<id>_<YYYY-MM-DD>_<HH-MM-SS>.mp4`, start time in UTC.

UTC because local time repeats an hour at DST fall-back. A clock stepped backwards can
still repeat a name; the recorder never overwrites and then adds a `_<n>` suffix
(`camera_1_2026-01-24_14-30-00_1.mp4`), which every parser here accepts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

SUFFIX = ".mp4"
_NAME = re.compile(
    r"^camera_(?P<id>\d+)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<time>\d{2}-\d{2}-\d{2})"
    r"(?:_(?P<dup>\d+))?\.mp4$"
)
STRFTIME_TIME = "%Y-%m-%d_%H-%M-%S"


@dataclass(frozen=True, order=True)
class SegmentName:
    start: datetime
    camera_id: int
    duplicate: int = 0

    @property
    def filename(self) -> str:
        tail = f"_{self.duplicate}" if self.duplicate else ""
        return f"camera_{self.camera_id}_{self.start.strftime(STRFTIME_TIME)}{tail}{SUFFIX}"

    def with_duplicate(self, number: int) -> "SegmentName":
        return SegmentName(self.start, self.camera_id, number)


def format_name(camera_id: int, start: datetime) -> str:
    """File name for a segment of `camera_id` starting at `start` (converted to UTC)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    return SegmentName(start.astimezone(timezone.utc).replace(microsecond=0), camera_id).filename


def parse_name(filename: str) -> SegmentName | None:
    """The parts of a segment file name, or None for anything else."""
    match = _NAME.match(filename)
    if not match:
        return None
    try:
        start = datetime.strptime(f"{match['date']}_{match['time']}", STRFTIME_TIME)
    except ValueError:
        return None
    return SegmentName(start.replace(tzinfo=timezone.utc), int(match["id"]), int(match["dup"] or 0))


def strftime_pattern(camera_id: int) -> str:
    """The pattern FFmpeg expands (with TZ=UTC) when it opens each segment."""
    return f"camera_{camera_id}_{STRFTIME_TIME}{SUFFIX}"
