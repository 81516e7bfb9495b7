"""`status`: one screen built from the state files, the folders and the disk (pure core)."""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Iterable

from services.common.config import EnvReader
from services.common.data_layout import DataLayout
from services.common.filesystem import known_usage
from services.common.state_file import pid_alive, read_snapshot, to_jsonable
from services.recorder.camera_clock import describe, warning
from services.recorder.report import STATE_FILE as RECORDER_STATE_FILE
from services.recorder.report import RecorderSnapshot
from services.uploader.report import STATE_FILE as UPLOADER_STATE_FILE
from services.uploader.report import UploaderSnapshot

STALE_AFTER = 30.0  # seconds without a state-file update before a daemon counts as not running


@dataclass(frozen=True)
class Thresholds:
    backlog_max_age: float = 3600.0   # oldest segment waiting for upload
    min_free_bytes: int = 2 * 1024**3
    camera_clock_warn: float = 10.0   # seconds a camera's clock may be off the host's


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)   # shown, but status still exits 0
    data: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(count) < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def service_state(snapshot: RecorderSnapshot | UploaderSnapshot | None, now: float) -> tuple[bool, str]:
    """Is the daemon that wrote `snapshot` alive, and is its snapshot fresh?"""
    if snapshot is None:
        return False, "no state file (never started?)"
    age = now - snapshot.updated_at.timestamp()
    if not pid_alive(snapshot.pid):
        return False, f"not running (last update {human_age(age)})"
    if age > STALE_AFTER:
        return False, f"pid {snapshot.pid} alive but its state is stale ({human_age(age)})"
    return True, f"running, pid {snapshot.pid}"


def backlog(folder: Path) -> dict:
    stats = []
    for path in folder.glob("camera_*.mp4"):
        try:   # the uploader moves files out and retention deletes them while this looks
            stat = path.stat()
        except FileNotFoundError:
            continue
        if S_ISREG(stat.st_mode):
            stats.append(stat)
    oldest = min((s.st_mtime for s in stats), default=None)
    return {"files": len(stats), "bytes": sum(s.st_size for s in stats), "oldest_mtime": oldest}


def build_report(layout: DataLayout, camera_ids: list[int], thresholds: Thresholds,
                 now: float | None = None, source_mode: bool = False) -> Report:
    """`source_mode`: another recorder writes the footage (SOURCE_DIRS); this one is not expected."""
    now = time.time() if now is None else now
    report = Report()
    recorder = read_snapshot(layout.state / RECORDER_STATE_FILE, RecorderSnapshot)
    uploader = read_snapshot(layout.state / UPLOADER_STATE_FILE, UploaderSnapshot)
    rec_ok, rec_text = service_state(recorder, now)
    up_ok, up_text = service_state(uploader, now)
    report.lines += [f"video-recorder  {'OK  ' if rec_ok else 'DOWN'}  {rec_text}",
                     f"s3-uploader     {'OK  ' if up_ok else 'DOWN'}  {up_text}"]
    if not rec_ok and not source_mode:
        report.problems.append(f"video-recorder {rec_text}")
    if not up_ok:
        report.problems.append(f"s3-uploader {up_text}")

    report.lines.append("")
    report.lines.append(f"{'camera':<22} {'state':<10} {'fps':>5} {'kbit/s':>8} {'restarts':>8}  "
                        f"{'last segment':<12}  camera clock")
    cameras = recorder.cameras if recorder else {}
    report.data["cameras"] = {}
    for camera_id in camera_ids:
        entry = cameras.get(str(camera_id))
        state = ("unknown" if entry is None else entry.state.value) if rec_ok else "down"
        age = now - entry.last_segment_at.timestamp() if entry and entry.last_segment_at else None
        bitrate = (entry.bitrate or "").replace("kbits/s", "").strip() if entry else ""
        label = f"{camera_id} {entry.name if entry else ''}".strip()
        report.lines.append(f"{label[:22]:<22} {state:<10} {(entry.fps if entry else None) or '-':>5} "
                            f"{bitrate or '-':>8} {entry.restarts if entry else 0:>8}  {human_age(age):<12}  "
                            f"{describe(entry.camera_clock_offset if entry else None)}")
        off = warning(entry.camera_clock_offset, thresholds.camera_clock_warn) if entry else None
        if off:
            report.warnings.append(f"camera {camera_id}: {off}")
        report.data["cameras"][str(camera_id)] = {**(to_jsonable(entry) if entry else {}), "state": state,
                                                  "last_segment_age": age}
        if state != "recording":
            reason = entry.reason if entry else ""
            report.problems.append(f"camera {camera_id} is {state}" + (f" ({reason})" if reason else ""))
    if rec_ok and recorder:
        report.problems += recorder.stuck_handoffs()
        if recorder.clock_wait:
            report.problems.append(f"video-recorder {recorder.clock_wait}")
        if recorder.config_error:
            report.problems.append(f"video-recorder rejected .env on reload (still on the old settings): "
                                   f"{recorder.config_error}")

    queue = backlog(layout.completed)
    oldest_age = now - queue["oldest_mtime"] if queue["oldest_mtime"] else None
    report.lines.append("")
    report.lines.append(f"upload backlog  {queue['files']} files, {human_bytes(queue['bytes'])}, "
                        f"oldest {human_age(oldest_age)}")
    last_success = uploader.last_success if uploader else None
    report.lines.append(f"last upload     {human_age(now - last_success.at.timestamp() if last_success else None)}")
    if uploader and uploader.last_error:
        report.lines.append(f"last error      {uploader.last_error.message}")
    if uploader and uploader.source:
        report.lines += uploader.source.lines()
        report.data["source"] = to_jsonable(uploader.source)
    if up_ok and uploader and uploader.config_error:
        report.problems.append(f"uploads blocked: {uploader.config_error}")
    if up_ok and uploader and uploader.env_error:
        report.problems.append(f"s3-uploader rejected .env on reload (still on the old settings): {uploader.env_error}")
    if uploader:   # stays a problem until the uploader restarts: someone must fix the camera ids
        report.problems += uploader.clash_lines()
    if oldest_age is not None and oldest_age > thresholds.backlog_max_age:
        report.problems.append(f"upload backlog: oldest segment waiting {human_age(oldest_age)}")

    disk = known_usage(layout.existing_root())   # DATA_DIR itself may not exist yet
    report.lines.append(f"disk            {human_bytes(disk.free)} free of {human_bytes(disk.total)}" if disk else
                        "disk            size unknown (the file system reports none)")
    if disk and disk.free < thresholds.min_free_bytes:
        report.problems.append(f"disk low: {human_bytes(disk.free)} free")
    if disk is None:
        report.warnings.append("disk size unknown: the file system reports none, so free space is not watched "
                               "and the uploader's disk guard is off")
    kept = backlog(layout.uploaded)
    report.lines.append(f"kept locally    {kept['files']} uploaded files, {human_bytes(kept['bytes'])}")

    report.data.update(recorder_running=rec_ok, uploader_running=up_ok, recorder_status=rec_text,
                       uploader_status=up_text, backlog=queue, backlog_oldest_age=oldest_age, kept=kept,
                       last_upload=to_jsonable(last_success),
                       last_error=to_jsonable(uploader.last_error) if uploader else None,
                       disk_free=disk.free if disk else None, disk_total=disk.total if disk else None,
                       problems=report.problems,
                       warnings=report.warnings)
    report.lines.append("")
    if report.warnings:
        report.lines.append("WARNINGS:\n  " + "\n  ".join(report.warnings))
    report.lines.append("OK" if not report.problems else "PROBLEMS:\n  " + "\n  ".join(report.problems))
    return report


# ----- the command --------------------------------------------------------------------------------
NAME = "status"
HELP = "services, cameras, upload backlog and disk at a glance"
EXIT_CODES = {0: "all well (WARNINGS, such as a camera clock off, allowed)", 1: "a problem (listed under PROBLEMS)"}


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    camera_ids: tuple[int, ...]
    thresholds: Thresholds
    source_mode: bool = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def read_thresholds(env: EnvReader) -> Thresholds:
    """STATUS_BACKLOG_MAX_MINUTES, MIN_FREE_DISK_MB and CAMERA_CLOCK_WARN_SECONDS (also the viewer's)."""
    from services.common.settings import CAMERA_CLOCK_WARN_SECONDS, MIN_FREE_DISK_MB, STATUS_BACKLOG_MAX_MINUTES

    return Thresholds(backlog_max_age=env.get(STATUS_BACKLOG_MAX_MINUTES) * 60.0,
                      min_free_bytes=env.get(MIN_FREE_DISK_MB) * 1024 * 1024,
                      camera_clock_warn=env.get(CAMERA_CLOCK_WARN_SECONDS))


def unconfigured_camera_ids(layout: DataLayout, named: Iterable[int]) -> list[int]:
    """The cameras to report from a .env without camera URLs (the uploader's, which names them by
    CAMERA_<N>_NAME only): the named ones and those the recorder's state file lists."""
    recorder = read_snapshot(layout.state / RECORDER_STATE_FILE, RecorderSnapshot)
    listed = {int(camera_id) for camera_id in (recorder.cameras if recorder else {}) if camera_id.isdigit()}
    return sorted(set(named) | listed)


def read_settings(env: EnvReader) -> Settings:
    """The recorder's cameras and DATA_DIR (no bucket settings: status works without them)."""
    from services.common.config import read_common
    from services.common.settings import SOURCE_DIRS
    from services.recorder.config import read_recorder_config

    thresholds = read_thresholds(env)
    if env.get(SOURCE_DIRS):   # another recorder writes: no cameras of ours to read
        common = read_common(env)
        env.check()
        return Settings(common.data_dir, (), thresholds, source_mode=True)
    config = read_recorder_config(env)
    env.check()
    return Settings(config.common.data_dir, tuple(c.id for c in config.cameras), thresholds)


def run(args: argparse.Namespace, settings: Settings) -> int:
    report = build_report(DataLayout(settings.data_dir), list(settings.camera_ids), settings.thresholds,
                          source_mode=settings.source_mode)
    print(json.dumps(report.data, indent=2, default=str) if args.json else "\n".join(report.lines))
    return report.exit_code
