"""What the file system under DATA_DIR can do, found by trying it (for `doctor`; the size limit also at start).

USB disks and SD cards come formatted exFAT or FAT32, NAS folders are NFS or SMB: they differ
in hard links, rename flags, fsync, free space and the largest file. Each is tried on a small
hidden file in the folder itself, which is removed afterwards.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from services.common.data_layout import MoveMethod, move_method, move_no_clobber

# File systems whose largest file is 4 GiB - 1 byte: FAT by the kernel's drivers, or through FUSE
# by fusefat (which /proc/self/mounts names "fuse.fusefat").
SMALL_FILE_LIMIT = {"vfat": 2**32 - 1, "msdos": 2**32 - 1, "fat": 2**32 - 1, "fuse.fusefat": 2**32 - 1}
# A generous camera: 20 Mbit/s (4K H.264 main streams are 8-16).
HIGH_BITRATE_BYTES_PER_SECOND = 20_000_000 // 8


@dataclass(frozen=True)
class FileSystemReport:
    folder: Path
    fstype: str                  # from /proc/self/mounts ("ext4", "fuseblk", "exfat", "vfat", "nfs4", ...)
    mount_point: str
    move: MoveMethod | None      # None: no move worked
    fsync: bool
    free_bytes: int
    max_file_bytes: int | None   # None: no limit a segment could reach
    problem: str = ""            # what failed, when something did


def mount_of(path: Path, mounts: str | None = None) -> tuple[str, str]:
    """(mount point, file system type) of the mount holding `path`: the longest matching prefix."""
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text()
        except OSError:
            return "/", "unknown"
    resolved = str(path.resolve())
    best = ("/", "unknown")
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fields[2])
    return best


def known_usage(path: Path) -> "shutil._ntuple_diskusage | None":
    """`shutil.disk_usage`, or None where the file system reports no size at all: fusefat answers
    0 bytes of 0, which is unknown, not full (the disk guard must not delete on it)."""
    usage = shutil.disk_usage(path)
    return usage if usage.total else None


def largest_segment(segment_seconds: int) -> int:
    return segment_seconds * HIGH_BITRATE_BYTES_PER_SECOND


SIZE_HINT = "lower SEGMENT_DURATION, or format the disk exFAT or ext4"


def too_small_for(max_file_bytes: int | None, segment_seconds: int, where: str) -> str:
    """Why a file system whose largest file is `max_file_bytes` cannot hold a segment ("" if it can);
    SIZE_HINT says what to do about it."""
    if max_file_bytes is None or largest_segment(segment_seconds) <= max_file_bytes:
        return ""
    return (f"{where} holds files up to {max_file_bytes / 1024**3:.1f} GB; a {segment_seconds} s segment of a "
            f"20 Mbit/s camera is {largest_segment(segment_seconds) / 1024**3:.1f} GB")


def segment_size_risk(folder: Path, segment_seconds: int) -> str:
    """Why a segment may not fit on this file system ("" if it will), found without writing:
    FAT's 4 GiB file limit against a segment of a busy camera. The recorder warns at start;
    `doctor` fails on it."""
    point, fstype = mount_of(folder)
    problem = too_small_for(SMALL_FILE_LIMIT.get(fstype), segment_seconds, f"{fstype} at {point}")
    return f"{problem}: {SIZE_HINT}" if problem else ""


def probe_filesystem(folder: Path) -> FileSystemReport:
    point, fstype = mount_of(folder)
    free = shutil.disk_usage(folder).free
    limit = SMALL_FILE_LIMIT.get(fstype)
    first, second = folder / f".fs-probe-{os.getpid()}", folder / f".fs-probe-{os.getpid()}-moved"
    synced, method, problem = False, None, ""
    try:
        with open(first, "wb") as handle:
            handle.write(b"probe")
            handle.flush()
            os.fsync(handle.fileno())
            synced = True
        move_no_clobber(first, second)
        method = move_method(folder)
    except OSError as exc:
        problem = f"{exc.strerror or exc} ({'moving' if synced else 'writing and syncing'} a file in {folder})"
    finally:
        for leftover in (first, second):
            try:
                leftover.unlink()
            except OSError:
                pass
    return FileSystemReport(folder, fstype, point, method, synced, free, limit, problem)
