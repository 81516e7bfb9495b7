"""Moving closed segments from recordings/ to completed/: trim, check, stamp, rename, never overwrite.

A segment the recorder timed gets its first-frame stamp (mp4_fragments) and the name of that
moment, truncated to the second: FFmpeg's own name is the clock when it opened the file,
which for the first segment of a run is 1-3 s after the first frame (probing buffers it).

Runs in one worker thread so that a burst of segments closing on the same clock boundary
never delays supervision. Work items are processed in order, so a run's listed segments
are always handed off before its leftovers are swept.
"""
from __future__ import annotations

import enum
import heapq
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from loguru import logger

from services.common.data_layout import DataLayout, move_no_clobber
from services.common.mp4_fragments import Mp4Inspection, append_stamp, read_stamp, trim_torn_tail
from services.common.segment_names import SegmentName, parse_name

# Run-directory files that belong to the recorder itself.
RUN_BOOKKEEPING = ("segments.csv", "ffmpeg.pid")
# Below this, a file without one complete fragment is a header stub with nothing to watch.
STUB_LIMIT = 1 << 20
REJECTED_DIR = "rejected"
RETRY_MAX = 60.0   # seconds between tries of a hand-off that keeps failing


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
        if not any(os.path.lexists(folder / candidate.filename) for folder in (layout.completed, layout.uploaded)):
            return candidate
        number += 1


def timed_name(name: SegmentName, first_frame: datetime | None) -> SegmentName:
    """The name a segment is stored under: its first frame's second when known, else FFmpeg's."""
    if first_frame is None:
        return name
    return SegmentName(first_frame.replace(microsecond=0), name.camera_id)


def hand_off(path: Path, layout: DataLayout, first_frame: datetime | None = None) -> Handoff:
    """Make one closed (or cut-short) segment playable, stamp it with the host time of its
    first frame when the recorder knows it, and give it to the uploader."""
    name = parse_name(path.name)
    if name is None:
        logger.warning("skipping unknown file {} (not a segment name)", path)
        return Handoff(path, Outcome.SKIPPED)
    try:
        inspection = trim_torn_tail(path)
    except FileNotFoundError:
        return Handoff(path, Outcome.SKIPPED, name=name)
    # Any other error (EIO, a read-only remount) reaches the worker, which tries again with backoff
    # and reports the camera as waiting: the segment must not be passed over.
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
    if first_frame is not None:
        append_stamp(path, first_frame)
    name = timed_name(name, read_stamp(path))
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


def sweep_run_dir(run_dir: Path, layout: DataLayout,
                  first_frames: dict[str, datetime] | None = None) -> list[Handoff]:
    """Hand off every segment left in a finished run directory (with the first-frame times the
    recorder knows, by file name), then remove it if empty."""
    first_frames = first_frames or {}
    results = [hand_off(path, layout, first_frames.get(path.name)) for path in sorted(run_dir.glob("*.mp4"))]
    for bookkeeping in RUN_BOOKKEEPING:
        (run_dir / bookkeeping).unlink(missing_ok=True)
    leftovers = sorted(p.name for p in run_dir.iterdir())
    if leftovers:
        logger.warning("leaving unknown files in {}: {}", run_dir, ", ".join(leftovers))
    else:
        run_dir.rmdir()
    return results


@dataclass
class _Work:
    kind: str            # "segment" or "run"
    path: Path
    camera_id: int | None
    queued_at: float     # monotonic
    first_frames: dict[str, datetime] = field(default_factory=dict)   # by file name
    attempts: int = 0
    error: str = ""


@dataclass(frozen=True)
class Waiting:
    """Closed segments of one camera that are not in completed/ yet."""

    items: int
    oldest_seconds: float
    error: str = ""      # the last failure, while it keeps failing


def _camera_of(kind: str, path: Path) -> int | None:
    if kind == "segment":
        name = parse_name(path.name)
        return name.camera_id if name else None
    folder = path.parent.name   # recordings/camera_<id>/run-...
    return int(folder.split("_", 1)[1]) if folder.startswith("camera_") and folder[7:].isdigit() else None


def retry_delay(attempts: int, longest: float = RETRY_MAX) -> float:
    """1, 2, 4 ... seconds, at most `longest`: a blocked folder is tried again until it clears."""
    return min(longest, 2.0 ** max(attempts - 1, 0))


class HandoffWorker:
    """A thread that hands off segments and sweeps finished runs, in submission order.

    What fails (a folder on another file system, a remount, a disk error) is tried again with
    backoff while the recorder runs, and `waiting()` tells how long each camera's footage has
    been held up, for the status file, the alerts and the metrics.
    """

    def __init__(self, layout: DataLayout, on_handoff: Callable[[Handoff], None],
                 clock: Callable[[], float] = time.monotonic):
        self._layout = layout
        self._on_handoff = on_handoff
        self._clock = clock
        self._queue: queue.Queue[_Work | None] = queue.Queue()
        self._retries: list[tuple[float, int, _Work]] = []   # (due, order, work): a heap
        self._order = 0
        self._pending: dict[int, _Work] = {}                 # id(work) -> work, until done
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="handoff", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def segment_closed(self, path: Path, first_frame: datetime | None = None) -> None:
        self._submit("segment", path, {path.name: first_frame} if first_frame else {})

    def run_finished(self, run_dir: Path, first_frames: dict[str, datetime] | None = None) -> None:
        self._submit("run", run_dir, first_frames or {})

    def _submit(self, kind: str, path: Path, first_frames: dict[str, datetime]) -> None:
        work = _Work(kind, path, _camera_of(kind, path), self._clock(), first_frames)
        with self._lock:
            self._pending[id(work)] = work
        self._queue.put(work)

    def waiting(self) -> dict[int, Waiting]:
        """Per camera: what is queued or failing, and how long the oldest has waited."""
        now = self._clock()
        found: dict[int, Waiting] = {}
        with self._lock:
            works = list(self._pending.values())
        for work in works:
            if work.camera_id is None:
                continue
            seen = found.get(work.camera_id)
            age = now - work.queued_at
            if seen is None or age > seen.oldest_seconds:
                found[work.camera_id] = Waiting((seen.items if seen else 0) + 1, age, work.error)
            else:
                found[work.camera_id] = Waiting(seen.items + 1, seen.oldest_seconds, seen.error or work.error)
        return found

    def stop(self, timeout: float = 30.0) -> None:
        """Finish everything queued (one more try for what is failing), then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while True:
            if stopping and self._queue.empty():
                # Last tries; what still fails stays in recordings/ for the next start.
                for _, _, work in sorted(self._retries):
                    self._do(work, final=True)
                return
            timeout = max(0.0, self._retries[0][0] - self._clock()) if self._retries else None
            try:
                work = self._queue.get(timeout=timeout)
            except queue.Empty:
                _, _, work = heapq.heappop(self._retries)
            if work is None:
                stopping = True
                continue
            self._do(work)

    def _do(self, work: _Work, final: bool = False) -> None:
        try:
            if work.kind == "segment":
                if work.path.exists():
                    self._on_handoff(hand_off(work.path, self._layout, work.first_frames.get(work.path.name)))
            elif work.path.is_dir():
                for result in sweep_run_dir(work.path, self._layout, work.first_frames):
                    self._on_handoff(result)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop every camera
            work.attempts += 1
            work.error = f"{exc.__class__.__name__}: {exc}"
            if final:
                logger.error("hand-off of {} failed ({}); it stays in recordings/ for the next start",
                             work.path, work.error)
            else:
                delay = retry_delay(work.attempts)
                log = logger.exception if work.attempts == 1 else logger.warning
                log("hand-off of {} failed (try {}); trying again in {:.0f}s", work.path, work.attempts, delay)
                self._order += 1
                heapq.heappush(self._retries, (self._clock() + delay, self._order, work))
                return
        if work.attempts and not final:
            logger.info("hand-off of {} succeeded after {} failed tries", work.path.name, work.attempts)
        if self._retries and not final:
            # Whatever blocked the hand-offs has cleared: the waiting ones need not wait out their backoff.
            now = self._clock()
            self._retries = [(min(due, now), order, waiting) for due, order, waiting in self._retries]
            heapq.heapify(self._retries)
        with self._lock:
            self._pending.pop(id(work), None)
