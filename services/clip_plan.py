"""Which segments cover a requested time range, and the FFmpeg concat that cuts them (pure)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from services.coverage import Span, measure


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
    """The segments overlapping [start, end), in order, with the cut points inside the first and last."""
    wanted = Span(start, end)
    pieces = []
    for name, span in sorted(segments.items(), key=lambda item: item[1]):
        if span.end <= start or span.start >= end:
            continue
        inpoint = (start - span.start).total_seconds() if start > span.start else None
        outpoint = (end - span.start).total_seconds() if end < span.end else None
        pieces.append(Piece(name, span, inpoint, outpoint))
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
    """Join without re-encoding; cuts land on the keyframe at or before each in-point."""
    return (ffmpeg, "-hide_banner", "-v", "error", "-nostdin", "-f", "concat", "-safe", "0",
            "-i", str(list_file), "-map", "0", "-c", "copy", "-movflags", "+faststart", "-y", str(output))
