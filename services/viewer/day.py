"""Which instants a chosen day covers, and the hour marks of its timeline (pure).

A day is counted in UTC (the `coverage` command's days) or in the viewer's own time zone: a
local day runs from local midnight to the next one, 23 or 25 hours long on a DST change.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.common.spans import Span


class BadDay(ValueError):
    """A date or time zone the page sent that cannot be used (HTTP 400)."""


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise BadDay(f"not a date like 2026-01-24: {text!r}") from None


def parse_zone(name: str | None) -> ZoneInfo:
    """An IANA zone name as the browser reports it (Intl); UTC when none is given."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise BadDay(f"unknown time zone: {name!r}") from None


def day_span(day: date, zone: ZoneInfo, now: datetime | None = None) -> Span:
    """Local midnight to the next local midnight of `zone`, in UTC; cut at `now` (the future is not
    a gap). Midnight that does not exist (a DST jump at 00:00) is read as the first instant after it."""
    def midnight(d: date) -> datetime:
        return datetime.combine(d, time(0), zone).astimezone(timezone.utc)
    start, end = midnight(day), midnight(day + timedelta(days=1))
    if now is not None:
        end = max(start, min(end, now))
    return Span(start, end)


def utc_days(window: Span) -> list[datetime]:
    """The UTC dates (as midnights) a window touches: where its objects are filed."""
    day = window.start.replace(hour=0, minute=0, second=0, microsecond=0)
    days = []
    while day < window.end or not days:
        days.append(day)
        day += timedelta(days=1)
    return days


@dataclass(frozen=True)
class Tick:
    at: datetime       # UTC
    utc: str           # "14:00"
    local: str         # "15:00" in the viewer's zone (with the zone's abbreviation when it changes)


def hour_ticks(day: date, day_zone: ZoneInfo, local_zone: ZoneInfo) -> list[Tick]:
    """A mark at every whole hour of the day in `day_zone` (whole in UTC too for whole-hour offsets),
    labelled in UTC and in the viewer's zone."""
    window = day_span(day, day_zone)
    first = window.start.replace(minute=0, second=0, microsecond=0)
    if first < window.start:
        first += timedelta(hours=1)
    ticks, at, last_abbreviation = [], first, None
    while at < window.end:
        local = at.astimezone(local_zone)
        abbreviation = local.tzname()
        label = local.strftime("%H:%M") + (f" {abbreviation}" if abbreviation != last_abbreviation else "")
        ticks.append(Tick(at, at.strftime("%H:%M"), label))
        last_abbreviation = abbreviation
        at += timedelta(hours=1)
    return ticks
