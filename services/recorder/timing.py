"""When a segment's first frame was seen, on the host clock (pure).

FFmpeg names a file from the clock when it opens it. For the first segment of a run that is
after probing, which buffers the first 1-3 s of the stream, so the name is late. The recorder
times frames itself instead: FFmpeg's progress reports give, each time a packet has just been
muxed, the end of the media written so far (`out_time_us`, the run's media timeline, the one
`segments.csv` lists segment starts in). Host time minus that media time is smallest for a
packet muxed as soon as it arrived; the probing burst only gives larger values, so the minimum
over the run maps media time to arrival time. Measured against an independent recording of
the same camera, that minimum lands one frame after the frame's arrival (FFmpeg's parser emits
a frame when the next one begins), which `first_frame` takes off; the run's very first frame
comes without a timestamp (hence `+genpts`) and is given its successor's, one frame more.

The minimum can only be trusted once FFmpeg is muxing live: a report read during the burst (or
one that came before the burst's end was reported) gives an offset seconds too late, and on a
loaded host the first segment of a run can close within the burst. So the clock is `settled`
only after reports spanning SETTLE_SECONDS in which the minimum did not drop by more than
jitter, the latest within LAG_SECONDS of it (a mux still catching up lets media time fall
behind host time); segments closed before that wait for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone


SETTLE_SECONDS = 1.0   # two live reports at FFmpeg's 0.5-s period, and one more
JITTER = 0.05          # a drop smaller than this is report timing, not a burst still ending
LAG_SECONDS = 1.0      # a live report comes at most about one frame (1 fps at night) after it


@dataclass
class RunClock:
    """Host time minus media time, the smallest seen in this run's progress reports."""

    offset: float | None = None
    steady_since: float | None = None   # host time of the last drop larger than JITTER
    last_report: float | None = None
    last_candidate: float | None = None

    def observe(self, host_time: float, out_time_us: int) -> None:
        """One progress report: the host's Unix time when it was read, and FFmpeg's media time."""
        if out_time_us <= 0:
            return  # nothing muxed yet ("N/A")
        candidate = host_time - out_time_us / 1e6
        if self.offset is None or candidate < self.offset - JITTER:
            self.steady_since = host_time
        if self.offset is None or candidate < self.offset:
            self.offset = candidate
        self.last_report, self.last_candidate = host_time, candidate

    @property
    def settled(self) -> bool:
        """Whether the offset has held for SETTLE_SECONDS of reports (FFmpeg is muxing live)."""
        if self.offset is None or self.steady_since is None or self.last_report is None:
            return False
        return (self.last_report - self.steady_since >= SETTLE_SECONDS
                and (self.last_candidate or 0.0) - self.offset <= LAG_SECONDS)

    def first_frame(self, media_start: float, frame_interval: float | None) -> datetime | None:
        """Host time at which the frame starting at `media_start` (run media seconds) arrived."""
        if self.offset is None:
            return None
        frames_early = 2 if media_start == 0 else 1
        seen = self.offset + media_start - frames_early * (frame_interval or 0.0)
        return datetime.fromtimestamp(seen, timezone.utc)

