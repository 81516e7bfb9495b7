"""Status snapshots in DATA_DIR/state/, replaced atomically so readers never see half a file."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from loguru import logger


def write_json_atomic(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=str)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_json(path: Path) -> Any | None:
    """The snapshot, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def publish(path: Path, data: Any) -> None:
    """Write a daemon's status snapshot; a full or read-only disk is logged, never fatal."""
    try:
        write_json_atomic(path, data)
    except OSError as exc:
        logger.error("cannot write status file {}: {}", path, exc.strerror)
