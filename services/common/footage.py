"""A camera's footage on this host (uploaded/ and completed/), and joining pieces into one clip.

Shared by `clip` and the viewer: both prefer local copies, and both cut without re-encoding.
"""
from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from pathlib import Path

from services.common.clip_plan import Piece, clip_command, concat_list
from services.common.data_layout import DataLayout
from services.common.mp4_fragments import segment_timing, video_duration
from services.common.segment_names import parse_name
from services.common.spans import Span


def local_segments(layout: DataLayout, camera_id: int, window: Span) -> dict[str, tuple[Path, Span]]:
    """Segment file name -> (path, recorded span) of the local copies that may overlap `window`:
    from the first frame's stamp where the file has one, else from its name."""
    found = {}
    earliest = window.start - timedelta(days=1)
    for folder in (layout.uploaded, layout.completed):
        for path in folder.glob(f"camera_{camera_id}_*.mp4"):
            name = parse_name(path.name)
            if name is None or not earliest <= name.start < window.end:
                continue
            timing = segment_timing(path)
            if timing is not None:
                found[path.name] = (path, Span(timing.first_frame, timing.end))
                continue
            duration = video_duration(path)
            if duration is not None:
                found[path.name] = (path, Span(name.start, name.start + timedelta(seconds=duration)))
    return found


def local_copy(layout: DataLayout, filename: str) -> Path | None:
    """The local copy of one segment, if this host still has it."""
    for folder in (layout.uploaded, layout.completed):
        path = folder / filename
        if path.is_file():
            return path
    return None


def write_clip(ffmpeg: str, pieces: tuple[Piece, ...], paths: dict[str, Path], work: Path,
               output: Path) -> str | None:
    """Join `pieces` (their files in `paths`) into `output`; None on success, else FFmpeg's last line.

    The real name only appears once FFmpeg has succeeded: no half-written clips."""
    list_file = work / "pieces.txt"
    list_file.write_text(concat_list(pieces, paths))
    partial = output.with_name(f".{output.name}.partial")
    result = subprocess.run(clip_command(ffmpeg, list_file, partial), capture_output=True, text=True)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        return (result.stderr.strip().splitlines() or ["no message"])[-1]
    os.replace(partial, output)
    return None
