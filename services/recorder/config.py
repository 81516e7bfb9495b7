"""Recorder settings: the cameras and how to record them."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from services.common.alerts import AlertSettings, read_alert_settings
from services.common.config import CommonConfig, EnvReader, read_common
from services.common.metrics import read_metrics_bind
from services.common.redact import mask_url, register_secret
from services.common.settings import (
    CAMERA_AUDIO,
    CAMERA_NAME,
    CAMERA_URL,
    CLOCK_SYNC_TIMEOUT,
    FFMPEG_PATH,
    FFMPEG_STOP_TIMEOUT,
    FFPROBE_PATH,
    FSYNC_INTERVAL,
    RECORDER_BACKOFF_MAX,
    RECORDER_METRICS_PORT,
    RECORDER_STABLE_AFTER,
    SEGMENT_DURATION,
    STALL_TIMEOUT,
    VIDEO_CODEC,
)

_CAMERA_KEY = re.compile(r"^CAMERA_(?P<id>[^_]+)_(?P<field>URL|NAME|AUDIO)$")
_CODEC = re.compile(r"^[a-z0-9_]+$")


@dataclass(frozen=True)
class CameraConfig:
    id: int
    url: str
    name: str
    audio: str = "auto"

    @property
    def safe_url(self) -> str:
        return mask_url(self.url)

    @property
    def label(self) -> str:
        return f"camera {self.id} ({self.name})"


@dataclass(frozen=True)
class RecorderConfig:
    common: CommonConfig
    cameras: tuple[CameraConfig, ...]
    segment_duration: int
    video_codec: str
    stall_timeout: int
    stop_timeout: int
    ffmpeg: str
    ffprobe: str
    alerts: AlertSettings
    metrics_port: int = 0
    metrics_bind: str = "127.0.0.1"
    backoff_max: float = 60.0
    stable_after: float = 60.0
    fsync_interval: float = FSYNC_INTERVAL.default
    clock_sync_timeout: float = CLOCK_SYNC_TIMEOUT.default


def _read_cameras(env: EnvReader) -> tuple[CameraConfig, ...]:
    fields: dict[int, dict[str, tuple[str, str]]] = {}
    for key in sorted(env.values):
        match = _CAMERA_KEY.match(key)
        if not match:
            continue
        if not match["id"].isdigit():
            env.error(key, "camera id must be a whole number (CAMERA_<N>_URL)")
            continue
        camera_id = int(match["id"])
        per_camera = fields.setdefault(camera_id, {})
        if match["field"] in per_camera:
            env.error(key, f"duplicate camera id {camera_id} (also {per_camera[match['field']][0]})")
            continue
        per_camera[match["field"]] = (key, env.values[key].strip())

    cameras = []
    for camera_id, values in sorted(fields.items()):
        url_key, url = values.get("URL", (CAMERA_URL.at(camera_id).name, ""))
        if not url:
            env.error(url_key, "missing camera URL (rtsp://user:password@host:554/path)")
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("rtsp", "rtsps") or not parts.hostname:
            env.error(url_key, f"must be an rtsp:// or rtsps:// URL with a host, got {mask_url(url)!r}")
            continue
        if parts.password:
            register_secret(parts.password)
            register_secret(unquote(parts.password))
        audio_setting, name_setting = CAMERA_AUDIO.at(camera_id), CAMERA_NAME.at(camera_id)
        audio = values.get("AUDIO", ("", ""))[1].lower() or audio_setting.default
        if audio not in audio_setting.choices:
            env.error(audio_setting.name, f"must be one of {', '.join(audio_setting.choices)}, got {audio!r}")
            audio = audio_setting.default
        name = values.get("NAME", ("", ""))[1] or name_setting.default
        cameras.append(CameraConfig(id=camera_id, url=url, name=name, audio=audio))
    if not cameras and not env.issues:
        env.error(CAMERA_URL.at(1).name, f"no camera configured: set at least one {CAMERA_URL.name}")
    return tuple(cameras)


def read_recorder_config(env: EnvReader) -> RecorderConfig:
    """Validate every recorder key; raises ConfigError listing all problems."""
    common = read_common(env)
    cameras = _read_cameras(env)
    segment_duration = env.get(SEGMENT_DURATION)
    video_codec = env.get(VIDEO_CODEC)
    if not _CODEC.match(video_codec):
        env.error(VIDEO_CODEC.name, f"must be 'copy' or an FFmpeg encoder name such as libx264, got {video_codec!r}")
    stall_timeout = env.get(STALL_TIMEOUT)
    stop_timeout = env.get(FFMPEG_STOP_TIMEOUT)
    ffmpeg = env.get(FFMPEG_PATH)
    ffprobe = env.get(FFPROBE_PATH)
    alerts = read_alert_settings(env)
    metrics_port = env.get(RECORDER_METRICS_PORT)
    clock_sync_timeout = env.get(CLOCK_SYNC_TIMEOUT)
    backoff_max = env.get(RECORDER_BACKOFF_MAX)
    stable_after = env.get(RECORDER_STABLE_AFTER)
    fsync_interval = env.get(FSYNC_INTERVAL)
    env.check()
    return RecorderConfig(
        common=common,
        cameras=cameras,
        segment_duration=segment_duration,
        video_codec=video_codec,
        stall_timeout=stall_timeout,
        stop_timeout=stop_timeout,
        ffmpeg=ffmpeg,
        ffprobe=ffprobe,
        alerts=alerts,
        metrics_port=metrics_port,
        metrics_bind=read_metrics_bind(env),
        backoff_max=backoff_max,
        stable_after=stable_after,
        fsync_interval=fsync_interval,
        clock_sync_timeout=clock_sync_timeout,
    )

