"""Walking the top-level boxes of a fragmented MP4 to find where playable data ends.

A segment cut short by `kill -9` or power loss ends in a torn box. Everything up to the
last complete `moof`+`mdat` pair decodes; the tail after it is trimmed before hand-off.

The hand-off also appends one box of its own, the first-frame stamp: a `uuid` box holding
the host-clock time (Unix milliseconds) at which the segment's first video frame reached the
recorder. Players skip unknown `uuid` boxes; the file carries its own time wherever it goes.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

# Ours (random, fixed): marks the first-frame stamp among any other `uuid` boxes.
STAMP_UUID = bytes.fromhex("5c1a3e0b7d2f4e8a9b6c0d1e2f3a4b5c")
_STAMP_FORMAT = ">I4s16sBq"   # size, 'uuid', our id, version 1, Unix milliseconds
_STAMP_SIZE = struct.calcsize(_STAMP_FORMAT)


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


def child_boxes(data: bytes, start: int, end: int):
    """(type, payload start, payload end) of the complete boxes inside data[start:end]."""
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1 and offset + 16 <= end:
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            return
        yield kind, offset + header, offset + size
        offset += size


def find_box(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """(payload start, payload end) of the first `kind` box inside data[start:end]."""
    return next(((s, e) for k, s, e in child_boxes(data, start, end) if k == kind), None)


def _video_track(moov: bytes) -> tuple[int, int, int] | None:
    """(track id, timescale, default sample duration) of the first video track."""
    defaults = {}
    mvex = find_box(moov, 0, len(moov), b"mvex")
    if mvex:
        for kind, s, e in child_boxes(moov, *mvex):
            if kind == b"trex":
                track_id, _, duration = struct.unpack_from(">III", moov, s + 4)
                defaults[track_id] = duration
    for kind, s, e in child_boxes(moov, 0, len(moov)):
        if kind != b"trak":
            continue
        tkhd, mdia = find_box(moov, s, e, b"tkhd"), find_box(moov, s, e, b"mdia")
        if not tkhd or not mdia:
            continue
        hdlr, mdhd = find_box(moov, *mdia, b"hdlr"), find_box(moov, *mdia, b"mdhd")
        if not hdlr or not mdhd or moov[hdlr[0] + 8:hdlr[0] + 12] != b"vide":
            continue
        version = moov[tkhd[0]]
        track_id = struct.unpack_from(">I", moov, tkhd[0] + (20 if version == 1 else 12))[0]
        version = moov[mdhd[0]]
        timescale = struct.unpack_from(">I", moov, mdhd[0] + (20 if version == 1 else 12))[0]
        return track_id, timescale, defaults.get(track_id, 0)
    return None


def _traf_duration(data: bytes, start: int, end: int, track_id: int, default: int) -> int:
    tfhd = find_box(data, start, end, b"tfhd")
    if not tfhd:
        return 0
    flags = int.from_bytes(data[tfhd[0] + 1:tfhd[0] + 4], "big")
    if struct.unpack_from(">I", data, tfhd[0] + 4)[0] != track_id:
        return 0
    offset = tfhd[0] + 8 + (8 if flags & 0x1 else 0) + (4 if flags & 0x2 else 0)
    if flags & 0x8:
        default = struct.unpack_from(">I", data, offset)[0]
    total = 0
    for kind, s, e in child_boxes(data, start, end):
        if kind != b"trun":
            continue
        flags = int.from_bytes(data[s + 1:s + 4], "big")
        count = struct.unpack_from(">I", data, s + 4)[0]
        offset = s + 8 + (4 if flags & 0x1 else 0) + (4 if flags & 0x4 else 0)
        if not flags & 0x100:
            total += count * default
            continue
        stride = 4 * bin(flags & 0xF00).count("1")
        total += sum(struct.unpack_from(">I", data, offset + i * stride)[0] for i in range(count))
    return total


def video_duration(path: Path) -> float | None:
    """Seconds of video in a fragmented MP4 (the sum of its fragments' sample durations).

    None when the file is not a fragmented MP4 with a video track, whatever its bytes are.
    """
    try:
        return _video_duration(path)
    except (OSError, struct.error, IndexError):
        return None


def _video_duration(path: Path) -> float | None:
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        track = None
        total = 0
        offset = 0
        while offset < size:
            header = _box_header(handle, offset, size)
            if header is None or header[0] < header[2] or offset + header[0] > size:
                break
            box_size, kind, header_len = header
            if kind in (b"moov", b"moof"):
                handle.seek(offset + header_len)
                payload = handle.read(box_size - header_len)
                if kind == b"moov":
                    track = _video_track(payload)
                elif track is not None:
                    for child, s, e in child_boxes(payload, 0, len(payload)):
                        if child == b"traf":
                            total += _traf_duration(payload, s, e, track[0], track[2])
            offset += box_size
    if track is None or track[1] == 0:
        return None
    return total / track[1]


@dataclass(frozen=True)
class SegmentTiming:
    """When a segment's first frame was seen (host clock) and when its video ends."""

    first_frame: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.first_frame).total_seconds()


def stamp_box(first_frame: datetime) -> bytes:
    milliseconds = int(first_frame.timestamp() * 1000 // 1)
    return struct.pack(_STAMP_FORMAT, _STAMP_SIZE, b"uuid", STAMP_UUID, 1, milliseconds)


def read_stamp(path: Path) -> datetime | None:
    """The first-frame stamp the hand-off appended, or None (older files, leftovers of a crash)."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            offset = 0
            while offset < size:
                header = _box_header(handle, offset, size)
                if header is None or header[0] < header[2] or offset + header[0] > size:
                    return None
                if header[1] == b"uuid" and header[0] == _STAMP_SIZE:
                    handle.seek(offset)
                    _, _, uuid, version, milliseconds = struct.unpack(_STAMP_FORMAT, handle.read(_STAMP_SIZE))
                    if uuid == STAMP_UUID and version == 1:
                        return datetime.fromtimestamp(milliseconds / 1000, timezone.utc)
                offset += header[0]
    except (OSError, struct.error, ValueError, OverflowError):
        return None
    return None


def append_stamp(path: Path, first_frame: datetime) -> None:
    """Add the first-frame stamp after the last fragment (once) and make it durable."""
    if read_stamp(path) is not None:
        return
    with open(path, "ab") as handle:
        handle.write(stamp_box(first_frame))
        handle.flush()
        os.fsync(handle.fileno())


def segment_timing(path: Path, duration: float | None = None) -> SegmentTiming | None:
    """First frame and end of a stamped segment; None without a stamp or a video track.
    `duration`: the file's `video_duration` when the caller has it already (each is a walk of the file)."""
    first_frame = read_stamp(path)
    if first_frame is None:
        return None
    duration = duration if duration is not None else video_duration(path)
    if duration is None:
        return None
    return SegmentTiming(first_frame, first_frame + timedelta(seconds=duration))
