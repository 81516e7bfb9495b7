"""FFmpeg and ffprobe command lines as data: pure functions, unit-tested without processes.

Notes that shaped these (checked on FFmpeg 5.1, documented for 4.4):
- `movflags` reaches the MP4 muxer only through `-segment_format_options`.
- Without `flush_packets=1` there as well, FFmpeg 5.1 keeps the fragments of a segment in
  memory (a `kill -9` then leaves a 28-byte `ftyp` stub); with it, every finished fragment is
  on disk and a crash loses at most the fragment being written (one GOP).
- The RTSP socket timeout is `-timeout` on FFmpeg 5+, `-stimeout` on 4.x, where `-timeout`
  means a listen timeout instead.
- `write_prft=wallclock` puts a producer reference time box before each fragment: on 5.x the
  camera's clock from its RTCP sender reports (else the host's time of writing), on 4.4 always
  the host's; `recorder/camera_clock` reads it.
- G.711 is not allowed in MP4 and H.265 needs the `hvc1` tag to play in browsers/QuickTime.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from services.common.segment_names import strftime_pattern
from services.recorder.config import CameraConfig

MP4_AUDIO_COPY_OK = frozenset({"aac"})
FRAGMENT_MOVFLAGS = "+frag_keyframe+empty_moov+default_base_moof"
SEGMENT_LIST_NAME = "segments.csv"
# The segment muxer's strftime and clock alignment follow the process's time zone.
FFMPEG_ENV_TZ = "UTC0"


@dataclass(frozen=True)
class FfmpegVersion:
    major: int
    text: str

    @property
    def socket_timeout_option(self) -> str:
        return "-timeout" if self.major >= 5 else "-stimeout"


def parse_version(output: str) -> FfmpegVersion:
    """Version from `ffmpeg -version`; unknown (git) builds count as new."""
    first = output.strip().splitlines()[0] if output.strip() else ""
    match = re.search(r"version\s+n?(\d+)\.(\d+)", first)
    text = first.split(" Copyright")[0].replace(" version", "")
    if match:
        return FfmpegVersion(int(match.group(1)), text)
    return FfmpegVersion(99, text)


@dataclass(frozen=True)
class StreamInfo:
    """What a camera sends, from ffprobe."""

    video_codec: str | None
    audio_codec: str | None


def parse_probe_output(text: str) -> StreamInfo:
    """First video and audio codec from `ffprobe -of json -show_entries stream=...`."""
    try:
        streams = json.loads(text or "{}").get("streams", [])
    except ValueError:
        streams = []
    video = next((s.get("codec_name") for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s.get("codec_name") for s in streams if s.get("codec_type") == "audio"), None)
    return StreamInfo(video_codec=video, audio_codec=audio)


def _input_options(version: FfmpegVersion, timeout_s: int) -> list[str]:
    return ["-rtsp_transport", "tcp", version.socket_timeout_option, str(timeout_s * 1_000_000)]


def build_probe_command(ffprobe: str, camera: CameraConfig, version: FfmpegVersion,
                        timeout_s: int) -> tuple[str, ...]:
    return (
        ffprobe, "-hide_banner", "-v", "error",
        *_input_options(version, timeout_s),
        "-show_entries", "stream=codec_type,codec_name", "-of", "json",
        camera.url,
    )


def audio_plan(mode: str, audio_codec: str | None) -> str:
    """'copy', 'aac' (transcode) or 'none' for this camera's audio."""
    if mode == "none":
        return "none"
    if mode in ("copy", "aac"):
        return mode
    if audio_codec is None:
        return "none"
    return "copy" if audio_codec in MP4_AUDIO_COPY_OK else "aac"


def _video_options(video_codec_setting: str, source_codec: str | None, segment_duration: int) -> list[str]:
    if video_codec_setting == "copy":
        options = ["-c:v", "copy"]
        is_hevc = source_codec == "hevc"
    else:
        # Re-encoding: put a keyframe at least every second so cuts land near the boundary.
        options = ["-c:v", video_codec_setting, "-force_key_frames", "expr:gte(t,n_forced*1)"]
        if video_codec_setting in ("libx264", "libx265"):
            options += ["-preset", "veryfast"]
        is_hevc = "265" in video_codec_setting or "hevc" in video_codec_setting
    if is_hevc:
        options += ["-tag:v", "hvc1"]
    return options


def _audio_options(plan: str) -> list[str]:
    if plan == "none":
        return ["-an"]
    if plan == "copy":
        return ["-map", "0:a:0?", "-c:a", "copy"]
    return ["-map", "0:a:0?", "-c:a", "aac", "-b:a", "32k"]


@dataclass(frozen=True)
class RecordPlan:
    argv: tuple[str, ...]
    audio: str
    segment_list: Path


def build_record_command(
    ffmpeg: str,
    camera: CameraConfig,
    stream: StreamInfo,
    run_dir: Path,
    *,
    version: FfmpegVersion,
    segment_duration: int,
    video_codec: str,
    socket_timeout_s: int,
) -> RecordPlan:
    """The FFmpeg command that records `camera` into clock-aligned fragmented MP4 segments."""
    plan = audio_plan(camera.audio, stream.audio_codec)
    segment_list = run_dir / SEGMENT_LIST_NAME
    argv = (
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "level+warning",
        "-nostats", "-progress", "pipe:1",  # a report every 0.5 s (also on 4.4)
        *_input_options(version, socket_timeout_s),
        # Cameras often leave the first packets without a pts.
        "-fflags", "+genpts",
        "-i", camera.url,
        "-map", "0:v:0",
        *_video_options(video_codec, stream.video_codec, segment_duration),
        *_audio_options(plan),
        "-f", "segment",
        "-segment_time", str(segment_duration),
        "-segment_atclocktime", "1",
        "-strftime", "1",
        "-reset_timestamps", "1",
        "-segment_format", "mp4",
        "-segment_format_options", f"movflags={FRAGMENT_MOVFLAGS}:flush_packets=1:write_prft=wallclock",
        "-segment_list", str(segment_list),
        "-segment_list_type", "csv",
        str(run_dir / strftime_pattern(camera.id)),
    )
    return RecordPlan(argv=argv, audio=plan, segment_list=segment_list)
