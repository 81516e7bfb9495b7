"""Child processes (FFmpeg, ffprobe) whose pipes are always drained.

stdout carries `-progress` key=value blocks (media time: the liveness signal) or, for
ffprobe, JSON; stderr is read continuously into a bounded tail and logged, so a chatty
child can never block on a full pipe.
"""
from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import threading
import time
from typing import Callable, Sequence

from loguru import logger

from services.common.redact import redact
from services.recorder.timing import RunClock

# FFmpeg dies with us: SIGTERM makes it write the trailer of the segment it has open.
_SETPRIV = shutil.which("setpriv")
LOGGED_LINES_PER_RUN = 100


# Harmless with RTSP sources, and printed on every start: keep them out of `journalctl -p warning`.
BENIGN = ("Timestamps are unset in a packet", "Non-monotonous DTS", "Too many bits")


def _integer(text: str | None) -> int:
    try:
        return int(text or "0")
    except ValueError:
        return 0


def seconds_per_frame(earlier: tuple[int, int], later: tuple[int, int]) -> float | None:
    """Media seconds per video frame between two (out_time_us, frames) progress reports;
    None when no video frame came, or none before (the first one's time starts anywhere).
    The camera's own clock, so network delays do not count."""
    (earlier_us, earlier_frames), (later_us, later_frames) = earlier, later
    if earlier_frames == 0 or later_frames <= earlier_frames or later_us <= earlier_us:
        return None
    return (later_us - earlier_us) / 1e6 / (later_frames - earlier_frames)


def _ffmpeg_log_level(line: str) -> str:
    if any(text in line for text in BENIGN):
        return "DEBUG"
    if "[error]" in line or "[fatal]" in line or "[panic]" in line:
        return "ERROR"
    if "[warning]" in line:
        return "WARNING"
    return "DEBUG"


class ManagedProcess:
    """One child with reader threads; `last_progress` is when its media time last advanced,
    `frame_interval` the media seconds per video frame in the report that advanced it last,
    `run_clock` what the reports tell about when frames arrived (host clock)."""

    def __init__(self, argv: Sequence[str], label: str, *, env: dict[str, str] | None = None,
                 progress: bool = False, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time):
        self.argv = tuple(argv)
        self.label = label
        self.progress = progress
        self.clock = clock
        self.wall_clock = wall_clock
        self.run_clock = RunClock()
        self.last_progress: float | None = None
        self.frame_interval: float | None = None
        self.out_time_us = 0
        self.frames = 0
        self.stats: dict[str, str] = {}
        self.stdout_lines: list[str] = []
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=30)
        self._logged = 0
        prefix = [_SETPRIV, "--pdeathsig", "TERM", "--"] if _SETPRIV else []
        logger.debug("{}: running {}", label, " ".join(self.argv))
        self._popen = subprocess.Popen(
            prefix + list(self.argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # a Ctrl-C in a terminal reaches the daemon, not FFmpeg
            text=True,
            errors="replace",
        )
        self.pid = self._popen.pid
        self._readers = [
            threading.Thread(target=self._read_stdout, name=f"{label}-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name=f"{label}-stderr", daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self._popen.stdout is not None
        block: dict[str, str] = {}
        for line in self._popen.stdout:
            line = line.strip()
            if not self.progress:
                self.stdout_lines.append(line)
                continue
            key, _, value = line.partition("=")
            block[key] = value
            if key == "progress":
                self._take_progress(block)
                block = {}

    def _take_progress(self, block: dict[str, str]) -> None:
        out_time, frames = _integer(block.get("out_time_us")), _integer(block.get("frame"))
        self.run_clock.observe(self.wall_clock(), out_time)
        if out_time > self.out_time_us:
            interval = seconds_per_frame((self.out_time_us, self.frames), (out_time, frames))
            self.frame_interval = interval if interval is not None else self.frame_interval
            self.out_time_us = out_time
            self.last_progress = self.clock()
        self.frames = max(self.frames, frames)
        self.stats = {k: block[k] for k in ("fps", "bitrate", "speed", "frame", "total_size") if k in block}

    def _read_stderr(self) -> None:
        assert self._popen.stderr is not None
        for line in self._popen.stderr:
            line = redact(line.rstrip())
            if not line:
                continue
            self.stderr_tail.append(line)
            level = _ffmpeg_log_level(line)
            if level != "DEBUG":
                self._logged += 1
                if self._logged == LOGGED_LINES_PER_RUN:
                    logger.warning("{}: further FFmpeg messages of this run are logged at debug level",
                                   self.label)
                if self._logged >= LOGGED_LINES_PER_RUN:
                    level = "DEBUG"
            logger.log(level, "{}: ffmpeg: {}", self.label, line)

    def poll(self) -> int | None:
        return self._popen.poll()

    def terminate(self) -> None:
        """One SIGTERM only: FFmpeg writes the trailer; repeated signals make it skip that."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self._popen.returncode is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def last_words(self) -> str:
        """The last error-looking line FFmpeg printed, for the log and the status file."""
        for line in reversed(self.stderr_tail):
            if _ffmpeg_log_level(line) != "DEBUG" or "rror" in line:
                return line
        return self.stderr_tail[-1] if self.stderr_tail else ""

    def stdout_text(self) -> str:
        for reader in self._readers:
            reader.join(timeout=2)
        return "\n".join(self.stdout_lines)
