"""Status snapshots in DATA_DIR/state/, replaced atomically so readers never see half a file."""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import types
import typing
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from loguru import logger

T = TypeVar("T")


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


# ----- typed snapshots -----------------------------------------------------------------------
# Both daemons write a frozen dataclass; `status`, `doctor` and the metrics read it back into the
# same types. Times are UTC ISO 8601 with a trailing Z in every state file.

def utc_iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_utc(text: object) -> datetime | None:
    """A state file's time (Z or +00:00, as written by any version), or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        # Python 3.10's fromisoformat does not read a trailing Z.
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def to_jsonable(value: Any) -> Any:
    """Dataclasses, Enums, datetimes, tuples and dicts as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def from_jsonable(kind: Any, value: Any) -> Any:
    """The inverse of `to_jsonable` for the annotated type `kind`; raises ValueError on a mismatch."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return from_jsonable(inner[0], value)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ValueError(f"{kind.__name__}: expected an object")
        hints = typing.get_type_hints(kind)
        known = {f.name for f in dataclasses.fields(kind) if f.init}
        return kind(**{name: from_jsonable(hints[name], v) for name, v in value.items() if name in known})
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(value)
    if kind is datetime:
        moment = parse_utc(value)
        if moment is None:
            raise ValueError(f"not a time: {value!r}")
        return moment
    if origin is tuple:
        return tuple(from_jsonable(args[0], v) for v in value)
    if origin is dict:
        return {from_jsonable(args[0], k): from_jsonable(args[1], v) for k, v in value.items()}
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind in (int, str, bool) and isinstance(value, kind):
        return value
    if kind is Any:
        return value
    raise ValueError(f"expected {kind}, got {value!r}")


def read_snapshot(path: Path, kind: type[T]) -> T | None:
    """A daemon's typed snapshot, or None when missing, unreadable or of another shape."""
    data = read_json(path)
    try:
        return from_jsonable(kind, data) if data is not None else None
    except (ValueError, TypeError, KeyError):   # another version's file, or damaged: "unknown"
        return None


def publish_snapshot(path: Path, snapshot: Any) -> None:
    publish(path, to_jsonable(snapshot))


def pid_alive(pid: object) -> bool:
    """Is the process a state file names still there? (Another user's counts: EPERM means it exists.)"""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
