"""Walking the top-level boxes of a fragmented MP4 to find where playable data ends.

A segment cut short by `kill -9` or power loss ends in a torn box. Everything up to the
last complete `moof`+`mdat` pair decodes; the tail after it is trimmed before hand-off.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class Mp4Inspection:
    size: int            # bytes on disk
    playable_end: int    # bytes worth keeping; size when the file is whole
    fragments: int       # complete moof+mdat pairs
    has_moov: bool
    plain_mdat: bool     # a complete non-fragmented mdat (a classic MP4)
    problem: str = ""    # why the walk stopped early, if it did

    @property
    def playable(self) -> bool:
        return self.has_moov and (self.fragments > 0 or self.plain_mdat)

    @property
    def torn(self) -> bool:
        return self.playable_end < self.size


def _box_header(handle: BinaryIO, offset: int, file_size: int) -> tuple[int, bytes, int] | None:
    """(box size, type, header length) at `offset`, or None if the header is cut off."""
    if file_size - offset < 8:
        return None
    handle.seek(offset)
    size, kind = struct.unpack(">I4s", handle.read(8))
    header = 8
    if size == 1:
        if file_size - offset < 16:
            return None
        (size,) = struct.unpack(">Q", handle.read(8))
        header = 16
    elif size == 0:
        size = file_size - offset  # "to end of file": only trustworthy for a closed file
    return size, kind, header


def inspect(handle: BinaryIO, file_size: int) -> Mp4Inspection:
    offset = playable_end = fragments = 0
    has_ftyp = has_moov = plain_mdat = moof_pending = False
    problem = ""
    while offset < file_size:
        header = _box_header(handle, offset, file_size)
        if header is None:
            problem = f"box header cut off at byte {offset}"
            break
        size, kind, header_len = header
        if offset == 0 and kind not in (b"ftyp", b"styp"):
            problem = "not an MP4 file (no ftyp box first)"
            break
        if size < header_len:
            problem = f"invalid box size {size} at byte {offset}"
            break
        end = offset + size
        if end > file_size:
            problem = f"{kind.decode('latin-1')!r} box at byte {offset} is cut off"
            break
        has_ftyp = has_ftyp or kind == b"ftyp"
        if kind == b"moov":
            has_moov = True
        if kind == b"moof":
            moof_pending = True
        elif kind == b"mdat":
            if moof_pending:
                fragments += 1
                moof_pending = False
            else:
                plain_mdat = True
            playable_end = end
        elif not moof_pending:
            playable_end = end
        offset = end
    if not has_ftyp:
        playable_end = 0
    return Mp4Inspection(file_size, playable_end, fragments, has_moov, plain_mdat, problem)


def inspect_file(path: Path) -> Mp4Inspection:
    with open(path, "rb") as handle:
        return inspect(handle, os.fstat(handle.fileno()).st_size)


def trim_torn_tail(path: Path) -> Mp4Inspection:
    """Cut a torn tail off `path` in place and make the result durable; returns the inspection."""
    result = inspect_file(path)
    with open(path, "r+b") as handle:
        if result.playable and result.torn:
            handle.truncate(result.playable_end)
        os.fsync(handle.fileno())
    return result
