"""video_duration against ffprobe on real fragmented MP4s written by FFmpeg."""
import subprocess

import pytest

from services.common.mp4_fragments import trim_torn_tail, video_duration
from tests.support.media import video_stream_duration


@pytest.mark.parametrize("codec, seconds", [("libx264", 3.0), ("libx265", 2.5)])
def test_duration_matches_ffprobe(tmp_path, codec, seconds):
    path = tmp_path / "camera_1_2026-01-01_00-00-00.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=15",
                    "-f", "lavfi", "-i", "sine", "-t", str(seconds), "-c:v", codec, "-g", "15", "-c:a", "aac",
                    "-movflags", "+frag_keyframe+empty_moov+default_base_moof", str(path)], check=True)
    assert video_duration(path) == pytest.approx(video_stream_duration(path), abs=0.001)
    assert video_duration(path) == pytest.approx(seconds, abs=0.07)
    # A torn file's duration is what is left after trimming.
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    trim_torn_tail(path)
    assert 0 < video_duration(path) < seconds
