"""UPLOAD_BWLIMIT: one limit on the bytes every upload reads, with rclone's --bwlimit syntax.

`10M` is 10 MiB/s, `512k` 512 KiB/s, a bare number KiB/s, `off` no limit; a timetable such as
`08:00,512k 19:00,10M 23:00,off` changes the limit at those local times (each entry holds until
the next, the last one wraps past midnight). boto3's Callback reports bytes after they are
sent, so the limit is a token bucket around the file objects themselves (`Throttled`), shared
by all uploads in parallel: the rate is averaged over a part, which is read at the limit and
then sent.
"""
from __future__ import annotations

import io
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

_RATE = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>[bkmgt]?)(?:i?b)?$", re.IGNORECASE)
_UNITS = {"b": 1, "": 1024, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_ENTRY = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2}),(?P<rate>\S+)$")
BURST_SECONDS = 0.25


def parse_rate(text: str) -> float | None:
    """Bytes per second, or None for `off`; ValueError for anything else."""
    text = text.strip()
    if text.lower() in ("off", "0", ""):
        return None
    found = _RATE.match(text)
    if not found:
        raise ValueError(f"not a rate like 10M, 512k or off: {text!r}")
    return float(found["number"]) * _UNITS[found["unit"].lower()]


@dataclass(frozen=True)
class BandwidthSchedule:
    """(minute of the day, bytes per second or None) in time order; one entry: all day."""

    entries: tuple[tuple[int, float | None], ...]

    def rate_at(self, moment: datetime) -> float | None:
        minute = moment.hour * 60 + moment.minute
        current = self.entries[-1][1]    # before the first entry of the day, the last one holds
        for start, rate in self.entries:
            if start <= minute:
                current = rate
        return current

    @property
    def unlimited(self) -> bool:
        return all(rate is None for _, rate in self.entries)


def parse_schedule(text: str) -> BandwidthSchedule:
    """`10M`, or a timetable of `HH:MM,rate` entries separated by spaces; ValueError when wrong."""
    parts = text.split()
    if len(parts) == 1 and "," not in parts[0]:
        return BandwidthSchedule(((0, parse_rate(parts[0])),))
    entries = []
    for part in parts:
        found = _ENTRY.match(part)
        if not found or int(found["h"]) > 23 or int(found["m"]) > 59:
            raise ValueError(f"timetable entries are HH:MM,rate (e.g. 08:00,512k), got {part!r}")
        entries.append((int(found["h"]) * 60 + int(found["m"]), parse_rate(found["rate"])))
    if not entries:
        raise ValueError("empty")
    minutes = [start for start, _ in entries]
    if minutes != sorted(set(minutes)):
        raise ValueError("timetable entries must be in time order, each time once")
    return BandwidthSchedule(tuple(entries))


class TokenBucket:
    """Thread-safe: `take(n)` returns once n more bytes fit under the current rate.

    Takers go into debt and sleep it off outside the lock, so parallel uploads share the rate
    instead of each getting it.
    """

    def __init__(self, schedule: BandwidthSchedule, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, local_now: Callable[[], datetime] = datetime.now):
        self.schedule, self.clock, self.sleep, self.local_now = schedule, clock, sleep, local_now
        self.lock = threading.Lock()
        self.tokens = 0.0
        self.last = clock()

    def take(self, count: int) -> None:
        with self.lock:
            rate = self.schedule.rate_at(self.local_now())
            now = self.clock()
            if rate is None:
                self.tokens, self.last = 0.0, now
                return
            self.tokens = min(rate * BURST_SECONDS, self.tokens + (now - self.last) * rate) - count
            self.last = now
            wait = -self.tokens / rate if self.tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)


class Throttled(io.RawIOBase):
    """A file object whose reads wait for the bucket; seeks pass through (botocore may rewind)."""

    def __init__(self, stream: Any, bucket: TokenBucket):
        super().__init__()
        self._stream, self._bucket = stream, bucket

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(getattr(self._stream, "seekable", lambda: False)())

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def read(self, size: int | None = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            self._bucket.take(len(data))
        return data

    def readinto(self, buffer: Any) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def __getattr__(self, name: str) -> Any:   # size, digest() of the encrypting reader
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._stream, name)


def throttle_for(schedule: BandwidthSchedule | None) -> Callable[[Any], Any] | None:
    """The store's `throttle`: every stream it sends wrapped around one shared bucket."""
    if schedule is None:
        return None
    bucket = TokenBucket(schedule)
    return lambda stream: Throttled(stream, bucket)
