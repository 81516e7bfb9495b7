"""Checking recorded MP4s with the real ffprobe/ffmpeg."""
from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

from services.common.mp4_fragments import video_duration
from services.common.segment_names import parse_name
from services.common.spans import Span, measure, segment_spans


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


def footage_gaps(paths: list[Path], segment_duration: int, tolerance: float = 1.05) -> list[float]:
    """Seconds of footage missing between the first and the last segment, gap by gap.

    A segment spans its video duration from the UTC start in its name, in whole seconds, so
    each gap is good to about a second. The first segment of a run is named late: FFmpeg opens
    it only after reading the stream's first seconds, which then go into it. So a segment that
    would overlap the next one is placed to end where the next one begins.
    """
    timed = sorted((parse_name(p.name).start, video_duration(p) or 0.0) for p in paths)
    for i in reversed(range(len(timed) - 1)):
        (start, seconds), following = timed[i], timed[i + 1][0]
        if start + timedelta(seconds=seconds) > following:
            timed[i] = (following - timedelta(seconds=seconds), seconds)
    spans = segment_spans(timed, segment_duration)
    window = Span(min(s.start for s in spans), max(s.end for s in spans))
    return [gap.seconds for gap in measure(spans, window, tolerance=tolerance).gaps]


def make_segment(path: Path, seconds: float = 2.0, size: str = "160x120") -> Path:
    """A segment as the recorder writes it: H.264 + AAC, fragmented, keyframe every second, a
    producer reference time box before each fragment."""
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=10",
                    "-f", "lavfi", "-i", "sine", "-t", str(seconds), "-c:v", "libx264", "-g", "10",
                    "-c:a", "aac", "-movflags", "+frag_keyframe+empty_moov+default_base_moof",
                    "-write_prft", "wallclock", "-y", str(path)],
                   check=True)
    return path


def start_reference(url: str, output: Path) -> subprocess.Popen:
    """An independent recording of a live camera: every video packet stamped with the host time
    FFmpeg read it (`-use_wallclock_as_timestamps`, kept absolute by `-copyts`). Stop with SIGINT."""
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-use_wallclock_as_timestamps", "1",
         "-rtsp_transport", "tcp", "-i", url, "-map", "0:v:0", "-c", "copy", "-copyts", "-f", "matroska",
         str(output)], stdin=subprocess.DEVNULL)


def video_packets(path: Path) -> list[tuple[float, str]]:
    """(presentation seconds, MD5 of the bytes) of every video packet, in file order."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "packet=pts_time,data_hash", "-show_data_hash", "MD5", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, timeout=60).stdout
    packets = []
    for line in out.splitlines():
        seconds, digest = line.split(",")[:2]
        if seconds not in ("", "N/A"):
            packets.append((float(seconds), digest))
    return packets


def reference_index(reference: Path) -> dict[str, list[float]]:
    """MD5 of a packet's bytes -> every host time the reference saw those bytes. The same bytes
    recur when the test camera restarts its pipeline (its picture starts over)."""
    index: dict[str, list[float]] = {}
    for seconds, digest in video_packets(reference):
        index.setdefault(digest, []).append(seconds)
    return index


def first_frame_in_reference(segment: Path, reference: dict[str, list[float]], near: float) -> float | None:
    """Host time the reference saw the segment's first video packet, found by its bytes (of
    recurrences, the one nearest `near`, the segment's name: they are half a minute apart).
    A run's very first packet can differ from what an earlier client got (a partial frame);
    then the first of the next ten that matches is used, less its distance from the first."""
    packets = video_packets(segment)
    for seconds, digest in packets[:10]:
        seen = reference.get(digest, [])
        if seen:
            return min(seen, key=lambda at: abs(at - near)) - (seconds - packets[0][0])
    return None
