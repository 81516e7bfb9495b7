"""Recorder settings: the cameras and how to record them."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from services.common.alerts import AlertSettings, read_alert_settings
from services.common.config import CommonConfig, EnvReader, read_common
from services.common.redact import mask_url, register_secret

_CAMERA_KEY = re.compile(r"^CAMERA_(?P<id>[^_]+)_(?P<field>URL|NAME|AUDIO)$")
AUDIO_MODES = ("auto", "copy", "aac", "none")
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
    backoff_max: float = 60.0
    stable_after: float = 60.0


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
        url_key, url = values.get("URL", (f"CAMERA_{camera_id}_URL", ""))
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
        audio_key = f"CAMERA_{camera_id}_AUDIO"
        audio = values.get("AUDIO", (audio_key, "auto"))[1].lower() or "auto"
        if audio not in AUDIO_MODES:
            env.error(audio_key, f"must be one of {', '.join(AUDIO_MODES)}, got {audio!r}")
            audio = "auto"
        name = values.get("NAME", ("", ""))[1] or f"camera_{camera_id}"
        cameras.append(CameraConfig(id=camera_id, url=url, name=name, audio=audio))
    if not cameras and not env.issues:
        env.error("CAMERA_1_URL", "no camera configured: set at least one CAMERA_<N>_URL")
    return tuple(cameras)


def read_recorder_config(env: EnvReader) -> RecorderConfig:
    """Validate every recorder key; raises ConfigError listing all problems."""
    common = read_common(env)
    cameras = _read_cameras(env)
    segment_duration = env.integer("SEGMENT_DURATION", 600, minimum=2, maximum=3600)
    video_codec = env.string("VIDEO_CODEC", "copy")
    if not _CODEC.match(video_codec):
        env.error("VIDEO_CODEC", f"must be 'copy' or an FFmpeg encoder name such as libx264, got {video_codec!r}")
    stall_timeout = env.integer("STALL_TIMEOUT", 30, minimum=5, maximum=3600)
    stop_timeout = env.integer("FFMPEG_STOP_TIMEOUT", 10, minimum=1, maximum=60)
    ffmpeg = env.executable("FFMPEG_PATH", "ffmpeg")
    ffprobe = env.executable("FFPROBE_PATH", "ffprobe")
    alerts = read_alert_settings(env)
    metrics_port = env.integer("RECORDER_METRICS_PORT", 0, minimum=0, maximum=65535)
    backoff_max = env.decimal("RECORDER_BACKOFF_MAX", 60.0, minimum=1.0, maximum=3600.0)
    stable_after = env.decimal("RECORDER_STABLE_AFTER", 60.0, minimum=1.0, maximum=86400.0)
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
        backoff_max=backoff_max,
        stable_after=stable_after,
    )

