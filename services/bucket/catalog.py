"""What the bucket holds for a camera and a span of days: keys, sizes, start times, durations."""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator

from services.bucket.client import classify
from services.bucket.keys import object_key
from services.bucket.metadata import DURATION, END, FIRST_FRAME, parse_iso_ms
from services.common.segment_names import SegmentName, parse_name
from services.common.spans import Coverage, Span, measure, segment_spans
from services.crypt.format import SUFFIX as ENCRYPTED_SUFFIX

# How far before a window a segment may start and still reach into it: twice the longest
# SEGMENT_DURATION (3600 s), for other recorders' files in source mode, which can run longer.
LOOK_BACK = timedelta(hours=2)
_CAMERA_FOLDER = re.compile(r"/camera_(\d+)/$")
_CONFLICT = re.compile(r"\.conflict-[0-9a-f]+(?=\.mp4$)")
_ENCRYPTED = re.compile(re.escape(ENCRYPTED_SUFFIX) + "$")


@dataclass(frozen=True)
class StoredSegment:
    key: str
    name: SegmentName
    size: int
    duration: float | None = None
    first_frame: datetime | None = None   # host time of its first frame (stamped segments)
    end: datetime | None = None

    @property
    def start(self) -> datetime:
        """Where the segment begins on the timeline: its first frame, else its name's second."""
        return self.first_frame or self.name.start

    @property
    def seconds(self) -> float | None:
        if self.first_frame is not None and self.end is not None:
            return (self.end - self.first_frame).total_seconds()
        return self.duration


def from_metadata(segment: StoredSegment, metadata: dict[str, str]) -> StoredSegment:
    """`segment` with the duration and exact times its object's metadata holds, where valid."""
    # Some servers (rclone) return metadata names capitalised: Segment-Duration.
    metadata = {str(k).lower(): v for k, v in metadata.items()}
    try:
        duration = float(metadata[DURATION])
    except (KeyError, ValueError):
        duration = None
    try:
        first_frame, end = parse_iso_ms(metadata[FIRST_FRAME]), parse_iso_ms(metadata[END])
    except (KeyError, ValueError):
        first_frame = end = None
    return StoredSegment(segment.key, segment.name, segment.size, duration, first_frame, end)


def day_prefix(prefix: str, camera_id: int, day: datetime) -> str:
    probe = SegmentName(day, camera_id)
    return object_key(prefix, probe).rsplit("/", 1)[0] + "/"


def name_of_key(key: str) -> SegmentName | None:
    """The segment a key holds: conflict copies (`...conflict-<hash>.mp4`) and rclone-crypt
    objects (`....mp4.bin`) included."""
    return parse_name(_CONFLICT.sub("", _ENCRYPTED.sub("", key.rsplit("/", 1)[-1])))


def _listed(paginator: Any, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
    """(key, size) of every object under `prefix`, page by page."""
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []) or []:
            yield item["Key"], int(item["Size"])


def folder_sizes(client: Any, bucket: str, keys: Iterable[str]) -> dict[str, int]:
    """Sizes of every object in the folders `keys` fall into: one listing per folder, so the cost
    follows the keys asked about, not the size of the bucket. Errors are left to the caller."""
    paginator = client.get_paginator("list_objects_v2")
    folders = sorted({key.rsplit("/", 1)[0] + "/" for key in keys})
    return {found: size for folder in folders for found, size in _listed(paginator, bucket, folder)}


def list_segments(client: Any, bucket: str, prefix: str, camera_id: int, window: Span) -> list[StoredSegment]:
    """Segments starting from the day before `window` (one may run past midnight) to its end."""
    found = []
    day = window.start.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    try:
        paginator = client.get_paginator("list_objects_v2")
        while day < window.end:
            for key, size in _listed(paginator, bucket, day_prefix(prefix, camera_id, day)):
                name = name_of_key(key)
                if name is not None and name.camera_id == camera_id:
                    found.append(StoredSegment(key, name, size))
            day += timedelta(days=1)
    except Exception as exc:  # noqa: BLE001 - reported as one line by the caller
        raise classify(exc, f"listing s3://{bucket}/{prefix}") from None
    # Of the day before, only what starts within LOOK_BACK of the window can reach into it: the
    # rest would each cost a HEAD for nothing. All of those are kept, not just the last, since a
    # conflict copy or another recorder's longer file can start at the same time or overlap.
    earliest = window.start - LOOK_BACK
    return sorted((s for s in found if s.name.start >= earliest), key=lambda s: (s.name.start, s.key))


def with_durations(client: Any, bucket: str, segments: list[StoredSegment]) -> list[StoredSegment]:
    """Fill in each segment's recorded duration and exact times from its metadata, where the
    uploader stored them."""
    def head(segment: StoredSegment) -> StoredSegment:
        try:
            return from_metadata(segment, client.head_object(Bucket=bucket, Key=segment.key).get("Metadata", {}) or {})
        except Exception as exc:  # noqa: BLE001
            raise classify(exc, f"reading s3://{bucket}/{segment.key}") from None
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(head, segments))


def stored_spans(client: Any, bucket: str, prefix: str, camera_id: int, window: Span,
                 segment_duration: int) -> list[tuple[StoredSegment, Span]]:
    """Each stored segment of a camera around `window`, with the time it covers."""
    stored = with_durations(client, bucket, list_segments(client, bucket, prefix, camera_id, window))
    stored.sort(key=lambda s: (s.start, s.key))
    return list(zip(stored, segment_spans([(s.start, s.seconds) for s in stored], segment_duration)))


def measure_stored(stored: list[tuple[StoredSegment, Span]], window: Span) -> Coverage:
    """The `coverage` figures of one camera in `window`, from what `stored_spans` found."""
    return measure([span for _, span in stored], window)


def cameras_in(client: Any, bucket: str, prefix: str, days: Iterable[datetime]) -> set[int]:
    """Every camera with a folder on one of `days` under `prefix`: all hosts of a site, not only this one."""
    found: set[int] = set()
    try:
        paginator = client.get_paginator("list_objects_v2")
        for day in days:
            folder = day_prefix(prefix, 0, day).rsplit("camera_0/", 1)[0]
            for page in paginator.paginate(Bucket=bucket, Prefix=folder, Delimiter="/"):
                for common in page.get("CommonPrefixes", []) or []:
                    match = _CAMERA_FOLDER.search(common["Prefix"])
                    if match:
                        found.add(int(match[1]))
    except Exception as exc:  # noqa: BLE001 - reported as one line by the caller
        raise classify(exc, f"listing s3://{bucket}/{prefix}") from None
    return found
