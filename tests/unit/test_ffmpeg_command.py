from pathlib import Path

import pytest

from services.common.redact import mask_url
from services.recorder.config import CameraConfig
from services.recorder.ffmpeg_command import (
    FfmpegVersion,
    StreamInfo,
    audio_plan,
    build_probe_command,
    build_record_command,
    parse_probe_output,
    parse_version,
)

FF5 = FfmpegVersion(5, "ffmpeg 5.1")
FF4 = FfmpegVersion(4, "ffmpeg 4.4")


def command(stream, camera=None, version=FF5, codec="copy"):
    camera = camera or CameraConfig(1, "rtsp://admin:pw@10.0.0.2/s", "cam")
    return build_record_command("ffmpeg", camera, stream, Path("/d/run"), version=version,
                                segment_duration=600, video_codec=codec, socket_timeout_s=35)


def option(argv, name):
    return argv[argv.index(name) + 1]


def test_versions():
    assert parse_version("ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright (c) 2000").major == 4
    assert parse_version("ffmpeg version 5.1.9-0+deb12u1 Copyright").text == "ffmpeg 5.1.9-0+deb12u1"
    assert parse_version("ffmpeg version n6.1 Copyright").major == 6
    assert parse_version("ffmpeg version N-113000-gabc Copyright").major == 99


def test_socket_timeout_option_differs_by_version():
    argv5 = command(StreamInfo("h264", None)).argv
    argv4 = command(StreamInfo("h264", None), version=FF4).argv
    assert option(argv5, "-timeout") == "35000000" and "-stimeout" not in argv5
    assert option(argv4, "-stimeout") == "35000000" and "-timeout" not in argv4
    assert argv5.index("-timeout") < argv5.index("-i")


def test_h264_aac_copies_everything():
    plan = command(StreamInfo("h264", "aac"))
    assert plan.audio == "copy"
    assert option(plan.argv, "-c:v") == "copy" and option(plan.argv, "-c:a") == "copy"
    assert "-tag:v" not in plan.argv
    assert option(plan.argv, "-rtsp_transport") == "tcp"


@pytest.mark.parametrize("codec", ["pcm_alaw", "pcm_mulaw", "adpcm_g726"])
def test_g711_is_transcoded_to_aac(codec):
    plan = command(StreamInfo("h264", codec))
    assert plan.audio == "aac" and option(plan.argv, "-c:a") == "aac"


def test_h265_without_audio_gets_hvc1_and_no_audio():
    plan = command(StreamInfo("hevc", None))
    assert option(plan.argv, "-tag:v") == "hvc1"
    assert "-an" in plan.argv and plan.audio == "none"


def test_reencoding_forces_keyframes():
    argv = command(StreamInfo("h264", None), codec="libx265").argv
    assert option(argv, "-c:v") == "libx265" and option(argv, "-tag:v") == "hvc1"
    assert "-force_key_frames" in argv


def test_audio_modes():
    assert audio_plan("none", "aac") == "none"
    assert audio_plan("aac", "aac") == "aac"
    assert audio_plan("copy", "pcm_alaw") == "copy"
    assert audio_plan("auto", None) == "none"


def test_segment_options():
    plan = command(StreamInfo("h264", None))
    argv = plan.argv
    assert option(argv, "-f") == "segment"
    assert option(argv, "-segment_time") == "600"
    assert option(argv, "-segment_atclocktime") == "1"
    assert option(argv, "-segment_format_options") == ("movflags=+frag_keyframe+empty_moov+default_base_moof"
                                                                 ":flush_packets=1:write_prft=wallclock")
    assert "-movflags" not in argv  # ignored by the segment muxer
    assert option(argv, "-segment_list_type") == "csv"
    assert plan.segment_list == Path("/d/run/segments.csv")
    assert argv[-1] == "/d/run/camera_1_%Y-%m-%d_%H-%M-%S.mp4"


def test_password_masked_in_logged_command():
    argv = command(StreamInfo("h264", None)).argv
    assert "pw@" in " ".join(argv)
    assert "pw@" not in mask_url(" ".join(argv))


def test_probe_command_and_parsing():
    camera = CameraConfig(2, "rtsp://cam/x", "c")
    argv = build_probe_command("ffprobe", camera, FF4, 10)
    assert option(argv, "-stimeout") == "10000000" and argv[-1] == "rtsp://cam/x"
    text = '{"streams": [{"codec_type": "audio", "codec_name": "pcm_alaw"}, {"codec_type": "video", "codec_name": "hevc"}]}'
    assert parse_probe_output(text) == StreamInfo("hevc", "pcm_alaw")
    assert parse_probe_output("garbage") == StreamInfo(None, None)
