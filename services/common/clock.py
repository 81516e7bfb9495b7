"""Is the wall clock trustworthy yet? A Pi without a clock battery boots in the past.

Segments are named from the wall clock, so the recorder waits for time synchronisation before
its first segment. The evidence, best first:
- the wall clock is earlier than the newest recording or this build: certainly wrong;
- systemd-timesyncd's flag file /run/systemd/timesync/synchronized: synchronised;
- the kernel's STA_UNSYNC flag (adjtimex returns TIME_ERROR): set until an NTP client clears
  it. Under the unit's ProtectClock= the call is refused, and the flag file and the floor decide.
No evidence either way counts as synchronised: a clock that cannot be judged is not waited for.
"""
from __future__ import annotations

import ctypes
import enum
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
TIME_ERROR = 5            # adjtimex's return value while STA_UNSYNC (or STA_CLOCKERR) is set
_TIMEX_BYTES = 512        # more than struct timex on any ABI; all zero: modes = 0, a read-only call
FLOOR_SLACK = 60.0        # a file's mtime may be a little ahead (another host's clock, a NAS)


class Verdict(enum.Enum):
    SYNCED = "synced"      # record
    WAIT = "wait"          # not yet: check again
    GIVE_UP = "give up"    # waited long enough: record anyway, with a warning


@dataclass(frozen=True)
class ClockEvidence:
    wall: float                  # time.time()
    floor: float = 0.0           # the clock cannot be earlier than this (newest file, build)
    floor_source: str = ""
    kernel_synced: bool | None = None   # None: the kernel could not be asked
    timesyncd_synced: bool = False


def kernel_synchronised() -> bool | None:
    """The kernel's view (adjtimex, reading only); None when the call is refused or missing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        state = libc.adjtimex(ctypes.create_string_buffer(_TIMEX_BYTES))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR


def newest_mtime(paths: Iterable[Path]) -> tuple[float, str]:
    """The newest modification time among `paths` that exist, and which path it was."""
    best = (0.0, "")
    for path in paths:
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        if mtime > best[0]:
            best = (mtime, str(path))
    return best


def build_floor() -> Path:
    """A file of this installation: the clock cannot be older than the code it runs."""
    return Path(__file__)


def gather(floor_paths: Iterable[Path]) -> ClockEvidence:
    floor, source = newest_mtime([build_floor(), *floor_paths])
    return ClockEvidence(wall=time.time(), floor=floor, floor_source=source, kernel_synced=kernel_synchronised(),
                         timesyncd_synced=os.path.exists(TIMESYNCD_FLAG))


def unsynchronised(evidence: ClockEvidence) -> str | None:
    """Why the wall clock cannot be trusted yet, or None when it can."""
    if evidence.wall < evidence.floor - FLOOR_SLACK:
        when = datetime.fromtimestamp(evidence.floor, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        return f"the wall clock is earlier than {evidence.floor_source} ({when})"
    if evidence.timesyncd_synced or evidence.kernel_synced is True:
        return None
    if evidence.kernel_synced is False:
        return "the kernel reports the clock unsynchronised (no NTP synchronisation yet)"
    return None


def verdict(problem: str | None, waited: float, timeout: float) -> Verdict:
    """Record, wait, or stop waiting: `problem` from `unsynchronised`, after `waited` of `timeout` s."""
    if problem is None:
        return Verdict.SYNCED
    return Verdict.WAIT if waited < timeout else Verdict.GIVE_UP
