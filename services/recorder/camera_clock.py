"""How far a camera's own clock (the time burnt into its picture) is from the host's (pure).

A camera that sends RTCP sender reports tells the NTP time of its clock against its RTP
timestamps. FFmpeg 5.x's RTP demuxer turns that into each packet's producer reference time
(the camera's wall-clock time of the frame), and the MP4 muxer with `write_prft=wallclock`
writes it for each fragment's first frame as a `prft` box before the fragment. The host time
the same frame arrived comes from the run clock (`recorder/timing`), so camera minus host is
the camera clock's offset, less the camera's encoder and network latency (well under 1 s).

Before the first sender report, or for a camera that sends none, FFmpeg writes the host's time
of writing the fragment instead, in the same box with the same flags. The fragment is written
when the next fragment's first frame is muxed, so such a box holds the mux time of the next
fragment, which the run clock knows: a box that close to it is read as "host time", and the
offset stays unknown. A camera whose clock is ahead by about one fragment's duration (a key-frame
interval) reads as unknown too. An FFmpeg whose RTP demuxer attaches no such time (4.x, as far as
could be checked) writes only the host's, so there every camera reads as unknown, never as 0.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

NTP_TO_UNIX = 2_208_988_800     # seconds from 1900-01-01 (NTP) to 1970-01-01
# A box this close to the next fragment's mux time holds the host's time of writing: never much
# before it (the run clock's error), later by as long as a loaded host takes to write the fragment.
HOST_WRITTEN_BEFORE, HOST_WRITTEN_AFTER = 0.25, 1.0
MOOV_MAX = 4 * 1024 * 1024      # an init segment larger than this is not one FFmpeg wrote

Read = Callable[[int, int], bytes]   # (file offset, length) -> up to that many bytes


@dataclass(frozen=True)
class ProducerTime:
    """One `prft` box: a wall-clock time (Unix seconds) and the media time it belongs to."""

    wall: float
    media: int          # in the track's timescale, from the segment's start


@dataclass(frozen=True)
class ClockReading:
    """Camera clock minus host clock, measured on a frame that arrived at host time `at`."""

    offset: float
    at: float


def parse_prft(payload: bytes) -> ProducerTime | None:
    """A `prft` box's body (after size and type): version, flags, track id, NTP time, media time."""
    if len(payload) < 20:
        return None
    version = payload[0]
    seconds, fraction = struct.unpack(">II", payload[8:16])
    if version == 0:
        (media,) = struct.unpack(">I", payload[16:20])
    elif len(payload) >= 24:
        (media,) = struct.unpack(">Q", payload[16:24])
    else:
        return None
    if seconds == 0:
        return None
    return ProducerTime(seconds - NTP_TO_UNIX + fraction / 2**32, media)


def _children(data: bytes) -> list[tuple[str, bytes]]:
    found, position = [], 0
    while position + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[position:position + 8])
        header = 8
        if size == 1 and position + 16 <= len(data):
            (size,) = struct.unpack(">Q", data[position + 8:position + 16])
            header = 16
        elif size == 0:
            size = len(data) - position
        if size < header:
            break
        found.append((kind.decode("latin-1"), data[position + header:position + size]))
        position += size
    return found


def track_timescale(moov: bytes) -> int | None:
    """Ticks per second of the first track (the video: the recorder maps it first), from its `mdhd`."""
    for kind, trak in _children(moov):
        if kind != "trak":
            continue
        for kind, mdia in _children(trak):
            if kind != "mdia":
                continue
            for kind, mdhd in _children(mdia):
                if kind == "mdhd" and len(mdhd) >= 24:
                    at = 20 if mdhd[0] == 1 else 12
                    (scale,) = struct.unpack(">I", mdhd[at:at + 4])
                    return scale or None
        return None
    return None


class FragmentTimes:
    """The `prft` boxes of one growing fragmented MP4, read box header by box header.

    Media data are skipped, never read; a box not yet written whole is read again next time.
    """

    def __init__(self) -> None:
        self.position = 0
        self.timescale: int | None = None
        self.times: list[ProducerTime] = []

    def update(self, read: Read) -> None:
        while True:
            header = read(self.position, 16)
            if len(header) < 8:
                return
            size, kind = struct.unpack(">I4s", header[:8])
            length = 8
            if size == 1:
                if len(header) < 16:
                    return
                (size,) = struct.unpack(">Q", header[8:16])
                length = 16
            if size < length:
                return   # 0 (to the end: still being written) or damaged
            if kind in (b"moov", b"prft"):
                if size > MOOV_MAX:
                    return
                body = read(self.position + length, size - length)
                if len(body) < size - length:
                    return
                if kind == b"moov":
                    self.timescale = track_timescale(body)
                else:
                    found = parse_prft(body)
                    if found is not None:
                        self.times = (self.times + [found])[-2:]
            elif len(read(self.position + size - 1, 1)) < 1:
                return   # the box's end is not on disk yet
            self.position += size

    def latest(self, segment_start: float) -> tuple[float, float, float] | None:
        """(camera-side wall time, run media second of that frame, run media second of the next
        fragment's first frame) of the newest fragment that has a successor, or None."""
        if len(self.times) < 2 or not self.timescale:
            return None
        first, following = self.times
        return (first.wall, segment_start + first.media / self.timescale,
                segment_start + following.media / self.timescale)


def reading(wall: float, arrived: float, next_muxed: float) -> ClockReading | None:
    """Camera minus host for a fragment whose box says `wall`, whose first frame reached the host
    at `arrived` and whose successor's first frame was muxed at `next_muxed` (host times); None
    when the box holds FFmpeg's own time of writing the fragment (no sender report)."""
    if -HOST_WRITTEN_BEFORE <= wall - next_muxed <= HOST_WRITTEN_AFTER:
        return None
    return ClockReading(offset=wall - arrived, at=arrived)


AGREE_READINGS, AGREE_SECONDS = 3, 1.0


@dataclass
class SteadyClock:
    """What is shown of one camera's clock: the median of its last AGREE_READINGS readings, taken
    only when they agree within AGREE_SECONDS. A sender report can map the camera's clock anew
    (the GStreamer test cameras did, by 15 s, when another client joined): one odd reading is
    not a camera minutes off. Kept across FFmpeg runs."""

    shown: ClockReading | None = None
    recent: tuple[ClockReading, ...] = ()

    def add(self, measured: ClockReading) -> ClockReading | None:
        if self.recent and self.recent[-1].at == measured.at:
            return self.shown   # the same fragment again: not a second opinion
        self.recent = (*self.recent, measured)[-AGREE_READINGS:]
        offsets = sorted(r.offset for r in self.recent)
        if len(offsets) == AGREE_READINGS and offsets[-1] - offsets[0] <= AGREE_SECONDS:
            self.shown = ClockReading(offsets[len(offsets) // 2], measured.at)
        return self.shown


def describe(offset: float | None) -> str:
    """`+120.3 s`, or `unknown` when the camera sent no sender report (not 0: nothing is known)."""
    return "unknown" if offset is None else f"{offset:+.1f} s"


def warning(offset: float | None, limit: float) -> str | None:
    """The operator's words for a camera clock off by more than `limit` seconds, else None."""
    if offset is None or abs(offset) <= limit:
        return None
    amount = f"{abs(offset):.0f}" if abs(offset) >= 10 else f"{abs(offset):.1f}"
    return (f"camera clock {amount} s {'ahead of' if offset > 0 else 'behind'} the host; "
            "set the camera's NTP server")
