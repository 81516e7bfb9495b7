"""Which segments cover a requested time range, and the FFmpeg concat that cuts them (pure)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from services.common.spans import Span, measure


@dataclass(frozen=True)
class Piece:
    name: str
    span: Span
    inpoint: float | None   # seconds into the segment, None = from its start
    outpoint: float | None  # seconds into the segment, None = to its end


@dataclass(frozen=True)
class ClipPlan:
    pieces: tuple[Piece, ...]
    gaps: tuple[Span, ...]


def plan_clip(segments: dict[str, Span], start: datetime, end: datetime) -> ClipPlan:
    """The segments overlapping [start, end), in order, with cut points so no second repeats.

    Segments can overlap (a camera's buffered burst at the start of a run, a `_1` duplicate
    after a clock step); each piece then starts where the previous one ended.
    """
    wanted = Span(start, end)
    pieces = []
    cursor = start
    for name, span in sorted(segments.items(), key=lambda item: item[1]):
        begin, finish = max(span.start, cursor), min(span.end, end)
        if finish <= begin:
            continue
        inpoint = (begin - span.start).total_seconds() if begin > span.start else None
        outpoint = (finish - span.start).total_seconds() if finish < span.end else None
        pieces.append(Piece(name, Span(begin, finish), inpoint, outpoint))
        cursor = finish
    gaps = measure([p.span for p in pieces], wanted).gaps
    return ClipPlan(tuple(pieces), gaps)


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "'\\''") + "'"


def concat_list(pieces: tuple[Piece, ...], paths: dict[str, Path]) -> str:
    """A concat-demuxer script: one `file` per piece, with in/out points where it is cut."""
    lines = ["ffconcat version 1.0"]
    for piece in pieces:
        lines.append(f"file {_quote(paths[piece.name])}")
        if piece.inpoint is not None:
            lines.append(f"inpoint {piece.inpoint:.3f}")
        if piece.outpoint is not None:
            lines.append(f"outpoint {piece.outpoint:.3f}")
    return "\n".join(lines) + "\n"


def clip_command(ffmpeg: str, list_file: Path, output: Path) -> tuple[str, ...]:
    """Join without re-encoding; cuts land on the keyframe at or before each in-point.

    `-copyts` keeps the frames between that keyframe and the in-point at negative times (an
    edit list hides them), so the clip's 0 is the requested start, not the keyframe before it."""
    return (ffmpeg, "-hide_banner", "-v", "error", "-nostdin", "-f", "concat", "-safe", "0", "-copyts",
            "-i", str(list_file), "-map", "0", "-c", "copy", "-movflags", "+faststart", "-f", "mp4",
            "-y", str(output))
