"""Local copies: retention by age in uploaded/, then the disk guard (the side effects).

What to delete is decided by the pure functions in `retention`; this module lists the folders,
deletes, and logs. Runs on the scheduler's thread, between dispatches.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable, Collection

from loguru import logger

from services.bucket.client import S3Problem
from services.bucket.metadata import HOST_ID
from services.common.data_layout import DataLayout, move_no_clobber
from services.common.filesystem import known_usage
from services.common.segment_names import parse_name
from services.uploader.backlog import Backlog
from services.uploader.config import UploaderConfig
from services.uploader.job import SegmentJob
from services.uploader.receipts import orphan_receipts, read_receipt, remove_receipt
from services.uploader.report import Clash, Counters, Deletions
from services.uploader.retention import LocalFile, disk_guard, expired

FreeBytes = Callable[[Path], "int | None"]   # None: the file system reports no size
_CONFLICT_MARK = re.compile(r"\.conflict-[0-9a-f]+(?=\.mp4$)")


def disk_free_bytes(path: Path) -> int | None:
    usage = known_usage(path)
    return usage.free if usage else None


class Standing(Enum):
    """Does the bucket still hold a verified local copy, asked again right before deleting it?"""

    HELD = "held"            # the object on the receipt (or the same content) is there
    REPLACED = "replaced"    # other content, or another host's object, is there now
    MISSING = "missing"      # nothing under the key any more
    UNKNOWN = "unknown"      # the bucket cannot be asked now


@dataclass
class Sweep:
    """What one housekeeping pass did."""

    by_retention: int = 0
    by_disk_guard: int = 0
    unuploaded: list[Path] = field(default_factory=list)   # deleted from completed/ (opt-in)
    returned: list[Path] = field(default_factory=list)     # sent back to completed/ to be uploaded again
    clashes: list[Clash] = field(default_factory=list)
    disk_free: int | None = None                            # None: could not be read
    unreachable: bool = False                               # the bucket could not be asked in this pass

    def add_to(self, deleted: Deletions) -> Deletions:
        return Deletions(deleted.retention + self.by_retention, deleted.disk_guard + self.by_disk_guard,
                         deleted.not_uploaded + len(self.unuploaded))

    def record(self, stats: Counters, backlog: Backlog) -> None:
        """Count this pass, and tell the backlog which files left completed/ or came back to it."""
        stats.deleted = self.add_to(stats.deleted)
        stats.returned += len(self.returned)
        for clash in self.clashes:
            stats.clash(clash)
        for path in self.unuploaded:
            backlog.forget(path)
        for path in self.returned:
            backlog.offer(path)


def standing(job: SegmentJob, local: Path) -> tuple[Standing, Clash | None]:
    """Ask the bucket whether it still holds `local`: by its receipt, else by its content."""
    receipt = read_receipt(local)
    try:
        if receipt is not None:
            remote = job.store.head(receipt.key)
            if remote is None:
                return Standing.MISSING, None
            writer = (remote.metadata or {}).get(HOST_ID, receipt.host_id)
            if (remote.etag, remote.size, writer) == (receipt.etag, receipt.size, receipt.host_id):
                return Standing.HELD, None
            segment = parse_name(local.name)
            clash = job.clash_with(segment.camera_id if segment else -1, receipt.key, remote)
            return Standing.REPLACED, clash
        return (Standing.HELD if job.still_held(local) else Standing.REPLACED), None
    except S3Problem:
        return Standing.UNKNOWN, None


def returned_path(layout: DataLayout, name: str) -> Path:
    """Where a copy goes back in completed/: under its segment's name (a copy kept as
    `<name>.conflict-<hash>.mp4` included), so the backlog takes it; `_<n>` when that is taken."""
    plain = _CONFLICT_MARK.sub("", name)
    segment = parse_name(plain)
    if segment is None:
        return layout.completed / plain
    number = segment.duplicate
    while os.path.lexists(candidate := layout.completed / segment.with_duplicate(number).filename):
        number += 1
    return candidate


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


def _retire(job: SegmentJob, layout: DataLayout, file: LocalFile, done: Sweep, why: str,
            when_unknown_delete: bool) -> bool:
    """Delete a verified copy the bucket still holds; send it back to completed/ when it does not.

    Once the bucket could not be asked, the rest of the pass does not ask again: each try costs
    the client's timeouts, and the disk guard must free space faster than cameras fill it.
    """
    state, clash = (Standing.UNKNOWN, None) if done.unreachable else standing(job, file.path)
    done.unreachable = state is Standing.UNKNOWN
    if state is Standing.UNKNOWN and not when_unknown_delete:
        return False
    if state in (Standing.HELD, Standing.UNKNOWN):
        if state is Standing.UNKNOWN:
            logger.warning("{}: cannot ask the bucket whether it still holds uploaded/{}; deleting it anyway "
                           "(it was verified when uploaded)", why, file.path.name)
        if _delete(file, why):
            remove_receipt(file.path)
            return True
        return False
    if clash is not None:
        done.clashes.append(clash)
    back = returned_path(layout, file.path.name)
    try:
        move_no_clobber(file.path, back)
    except OSError as exc:   # FileExistsError included: the next pass tries again
        logger.error("cannot send uploaded/{} back to completed/: {}", file.path.name, exc.strerror or exc)
        return False
    remove_receipt(file.path)
    done.returned.append(back)
    logger.error("the bucket no longer holds uploaded/{} as verified ({}); it goes to completed/ to be uploaded "
                 "again, next to what is there now", file.path.name, state.value)
    return False


def sweep(config: UploaderConfig, layout: DataLayout, job: SegmentJob, free_bytes: FreeBytes,
          busy: Collection[Path]) -> Sweep:
    """Retention by age, then the disk guard; files in `busy` (being uploaded) are never touched.

    Runs in a pool thread (it asks the bucket). A copy past its retention is deleted only once
    the bucket is seen to still hold it; while the bucket cannot be asked, it stays. The disk
    guard does not wait for the bucket: a full disk would stop the recorder.
    """
    done = Sweep()
    for orphan in orphan_receipts(layout.uploaded):
        remove_receipt(orphan.with_name(orphan.name[1:-len(".receipt")]))
    for file in expired(local_files(layout.uploaded), time.time(), config.retention_hours):
        if _retire(job, layout, file, done, "retention", when_unknown_delete=False):
            done.by_retention += 1
            logger.debug("deleted uploaded/{} (older than {} h)", file.path.name, config.retention_hours)
    try:
        free = free_bytes(layout.root)
    except OSError as exc:
        logger.error("cannot read free disk space: {}", exc.strerror)
        return done
    if free is None:   # no size reported (fusefat): nothing is deleted for space it cannot measure
        logger.debug("the file system of {} reports no size: the disk guard is off", layout.root)
        return done
    done.disk_free = free
    if free >= config.min_free_bytes:
        return done
    waiting = [f for f in local_files(layout.completed) if f.path not in busy and parse_name(f.path.name)]
    plan = disk_guard(free, config.min_free_bytes, local_files(layout.uploaded), waiting,
                      config.delete_unuploaded_when_full)
    for file in plan.delete:
        unuploaded = file.path.parent == layout.completed
        if unuploaded:
            if file.path in busy or not _delete(file, "disk guard"):
                continue
            done.unuploaded.append(file.path)
            logger.error("disk guard: deleted {} which was NOT uploaded yet (DELETE_UNUPLOADED_WHEN_FULL)",
                         file.path.name)
        elif _retire(job, layout, file, done, "disk guard", when_unknown_delete=True):
            logger.warning("disk guard: deleted uploaded/{} early ({} MB free, minimum {} MB)",
                           file.path.name, free // 2**20, config.min_free_bytes // 2**20)
        else:
            continue
        done.by_disk_guard += 1
    if plan.shortfall > 0:
        logger.warning("disk guard: free space stays below MIN_FREE_DISK_MB ({} MB short); {}",
                       plan.shortfall // 2**20,
                       "nothing uploaded is left to delete" if not config.delete_unuploaded_when_full
                       else "nothing left to delete")
    return done
