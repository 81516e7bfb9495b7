"""`doctor`: check a setup before and after install; each check says ok, warn or fail, with a fix."""
from __future__ import annotations

import shutil
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from services.config import ConfigError, EnvReader
from services.data_layout import DataLayout
from services.ffmpeg_command import FfmpegVersion, audio_plan, build_probe_command, parse_probe_output
from services.recorder_config import CameraConfig, RecorderConfig, read_recorder_config
from services.recorder_runs import ffmpeg_version
from services.redact import redact
from services.status_report import human_bytes

UNIT_DIR = Path("/etc/systemd/system")
UNITS = ("video-recorder.service", "s3-uploader.service")
PROBE_TIMEOUT = 20


@dataclass(frozen=True)
class Check:
    level: str  # ok | warn | fail
    name: str
    detail: str
    hint: str = ""

    def line(self) -> str:
        hint = f"\n       fix: {self.hint}" if self.hint and self.level != "ok" else ""
        return f"{self.level:<4}  {self.name}: {redact(self.detail)}{hint}"


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


def check_config(env: EnvReader, read: Callable[[EnvReader], object]) -> tuple[object | None, list[Check]]:
    try:
        return read(env), [Check("ok", "configuration", "all keys valid")]
    except ConfigError as exc:
        return None, [Check("fail", "configuration", str(issue), "edit the key in .env") for issue in exc.issues]


def check_ffmpeg(config: RecorderConfig) -> Check:
    try:
        version = ffmpeg_version(config.ffmpeg)
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("fail", "ffmpeg", f"cannot run {config.ffmpeg}: {exc}", "apt-get install ffmpeg")
    if version.major < 4:
        return Check("warn", "ffmpeg", f"{version.text} is older than 4.4", "upgrade FFmpeg")
    return Check("ok", "ffmpeg", version.text)


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


def check_cameras(config: RecorderConfig) -> list[Check]:
    version = ffmpeg_version(config.ffmpeg)
    with ThreadPoolExecutor(max_workers=min(8, len(config.cameras))) as pool:
        return list(pool.map(lambda camera: probe_camera(config, camera, version), config.cameras))


def check_disk(layout: DataLayout, min_free_bytes: int) -> Check:
    usage = shutil.disk_usage(layout.root)
    detail = f"{human_bytes(usage.free)} free of {human_bytes(usage.total)} at {layout.root}"
    if usage.free < min_free_bytes:
        return Check("warn", "disk", detail, "free space or lower LOCAL_RETENTION_HOURS")
    return Check("ok", "disk", detail)


def check_units(unit_dir: Path = UNIT_DIR) -> list[Check]:
    checks = []
    for unit in UNITS:
        if (unit_dir / unit).is_file():
            checks.append(Check("ok", "systemd", f"{unit} installed"))
        else:
            checks.append(Check("warn", "systemd", f"{unit} not installed in {unit_dir}",
                                "sudo systemd/install-services.sh"))
    return checks


def run_recorder_checks(env_path: Path | None, env: EnvReader, min_free_bytes: int) -> list[Check]:
    checks = check_env_file(env_path)
    config, found = check_config(env, read_recorder_config)
    checks += found
    if isinstance(config, RecorderConfig):
        checks.append(check_ffmpeg(config))
        checks += check_cameras(config)
        checks.append(check_disk(DataLayout(config.common.data_dir), min_free_bytes))
    checks += check_units()
    return checks


def summary(checks: Iterable[Check]) -> tuple[str, int]:
    checks = list(checks)
    fails = sum(c.level == "fail" for c in checks)
    warns = sum(c.level == "warn" for c in checks)
    text = "\n".join(c.line() for c in checks) + f"\n\n{fails} failed, {warns} warnings, {len(checks) - fails - warns} ok"
    return text, 1 if fails else 0
