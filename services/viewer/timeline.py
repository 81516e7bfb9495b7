"""The JSON a day's page is drawn from (pure): per camera its pieces, gaps and coverage.

Coverage and gaps are the `coverage` command's own figures (bucket only, the same `measure`);
segments still only on this host are added as pieces to play, marked `local`, and do not count.
Times are Unix seconds, which the page turns into positions and clock labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from services.common.spans import Coverage, Span
from services.viewer.day import Tick


@dataclass(frozen=True)
class CameraDay:
    camera_id: int
    name: str
    stored: dict[str, Span]        # segment file name -> span, in the bucket
    local_only: dict[str, Span]    # on this host and not (yet) in the bucket
    coverage: Coverage             # of the bucket, as `coverage` reports it


def _t(moment: datetime) -> float:
    return round(moment.timestamp(), 3)


def pieces(camera: CameraDay, window: Span) -> list[dict]:
    """The segments overlapping `window`, by start: what a click can play."""
    found = [(span, name, "bucket") for name, span in camera.stored.items()]
    found += [(span, name, "local") for name, span in camera.local_only.items() if name not in camera.stored]
    return [{"name": name, "start": _t(span.start), "end": _t(span.end), "where": where}
            for span, name, where in sorted(found) if span.end > window.start and span.start < window.end]


def camera_json(camera: CameraDay, window: Span) -> dict:
    result = camera.coverage
    return {"camera": camera.camera_id, "name": camera.name, "percent": round(result.percent, 3),
            "covered_seconds": round(result.covered_seconds, 3), "segments": result.segments,
            "gaps": [{"start": _t(g.start), "end": _t(g.end), "seconds": round(g.seconds, 3)} for g in result.gaps],
            "pieces": pieces(camera, window)}


def day_json(day: date, day_zone: str, local_zone: str, window: Span, ticks: list[Tick],
             cameras: list[CameraDay], problem: str | None = None) -> dict:
    return {"date": day.isoformat(), "day_zone": day_zone, "local_zone": local_zone,
            "start": _t(window.start), "end": _t(window.end),
            "start_utc": window.start.isoformat(), "end_utc": window.end.isoformat(),
            "ticks": [{"at": _t(t.at), "utc": t.utc, "local": t.local} for t in ticks],
            "cameras": [camera_json(c, window) for c in sorted(cameras, key=lambda c: c.camera_id)],
            "problem": problem}
