"""Which video codec a segment holds: the sample entry of its video track, in the `moov` box.

Neither the object listing nor the uploader's metadata names the codec, so it is read from the
file's first bytes when the page asks (a segment opened, or the first one of a camera's day):
the recorder's fragmented MP4s start with `ftyp` and an empty `moov` of a few KB, so one read of
HEAD_BYTES (one crypt block) is enough, and the answer is kept per file name (a segment never changes).
"""
from __future__ import annotations

import threading

from services.bucket.stream import BucketSource, plain_length, plain_range
from services.common.mp4_fragments import child_boxes, find_box
from services.viewer.footage import Local, Remote

HEAD_BYTES = 64 * 1024
FAMILIES = {b"avc1": "h264", b"avc3": "h264", b"hvc1": "hevc", b"hev1": "hevc", b"av01": "av1",
            b"vp09": "vp9", b"mp4v": "mpeg4"}
_PATH = (b"trak", b"mdia", b"minf", b"stbl", b"stsd")


def video_sample_entry(head: bytes) -> str | None:
    """The four-character code of the first video track's sample entry ('hvc1', 'avc1', ...), or
    None when the first bytes hold no complete `moov` (a classic MP4 with its index at the end)."""
    moov = find_box(head, 0, len(head), b"moov")
    if moov is None:
        return None
    for kind, start, end in child_boxes(head, *moov):
        if kind != b"trak":
            continue
        mdia = find_box(head, start, end, b"mdia")
        hdlr = mdia and find_box(head, *mdia, b"hdlr")
        if not hdlr or head[hdlr[0] + 8:hdlr[0] + 12] != b"vide":
            continue
        box: tuple[int, int] | None = (start, end)
        for name in _PATH[1:]:
            box = box and find_box(head, *box, name)
        if box is None or box[0] + 16 > box[1]:   # version+flags, entry count, then the first entry
            return None
        return head[box[0] + 12:box[0] + 16].decode("latin-1")
    return None


def describe(entry: str | None) -> dict:
    """What the page is told: the family ('hevc' for H.265) and the sample entry it plays by."""
    return {"codec": FAMILIES.get(entry.encode("latin-1")) if entry else None, "entry": entry}


def read_head(where: Local | Remote, source: BucketSource | None) -> bytes:
    if isinstance(where, Local):
        with open(where.path, "rb") as handle:
            return handle.read(HEAD_BYTES)
    if source is None:
        raise ValueError("no bucket configured")
    last = min(HEAD_BYTES, plain_length(where.key, where.size)) - 1
    return b"".join(plain_range(source, where.key, where.size, 0, last)) if last >= 0 else b""


class Codecs:
    """Sample entries already read, by segment file name."""

    def __init__(self, read=read_head):
        self._read, self._known, self._lock = read, {}, threading.Lock()

    def of(self, filename: str, where: Local | Remote, source: BucketSource | None) -> dict:
        with self._lock:
            if filename in self._known:
                return describe(self._known[filename])
        entry = video_sample_entry(self._read(where, source))
        with self._lock:
            self._known[filename] = entry
        return describe(entry)
