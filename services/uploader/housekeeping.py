"""Local copies: retention by age in uploaded/, then the disk guard (the side effects).

What to delete is decided by the pure functions in `retention`; this module lists the folders,
deletes, and logs. Runs on the scheduler's thread, between dispatches.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection

from loguru import logger

from services.common.data_layout import DataLayout
from services.common.segment_names import parse_name
from services.uploader.config import UploaderConfig
from services.uploader.retention import LocalFile, disk_guard, expired

FreeBytes = Callable[[Path], int]


def disk_free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


@dataclass
class Sweep:
    """What one housekeeping pass did."""

    by_retention: int = 0
    by_disk_guard: int = 0
    unuploaded: list[Path] = field(default_factory=list)   # deleted from completed/ (opt-in)
    disk_free: int | None = None                            # None: could not be read


def local_files(folder: Path) -> list[LocalFile]:
    files = []
    try:
        names = os.listdir(folder)
    except OSError:
        return files
    for name in names:
        if name.startswith("."):
            continue
        try:
            st = (folder / name).stat()
        except FileNotFoundError:
            continue
        if os.path.isfile(folder / name):
            files.append(LocalFile(folder / name, st.st_mtime, st.st_size))
    return files


def _delete(file: LocalFile, why: str) -> bool:
    try:
        file.path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        logger.error("cannot delete {} ({}): {}", file.path, why, exc.strerror)
        return False
    return True


def sweep(config: UploaderConfig, layout: DataLayout, free_bytes: FreeBytes, busy: Collection[Path]) -> Sweep:
    """Retention by age, then the disk guard; files in `busy` (being uploaded) are never touched."""
    done = Sweep()
    for file in expired(local_files(layout.uploaded), time.time(), config.retention_hours):
        if _delete(file, "retention"):
            done.by_retention += 1
            logger.debug("deleted uploaded/{} (older than {} h)", file.path.name, config.retention_hours)
    try:
        free = free_bytes(layout.root)
    except OSError as exc:
        logger.error("cannot read free disk space: {}", exc.strerror)
        return done
    done.disk_free = free
    if free >= config.min_free_bytes:
        return done
    waiting = [f for f in local_files(layout.completed) if f.path not in busy and parse_name(f.path.name)]
    plan = disk_guard(free, config.min_free_bytes, local_files(layout.uploaded), waiting,
                      config.delete_unuploaded_when_full)
    for file in plan.delete:
        unuploaded = file.path.parent == layout.completed
        if unuploaded and file.path in busy:
            continue
        if not _delete(file, "disk guard"):
            continue
        done.by_disk_guard += 1
        if unuploaded:
            done.unuploaded.append(file.path)
            logger.error("disk guard: deleted {} which was NOT uploaded yet (DELETE_UNUPLOADED_WHEN_FULL)",
                         file.path.name)
        else:
            logger.warning("disk guard: deleted uploaded/{} early ({} MB free, minimum {} MB)",
                           file.path.name, free // 2**20, config.min_free_bytes // 2**20)
    if plan.shortfall > 0:
        logger.warning("disk guard: free space stays below MIN_FREE_DISK_MB ({} MB short); {}",
                       plan.shortfall // 2**20,
                       "nothing uploaded is left to delete" if not config.delete_unuploaded_when_full
                       else "nothing left to delete")
    return done
