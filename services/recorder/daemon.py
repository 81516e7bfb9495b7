"""The recorder daemon: `python -m services.video_recorder [--env-file F]`.

The main loop waits on a signal queue with a short timeout; each pass ticks every camera's
state machine, hands closed segments to the hand-off worker, watches for a wall clock that
stepped backwards, writes the status file and pings the systemd watchdog. Cameras start once the
wall clock can be trusted (`ClockWait`); SIGHUP re-reads `.env` and changes only the cameras
whose settings changed (`plan_reload`).
"""
from __future__ import annotations

import argparse
import os
import queue
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Callable

from loguru import logger

from services.common.alerts import AlertTracker, WebhookSender
from services.common.data_layout import DataLayout
from services.common.filesystem import known_usage
from services.common.metrics import MetricsServer, Sample
from services.common.redact import redact
from services.common.reloading import log_restart_needed, log_unknown_keys, notify_reloaded, reload_with, reread
from services.common.reporting import publish_report
from services.common.sd_notify import notify, watchdog_interval
from services.common.startup import add_env_file_argument, load_config_or_exit, run_daemon
from services.recorder.camera_clock import SteadyClock
from services.recorder.clock_wait import ClockWait, floor_paths
from services.recorder.config import RecorderConfig, read_recorder_config
from services.recorder.durability import SegmentSyncer
from services.recorder.handoff import Handoff, HandoffWorker, Outcome
from services.recorder.reload import ReloadPlan, plan_reload
from services.recorder.report import (
    STATE_FILE,
    CameraReport,
    RecorderSnapshot,
    alert_conditions,
    metric_samples,
    status_line,
)
from services.recorder.runs import FfmpegLauncher, RecordingRun, ffmpeg_version, leftover_runs
from services.recorder.states import StopReason
from services.recorder.supervisor import CameraSupervisor, SupervisorSettings, longest_silence

TICK_SECONDS = 0.5
STATUS_EVERY = 2.0
CLOCK_STEP_TOLERANCE = 2.0
# From spawn to FFmpeg's first media, measured on the test cameras: 3 s at 10 fps, 9 s at
# 1 fps, 30 s for one that sends only a key frame every 6 s (FFmpeg reads frames to learn the
# stream; ffprobe as long). A silent connection ends sooner, at FFmpeg's socket timeout.
START_TIMEOUT = 60.0


def backward_step(previous_offset: float, offset: float, tolerance: float = CLOCK_STEP_TOLERANCE) -> float:
    """Seconds the wall clock jumped back between two readings of (wall - monotonic), else 0."""
    step = previous_offset - offset
    return step if step > tolerance else 0.0


def supervisor_settings(config: RecorderConfig) -> SupervisorSettings:
    start_timeout = max(START_TIMEOUT, longest_silence(config.stall_timeout))
    return SupervisorSettings(
        stall_timeout=config.stall_timeout,
        start_timeout=start_timeout,
        stop_timeout=config.stop_timeout,
        probe_timeout=start_timeout,  # ffprobe reads as much of the stream as FFmpeg does
        backoff_max=config.backoff_max,
        stable_after=config.stable_after,
    )


class Recorder:
    def __init__(self, config: RecorderConfig, reread: Callable[[], RecorderConfig]):
        self.config = config
        self.reread = reread
        self.layout = DataLayout(config.common.data_dir)
        # Read before this run writes anything: files only the recorder writes, from earlier runs.
        self.clock_wait = ClockWait(config.clock_sync_timeout, floor_paths(self.layout))
        self.signals: queue.Queue[int] = queue.Queue()
        self.handoff = HandoffWorker(self.layout, self._handed_off)
        self.syncer = SegmentSyncer(config.fsync_interval)
        self.version = ffmpeg_version(config.ffmpeg)
        launcher = FfmpegLauncher(config, self.layout, self.version, self.handoff)
        settings = supervisor_settings(config)
        self.supervisors = {c.id: CameraSupervisor(c, launcher, settings) for c in config.cameras}
        self.retiring: dict[int, CameraSupervisor] = {}   # removed by a reload, closing their segment
        self.pending = set(self.supervisors)   # to start: once the clock is trusted and no namesake retires
        self.config_error: str | None = None   # why the last reload was rejected
        self.completed: dict[int, dict] = {c.id: {"segments": 0, "bytes": 0} for c in config.cameras}
        self._completed_lock = threading.Lock()
        self.camera_clocks: dict[int, SteadyClock] = {}
        self.started_at = datetime.now(timezone.utc)
        self.stopping = False
        self.alerts = AlertTracker()
        self.webhook = WebhookSender.for_settings(config.alerts, "video-recorder")
        self.latest = self.snapshot()

    def _handed_off(self, result: Handoff) -> None:
        if result.outcome != Outcome.COMPLETED or result.name is None or result.target is None:
            return
        logger.info("segment ready: {} ({} bytes)", result.target.name, result.inspection.playable_end)
        with self._completed_lock:
            stats = self.completed.setdefault(result.name.camera_id, {"segments": 0, "bytes": 0})
            stats["segments"] += 1
            stats["bytes"] += result.inspection.playable_end
            stats["last_segment"] = result.target.name
            stats["last_segment_at"] = datetime.now(timezone.utc)

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda n, _f: self.signals.put(n))
        self.handoff.start()
        self.syncer.start()
        for run_dir in leftover_runs(self.layout, self.config.stop_timeout):
            logger.info("recovering segments left in {}", run_dir)
            self.handoff.run_finished(run_dir)
        logger.info("video-recorder starting: {} camera(s), {}s segments, {}", len(self.supervisors),
                    self.config.segment_duration, self.version.text)
        metrics = MetricsServer(self.config.metrics_bind, self.config.metrics_port, self.metrics).start() \
            if self.config.metrics_port else None
        notify("READY=1")
        self._loop()
        if metrics:
            metrics.stop()
        self.syncer.stop()
        self.handoff.stop()
        self.write_status()
        self.webhook.close()
        notify("STATUS=stopped")
        logger.info("video-recorder stopped")
        return 0

    def _loop(self) -> None:
        ping_every = watchdog_interval()
        last_status = last_ping = 0.0
        clock_offset = time.time() - time.monotonic()
        while True:
            try:
                self._on_signal(self.signals.get(timeout=TICK_SECONDS))
            except queue.Empty:
                pass
            for supervisor in [*self.supervisors.values(), *self.retiring.values()]:
                self._collect_segments(supervisor)
                supervisor.tick()
            self.syncer.offer(s.child for s in self.supervisors.values() if isinstance(s.child, RecordingRun))
            self._retire_and_start()
            if self.stopping and all(s.done for s in [*self.supervisors.values(), *self.retiring.values()]):
                return
            offset = time.time() - time.monotonic()
            step = backward_step(clock_offset, offset)
            if step and not self.stopping:
                self._clock_stepped_back(step)
            clock_offset = offset
            now = time.monotonic()
            if now - last_status >= STATUS_EVERY:
                self.write_status()
                last_status = now
            if ping_every and now - last_ping >= ping_every:
                notify("WATCHDOG=1")
                last_ping = now

    def _collect_segments(self, supervisor: CameraSupervisor) -> None:
        if isinstance(supervisor.child, RecordingRun):
            for segment in supervisor.child.closed_segments():
                self.handoff.segment_closed(segment.path, segment.first_frame)

    def _on_signal(self, signum: int) -> None:
        if signum != signal.SIGHUP:
            self._begin_shutdown(signal.Signals(signum).name)
        elif not self.stopping:
            self._reload()

    def _retire_and_start(self) -> None:
        """Forget removed cameras once stopped; start new ones once the clock can be trusted and
        no run of a camera with the same id is still closing its segment."""
        for camera_id in [i for i, s in self.retiring.items() if s.done]:
            del self.retiring[camera_id]
        if self.stopping or not self.pending or not self.clock_wait.ready():
            return
        for camera_id in sorted(self.pending - set(self.retiring)):
            self.pending.discard(camera_id)
            self.supervisors[camera_id].start()

    def _reload(self) -> None:
        """SIGHUP: a valid .env is applied camera by camera; an invalid one changes nothing."""
        self.config_error = reload_with(lambda: plan_reload(self.config, self.reread()), self._apply)
        self.write_status()
        notify_reloaded()

    def _apply(self, plan: ReloadPlan) -> None:
        log_unknown_keys(plan.config.common)
        log_restart_needed("video-recorder", plan.needs_restart)
        if plan.command_changed:
            logger.info("{} changed: every camera starts a new run", ", ".join(plan.command_changed))
        if plan.config.ffmpeg != self.config.ffmpeg:
            self.version = ffmpeg_version(plan.config.ffmpeg)
        if plan.config.alerts != self.config.alerts:
            self.webhook.close()
            self.webhook = WebhookSender.for_settings(plan.config.alerts, "video-recorder")
        self.config = plan.config
        self.syncer.interval = self.config.fsync_interval
        launcher = FfmpegLauncher(self.config, self.layout, self.version, self.handoff)
        settings = supervisor_settings(self.config)
        for camera_id in plan.cameras.removed:
            retired = self.supervisors.pop(camera_id)
            if camera_id in self.pending:   # never started
                self.pending.discard(camera_id)
                continue
            logger.info("camera {} removed from .env: closing its segment and stopping it", camera_id)
            retired.request_stop()
            self.retiring[camera_id] = retired
        for supervisor in self.supervisors.values():
            supervisor.launcher, supervisor.settings = launcher, settings
        for camera in plan.cameras.changed:
            self.supervisors[camera.id].reconfigure(camera)
        for camera in plan.cameras.added:
            self.supervisors[camera.id] = CameraSupervisor(camera, launcher, settings)
            self.pending.add(camera.id)
        logger.info(".env reloaded: {}", plan.cameras.summary())

    def _begin_shutdown(self, why: str) -> None:
        if self.stopping:
            logger.info("{} again; still waiting for FFmpeg to finish its segments", why)
            return
        logger.info("{} received: closing segments and stopping", why)
        notify("STOPPING=1")
        self.stopping = True
        for supervisor in self.supervisors.values():
            supervisor.request_stop()

    def _clock_stepped_back(self, seconds: float) -> None:
        # FFmpeg names segments from the wall clock; a new run directory keeps names apart.
        logger.warning("wall clock stepped back by {:.0f}s; starting new FFmpeg runs so no segment "
                       "can be overwritten", seconds)
        for supervisor in self.supervisors.values():
            supervisor.request_restart(StopReason.CLOCK_STEP)

    def snapshot(self) -> RecorderSnapshot:
        with self._completed_lock:
            completed = {k: dict(v) for k, v in self.completed.items()}
        waiting = self.handoff.waiting()
        cameras = {}
        for camera_id, supervisor in self.supervisors.items():
            facts: dict = {**supervisor.snapshot(), **completed.get(camera_id, {})}
            child = supervisor.child
            if isinstance(child, RecordingRun):
                name = child.current_segment()   # one listing of the run folder for both
                facts.update(current_segment=name, audio=child.audio,
                             media_seconds=round(child.out_time_us / 1e6, 1), **child.stats)
                measured = child.camera_clock(name)
                if measured is not None:
                    self.camera_clocks.setdefault(camera_id, SteadyClock()).add(measured)
            clock = self.camera_clocks[camera_id].shown if camera_id in self.camera_clocks else None
            if clock is not None:
                facts.update(camera_clock_offset=round(clock.offset, 2),
                             camera_clock_at=datetime.fromtimestamp(clock.at, timezone.utc))
            held = waiting.get(camera_id)
            if held is not None:
                facts.update(handoff_waiting=held.items, handoff_waiting_seconds=round(held.oldest_seconds, 1),
                             handoff_error=redact(held.error))
            cameras[str(camera_id)] = CameraReport(name=supervisor.camera.name, url=supervisor.camera.safe_url,
                                                   **facts)
        return RecorderSnapshot(pid=os.getpid(), updated_at=datetime.now(timezone.utc), started_at=self.started_at,
                                stopping=self.stopping, segment_duration=self.config.segment_duration,
                                ffmpeg=self.version.text, cameras=cameras, config_error=self.config_error,
                                clock_wait=self.clock_wait.status(), fsync=self.syncer.report())

    def write_status(self) -> None:
        snapshot = self.latest = self.snapshot()
        publish_report(self.layout.state / STATE_FILE, snapshot, status_line(snapshot),
                       alert_conditions(snapshot, self.config.alerts), self.alerts, self.webhook,
                       alerting=not self.stopping)

    def metrics(self) -> list[Sample]:
        """For the metrics thread: the latest snapshot, which the main thread replaces whole."""
        usage = known_usage(self.layout.root)
        return metric_samples(self.latest, usage.free if usage else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.video_recorder",
                                     description="Record every configured RTSP camera into MP4 segments.")
    add_env_file_argument(parser)
    args = parser.parse_args(argv)
    config = load_config_or_exit(args.env_file, read_recorder_config)
    return run_daemon("video-recorder", "recorder", config.common,
                      lambda: Recorder(config, lambda: reread(args.env_file, read_recorder_config)).run(),
                      segment_seconds=config.segment_duration)


if __name__ == "__main__":
    sys.exit(main())
