"""Where another recorder puts the camera and the start time in a path: the source name template.

A template such as `{camera}/%Y-%m-%d_%H-%M-%S.mp4` is matched against a file's path relative
to its source folder. The time in it is local time of SOURCE_TIMEZONE: converted to UTC with
zoneinfo, so names across a DST change land at the right instant (see `to_utc` for the hour
that repeats). Pure functions: tested without files.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from services.common.segment_names import SegmentName

DEFAULT_TEMPLATE = "{camera}/%Y-%m-%d_%H-%M-%S.mp4"
_FIELDS = {"%Y": r"(?P<Y>\d{4})", "%m": r"(?P<m>\d{2})", "%d": r"(?P<d>\d{2})",
           "%H": r"(?P<H>\d{2})", "%M": r"(?P<M>\d{2})", "%S": r"(?P<S>\d{2})", "%%": "%",
           "{camera}": r"(?P<camera>[^/]+?)"}
_TOKEN = re.compile(r"%[A-Za-z%]|\{camera\}")
_REQUIRED = ("{camera}", "%Y", "%m", "%d", "%H", "%M")
_SKIPPED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", "~")
_CAMERA_PREFIXED = re.compile(r"^camera_?(\d+)$", re.IGNORECASE)


class TemplateError(ValueError):
    """The template cannot describe a path: the message says why (shown next to the key)."""


@dataclass(frozen=True)
class Template:
    text: str
    pattern: re.Pattern

    def match(self, relative: str) -> tuple[str, datetime] | None:
        """(camera as written, naive local start) of a relative POSIX path, or None."""
        found = self.pattern.fullmatch(relative)
        if not found:
            return None
        try:
            local = datetime(int(found["Y"]), int(found["m"]), int(found["d"]), int(found["H"]),
                             int(found["M"]), int(found.groupdict().get("S") or 0))
        except ValueError:
            return None
        return found["camera"], local


def compile_template(text: str) -> Template:
    """Compile a template; TemplateError when a directive is unknown or a part is missing."""
    if text.startswith("/") or "\\" in text:
        raise TemplateError(f"a path relative to the source folder with '/' between folders, got {text!r}")
    parts, last, seen = [], 0, set()
    for token in _TOKEN.finditer(text):
        parts.append(re.escape(text[last:token.start()]))
        code = token.group()
        if code not in _FIELDS:
            raise TemplateError(f"{code} is not understood (use {{camera}}, %Y %m %d %H %M %S)")
        if code in seen and code != "%%":
            raise TemplateError(f"{code} appears twice in {text!r}")
        seen.add(code)
        parts.append(_FIELDS[code])
        last = token.end()
    parts.append(re.escape(text[last:]))
    missing = [code for code in _REQUIRED if code not in seen]
    if missing:
        raise TemplateError(f"{text!r} lacks {' '.join(missing)}: the camera and the start time must be in the path")
    return Template(text, re.compile("".join(parts)))


def skipped_name(name: str) -> bool:
    """Temporary and hidden names another program is still writing or keeps for itself."""
    return name.startswith(".") or name.endswith(_SKIPPED_SUFFIXES) or name in ("Thumbs.db", "desktop.ini")


def camera_id(folder: str, names: dict[str, int]) -> int | None:
    """The camera id a name in the path stands for: `CAMERA_<N>_NAME`'s value, `7`, or `camera_7`.

    Keys keep this project's `camera_<id>` layout so coverage, clip, the viewer and encryption
    read these objects unchanged; a name that maps to no id is reported, not guessed.
    """
    if folder in names:
        return names[folder]
    if folder.isdigit():
        return int(folder)
    found = _CAMERA_PREFIXED.match(folder)
    return int(found[1]) if found else None


def to_utc(local: datetime, zone: ZoneInfo, written_at: datetime | None = None) -> datetime:
    """The UTC instant of a naive local start time.

    In the hour that repeats at fall-back, the name alone cannot tell which one is meant: the
    file's last write decides (a segment starts before it is written, and not long before), else
    the first. A time in the hour that spring-forward skips is taken as the clock's reading
    before the change (zoneinfo's fold=0).
    """
    first = local.replace(tzinfo=zone, fold=0).astimezone(timezone.utc)
    second = local.replace(tzinfo=zone, fold=1).astimezone(timezone.utc)
    if first == second or written_at is None:
        return first
    candidates = [c for c in (first, second) if c <= written_at + timedelta(seconds=1)]
    return max(candidates) if candidates else first


@dataclass(frozen=True)
class SourceName:
    """What a source file's path says: the segment it is (camera id, UTC start) and the name read."""

    segment: SegmentName
    camera: str


def describe(relative: str, template: Template, zone: ZoneInfo, names: dict[str, int],
             written_at: datetime | None = None) -> SourceName | str:
    """The segment a relative path stands for, or the reason it is not one (for doctor and status)."""
    found = template.match(relative)
    if found is None:
        return f"does not match {template.text}"
    camera, local = found
    number = camera_id(camera, names)
    if number is None:
        return f"camera {camera!r} has no id: set CAMERA_<N>_NAME={camera}"
    return SourceName(SegmentName(to_utc(local, zone, written_at).replace(microsecond=0), number), camera)
