"""One camera's life cycle as an explicit state machine, driven by a monotonic clock.

Transitions (checked on every tick of the main loop; `_enter` is the only place the state
changes, and it performs the side effects of entering a state):

    PROBING   --probe ok-->              STARTING
    PROBING   --probe failed/timed out--> BACKOFF
    STARTING  --media time advances-->    RECORDING
    STARTING/RECORDING --FFmpeg exited--> BACKOFF
    STARTING/RECORDING --no media for stall_timeout--> STOPPING (then BACKOFF)
    STOPPING  --exited-->                 BACKOFF | PROBING (restart asked) | STOPPED (shutdown)
    STOPPING  --deadline passed-->        kill, stay STOPPING until reaped
    BACKOFF   --delay over-->             PROBING
    any       --shutdown-->               STOPPING or STOPPED

There is no fatal state: cameras come back, so the backoff is capped, not exhausted.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Protocol

from loguru import logger

from services.recorder.config import CameraConfig
from services.recorder.ffmpeg_command import StreamInfo
from services.recorder.states import PROCESS_STATES, CameraState


class Child(Protocol):
    pid: int
    last_progress: float | None

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
    stall_timeout: float = 30.0
    stop_timeout: float = 10.0
    probe_timeout: float = 30.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    stable_after: float = 60.0


def backoff_delay(failures: int, settings: SupervisorSettings) -> float:
    """1, 2, 4 ... seconds, capped; `failures` counts consecutive failed runs (>= 1)."""
    return min(settings.backoff_max, settings.backoff_initial * 2 ** max(0, failures - 1))


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
        self.after_stop = CameraState.BACKOFF

    # -- commands from the main loop -------------------------------------------------
    def start(self) -> None:
        self._enter(CameraState.PROBING, "start")

    def request_stop(self) -> None:
        """Shutdown: let FFmpeg finish its segment, then stay stopped."""
        self.after_stop = CameraState.STOPPED
        if self.state in PROCESS_STATES - {CameraState.STOPPING}:
            self._enter(CameraState.STOPPING, "shutdown")
        elif self.state == CameraState.BACKOFF:
            self._enter(CameraState.STOPPED, "shutdown")

    def request_restart(self, reason: str) -> None:
        """Close the current segment and start a new run at once (no backoff)."""
        if self.state in (CameraState.STARTING, CameraState.RECORDING):
            self.after_stop = CameraState.PROBING
            self._enter(CameraState.STOPPING, reason)

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
            self.launcher.run_finished(self.child)
            if self.state == CameraState.STARTING:
                self.known_stream = None  # never recorded: ask the camera again next time
            self._enter(CameraState.BACKOFF, f"FFmpeg exited with {code}: {self.child.last_words() or 'no message'}")
            return
        progress = self.child.last_progress
        if self.state == CameraState.STARTING and progress is not None:
            self.known_stream = self.stream
            self._enter(CameraState.RECORDING, "media is flowing")
            return
        last_media = progress if progress is not None else self.run_started
        if now - last_media >= self.settings.stall_timeout:
            if self.state == CameraState.STARTING:
                self.known_stream = None
            self.after_stop = CameraState.BACKOFF
            self._enter(CameraState.STOPPING, f"stalled: no media for {now - last_media:.0f}s")

    def _tick_stopping(self, now: float) -> None:
        assert self.child is not None
        code = self.child.poll()
        if code is not None:
            if self.child_records:
                self.launcher.run_finished(self.child)
            if self.after_stop == CameraState.PROBING:
                self._retry("restart")
            else:
                self._enter(self.after_stop, f"FFmpeg stopped (exit {code})")
        elif now >= self.deadline and not self.killed:
            logger.warning("{}: FFmpeg did not stop within {:.0f}s; killing pid {}", self.camera.label,
                           self.settings.stop_timeout, self.child.pid)
            self.child.kill()
            self.killed = True

    # -- the one place the state changes ------------------------------------------
    def _enter(self, new: CameraState, reason: str) -> None:
        now = self.clock()
        old, self.state, self.since, self.reason = self.state, new, now, reason
        log = logger.warning if new in (CameraState.BACKOFF, CameraState.STOPPING) and reason not in (
            "shutdown",) else logger.info
        log("{}: {} -> {} ({})", self.camera.label, old.value, new.value, reason)
        try:
            self._on_enter(new, old, now)
        except OSError as exc:
            self._enter(CameraState.BACKOFF, f"cannot start: {exc}")

    def _on_enter(self, new: CameraState, old: CameraState, now: float) -> None:
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
        elif new == CameraState.BACKOFF:
            if old in (CameraState.STARTING, CameraState.RECORDING, CameraState.STOPPING) and \
                    now - self.run_started >= self.settings.stable_after:
                self.failures = 0  # it had been running fine; start the ladder again
            self.failures += 1
            self.retry_at = now + backoff_delay(self.failures, self.settings)
            self.child = None
        elif new == CameraState.STOPPING:
            assert self.child is not None
            self.child.terminate()
            self.deadline = now + self.settings.stop_timeout
            self.killed = False
        elif new == CameraState.STOPPED:
            self.child = None

    def snapshot(self) -> dict:
        now = self.clock()
        child = self.child
        return {
            "state": self.state.value,
            "since_seconds": round(now - self.since, 1),
            "reason": self.reason,
            "pid": child.pid if child is not None else None,
            "restarts": max(0, self.starts - 1),
            "consecutive_failures": self.failures,
            "retry_in_seconds": round(max(0.0, self.retry_at - now), 1) if self.state == CameraState.BACKOFF else None,
            "video_codec": self.stream.video_codec if self.stream else None,
            "audio_codec": self.stream.audio_codec if self.stream else None,
        }
