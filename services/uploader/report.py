"""What the uploader tells: one frozen snapshot per tick, and everything derived from it.

The state file, the systemd STATUS line, the metrics and the alerts all read the same snapshot,
so they cannot disagree; `status` and `doctor` parse the state file back into these types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum

from services.bucket.abilities import StoreAbilities
from services.common.alerts import AlertSettings
from services.common.metrics import Sample

STATE_FILE = "uploader.json"


class UploaderState(str, Enum):
    RUNNING = "running"
    STOPPING = "stopping"
    CONFIG_PROBLEM = "waiting: S3 configuration problem"


@dataclass(frozen=True)
class Success:
    file: str
    key: str
    at: datetime
    verified_by: str = ""


@dataclass(frozen=True)
class Failure:
    message: str          # already redacted
    at: datetime


@dataclass(frozen=True)
class Clash:
    """Another host wrote the key this host's segment belongs under: one camera id, two hosts."""

    camera_id: int
    key: str
    other_host: str
    at: datetime


@dataclass(frozen=True)
class QueueSnapshot:
    files: int = 0
    bytes: int = 0
    oldest: str | None = None
    oldest_start: datetime | None = None


@dataclass(frozen=True)
class SourceProgress:
    """Source mode: how much of the foreign folders is verified in the bucket, and what is left."""

    folders: tuple[str, ...] = ()
    verified_files: int = 0       # in the index (pruned ones included)
    verified_bytes: int = 0
    pruned_files: int = 0
    queued_files: int = 0         # complete, waiting for or in upload
    queued_bytes: int = 0
    settling_files: int = 0       # still being written, or not yet quiet for SOURCE_STABLE_SECONDS
    settling_bytes: int = 0
    unparsed: tuple[str, ...] = ()   # paths the template does not read (the first 20)
    unparsed_count: int = 0
    first_scan_done: bool = False

    @property
    def fraction(self) -> float:
        """Share of the known bytes verified (1.0 when nothing is known)."""
        total = self.verified_bytes + self.queued_bytes + self.settling_bytes
        return self.verified_bytes / total if total else 1.0

    def lines(self) -> list[str]:
        """`status` in source mode: how far the backup of the foreign folders is."""
        lines = [f"source folders  {', '.join(self.folders)}",
                 f"backed up       {self.verified_files} files verified ({self.fraction:.0%} of the bytes); "
                 f"{self.queued_files} queued, {self.settling_files} still being written"
                 + ("" if self.first_scan_done else "; first scan running")]
        if self.pruned_files:
            lines.append(f"pruned          {self.pruned_files} verified files deleted from the source (SOURCE_PRUNE)")
        if self.unparsed_count:
            lines.append(f"not understood  {self.unparsed_count} files the template does not read, e.g. "
                         + ", ".join(self.unparsed[:3]))
        return lines


@dataclass(frozen=True)
class Deletions:
    retention: int = 0
    disk_guard: int = 0
    not_uploaded: int = 0


@dataclass(frozen=True)
class DiskSnapshot:
    free_bytes: int | None = None
    min_free_bytes: int = 0

    @property
    def low(self) -> bool:
        return self.free_bytes is not None and self.free_bytes < self.min_free_bytes


@dataclass(frozen=True)
class UploaderSnapshot:
    pid: int
    updated_at: datetime
    state: UploaderState = UploaderState.RUNNING
    bucket: str = ""
    endpoint: str = ""
    prefix: str = ""
    queue: QueueSnapshot = QueueSnapshot()
    in_flight: tuple[str, ...] = ()
    last_success: Success | None = None
    last_error: Failure | None = None
    config_error: str | None = None
    files_uploaded: int = 0
    files_already_present: int = 0
    bytes_uploaded_total: int = 0
    failures: int = 0
    last_upload_latency_seconds: float = 0.0
    deleted: Deletions = Deletions()
    skipped_unknown_files: tuple[str, ...] = ()
    disk: DiskSnapshot = field(default_factory=DiskSnapshot)
    returned_for_upload: int = 0   # verified copies the bucket no longer held, uploaded again
    host_id: str = ""
    conditional_writes: bool | None = None   # does the server refuse to overwrite? None: not probed yet
    clashes: tuple[Clash, ...] = ()          # the latest per camera
    abilities: StoreAbilities | None = None  # what the store does of the features used; None: not probed yet
    env_error: str | None = None   # the last reload's .env was rejected: running on the old settings
    source: SourceProgress | None = None   # source mode (SOURCE_DIRS) only

    def clash_lines(self) -> list[str]:
        return [f"camera {c.camera_id} is written by two hosts: this one ({self.host_id}) and {c.other_host} "
                f"(s3 key {c.key}); give each camera id to one host, or a HOST_ID-specific S3_PREFIX"
                for c in self.clashes]

    @property
    def failing(self) -> bool:
        """Blocked by configuration, or segments waiting and the latest attempt failed."""
        if self.config_error:
            return True
        newer_error = self.last_error is not None and (
            self.last_success is None or self.last_error.at > self.last_success.at)
        return bool(self.queue.files) and newer_error


@dataclass
class Counters:
    """The uploader's running totals, owned by the scheduler's thread; snapshots copy them."""

    files_uploaded: int = 0
    files_already_present: int = 0
    bytes_uploaded: int = 0
    failures: int = 0
    last_success: Success | None = None
    last_error: Failure | None = None
    last_latency: float = 0.0
    deleted: Deletions = Deletions()
    returned: int = 0            # copies sent back to completed/: the bucket no longer held them
    clashes: dict[int, Clash] = field(default_factory=dict)

    def error(self, message: str) -> None:
        self.failures += 1
        self.last_error = Failure(message, datetime.now(timezone.utc))

    def success(self, file: str, key: str, verified_by: str, uploaded_bytes: int) -> None:
        self.files_uploaded += 1 if uploaded_bytes else 0
        self.files_already_present += 0 if uploaded_bytes else 1
        self.bytes_uploaded += uploaded_bytes
        self.last_success = Success(file, key, datetime.now(timezone.utc), verified_by)

    def clash(self, clash: Clash | None) -> None:
        if clash is not None:
            self.clashes[clash.camera_id] = clash


def status_line(snapshot: UploaderSnapshot) -> str:
    """systemd's STATUS= text (`systemctl status s3-uploader`)."""
    text = (f"{snapshot.queue.files} queued, {len(snapshot.in_flight)} uploading, "
            f"{snapshot.files_uploaded} uploaded")
    text += f"; .env rejected on reload, old settings kept: {snapshot.env_error}" if snapshot.env_error else ""
    return text + (f"; {snapshot.config_error}" if snapshot.config_error else "")


def alert_conditions(snapshot: UploaderSnapshot, settings: AlertSettings) -> list[tuple[str, bool, str, float]]:
    """(incident key, bad now, message, how long it must last) for the AlertTracker."""
    reason = snapshot.config_error or (snapshot.last_error.message if snapshot.last_error else "")
    disk = snapshot.disk
    return [
        ("uploads", snapshot.failing, f"uploads to s3://{snapshot.bucket} are failing: {reason}; "
                                      f"{snapshot.queue.files} segments waiting", settings.upload_failing_after),
        ("clash", bool(snapshot.clashes), "; ".join(snapshot.clash_lines()), 0.0),
        ("disk", disk.low, f"disk low: {(disk.free_bytes or 0) // 2**20} MB free, "
                           f"minimum {disk.min_free_bytes // 2**20} MB", settings.disk_low_after),
    ]


def metric_samples(snapshot: UploaderSnapshot) -> list[Sample]:
    return [
        Sample("s3_uploader_queue_files", snapshot.queue.files, "segments waiting in completed/"),
        Sample("s3_uploader_queue_bytes", snapshot.queue.bytes, "bytes waiting in completed/"),
        Sample("s3_uploader_in_flight", len(snapshot.in_flight), "uploads running now"),
        Sample("s3_uploader_files_uploaded_total", snapshot.files_uploaded, "segments uploaded and verified",
               "counter"),
        Sample("s3_uploader_bytes_uploaded_total", snapshot.bytes_uploaded_total, "bytes uploaded", "counter"),
        Sample("s3_uploader_failures_total", snapshot.failures, "failed upload attempts", "counter"),
        Sample("s3_uploader_config_error", bool(snapshot.config_error),
               "1 while uploads are blocked by configuration"),
        Sample("s3_uploader_last_upload_latency_seconds", snapshot.last_upload_latency_seconds,
               "segment closed (file mtime) to verified in the bucket, last upload"),
        Sample("s3_uploader_camera_clashes", len(snapshot.clashes), "camera ids another host also writes"),
    ] + ([Sample("s3_uploader_disk_free_bytes", snapshot.disk.free_bytes, "free bytes on the DATA_DIR filesystem")]
         if snapshot.disk.free_bytes is not None else [])   # None: not read yet, or the file system reports no size
