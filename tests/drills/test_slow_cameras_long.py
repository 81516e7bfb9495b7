"""Slow cameras for minutes (`make drills`): 1 frame per second, a 6-s GOP, and a camera that
sends nothing but a key frame every 6 s, whose stall limit follows its frame interval."""
from tests.integration.test_slow_cameras import SLOW_CAMERAS, check_slow_cameras_record_without_restart

KEY_FRAMES_ONLY = ("1/6", "6")


def test_slow_cameras_for_three_minutes(tmp_path):
    check_slow_cameras_record_without_restart(tmp_path, {**SLOW_CAMERAS, 3: KEY_FRAMES_ONLY}, seconds=180)
