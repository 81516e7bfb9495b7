"""How much of a time window a camera's segments cover, and where the gaps are (pure).

A segment's end comes from its recorded duration when known (object metadata written by the
uploader); otherwise it is estimated as the earlier of the next segment's start and the next
clock boundary, which can only overstate coverage inside a segment that ended early.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


@dataclass(frozen=True, order=True)
class Span:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Coverage:
    window: Span
    covered_seconds: float
    gaps: tuple[Span, ...]
    segments: int

    @property
    def percent(self) -> float:
        return 100.0 * self.covered_seconds / self.window.seconds if self.window.seconds else 0.0


def next_boundary(start: datetime, segment_duration: int) -> datetime:
    """The first UTC multiple of `segment_duration` after `start`."""
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (start - midnight).total_seconds()
    return midnight + timedelta(seconds=(int(elapsed // segment_duration) + 1) * segment_duration)


def segment_spans(starts: list[tuple[datetime, float | None]], segment_duration: int) -> list[Span]:
    """Spans from (start, known duration or None), sorted by start. The sort is by start alone and
    stable, so segments that start together keep the caller's order (callers zip the spans back
    onto their segments), and a known and an unknown duration at one start are never compared."""
    ordered = sorted(starts, key=lambda item: item[0])
    spans = []
    for index, (start, duration) in enumerate(ordered):
        if duration is not None:
            end = start + timedelta(seconds=duration)
        else:
            end = next_boundary(start, segment_duration)
            if index + 1 < len(ordered):
                end = min(end, ordered[index + 1][0])
        spans.append(Span(start, end))
    return spans


def measure(spans: list[Span], window: Span, tolerance: float = 1.0) -> Coverage:
    """Covered seconds inside `window`; gaps shorter than `tolerance` seconds are ignored."""
    covered = 0.0
    gaps = []
    cursor = window.start
    used = 0
    for span in sorted(spans):
        start, end = max(span.start, window.start), min(span.end, window.end)
        if end <= start:
            continue
        used += 1
        if start > cursor:
            if (start - cursor).total_seconds() >= tolerance:
                gaps.append(Span(cursor, start))
        covered += (end - max(start, cursor)).total_seconds() if end > cursor else 0.0
        cursor = max(cursor, end)
    if window.end > cursor and (window.end - cursor).total_seconds() >= tolerance:
        gaps.append(Span(cursor, window.end))
    return Coverage(window, covered, tuple(gaps), used)


def day_window(day: datetime, now: datetime | None = None) -> Span:
    """A UTC day, cut at `now` when it is today (the future is not a gap)."""
    start = day.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    if now is not None and start <= now < end:
        end = now
    return Span(start, end)
