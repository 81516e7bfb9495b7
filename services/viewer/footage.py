"""What the page asks for, answered from the bucket and this host's copies (no HTTP here).

A day is listed the way `coverage` lists it (`stored_spans`, `measure_stored`); a segment is
played from its local copy while one exists, else from the bucket; a clip is cut as `clip`
cuts it (`plan_clip`, `piece_files`, `write_clip`).

A day's bucket listing (its cameras and stored segments) is kept in memory, at most 16 days, the
least recently used first out, and none past its time: a day that ended more than a segment and
an upload delay ago for minutes (it no longer changes, or seldom: a backlog uploaded late), today
for a few seconds, so that a new segment shows up on the next reload while many requests for the
same page list only once.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from services.bucket.catalog import StoredSegment, cameras_in, list_segments, measure_stored, stored_spans
from services.bucket.client import S3Problem
from services.bucket.stream import BucketSource, piece_files
from services.common.clip_plan import plan_clip
from services.common.data_layout import DataLayout
from services.common.footage import local_copy, local_segments, write_clip
from services.common.segment_names import parse_name
from services.common.spans import Span
from services.viewer.day import day_span, hour_ticks, utc_days
from services.viewer.timeline import CameraDay, day_json


@dataclass(frozen=True)
class ViewerSettings:
    data_dir: Path
    source: BucketSource | None    # None: no S3_BUCKET_NAME, this host's copies only
    prefix: str
    segment_duration: int
    ffmpeg: str
    camera_names: dict[int, str]
    host: str
    port: int
    token: str | None
    presign_seconds: int = 3600
    status_data: Callable[[], dict] | None = None   # `status --json`'s data (web passes it); None: no status tab


@dataclass(frozen=True)
class Local:
    path: Path


@dataclass(frozen=True)
class Remote:
    key: str
    size: int


class NothingRecorded(Exception):
    """The requested range or segment holds no footage."""


@dataclass(frozen=True)
class CachePolicy:
    past_seconds: float = 300.0     # a day that ended before the settle time
    today_seconds: float = 5.0      # a day still being recorded or uploaded
    settle_seconds: float = 600.0   # upload delay after a day's last segment closed
    days: int = 16                  # entries kept (one per day, zone and camera set): ~1 MB each
                                    # for 4 cameras x 144 segments


@dataclass(frozen=True)
class _Listed:
    cameras: frozenset[int]
    stored: dict[int, list[tuple[StoredSegment, Span]]]
    expires: float


class Footage:
    def __init__(self, settings: ViewerSettings, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 cache: CachePolicy = CachePolicy(), clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.layout = DataLayout(settings.data_dir)
        self._now = now
        self._clock = clock
        self._policy = cache
        self._keys: dict[str, StoredSegment] = {}   # file name -> object, from every listing so far
        self._days: OrderedDict[tuple, _Listed] = OrderedDict()   # (start, end, cameras) -> listing
        self._lock = threading.Lock()

    # --- a day -------------------------------------------------------------------------------
    def day(self, day: date, day_zone: ZoneInfo, local_zone: ZoneInfo) -> dict:
        window = day_span(day, day_zone, self._now())
        problem = None
        remote: dict[int, list[tuple[StoredSegment, Span]]] = {}
        cameras = set(self.settings.camera_names) | self._local_cameras()
        if self.settings.source is not None and window.seconds > 0:
            try:
                listed = self._listed(day_span(day, day_zone), window, frozenset(cameras))
                cameras |= listed.cameras
                remote = listed.stored
            except S3Problem as exc:
                problem = f"bucket not available ({exc}): only this host's copies are shown"
        days = [self._camera_day(camera, window, remote.get(camera, [])) for camera in sorted(cameras)]
        return day_json(day, day_zone.key, local_zone.key, window, hour_ticks(day, day_zone, local_zone),
                        days, problem)

    def _listed(self, whole: Span, window: Span, known: frozenset[int]) -> _Listed:
        """The bucket's cameras and segments of a day (`whole`, cut at now to `window`), from
        the cache while it is fresh. A failed listing is not kept."""
        key = (whole.start, whole.end, known)
        with self._lock:
            found = self._days.get(key)
            if found is not None and found.expires > self._clock():
                self._days.move_to_end(key)
                return found
        source = self.settings.source
        cameras = set(known) | cameras_in(source.client, source.bucket, self.settings.prefix, utc_days(window))
        stored = {camera: self._stored(camera, window) for camera in sorted(cameras)}
        settled = whole.end + timedelta(seconds=self.settings.segment_duration + self._policy.settle_seconds)
        ttl = self._policy.past_seconds if settled <= self._now() else self._policy.today_seconds
        now = self._clock()
        found = _Listed(frozenset(cameras), stored, now + ttl)
        with self._lock:
            self._days[key] = found
            self._days.move_to_end(key)
            for old in [old for old, listed in self._days.items() if listed.expires <= now]:
                del self._days[old]   # no memory held for a day nobody looks at
            while len(self._days) > self._policy.days:
                self._days.popitem(last=False)
        return found

    def _stored(self, camera: int, window: Span) -> list[tuple[StoredSegment, Span]]:
        source = self.settings.source
        found = stored_spans(source.client, source.bucket, self.settings.prefix, camera, window,
                             self.settings.segment_duration)
        self._remember(segment for segment, _ in found)
        return found

    def _remember(self, segments) -> None:
        with self._lock:
            for segment in segments:
                self._keys.setdefault(segment.name.filename, segment)

    def _camera_day(self, camera: int, window: Span, stored: list[tuple[StoredSegment, Span]]) -> CameraDay:
        local = {name: span for name, (_, span) in local_segments(self.layout, camera, window).items()}
        return CameraDay(camera, self.settings.camera_names.get(camera, f"camera_{camera}"),
                         {segment.name.filename: span for segment, span in stored}, local,
                         measure_stored(stored, window))

    def _local_cameras(self) -> set[int]:
        found = set()
        for folder in (self.layout.uploaded, self.layout.completed):
            for path in folder.glob("camera_*.mp4"):
                name = parse_name(path.name)
                if name is not None:
                    found.add(name.camera_id)
        return found

    # --- a segment ---------------------------------------------------------------------------
    def locate(self, camera: int, filename: str) -> Local | Remote:
        """Where one segment of `camera` can be read now: this host first, else the bucket."""
        name = parse_name(filename)
        if name is None or name.camera_id != camera:
            raise NothingRecorded(filename)
        path = local_copy(self.layout, filename)
        if path is not None:
            return Local(path)
        source = self.settings.source
        with self._lock:
            segment = self._keys.get(filename)
        if segment is None and source is not None:
            self._remember(list_segments(source.client, source.bucket, self.settings.prefix, camera,
                                         Span(name.start, name.start + timedelta(seconds=1))))
            with self._lock:
                segment = self._keys.get(filename)
        if segment is None:
            raise NothingRecorded(filename)
        return Remote(segment.key, segment.size)

    # --- a clip ------------------------------------------------------------------------------
    def clip(self, camera: int, window: Span, work: Path) -> Path:
        """The range as one MP4 in `work`, as the `clip` command cuts it (no re-encoding)."""
        local = local_segments(self.layout, camera, window)
        remote = self._stored(camera, window) if self.settings.source is not None else []
        spans = {segment.name.filename: span for segment, span in remote}
        spans.update({name: span for name, (_, span) in local.items()})
        plan = plan_clip(spans, window.start, window.end)
        if not plan.pieces:
            raise NothingRecorded(f"camera {camera} recorded nothing in that range")
        paths = piece_files(plan.pieces, {name: path for name, (path, _) in local.items()},
                            {segment.name.filename: segment.key for segment, _ in remote},
                            self.settings.source, work)
        output = work / "clip.mp4"
        failure = write_clip(self.settings.ffmpeg, plan.pieces, paths, work, output)
        if failure is not None:
            raise RuntimeError(f"FFmpeg failed: {failure}")
        return output
