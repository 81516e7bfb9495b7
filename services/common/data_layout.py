"""The folder contract shared by the recorder and the uploader.

recordings/ belongs to the recorder, completed/ and uploaded/ to the uploader; a segment
changes owner only by an atomic rename into the next folder.
"""
from __future__ import annotations

import ctypes
import enum
import errno
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from loguru import logger


@dataclass(frozen=True)
class DataLayout:
    root: Path

    @property
    def videos(self) -> Path:
        return self.root / "videos"

    @property
    def recordings(self) -> Path:
        return self.videos / "recordings"

    @property
    def completed(self) -> Path:
        return self.videos / "completed"

    @property
    def uploaded(self) -> Path:
        return self.videos / "uploaded"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / "state"

    def folders(self) -> tuple[Path, ...]:
        return (self.recordings, self.completed, self.uploaded, self.logs, self.state)

    def prepare(self) -> str | None:
        """Create the folders; return a problem description instead of raising."""
        try:
            for folder in self.folders():
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot create folders under {self.root}: {exc.strerror}"
        for folder in self.folders():
            if not os.access(folder, os.W_OK | os.X_OK):
                return f"{folder} is not writable by this user"
        return None

    def problem(self, writable: bool = True) -> str | None:
        """What `prepare` would run into, found without creating anything (read-only commands).

        `writable=False` asks only whether the layout can be a folder tree at all: a folder that
        cannot be written is for the daemons to report (the recorder's hand-off, `status`), not a
        reason for a read-only command to refuse.
        """
        for folder in self.folders():
            existing = next(p for p in (folder, *folder.parents) if p.exists() or p == p.parent)
            if not existing.is_dir():
                return f"cannot create folders under {self.root}: {existing} is not a folder"
            if writable and not os.access(existing, os.W_OK | os.X_OK):
                return (f"{folder} is not writable by this user" if existing == folder
                        else f"cannot create folders under {self.root}: {existing} is not writable by this user")
        return None

    def existing_root(self) -> Path:
        """DATA_DIR, or its nearest folder that exists (where its disk space is measured before it is made)."""
        return next(p for p in (self.root, *self.root.parents) if p.is_dir() or p == p.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable across power loss."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MoveMethod(enum.Enum):
    """How a file system lets us move a file into a folder without replacing what is there."""
    LINK = "link+unlink"
    RENAME_NOREPLACE = "renameat2(RENAME_NOREPLACE)"
    CHECKED_RENAME = "rename after an existence check"


# Errors that mean "this file system cannot do that", as opposed to a problem with this file.
# exFAT, FAT32 and SMB refuse hard links with EPERM; others with EOPNOTSUPP, ENOSYS or EMLINK.
LINK_REFUSED = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK})
# Old kernels and FUSE file systems without rename flags (exfat-fuse) answer EINVAL.
NOREPLACE_REFUSED = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP})

AT_FDCWD = -100
RENAME_NOREPLACE = 1
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)  # glibc 2.28+
if _renameat2 is not None:
    _renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    _renameat2.restype = ctypes.c_int

# st_dev -> the method that moved a file there; a process sees few file systems.
_methods: dict[int, MoveMethod] = {}
_methods_lock = threading.Lock()
# Makes check-then-rename atomic among this process's threads (the uploader moves in parallel).
_checked_rename_lock = threading.Lock()


def fallback(method: MoveMethod, error: int) -> MoveMethod | None:
    """The method to try after `method` failed with `error`; None when the error is real."""
    if method is MoveMethod.LINK and error in LINK_REFUSED:
        return MoveMethod.RENAME_NOREPLACE
    if method is MoveMethod.RENAME_NOREPLACE and error in NOREPLACE_REFUSED:
        return MoveMethod.CHECKED_RENAME
    return None


class SourceNotRemoved(OSError):
    """The link was made but the source could not be removed: a real error, never a reason to
    try another method (the link is undone first, so no second name of the file remains)."""


def _link_unlink(source: Path, target: Path) -> None:
    os.link(source, target)
    try:
        os.unlink(source)
    except OSError as exc:
        os.unlink(target)
        raise SourceNotRemoved(exc.errno, exc.strerror, str(source)) from exc


def _rename_noreplace(source: Path, target: Path) -> None:
    if _renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not in this C library", str(source))
    if _renameat2(AT_FDCWD, os.fsencode(source), AT_FDCWD, os.fsencode(target), RENAME_NOREPLACE) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), str(source), None, str(target))


def _checked_rename(source: Path, target: Path) -> None:
    with _checked_rename_lock:
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
        os.rename(source, target)


MOVES = {MoveMethod.LINK: _link_unlink, MoveMethod.RENAME_NOREPLACE: _rename_noreplace,
         MoveMethod.CHECKED_RENAME: _checked_rename}


def move_no_clobber(source: Path, target: Path) -> None:
    """Atomically move `source` to `target`; FileExistsError if `target` exists.

    Never plain rename, which silently replaces an existing file. link+unlink where the file
    system has hard links; renameat2(RENAME_NOREPLACE) where it refuses them (exFAT, FAT32,
    SMB), which is just as atomic. Where that is refused too (FUSE exFAT), rename after checking
    that `target` is absent: safe because one process creates names in each destination folder
    (the recorder in completed/, the uploader in uploaded/, each kept single by its lock), and
    its threads take turns here. The one exception, the uploader returning a copy to completed/
    under a segment name it found free, could only race the recorder creating that very name
    in the same instant, which the recorder does only for the current minute. The method that works is remembered per device,
    so the refusals cost one try per process.
    """
    device = os.stat(target.parent).st_dev
    method = _methods.get(device, MoveMethod.LINK)
    refusals = []
    while True:
        try:
            MOVES[method](source, target)
            break
        except FileExistsError:
            raise  # says nothing about the method: the kernel checks for the name first
        except OSError as exc:
            following = None if isinstance(exc, SourceNotRemoved) else fallback(method, exc.errno)
            if following is None:
                raise
            refusals.append(f"{method.value}: {errno.errorcode.get(exc.errno, exc.errno)}")
            method = following
    if refusals:
        _remember(device, method, target.parent, refusals)
    fsync_dir(target.parent)
    if source.parent != target.parent:
        fsync_dir(source.parent)


def _remember(device: int, method: MoveMethod, folder: Path, refusals: list[str]) -> None:
    with _methods_lock:
        if _methods.get(device) is method:
            return
        _methods[device] = method
    log = logger.warning if method is MoveMethod.CHECKED_RENAME else logger.info
    log("the file system of {} refuses {}; moves there use {}", folder, ", ".join(refusals), method.value)


def move_method(folder: Path) -> MoveMethod:
    """How moves into `folder` are made (what a move there has found; link+unlink until one has)."""
    return _methods.get(os.stat(folder).st_dev, MoveMethod.LINK)
