"""Drill: the hand-off into completed/ fails for a while (a remount, a disk error).

`completed/` is bind-mounted onto itself read-only, as a file system remounted read-only after
an error is, so every move into it fails (EROFS, root included), then unmounted. While it is
blocked, `status` fails naming the camera, and the state file says why; once it is writable
again, the waiting segments move on without a restart and nothing recorded meanwhile is lost.
"""
import os
import subprocess

import pytest

from services.common.data_layout import DataLayout
from services.common.segment_names import parse_name
from services.recorder.report import handoff_limit
from tests.support.media import footage_gaps
from tests.support.processes import Daemon, read_status, run_module, wait_for, write_env

SEGMENT = 2


def remount_read_only(folder) -> None:
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root (CI and make test run as root)")
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True, timeout=30)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, timeout=30)


def test_blocked_handoff_is_a_problem_then_heals_without_restart(tmp_path, camera_server):
    server = camera_server({"cam": "h264:aac"})
    layout = DataLayout(tmp_path / "data")
    env = write_env(tmp_path / ".env", {"DATA_DIR": layout.root, "SEGMENT_DURATION": SEGMENT,
                                        "CAMERA_1_URL": server.url("cam"), "MIN_FREE_DISK_MB": 0})
    recorder = Daemon("services.video_recorder", env, tmp_path / "recorder.log").start()
    camera = lambda: read_status(layout.state / "recorder.json").get("cameras", {}).get("1", {})  # noqa: E731
    try:
        wait_for(lambda: len(list(layout.completed.glob("*.mp4"))) >= 2, 40, "segments before the block")
        pid = read_status(layout.state / "recorder.json")["pid"]
        remount_read_only(layout.completed)

        limit = handoff_limit(SEGMENT)
        stuck = wait_for(lambda: camera().get("handoff_waiting_seconds", 0) > limit and camera(),
                         limit + 20, "the blocked hand-off in the state file")
        assert "Read-only file system" in stuck["handoff_error"], stuck
        code, out = run_module("services", "status", env_file=env)
        assert code == 1 and "camera 1:" in out and "not in completed/" in out, out

        subprocess.run(["umount", str(layout.completed)], check=True, timeout=30)
        # A segment closed a moment ago may be on its way (the snapshot and the closes share a cadence).
        wait_for(lambda: camera().get("handoff_waiting_seconds", 99) < SEGMENT, 30, "the waiting segments handed off")
        assert read_status(layout.state / "recorder.json")["pid"] == pid, "the recorder was restarted"
        assert run_module("services", "status", env_file=env)[1].count("not in completed/") == 0
    finally:
        subprocess.run(["umount", str(layout.completed)], check=False, capture_output=True, timeout=30)
        recorder.stop()
    segments = sorted(layout.completed.glob("*.mp4"), key=lambda p: p.name)
    assert not list(layout.recordings.rglob("*.mp4")), "segments left behind in recordings/"
    starts = [parse_name(p.name).start for p in segments]
    assert footage_gaps(segments, SEGMENT) == [], f"footage lost while the hand-off was blocked: {starts}"
    assert "succeeded after" in recorder.output()
