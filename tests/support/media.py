"""Checking recorded MP4s with the real ffprobe/ffmpeg."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path


def probe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "format=duration:stream=codec_type,codec_name,codec_tag_string,duration", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout or "{}")


def codecs(path: Path) -> dict[str, tuple[str, str]]:
    return {s["codec_type"]: (s["codec_name"], s.get("codec_tag_string", ""))
            for s in probe(path).get("streams", [])}


def duration(path: Path) -> float:
    return float(probe(path)["format"]["duration"])


def decode_errors(path: Path) -> str:
    """Everything FFmpeg complains about while decoding the whole file ('' when clean)."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                         capture_output=True, text=True, timeout=60)
    return out.stderr.strip() if out.returncode == 0 else f"exit {out.returncode}: {out.stderr.strip()}"


def video_stream_duration(path: Path) -> float:
    return float(next(s["duration"] for s in probe(path)["streams"] if s["codec_type"] == "video"))
