"""The folder contract shared by the recorder and the uploader.

recordings/ belongs to the recorder, completed/ and uploaded/ to the uploader; a segment
changes owner only by an atomic rename into the next folder.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


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


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable across power loss."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_no_clobber(source: Path, target: Path) -> None:
    """Atomically move `source` to `target`; FileExistsError if `target` exists.

    link+unlink instead of rename because rename silently replaces an existing file.
    """
    os.link(source, target)
    os.unlink(source)
    fsync_dir(target.parent)
    if source.parent != target.parent:
        fsync_dir(source.parent)
