"""Moving closed segments from recordings/ to completed/: trim, check, rename, never overwrite.

Runs in one worker thread so that a burst of segments closing on the same clock boundary
never delays supervision. Work items are processed in order, so a run's listed segments
are always handed off before its leftovers are swept.
"""
from __future__ import annotations

import enum
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from loguru import logger

from services.common.data_layout import DataLayout, move_no_clobber
from services.common.mp4_fragments import Mp4Inspection, trim_torn_tail
from services.common.segment_names import SegmentName, parse_name

# Run-directory files that belong to the recorder itself.
RUN_BOOKKEEPING = ("segments.csv", "ffmpeg.pid")
# Below this, a file without one complete fragment is a header stub with nothing to watch.
STUB_LIMIT = 1 << 20
REJECTED_DIR = "rejected"


class Outcome(enum.Enum):
    COMPLETED = "completed"
    DISCARDED = "discarded"  # no decodable media at all
    REJECTED = "rejected"    # unreadable but large: kept aside for a human
    SKIPPED = "skipped"      # not a segment of ours


@dataclass(frozen=True)
class Handoff:
    source: Path
    outcome: Outcome
    target: Path | None = None
    inspection: Mp4Inspection | None = None
    name: SegmentName | None = None


def free_name(name: SegmentName, layout: DataLayout) -> SegmentName:
    """`name`, or the first `_<n>` variant that is in neither completed/ nor uploaded/."""
    number = name.duplicate
    while True:
        candidate = name.with_duplicate(number)
        if not any((folder / candidate.filename).exists() for folder in (layout.completed, layout.uploaded)):
            return candidate
        number += 1


def hand_off(path: Path, layout: DataLayout) -> Handoff:
    """Make one closed (or cut-short) segment playable and give it to the uploader."""
    name = parse_name(path.name)
    if name is None:
        logger.warning("skipping unknown file {} (not a segment name)", path)
        return Handoff(path, Outcome.SKIPPED)
    try:
        inspection = trim_torn_tail(path)
    except OSError as exc:
        logger.error("cannot read segment {}: {}", path, exc.strerror)
        return Handoff(path, Outcome.SKIPPED, name=name)
    if not inspection.playable:
        if inspection.size < STUB_LIMIT:
            logger.warning("discarding {} ({} bytes, no complete fragment: {})", path.name,
                           inspection.size, inspection.problem or "no media")
            path.unlink(missing_ok=True)
            return Handoff(path, Outcome.DISCARDED, inspection=inspection, name=name)
        rejected = layout.recordings / REJECTED_DIR
        rejected.mkdir(exist_ok=True)
        target = rejected / f"{path.parent.name}-{path.name}"
        os.replace(path, target)
        logger.error("{} is not a playable MP4 ({}); kept in {}", path.name, inspection.problem, target)
        return Handoff(path, Outcome.REJECTED, target=target, inspection=inspection, name=name)
    if inspection.torn:
        logger.warning("trimmed torn tail of {}: kept {} of {} bytes ({} fragments)", path.name,
                       inspection.playable_end, inspection.size, inspection.fragments)
    while True:
        final = free_name(name, layout)
        try:
            move_no_clobber(path, layout.completed / final.filename)
            break
        except FileExistsError:
            continue
    if final != name:
        logger.warning("{} already exists (clock stepped back?); stored as {}", name.filename, final.filename)
    return Handoff(path, Outcome.COMPLETED, target=layout.completed / final.filename,
                   inspection=inspection, name=final)


def sweep_run_dir(run_dir: Path, layout: DataLayout) -> list[Handoff]:
    """Hand off every segment left in a finished run directory, then remove it if empty."""
    results = [hand_off(path, layout) for path in sorted(run_dir.glob("*.mp4"))]
    for bookkeeping in RUN_BOOKKEEPING:
        (run_dir / bookkeeping).unlink(missing_ok=True)
    leftovers = sorted(p.name for p in run_dir.iterdir())
    if leftovers:
        logger.warning("leaving unknown files in {}: {}", run_dir, ", ".join(leftovers))
    else:
        run_dir.rmdir()
    return results


class HandoffWorker:
    """A thread that hands off segments and sweeps finished runs, in submission order."""

    def __init__(self, layout: DataLayout, on_handoff: Callable[[Handoff], None]):
        self._layout = layout
        self._on_handoff = on_handoff
        self._queue: queue.Queue[tuple[str, Path] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="handoff", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def segment_closed(self, path: Path) -> None:
        self._queue.put(("segment", path))

    def run_finished(self, run_dir: Path) -> None:
        self._queue.put(("run", run_dir))

    def stop(self, timeout: float = 30.0) -> None:
        """Finish everything queued, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            kind, path = item
            try:
                if kind == "segment":
                    if path.exists():
                        self._on_handoff(hand_off(path, self._layout))
                elif kind == "run":
                    if path.is_dir():
                        for result in sweep_run_dir(path, self._layout):
                            self._on_handoff(result)
            except Exception:  # noqa: BLE001 - one bad file must not stop every camera
                logger.exception("hand-off of {} failed; it stays in recordings/ for the next start", path)

