"""Which local files may be deleted: pure decisions, the caller does the deleting.

Only files in uploaded/ (verified in the bucket) are candidates, except when the user opted
in with DELETE_UNUPLOADED_WHEN_FULL: then, once uploaded/ is empty and the disk is still too
full, the oldest not-yet-uploaded segments go too (losing old footage beats stopping the
recorder). Oldest first everywhere, by modification time, then name.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence


@dataclass(frozen=True)
class LocalFile:
    path: Path
    mtime: float
    size: int


def _oldest_first(files: Iterable[LocalFile]) -> list[LocalFile]:
    return sorted(files, key=lambda f: (f.mtime, f.path.name))


def expired(uploaded: Iterable[LocalFile], now: float, retention_hours: float) -> list[LocalFile]:
    """Files in uploaded/ older than the retention period, oldest first."""
    cutoff = now - retention_hours * 3600
    return [f for f in _oldest_first(uploaded) if f.mtime < cutoff]


@dataclass(frozen=True)
class DiskGuardPlan:
    delete: list[LocalFile]
    shortfall: int           # bytes still missing after the planned deletions (0 when enough)


def disk_guard(free_bytes: int, min_free_bytes: int, uploaded: Sequence[LocalFile],
               waiting: Sequence[LocalFile] = (), allow_unuploaded: bool = False) -> DiskGuardPlan:
    """Oldest-first deletions until free space reaches the minimum.

    `waiting` are segments not yet verified in the bucket (completed/, not in flight); they
    are only considered when `allow_unuploaded`.
    """
    needed = min_free_bytes - free_bytes
    plan: list[LocalFile] = []
    candidates = _oldest_first(uploaded) + (_oldest_first(waiting) if allow_unuploaded else [])
    for file in candidates:
        if needed <= 0:
            break
        plan.append(file)
        needed -= file.size
    return DiskGuardPlan(plan, max(needed, 0))
