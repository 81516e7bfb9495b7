"""The recorder's side effects: run directories, spawning FFmpeg/ffprobe, orphan recovery.

Each FFmpeg process writes into its own run directory
`recordings/camera_<id>/run-<UTC start>-<random>/`, so two runs (two restarts in one second,
a clock stepped back) can never write the same path.
"""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Callable, NamedTuple

from loguru import logger

from services.common.data_layout import DataLayout
from services.recorder.camera_clock import ClockReading, FragmentTimes, reading
from services.recorder.config import CameraConfig, RecorderConfig
from services.recorder.ffmpeg_command import (
    FFMPEG_ENV_TZ,
    FfmpegVersion,
    StreamInfo,
    build_probe_command,
    build_record_command,
    parse_probe_output,
    parse_version,
)
from services.recorder.ffmpeg_process import ManagedProcess
from services.recorder.handoff import REJECTED_DIR, HandoffWorker
from services.recorder.supervisor import longest_silence

PID_FILE = "ffmpeg.pid"
RUN_PREFIX = "run-"
HOLD_SECONDS = 10.0   # a camera that sends in bursts may never settle the run clock: do not wait longer


def ffmpeg_version(ffmpeg: str) -> FfmpegVersion:
    output = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, timeout=20).stdout
    return parse_version(output)


class ClosedSegment(NamedTuple):
    path: Path
    first_frame: datetime | None   # host clock; None before FFmpeg reported any progress


def _listed(line: bytes) -> tuple[str, float | None, float | None]:
    """(file name, media start, media end) of one `segments.csv` line."""
    fields = line.decode().split(",")
    try:
        return fields[0], float(fields[1]), float(fields[2])
    except (IndexError, ValueError):
        return fields[0], None, None


def _read_at(handle: BinaryIO) -> Callable[[int, int], bytes]:
    def read(offset: int, length: int) -> bytes:
        handle.seek(offset)
        return handle.read(length)
    return read


class RecordingRun(ManagedProcess):
    """An FFmpeg process plus the run directory and segment list it writes."""

    def __init__(self, argv: tuple[str, ...], label: str, run_dir: Path, segment_list: Path, audio: str):
        self.run_dir = run_dir
        self.segment_list = segment_list
        self.audio = audio
        self._list_offset = 0
        self.last_listed: str | None = None
        self._listed_end: float | None = None   # media end of the last listed segment
        self._held: list[tuple[str, float | None, float]] = []   # (name, media start, monotonic when listed)
        self._fragments: tuple[str, FragmentTimes] | None = None   # the open segment's prft boxes
        super().__init__(argv, label, env=dict(os.environ, TZ=FFMPEG_ENV_TZ), progress=True)
        (run_dir / PID_FILE).write_text(f"{self.pid}\n")

    def closed_segments(self, final: bool = False) -> list[ClosedSegment]:
        """Segments FFmpeg has finished (it lists each after its trailer), with the host time of
        each one's first frame. A segment closed before the run clock settled (the first of a
        run, closed within the probing burst on a loaded host) waits for it, at most
        HOLD_SECONDS; `final` (the run has ended) releases every one with the best estimate."""
        try:
            with open(self.segment_list, "rb") as handle:
                handle.seek(self._list_offset)
                data = handle.read()
        except FileNotFoundError:
            data = b""
        complete = data[: data.rfind(b"\n") + 1]
        self._list_offset += len(complete)
        for name, start, end in (_listed(line) for line in complete.splitlines() if line):
            self.last_listed, self._listed_end = name, end
            self._held.append((name, start, time.monotonic()))
        if not self._held or not (final or self.run_clock.settled
                                  or time.monotonic() - self._held[0][2] >= HOLD_SECONDS):
            return []
        closed = [ClosedSegment(self.run_dir / name, self._first_frame(start)) for name, start, _ in self._held]
        self._held = []
        return closed

    def _first_frame(self, start: float | None) -> datetime | None:
        return self.run_clock.first_frame(start, self.frame_interval) if start is not None else None

    def open_segment(self) -> ClosedSegment | None:
        """The file FFmpeg had open when it ended without closing it (kill -9, a crash): it
        starts where the last listed segment ended, or at the start of the run."""
        name = self.current_segment()
        start = self._open_start(name)
        return None if name is None or start is None else ClosedSegment(self.run_dir / name, self._first_frame(start))

    def _open_start(self, name: str | None) -> float | None:
        """Run media second where the unlisted file `name` starts: where the last listed segment
        ended, or at the start of the run (None when it is no such file, or that end is unknown)."""
        if name is None or name == self.last_listed:
            return None
        return self._listed_end if self.last_listed is not None else 0.0

    def camera_clock(self, name: str | None) -> ClockReading | None:
        """The camera's clock against the host's, from the newest whole fragment of `name`, the
        open segment (`current_segment`; None: no sender report yet, or nothing live to measure on)."""
        clock, start = self.run_clock, self._open_start(name)
        if name is None or start is None or not clock.settled or clock.offset is None:
            return None
        try:   # FFmpeg lists a segment before it opens the next: a line not read yet means a new file
            if self.segment_list.stat().st_size != self._list_offset:
                return None
        except FileNotFoundError:
            pass
        if self._fragments is None or self._fragments[0] != name:
            self._fragments = (name, FragmentTimes())
        try:
            with open(self.run_dir / name, "rb") as handle:
                self._fragments[1].update(_read_at(handle))
        except OSError:
            return None
        found = self._fragments[1].latest(start)
        if found is None:
            return None
        wall, media, next_media = found
        arrived = clock.first_frame(media, self.frame_interval)
        if arrived is None or clock.offset + media < (clock.steady_since or 0.0):
            return None   # written during the probing burst
        return reading(wall, arrived.timestamp(), clock.offset + next_media)

    def current_segment(self) -> str | None:
        """The newest file FFmpeg has open, if any."""
        files = sorted(p.name for p in self.run_dir.glob("*.mp4"))
        return files[-1] if files else None


class FfmpegLauncher:
    """Implements the supervisor's Launcher protocol with real processes."""

    def __init__(self, config: RecorderConfig, layout: DataLayout, version: FfmpegVersion,
                 handoff: HandoffWorker):
        self.config = config
        self.layout = layout
        self.version = version
        self.handoff = handoff

    def probe(self, camera: CameraConfig) -> ManagedProcess:
        argv = build_probe_command(self.config.ffprobe, camera, self.version, self.config.stall_timeout)
        return ManagedProcess(argv, f"{camera.label} probe")

    def stream_info(self, child: ManagedProcess) -> StreamInfo:  # type: ignore[override]
        return parse_probe_output(child.stdout_text())

    def record(self, camera: CameraConfig, stream: StreamInfo) -> RecordingRun:
        camera_dir = self.layout.recordings / f"camera_{camera.id}"
        camera_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        run_dir = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{stamp}-", dir=camera_dir))
        plan = build_record_command(
            self.config.ffmpeg, camera, stream, run_dir,
            version=self.version,
            segment_duration=self.config.segment_duration,
            video_codec=self.config.video_codec,
            # FFmpeg's own socket timeout is a backstop behind our stall detection.
            socket_timeout_s=int(longest_silence(self.config.stall_timeout)) + 5,
        )
        if plan.audio == "aac" and stream.audio_codec:
            logger.info("{}: audio {} is not allowed in MP4; transcoding it to AAC", camera.label,
                        stream.audio_codec)
        logger.info("{}: recording {} into {}", camera.label, camera.safe_url, run_dir)
        return RecordingRun(plan.argv, camera.label, run_dir, plan.segment_list, plan.audio)

    def run_finished(self, child: RecordingRun) -> None:  # type: ignore[override]
        for segment in child.closed_segments(final=True):
            self.handoff.segment_closed(segment.path, segment.first_frame)
        left = child.open_segment()
        self.handoff.run_finished(child.run_dir, {left.path.name: left.first_frame} if left and left.first_frame else {})


def _stop_orphan(run_dir: Path, timeout: float) -> None:
    """An FFmpeg from an earlier daemon may still write here (no systemd to kill it)."""
    try:
        pid = int((run_dir / PID_FILE).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if str(run_dir).encode() not in cmdline:
        return  # the pid was reused by something else
    logger.warning("stopping leftover FFmpeg pid {} still writing {}", pid, run_dir)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)


def leftover_runs(layout: DataLayout, stop_timeout: float) -> list[Path]:
    """Run directories left by an earlier recorder (crash, kill -9, power loss)."""
    runs = []
    for camera_dir in sorted(layout.recordings.iterdir()):
        if camera_dir.name == REJECTED_DIR:
            continue
        if not camera_dir.is_dir() or not camera_dir.name.startswith("camera_"):
            logger.warning("skipping unknown entry {} in recordings/", camera_dir)
            continue
        for run_dir in sorted(camera_dir.iterdir()):
            if run_dir.is_dir() and run_dir.name.startswith(RUN_PREFIX):
                _stop_orphan(run_dir, stop_timeout)
                runs.append(run_dir)
            else:
                logger.warning("skipping unknown entry {} in recordings/", run_dir)
    return runs
