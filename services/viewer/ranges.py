"""The single byte range of an HTTP Range header (pure): what a <video> element asks for."""
from __future__ import annotations

import re

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class Unsatisfiable(ValueError):
    """HTTP 416: the range lies outside the content."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive, or None for the whole content (no header, or one we do not serve:
    several ranges); Unsatisfiable when it starts past the end."""
    match = _RANGE.match((header or "").strip())
    if not match or match[1] == match[2] == "":
        return None
    if match[1] == "":   # the last N bytes
        length = int(match[2])
        if length == 0:
            raise Unsatisfiable(header)
        return max(size - length, 0), size - 1
    first = int(match[1])
    last = min(int(match[2]), size - 1) if match[2] else size - 1
    if first >= size or last < first:
        raise Unsatisfiable(header)
    return first, last
