"""Slow cameras are not stalled ones: at the default stall timeout, a camera at 1 frame per
second (night mode, every frame a key frame) and one with a 6-s GOP (smart codec) record
without a restart and without a gap. The long variant, with a camera that sends only a key
frame every 6 s, runs for minutes in tests/drills/test_slow_cameras_long.py.
"""
from tests.support.media import footage_gaps
from tests.support.processes import CameraServer
from tests.support.recorder_drills import start_recorder

SEGMENT = 4
# camera id -> (frames per second, seconds between key frames)
SLOW_CAMERAS = {1: ("1", "1"), 2: ("10", "6")}


def check_slow_cameras_record_without_restart(tmp_path, cameras: dict[int, tuple[str, str]], seconds: float) -> None:
    servers = {n: CameraServer({"cam": "h264:none"}, None, fps, "--gop", gop) for n, (fps, gop) in cameras.items()}
    try:
        for server in servers.values():
            server.start()
        recorder = start_recorder(tmp_path, {n: s.url("cam") for n, s in servers.items()}, SEGMENT)
        try:
            left_recording = recorder.watch_recording(list(cameras), seconds)
            restarts = {n: recorder.camera(n).get("restarts") for n in cameras}
        finally:
            stopped = recorder.daemon.stop()
    finally:
        for server in servers.values():
            server.stop()
    assert stopped == 0
    assert "stalled" not in recorder.daemon.output()
    assert left_recording == {n: set() for n in cameras} and restarts == {n: 0 for n in cameras}
    for n in cameras:
        assert footage_gaps(recorder.segments(n), SEGMENT) == [], f"camera {n} has a gap"


def test_one_fps_and_long_gop_cameras_are_not_restarted(tmp_path):
    check_slow_cameras_record_without_restart(tmp_path, SLOW_CAMERAS, seconds=30)
