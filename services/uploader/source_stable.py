"""When a file another program writes is complete: closed, unchanged, held by no writer, whole.

A foreign recorder gives no hand-off: no rename, no marker. So a file is taken only when every
sign agrees: inotify saw it closed after its last write (or it was found by a scan, unchanged
since), it has not changed for SOURCE_STABLE_SECONDS, no process this user can see holds it
open for writing (/proc/*/fd), and an MP4 parses to its end. A file that never completes (its
writer died and left a torn tail) is taken after ABANDONED_FACTOR stable periods, with a warning:
late footage beats none.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from services.common.mp4_fragments import inspect_file

ABANDONED_FACTOR = 20
_WRITE_MODES = os.O_WRONLY | os.O_RDWR


def open_for_writing(prefixes: tuple[str, ...], proc: Path = Path("/proc")) -> set[str]:
    """Paths under `prefixes` that some visible process holds open for writing.

    Only links under a prefix have their fdinfo read, so a scan costs one readlink per open
    file of every process (a few milliseconds on a busy host). Other users' processes are
    invisible without privileges: the other signs still apply to their files.
    """
    held: set[str] = set()
    try:
        pids = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        return held
    for pid in pids:
        fd_dir = proc / pid / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd_dir / fd)
            except OSError:
                continue
            if not target.startswith(prefixes):
                continue
            if _writable(proc / pid / "fdinfo" / fd):
                held.add(target)
    return held


def _writable(fdinfo: Path) -> bool:
    try:
        for line in fdinfo.read_text().splitlines():
            if line.startswith("flags:"):
                return bool(int(line.split()[1], 8) & _WRITE_MODES)
    except (OSError, ValueError, IndexError):
        return True   # gone or unreadable: assume the worst, the next check decides
    return True


def whole_mp4(path: Path) -> str:
    """'' when the MP4 parses to its end, else why not (other suffixes are not checked)."""
    if path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        return ""
    try:
        found = inspect_file(path)
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    if found.problem or found.torn:
        return found.problem or f"ends in a torn box after byte {found.playable_end}"
    if not found.playable:
        return "no playable video (no moov, or no media data)"
    return ""


@dataclass
class Watched:
    """A source file not yet known to be complete (owned by the scheduler's thread)."""

    size: int
    mtime_ns: int
    changed_at: float          # monotonic time it was last seen to change
    open_seen: bool = False    # inotify saw a write with no close after it
    not_whole: str = ""        # the last MP4 check's complaint, logged once

    def saw(self, size: int, mtime_ns: int, now: float) -> bool:
        """Note a stat; True when the file changed since the last one."""
        if (size, mtime_ns) == (self.size, self.mtime_ns):
            return False
        self.size, self.mtime_ns, self.changed_at = size, mtime_ns, now
        return True


class Verdict(str, Enum):
    READY = "ready"
    WAIT = "wait"
    ABANDONED = "abandoned"   # never completed: taken as it is


def judge(watched: Watched, now: float, stable_seconds: float, held: bool, mp4_problem: str) -> Verdict:
    """Pure: is a file unchanged since `watched.changed_at` complete now?"""
    quiet = now - watched.changed_at
    if quiet < stable_seconds:
        return Verdict.WAIT
    if held or watched.open_seen or mp4_problem:
        return Verdict.ABANDONED if quiet >= stable_seconds * ABANDONED_FACTOR and not held else Verdict.WAIT
    return Verdict.READY
