"""The recorder's wait at start for a clock it can name segments by (see services.common.clock)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable

from loguru import logger

from services.common.clock import ClockEvidence, Verdict, gather, newest_mtime, unsynchronised, verdict
from services.common.data_layout import DataLayout
from services.recorder.report import STATE_FILE


def floor_paths(layout: DataLayout) -> list[Path]:
    """Files only the recorder writes: their newest mtime is a time the clock has passed."""
    return [layout.state / STATE_FILE, *layout.recordings.glob("camera_*")]


class ClockWait:
    """Checked on every tick of the main loop until the clock is trusted or `timeout` is over.

    The floor (the newest file only the recorder writes) is read once, at construction: files
    written later carry the clock being judged.
    """

    def __init__(self, timeout: float, floor_paths: Iterable[Path],
                 evidence: Callable[[], ClockEvidence] | None = None, clock: Callable[[], float] = time.monotonic):
        floor = newest_mtime(floor_paths)
        self.timeout = timeout
        self.evidence = evidence or (lambda: _with_floor(gather(()), *floor))
        self.clock = clock
        self.started = clock()
        self.problem: str | None = None   # why it is still waiting
        self.open = timeout <= 0

    def waited(self) -> float:
        return self.clock() - self.started

    def ready(self) -> bool:
        if self.open:
            return True
        problem = unsynchronised(self.evidence())
        found = verdict(problem, self.waited(), self.timeout)
        if found is Verdict.WAIT:
            if self.problem is None:
                logger.warning("waiting up to {:.0f}s for time synchronisation before recording: {}", self.timeout,
                               problem)
            self.problem = problem
            return False
        if found is Verdict.GIVE_UP:
            logger.warning("clock still not synchronised after {:.0f}s ({}); recording anyway: segment names "
                           "may be wrong until it is", self.waited(), problem)
        elif self.problem is not None:
            logger.info("clock synchronised after {:.0f}s; recording", self.waited())
        self.open, self.problem = True, None
        return True

    def status(self) -> str | None:
        """The state file's and STATUS line's words while waiting, else None."""
        if self.problem is None:
            return None
        return f"waiting for time synchronisation ({self.waited():.0f}s of {self.timeout:.0f}s): {self.problem}"


def _with_floor(evidence: ClockEvidence, floor: float, source: str) -> ClockEvidence:
    if floor <= evidence.floor:
        return evidence
    return ClockEvidence(evidence.wall, floor, source, evidence.kernel_synced, evidence.timesyncd_synced)
