"""What the recorder tells: one frozen snapshot per tick, and everything derived from it.

The state file, the systemd STATUS line, the metrics and the alerts read the same snapshot;
`status` and `doctor` parse the state file back into these types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.common.alerts import AlertSettings
from services.common.metrics import Sample
from services.recorder.durability import FsyncReport
from services.recorder.states import UP_STATES, CameraState

STATE_FILE = "recorder.json"
# A closed segment should be in completed/ within 2 segment lengths, plus this.
HANDOFF_MARGIN = 10.0


def handoff_limit(segment_duration: int) -> float:
    """Seconds a closed segment may wait for its hand-off before the camera counts as stuck."""
    return 2 * segment_duration + HANDOFF_MARGIN


@dataclass(frozen=True)
class CameraReport:
    name: str
    url: str                               # masked
    state: CameraState
    reason: str = ""
    since_seconds: float = 0.0
    pid: int | None = None
    restarts: int = 0
    consecutive_failures: int = 0
    retry_in_seconds: float | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    audio: str | None = None               # what the recording does with it: copy, aac, none
    segments: int = 0                      # handed to completed/ by this run of the daemon
    bytes: int = 0
    last_segment: str | None = None
    last_segment_at: datetime | None = None
    current_segment: str | None = None
    media_seconds: float = 0.0             # of the current run
    fps: str | None = None                 # FFmpeg's progress report, as it prints it
    bitrate: str | None = None
    speed: str | None = None
    frame: str | None = None
    total_size: str | None = None
    handoff_waiting: int = 0               # closed segments not in completed/ yet
    handoff_waiting_seconds: float = 0.0   # how long the oldest of them has waited
    handoff_error: str = ""                # the last failure while they keep failing
    camera_clock_offset: float | None = None   # camera clock minus host clock (s); None: unknown, no RTCP SR
    camera_clock_at: datetime | None = None    # when that was last measured

    @property
    def recording(self) -> bool:
        return self.state in UP_STATES


@dataclass(frozen=True)
class RecorderSnapshot:
    pid: int
    updated_at: datetime
    started_at: datetime | None = None
    service: str = "video-recorder"
    stopping: bool = False
    segment_duration: int = 600
    ffmpeg: str = ""
    cameras: dict[str, CameraReport] = field(default_factory=dict)
    fsync: FsyncReport | None = None       # None when FSYNC_INTERVAL is 0
    config_error: str | None = None        # the last reload's .env was rejected: running on the old settings
    clock_wait: str | None = None          # cameras wait for time synchronisation

    def handoff_stuck(self, camera: CameraReport) -> bool:
        """Have this camera's closed segments waited longer than they should?"""
        return camera.handoff_waiting_seconds > handoff_limit(self.segment_duration)

    def stuck_handoffs(self) -> list[str]:
        """One line per camera whose closed segments wait longer than they should."""
        return [f"camera {camera_id}: {c.handoff_waiting} closed segment(s) not in completed/ for "
                f"{c.handoff_waiting_seconds:.0f}s" + (f" ({c.handoff_error})" if c.handoff_error else "")
                for camera_id, c in self.cameras.items() if self.handoff_stuck(c)]


def status_line(snapshot: RecorderSnapshot) -> str:
    """systemd's STATUS= text (`systemctl status video-recorder`)."""
    recording = sum(c.recording for c in snapshot.cameras.values())
    text = f"{recording}/{len(snapshot.cameras)} cameras recording"
    if snapshot.clock_wait:
        text += f"; {snapshot.clock_wait}"
    if snapshot.config_error:
        text += f"; .env rejected on reload, old settings kept: {snapshot.config_error}"
    stuck = [f"camera {camera_id} for {c.handoff_waiting_seconds:.0f}s" for camera_id, c in snapshot.cameras.items()
             if snapshot.handoff_stuck(c)]
    return text + (f"; hand-off stuck: {', '.join(stuck)}" if stuck else "")


def alert_conditions(snapshot: RecorderSnapshot, settings: AlertSettings) -> list[tuple[str, bool, str, float]]:
    """(incident key, bad now, message, how long it must last) for the AlertTracker."""
    conditions = []
    for camera_id, c in snapshot.cameras.items():
        conditions.append((f"camera-{camera_id}", not c.recording,
                           f"camera {camera_id} ({c.name}) is not recording: {c.state.value}, {c.reason}",
                           settings.camera_down_after))
        conditions.append((f"handoff-{camera_id}", snapshot.handoff_stuck(c),
                           f"camera {camera_id} ({c.name}): {c.handoff_waiting} closed segment(s) not handed to "
                           f"the uploader for {c.handoff_waiting_seconds:.0f}s: {c.handoff_error or 'no error yet'}",
                           0.0))
    return conditions


def metric_samples(snapshot: RecorderSnapshot, disk_free: int | None) -> list[Sample]:
    samples = []
    for camera_id, c in snapshot.cameras.items():
        labels = {"camera": camera_id, "name": c.name}
        samples += [
            Sample("video_recorder_camera_recording", c.recording, "1 while the camera is being recorded",
                   labels=labels),
            Sample("video_recorder_camera_restarts_total", c.restarts, "FFmpeg restarts", "counter", labels),
            Sample("video_recorder_segments_total", c.segments, "segments handed to completed/", "counter", labels),
            Sample("video_recorder_segment_bytes_total", c.bytes, "bytes of segments handed to completed/",
                   "counter", labels),
            Sample("video_recorder_handoff_waiting_seconds", c.handoff_waiting_seconds,
                   "age of the oldest closed segment not yet in completed/", labels=labels),
        ]
    if disk_free is not None:   # None: the file system reports no size
        samples.append(Sample("video_recorder_disk_free_bytes", disk_free, "free bytes on the DATA_DIR filesystem"))
    if snapshot.fsync:
        samples += [
            Sample("video_recorder_fsync_rounds_total", snapshot.fsync.rounds, "rounds of fsyncs of the open segments",
                   "counter"),
            Sample("video_recorder_fsync_skipped_total", snapshot.fsync.skipped,
                   "fsync rounds skipped because the previous one still ran (a slow disk)", "counter"),
            Sample("video_recorder_fsync_errors_total", snapshot.fsync.errors, "open segments whose fsync failed",
                   "counter"),
            Sample("video_recorder_fsync_round_max_seconds", snapshot.fsync.round_max_ms / 1000,
                   "longest fsync round of the last minute"),
        ]
    return samples
