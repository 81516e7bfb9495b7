"""SOURCE_* and UPLOAD_BWLIMIT: which foreign folders are backed up, how their names read, how fast.

Read with the uploader's settings (problems reported with the others, exit 78) and by the
commands that look at the source folders (sync, status, doctor).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.common.config import EnvReader
from services.common.settings import (
    SOURCE_DIRS,
    SOURCE_PRUNE,
    SOURCE_STABLE_SECONDS,
    SOURCE_TIMEZONE,
    UPLOAD_BWLIMIT,
)
from services.uploader.bandwidth import BandwidthSchedule, parse_schedule
from services.uploader.source_template import DEFAULT_TEMPLATE, Template, TemplateError, compile_template

INDEX_FILE = "source-index.sqlite3"
_CAMERA_NAME = re.compile(r"^CAMERA_(?P<id>\d+)_NAME$")


@dataclass(frozen=True)
class SourceFolder:
    path: Path
    template: Template


@dataclass(frozen=True)
class SourceSettings:
    folders: tuple[SourceFolder, ...]
    zone: ZoneInfo
    stable_seconds: float
    prune: bool
    camera_ids: tuple[tuple[str, int], ...] = ()   # CAMERA_<N>_NAME values: the names in paths

    @property
    def names(self) -> dict[str, int]:
        return dict(self.camera_ids)

    def folder_of(self, path: Path) -> SourceFolder | None:
        return next((f for f in self.folders if path.is_relative_to(f.path)), None)


def host_zone() -> ZoneInfo:
    """The host's time zone as zoneinfo knows it: TZ, else /etc/localtime, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ValueError):
        return ZoneInfo("UTC")


def _zone(env: EnvReader) -> ZoneInfo:
    name = env.get(SOURCE_TIMEZONE)
    if not name:
        return host_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        env.error(SOURCE_TIMEZONE.name, f"not a time zone name like Europe/Berlin or UTC: {name!r}")
        return ZoneInfo("UTC")


def _folders(env: EnvReader, text: str) -> tuple[SourceFolder, ...]:
    folders = []
    for entry in (part.strip() for part in text.split(";")):
        if not entry:
            continue
        where, _, template_text = entry.partition("=")
        path = Path(where.strip()).expanduser()
        try:
            template = compile_template(template_text.strip() or DEFAULT_TEMPLATE)
        except TemplateError as exc:
            env.error(SOURCE_DIRS.name, f"{where.strip()}: {exc}")
            continue
        if not path.is_absolute() or not path.is_dir():
            env.error(SOURCE_DIRS.name, f"{where.strip()!r} is not an absolute path of a folder")
            continue
        folders.append(SourceFolder(path.resolve(), template))
    resolved = [f.path for f in folders]
    for folder in resolved:
        if any(other != folder and folder.is_relative_to(other) for other in resolved):
            env.error(SOURCE_DIRS.name, f"{folder} lies inside another source folder")
    return tuple(folders)


def camera_ids(env: EnvReader) -> tuple[tuple[str, int], ...]:
    names = {}
    for key, value in env.values.items():
        found = _CAMERA_NAME.match(key)
        if found and value.strip():
            names[value.strip()] = int(found["id"])
    return tuple(sorted(names.items()))


def read_sources(env: EnvReader, data_dir: Path) -> SourceSettings | None:
    """None without SOURCE_DIRS (the uploader takes completed/); problems go to `env`."""
    text = env.get(SOURCE_DIRS)
    stable, prune, zone = env.get(SOURCE_STABLE_SECONDS), env.get(SOURCE_PRUNE), _zone(env)
    if not text:
        return None
    folders = _folders(env, text)
    for folder in folders:
        if data_dir.is_relative_to(folder.path) or folder.path.is_relative_to(data_dir):
            env.error(SOURCE_DIRS.name, f"{folder.path} and DATA_DIR ({data_dir}) must not contain each other")
    if not folders and not env.issues:
        env.error(SOURCE_DIRS.name, "no folder given: `path=template`, separated by `;`")
    return SourceSettings(folders, zone, stable, prune, camera_ids(env))


def read_bandwidth(env: EnvReader) -> BandwidthSchedule | None:
    text = env.get(UPLOAD_BWLIMIT)
    try:
        schedule = parse_schedule(text)
    except ValueError as exc:
        env.error(UPLOAD_BWLIMIT.name, str(exc))
        return None
    return None if schedule.unlimited else schedule
