"""One camera's life cycle as an explicit state machine, driven by a monotonic clock.

Transitions (checked on every tick of the main loop; `_enter` is the only place the state
changes, and it performs the side effects of entering a state):

    PROBING   --probe ok-->              STARTING
    PROBING   --probe failed/timed out--> BACKOFF
    STARTING  --media time advances-->    RECORDING
    STARTING/RECORDING --FFmpeg exited--> BACKOFF
    STARTING  --no media for start_timeout--> STOPPING (killed, then BACKOFF)
    RECORDING --no media for the stall limit--> STOPPING (killed, then restarted at once)
    STARTING/RECORDING --restart asked (clock step, reload)--> STOPPING (then restarted at once)
    PROBING   --new settings (reload)-->  STOPPING (then probed again with them)
    BACKOFF   --new settings (reload)-->  STARTING/PROBING at once
    STOPPING  --exited-->                 BACKOFF | STARTING/PROBING (restart) | STOPPED (shutdown)
    STOPPING  --deadline passed-->        kill, stay STOPPING until reaped
    BACKOFF   --delay over-->             STARTING/PROBING
    any       --shutdown-->               STOPPING or STOPPED

How FFmpeg is stopped, and what follows, depends only on why (`stop_policy`). There is no
fatal state: cameras come back, so the backoff is capped, not exhausted. A camera that stays
down is one warning, then reminders at a growing interval (`Outage`), not one per retry.
"""
from __future__ import annotations

import collections
import enum
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from loguru import logger

from services.recorder.config import CameraConfig
from services.recorder.ffmpeg_command import StreamInfo
from services.recorder.outage import Outage
from services.recorder.states import PROCESS_STATES, CameraState, StopReason

# The stall limit (`stall_limit`): stall_timeout, or STALL_INTERVALS times the camera's
# longest frame interval of the last INTERVAL_MEMORY seconds when that is longer, so a camera
# sending a key frame every 6 s gets 12 s; at most STALL_LIMIT_CAP x stall_timeout, so a
# timestamp jump cannot hide a dead connection for long. Until a run has measured the
# interval (its second progress report) the cap applies: the first report carries the frames
# FFmpeg read while learning the stream, and the next one of that camera comes 12 s later.
STALL_INTERVALS = 2.0
STALL_LIMIT_CAP = 3.0
INTERVAL_MEMORY = 600.0


class Child(Protocol):
    pid: int
    last_progress: float | None
    frame_interval: float | None   # media seconds per video frame in the latest progress report

    def poll(self) -> int | None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def last_words(self) -> str: ...


class Launcher(Protocol):
    """The OS side of a camera: everything that spawns processes or touches files."""

    def probe(self, camera: CameraConfig) -> Child: ...
    def stream_info(self, child: Child) -> StreamInfo: ...
    def record(self, camera: CameraConfig, stream: StreamInfo) -> Child: ...
    def run_finished(self, child: Child) -> None: ...


@dataclass(frozen=True)
class SupervisorSettings:
    stall_timeout: float = 10.0   # no media this long while recording: a dead connection (see stall_limit)
    start_timeout: float = 60.0   # first media may take a few frame intervals and a GOP
    stop_timeout: float = 10.0    # for a graceful stop: FFmpeg writes its trailer
    probe_timeout: float = 60.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    stable_after: float = 60.0


def backoff_delay(failures: int, settings: SupervisorSettings) -> float:
    """1, 2, 4 ... seconds, capped; `failures` counts consecutive failed runs (>= 1)."""
    return min(settings.backoff_max, settings.backoff_initial * 2 ** max(0, failures - 1))


def stall_limit(settings: SupervisorSettings, frame_interval: float | None) -> float:
    """Seconds without media that mean the connection is dead, for a camera whose longest
    recent frame interval is `frame_interval` (None: not measured yet)."""
    longest = longest_silence(settings.stall_timeout)
    if frame_interval is None:
        return longest
    return min(max(settings.stall_timeout, STALL_INTERVALS * frame_interval), longest)


def longest_silence(stall_timeout: float) -> float:
    """The most a recording camera may stay silent however slow its frames: FFmpeg's own
    socket timeout, a backstop, and the start-up allowance must not be shorter."""
    return STALL_LIMIT_CAP * stall_timeout


class AfterStop(str, enum.Enum):
    STAY_STOPPED = "stay stopped"
    RESTART = "restart at once"
    BACK_OFF = "back off"


@dataclass(frozen=True)
class StopPolicy:
    reason: StopReason
    graceful: bool       # SIGTERM first, so FFmpeg writes the trailer of its segment
    kill_after: float    # seconds until SIGKILL (0: at once)
    then: AfterStop


def stop_policy(reason: StopReason, settings: SupervisorSettings) -> StopPolicy:
    """How to stop FFmpeg for `reason`, and what comes next.

    A graceful stop helps only a FFmpeg that still gets packets. One stalled on a silent
    connection is blocked reading it: a SIGTERM is only looked at between packets (measured:
    still running 12 s later, nothing more written) and a second one aborts the trailer too.
    Its fragments are on disk already (all but the one being filled, at most one GOP), so it
    is killed at once and the torn tail trimmed as after any kill. A camera that stalled
    after recording is reconnected at once: a new connection usually works, and a failure of
    that run backs off as usual. One that never sent media is a failing camera: backoff.
    """
    if reason == StopReason.STALL:
        return StopPolicy(reason, graceful=False, kill_after=0.0, then=AfterStop.RESTART)
    if reason == StopReason.NO_MEDIA:
        return StopPolicy(reason, graceful=False, kill_after=0.0, then=AfterStop.BACK_OFF)
    then = AfterStop.STAY_STOPPED if reason == StopReason.SHUTDOWN else AfterStop.RESTART
    return StopPolicy(reason, graceful=True, kill_after=settings.stop_timeout, then=then)


class RecentMax:
    """The largest value observed in the last `memory` seconds; a deque kept decreasing."""

    def __init__(self, memory: float):
        self.memory = memory
        self._items: collections.deque[tuple[float, float]] = collections.deque()

    def observe(self, now: float, value: float) -> None:
        while self._items and self._items[-1][1] <= value:
            self._items.pop()
        self._items.append((now, value))

    def value(self, now: float) -> float | None:
        while self._items and self._items[0][0] < now - self.memory:
            self._items.popleft()
        return self._items[0][1] if self._items else None


class CameraSupervisor:
    def __init__(self, camera: CameraConfig, launcher: Launcher, settings: SupervisorSettings,
                 clock: Callable[[], float] = time.monotonic):
        self.camera = camera
        self.launcher = launcher
        self.settings = settings
        self.clock = clock
        self.state = CameraState.STOPPED
        self.since = clock()
        self.child: Child | None = None
        self.child_records = False  # the child is FFmpeg (True) or ffprobe (False)
        self.stream: StreamInfo | None = None
        # What the camera sent in the last run that recorded; lets a restart skip the probe.
        self.known_stream: StreamInfo | None = None
        self.failures = 0
        self.starts = 0
        self.reason = ""
        self.retry_at = 0.0
        self.deadline = 0.0
        self.killed = False
        self.run_started = 0.0
        self.recording_since: float | None = None  # when the current run's media began
        self.frame_intervals = RecentMax(INTERVAL_MEMORY)
        self.outage = Outage()
        self.stop = stop_policy(StopReason.SHUTDOWN, settings)
        self.after_stop = self.stop.then  # a shutdown during another stop changes only this

    # -- commands from the main loop -------------------------------------------------
    def start(self) -> None:
        self._enter(CameraState.PROBING, "start")

    def request_stop(self) -> None:
        """Shutdown: let FFmpeg finish its segment, then stay stopped."""
        if self.state in PROCESS_STATES - {CameraState.STOPPING}:
            self._stop(StopReason.SHUTDOWN)
        elif self.state == CameraState.STOPPING:
            self.after_stop = AfterStop.STAY_STOPPED  # the stop under way keeps its deadline
        elif self.state == CameraState.BACKOFF:
            self._enter(CameraState.STOPPED, StopReason.SHUTDOWN.value)

    def request_restart(self, reason: StopReason) -> None:
        """Close the current segment and start a new run at once (clock step, reload)."""
        if self.state in (CameraState.STARTING, CameraState.RECORDING):
            self._stop(reason)

    def reconfigure(self, camera: CameraConfig) -> None:
        """New settings for this camera (reload): a new run with them, the other cameras untouched."""
        self.camera = camera
        self.known_stream = None   # a new URL may be another stream: probe it
        if self.state in (CameraState.PROBING, CameraState.STARTING, CameraState.RECORDING):
            self._stop(StopReason.RELOAD)
        elif self.state == CameraState.BACKOFF:
            self.failures = 0
            self._retry(StopReason.RELOAD.value)
        # STOPPING: what follows starts with the new settings; STOPPED: not started yet

    @property
    def done(self) -> bool:
        return self.state == CameraState.STOPPED

    # -- time- and exit-driven transitions -----------------------------------------
    def tick(self) -> None:
        now = self.clock()
        state = self.state
        if state == CameraState.BACKOFF and now >= self.retry_at:
            self._retry("retry")
        elif state == CameraState.PROBING:
            self._tick_probing(now)
        elif state in (CameraState.STARTING, CameraState.RECORDING):
            self._tick_running(now)
        elif state == CameraState.STOPPING:
            self._tick_stopping(now)

    def _retry(self, reason: str) -> None:
        if self.known_stream is not None:
            self.stream = self.known_stream
            self._enter(CameraState.STARTING, f"{reason}, camera known to send video "
                        f"{self.stream.video_codec}, audio {self.stream.audio_codec or 'none'}")
        else:
            self._enter(CameraState.PROBING, reason)

    def _tick_probing(self, now: float) -> None:
        assert self.child is not None
        code = self.child.poll()
        if code is None:
            if now >= self.deadline:
                self.child.kill()
                self._enter(CameraState.BACKOFF, f"probe timed out after {self.settings.probe_timeout:.0f}s")
            return
        stream = self.launcher.stream_info(self.child)
        if code == 0 and stream.video_codec:
            self.stream = stream
            self._enter(CameraState.STARTING, f"video {stream.video_codec}, audio {stream.audio_codec or 'none'}")
        else:
            self._enter(CameraState.BACKOFF, f"probe failed: {self.child.last_words() or f'exit {code}'}")

    def _tick_running(self, now: float) -> None:
        assert self.child is not None
        code = self.child.poll()
        if code is not None:
            if self.state == CameraState.STARTING:
                self.known_stream = None  # never recorded: ask the camera again next time
            self._run_ended(now)
            self._enter(CameraState.BACKOFF, f"FFmpeg exited with {code}: {self.child.last_words() or 'no message'}")
            return
        progress = self.child.last_progress
        if self.state == CameraState.STARTING:
            if progress is not None:
                self.known_stream = self.stream
                self._enter(CameraState.RECORDING, "media is flowing")
            elif now - self.run_started >= self.settings.start_timeout:
                self.known_stream = None
                self._stop(StopReason.NO_MEDIA, f"{now - self.run_started:.0f}s")
            return
        if self.child.frame_interval is not None:
            self.frame_intervals.observe(now, self.child.frame_interval)
        assert progress is not None
        if now - progress >= self.stall_limit(now):
            self._stop(StopReason.STALL, f"no media for {now - progress:.0f}s")

    def stall_limit(self, now: float) -> float:
        return stall_limit(self.settings, self.frame_intervals.value(now))

    def _tick_stopping(self, now: float) -> None:
        assert self.child is not None
        code = self.child.poll()
        if code is not None:
            if self.child_records:
                self._run_ended(now)
            if self.after_stop == AfterStop.RESTART:
                self._retry(f"restart ({self.stop.reason.value})")
            else:
                state = CameraState.STOPPED if self.after_stop == AfterStop.STAY_STOPPED else CameraState.BACKOFF
                self._enter(state, f"FFmpeg stopped (exit {code})")
        elif now >= self.deadline and not self.killed:
            logger.warning("{}: FFmpeg did not stop within {:.0f}s; killing pid {}", self.camera.label,
                           self.stop.kill_after, self.child.pid)
            self.child.kill()
            self.killed = True

    def _run_ended(self, now: float) -> None:
        """Hand off what the run left; a run that recorded for `stable_after` proves the
        camera works, so the backoff ladder starts from the bottom again."""
        assert self.child is not None
        self.launcher.run_finished(self.child)
        if self.recording_since is not None and now - self.recording_since >= self.settings.stable_after:
            self.failures = 0
        self.recording_since = None

    def _stop(self, reason: StopReason, detail: str = "") -> None:
        self.stop = stop_policy(reason, self.settings)
        self.after_stop = self.stop.then
        self._enter(CameraState.STOPPING, f"{reason.value}: {detail}" if detail else reason.value,
                    warn=reason in (StopReason.STALL, StopReason.NO_MEDIA))

    # -- the one place the state changes ------------------------------------------
    def _enter(self, new: CameraState, reason: str, warn: bool | None = None) -> None:
        now = self.clock()
        old, self.state, self.since, self.reason = self.state, new, now, reason
        level, text = self.outage.transition(
            now, f"{self.camera.label}: {old.value} -> {new.value} ({reason})",
            failing=new == CameraState.BACKOFF if warn is None else warn,
            counts=new == CameraState.BACKOFF, recording=new == CameraState.RECORDING)
        logger.log(level, text)
        try:
            self._on_enter(new, now)
        except OSError as exc:
            self._enter(CameraState.BACKOFF, f"cannot start: {exc}")

    def _on_enter(self, new: CameraState, now: float) -> None:
        if new == CameraState.PROBING:
            self.stream = None
            self.child = self.launcher.probe(self.camera)
            self.child_records = False
            self.deadline = now + self.settings.probe_timeout
        elif new == CameraState.STARTING:
            assert self.stream is not None
            self.child = self.launcher.record(self.camera, self.stream)
            self.child_records = True
            self.run_started = now
            self.starts += 1
            self.frame_intervals = RecentMax(INTERVAL_MEMORY)  # the camera may have changed its mode
        elif new == CameraState.RECORDING:
            self.recording_since = now
        elif new == CameraState.BACKOFF:
            self.failures += 1
            self.retry_at = now + backoff_delay(self.failures, self.settings)
            self.child = None
        elif new == CameraState.STOPPING:
            assert self.child is not None
            self.killed = not self.stop.graceful
            if self.stop.graceful:
                self.child.terminate()
            else:
                self.child.kill()
            self.deadline = now + self.stop.kill_after
        elif new == CameraState.STOPPED:
            self.child = None

    def snapshot(self) -> dict:
        now = self.clock()
        child = self.child
        return {
            "state": self.state,
            "since_seconds": round(now - self.since, 1),
            "reason": self.reason,
            "pid": child.pid if child is not None else None,
            "restarts": max(0, self.starts - 1),
            "consecutive_failures": self.failures,
            "retry_in_seconds": round(max(0.0, self.retry_at - now), 1) if self.state == CameraState.BACKOFF else None,
            "video_codec": self.stream.video_codec if self.stream else None,
            "audio_codec": self.stream.audio_codec if self.stream else None,
        }
