"""`doctor`: check a setup before and after install; each check says ok, warn or fail, with a fix."""
from __future__ import annotations

import argparse
import json
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from services.commands.checks import Check, summary, summary_data
from services.commands.doctor_host import check_clock, check_proc_privacy, check_secrets_apart, read_mountinfo
from services.commands.status import human_bytes
from services.common.clock import gather
from services.common.config import ConfigError, EnvReader, unknown_key_line
from services.common.data_layout import DataLayout, MoveMethod
from services.common.filesystem import SIZE_HINT, known_usage, probe_filesystem, too_small_for
from services.recorder.camera_clock import describe, warning
from services.recorder.clock_wait import floor_paths
from services.recorder.config import CameraConfig, RecorderConfig, read_recorder_config
from services.recorder.ffmpeg_command import FfmpegVersion, audio_plan, build_probe_command, parse_probe_output
from services.recorder.runs import ffmpeg_version

UNIT_DIR = Path("/etc/systemd/system")
UNITS = ("video-recorder.service", "s3-uploader.service")
PROBE_TIMEOUT = 20


def check_env_file(path: Path | None) -> list[Check]:
    if path is None or not path.is_file():
        return [Check("warn", "env file", "no .env file; using the environment only",
                      "copy .env.example to .env (or pass --env-file)")]
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o004:
        return [Check("fail", "env file", f"{path} is readable by every user (mode {mode:o}); it holds passwords",
                      f"chmod 600 {path}")]
    if mode & 0o040:
        return [Check("warn", "env file", f"{path} is group-readable (mode {mode:o})", f"chmod 600 {path}")]
    return [Check("ok", "env file", f"{path} (mode {mode:o})")]


def check_unknown_keys(env: EnvReader) -> list[Check]:
    """A key of the env file no setting declares is ignored by the daemons: a typo, most likely."""
    from services.common.settings import nearest

    guesses = {key: nearest(key) for key in env.unknown_keys()}
    return [Check("fail", "configuration", unknown_key_line(key),
                  f"rename it to {guess} in .env" if guess else "remove it from .env")
            for key, guess in guesses.items()]


def check_config(env: EnvReader, read: Callable[[EnvReader], object]) -> tuple[object | None, list[Check]]:
    unknown = check_unknown_keys(env)
    try:
        config = read(env)
    except ConfigError as exc:
        return None, unknown + [Check("fail", "configuration", str(issue), "edit the key in .env")
                                for issue in exc.issues]
    valid = "all keys valid" if not unknown else "every known key valid"
    return config, unknown + [Check("ok", "configuration", valid)]


def check_ffmpeg(config: RecorderConfig) -> tuple[Check, FfmpegVersion | None]:
    """The check, and the version the camera probes need (None when FFmpeg does not run)."""
    try:
        version = ffmpeg_version(config.ffmpeg)
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("fail", "ffmpeg", f"cannot run {config.ffmpeg}: {exc}", "apt-get install ffmpeg"), None
    if version.major < 4:
        return Check("warn", "ffmpeg", f"{version.text} is older than 4.4", "upgrade FFmpeg"), version
    return Check("ok", "ffmpeg", version.text), version


def probe_camera(config: RecorderConfig, camera: CameraConfig, version: FfmpegVersion) -> Check:
    argv = build_probe_command(config.ffprobe, camera, version, min(config.stall_timeout, PROBE_TIMEOUT))
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        return Check("fail", camera.label, f"{camera.safe_url}: no answer in {PROBE_TIMEOUT}s",
                     "check the camera's address, port and that RTSP is enabled")
    stream = parse_probe_output(out.stdout)
    if out.returncode != 0 or not stream.video_codec:
        reason = (out.stderr.strip().splitlines() or ["no video stream"])[-1].replace(f"{camera.url}: ", "")
        hint = ("check user and password in the URL" if "401" in reason or "nauthorized" in reason
                else "check the address and path; try the URL in VLC")
        return Check("fail", camera.label, f"{camera.safe_url}: {reason}", hint)
    plan = audio_plan(camera.audio, stream.audio_codec)
    audio = {"copy": f"audio {stream.audio_codec} (copied)", "none": "no audio recorded",
             "aac": f"audio {stream.audio_codec} (transcoded to AAC)"}[plan]
    return Check("ok", camera.label, f"{camera.safe_url}: video {stream.video_codec}, {audio}")


def check_cameras(config: RecorderConfig, version: FfmpegVersion) -> list[Check]:
    with ThreadPoolExecutor(max_workers=min(8, len(config.cameras))) as pool:
        return list(pool.map(lambda camera: probe_camera(config, camera, version), config.cameras))


def check_disk(layout: DataLayout, min_free_bytes: int) -> Check:
    usage = known_usage(layout.existing_root())   # DATA_DIR itself may not exist yet
    if usage is None:
        return Check("warn", "disk", f"the file system at {layout.root} reports no size (a FUSE driver such as "
                     "fusefat): free space is not watched and the disk guard is off",
                     "use ext4 or exFAT for DATA_DIR, or watch the disk yourself")
    detail = f"{human_bytes(usage.free)} free of {human_bytes(usage.total)} at {layout.root}"
    if usage.free < min_free_bytes:
        return Check("warn", "disk", detail, "free space or lower LOCAL_RETENTION_HOURS")
    return Check("ok", "disk", detail)


def check_filesystem(layout: DataLayout, segment_seconds: int) -> Check:
    """Links, moves, fsync and the largest file on the file system segments are written to."""
    folder = next((f for f in (layout.completed, layout.root) if f.is_dir()), None)
    if folder is None:
        return Check("warn", "file system", f"{layout.root} does not exist yet", "start the recorder once")
    found = probe_filesystem(folder)
    where = f"{found.fstype} at {found.mount_point}"
    if found.problem or found.move is None:
        return Check("fail", "file system", f"{where}: {found.problem}",
                     "point DATA_DIR at a writable local disk (ext4, exFAT, FAT32, NTFS, NFS or SMB)")
    too_small = too_small_for(found.max_file_bytes, segment_seconds, where)
    if too_small:
        return Check("fail", "file system", too_small, SIZE_HINT)
    detail = f"{where}: moves by {found.move.value}, fsync works"
    if found.move is MoveMethod.CHECKED_RENAME:
        return Check("warn", "file system", detail + " (no atomic no-replace rename: safe while one recorder and "
                     "one uploader use this DATA_DIR, as their locks ensure)", "prefer ext4 or the kernel's exFAT driver")
    return Check("ok", "file system", detail)


def check_hosts(layout: DataLayout) -> list[Check]:
    """A camera id that another host also writes to the bucket (seen by this host's uploader)."""
    from services.common.state_file import read_snapshot
    from services.uploader.report import STATE_FILE, UploaderSnapshot

    snapshot = read_snapshot(layout.state / STATE_FILE, UploaderSnapshot)
    if snapshot is None:
        return []
    return [Check("fail", "hosts", line, "give each camera id to one host (CAMERA_<N>_URL), then restart the "
                  "uploader") for line in snapshot.clash_lines()]


def check_camera_clocks(layout: DataLayout, config: RecorderConfig, limit: float) -> list[Check]:
    """Each camera's clock against the host's, as the recorder measured it while recording."""
    from services.common.state_file import read_snapshot
    from services.recorder.report import STATE_FILE, RecorderSnapshot

    snapshot = read_snapshot(layout.state / STATE_FILE, RecorderSnapshot)
    checks = []
    for camera in config.cameras:
        entry = snapshot.cameras.get(str(camera.id)) if snapshot else None
        name = f"{camera.label} clock"
        offset = entry.camera_clock_offset if entry else None
        too_far = warning(offset, limit)
        if too_far:
            checks.append(Check("warn", name, too_far, "point the camera's NTP setting at the host or a time server"))
        elif offset is not None:
            checks.append(Check("ok", name, f"camera clock {describe(offset)} from the host"))
        else:
            why = ("not measured: the recorder has not recorded this camera" if entry is None else
                   "no RTCP sender reports from the camera (or an FFmpeg older than 5.0)")
            checks.append(Check("ok", name, f"camera clock unknown: {why}"))
    return checks


def check_units(unit_dir: Path = UNIT_DIR) -> list[Check]:
    checks = []
    for unit in UNITS:
        if (unit_dir / unit).is_file():
            checks.append(Check("ok", "systemd", f"{unit} installed"))
        else:
            checks.append(Check("warn", "systemd", f"{unit} not installed in {unit_dir}",
                                "sudo systemd/install-services.sh"))
    return checks


def run_recorder_checks(env_path: Path | None, env: EnvReader, min_free_bytes: int,
                        camera_clock_warn: float = 10.0) -> list[Check]:
    checks = check_env_file(env_path)
    config, found = check_config(env, read_recorder_config)
    checks += found
    if isinstance(config, RecorderConfig):
        ffmpeg, version = check_ffmpeg(config)
        checks.append(ffmpeg)
        if version is not None:
            checks += check_cameras(config, version)
        layout = DataLayout(config.common.data_dir)
        checks.append(check_disk(layout, min_free_bytes))
        checks.append(check_filesystem(layout, config.segment_duration))
        checks += check_hosts(layout)
        checks += check_camera_clocks(layout, config, camera_clock_warn)
    checks.append(check_clock(gather(floor_paths(layout) if isinstance(config, RecorderConfig) else [])))
    checks.append(check_proc_privacy(read_mountinfo(), config if isinstance(config, RecorderConfig) else None))
    checks += check_units()
    checks += check_secrets_apart(UNIT_DIR, config.common.data_dir if isinstance(config, RecorderConfig) else None)
    return checks


# ----- the command --------------------------------------------------------------------------------
NAME = "doctor"
HELP = "check configuration, FFmpeg, cameras, disk, units and the bucket"


@dataclass(frozen=True)
class Settings:
    """The reader itself: doctor reports configuration problems as checks instead of exiting 78."""
    env: EnvReader
    min_free_bytes: int
    camera_clock_warn: float = 10.0


EXIT_CODES = {0: "no check failed (warnings allowed)", 1: "a check failed"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output: every check and the counts")


def read_settings(env: EnvReader) -> Settings:
    from services.common.settings import CAMERA_CLOCK_WARN_SECONDS, MIN_FREE_DISK_MB

    return Settings(env, env.get(MIN_FREE_DISK_MB) * 1024 * 1024, env.get(CAMERA_CLOCK_WARN_SECONDS))


def run(args: argparse.Namespace, settings: Settings) -> int:
    from services.common.settings import S3_BUCKET_NAME, SOURCE_DIRS

    env = settings.env
    if env.get(SOURCE_DIRS):   # another recorder writes the footage
        from services.commands.doctor_source import run_source_checks

        checks = check_env_file(env.file) + run_source_checks(env)
    else:
        checks = run_recorder_checks(env.file, env, settings.min_free_bytes, settings.camera_clock_warn)
    if env.get(S3_BUCKET_NAME):
        from services.commands.doctor_bucket import run_bucket_checks  # loads boto3
        checks += run_bucket_checks(EnvReader(env.values, env.source), already=checks)
    text, code = summary(checks)
    print(json.dumps(summary_data(checks), indent=2) if args.json else text)
    return code


