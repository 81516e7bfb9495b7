"""`systemctl reload video-recorder` (SIGHUP) with real FFmpeg: only changed cameras restart."""
import signal

from services.common.data_layout import DataLayout
from tests.support.media import decode_errors, footage_gaps
from tests.support.processes import Daemon, read_status, run_module, wait_for, write_env

SEGMENT = 2


def settings(tmp_path, cameras, **extra):
    values = {"DATA_DIR": tmp_path / "data", "SEGMENT_DURATION": SEGMENT, "STALL_TIMEOUT": 5,
              "FFMPEG_STOP_TIMEOUT": 5, "LOG_LEVEL": "DEBUG", **extra}
    values.update({f"CAMERA_{n}_URL": url for n, url in cameras.items()})
    return write_env(tmp_path / ".env", values)


def cameras(layout):
    return read_status(layout.state / "recorder.json").get("cameras", {})


def recording(layout, camera_id):
    return cameras(layout).get(str(camera_id), {}).get("state") == "recording"


def completed(layout, camera_id):
    return sorted(layout.completed.glob(f"camera_{camera_id}_*.mp4"), key=lambda p: p.name)


def test_reload_adds_removes_and_keeps_cameras(camera_server, tmp_path):
    server = camera_server({"kept": "h264:none", "gone": "h264:none", "new": "h264:none"})
    env = settings(tmp_path, {1: server.url("kept"), 2: server.url("gone")})
    layout = DataLayout(tmp_path / "data")
    daemon = Daemon("services.video_recorder", env, tmp_path / "recorder.log").start()
    try:
        wait_for(lambda: len(completed(layout, 1)) >= 2 and len(completed(layout, 2)) >= 1, 60,
                 "cameras 1 and 2 recording")
        kept_pid = cameras(layout)["1"]["pid"]

        settings(tmp_path, {1: server.url("kept"), 3: server.url("new")})
        daemon.proc.send_signal(signal.SIGHUP)

        wait_for(lambda: "2" not in cameras(layout) and recording(layout, 3), 60, "camera 2 gone, camera 3 recording")
        removed_at = len(completed(layout, 2))
        wait_for(lambda: len(completed(layout, 3)) >= 2, 30, "segments of the added camera")
        before = len(completed(layout, 1))
        wait_for(lambda: len(completed(layout, 1)) >= before + 2, 30, "camera 1 still recording")
        assert cameras(layout)["1"]["pid"] == kept_pid, "the unchanged camera's FFmpeg was restarted"
        assert cameras(layout)["1"]["restarts"] == 0
        assert len(completed(layout, 2)) == removed_at, "the removed camera still records"
    finally:
        assert daemon.stop() == 0
    log = daemon.output()
    assert "1 camera(s) added, 1 removed, 0 changed, 1 unchanged" in log
    assert "camera 2 removed from .env: closing its segment" in log
    assert footage_gaps(completed(layout, 1), SEGMENT) == [], "the unchanged camera's footage has a gap"
    assert decode_errors(completed(layout, 2)[-1]) == "", "the removed camera's last segment is damaged"
    assert not list(layout.recordings.rglob("*.mp4"))


def test_a_broken_env_on_reload_keeps_the_old_settings_and_says_why(camera_server, tmp_path):
    server = camera_server({"cam": "h264:none"})
    env = settings(tmp_path, {1: server.url("cam")})
    layout = DataLayout(tmp_path / "data")
    daemon = Daemon("services.video_recorder", env, tmp_path / "recorder.log").start()
    try:
        wait_for(lambda: recording(layout, 1), 60, "camera 1 recording")
        pid = cameras(layout)["1"]["pid"]
        settings(tmp_path, {1: server.url("cam"), 2: "http://not-rtsp/x"}, STALL_TIMEOUT="soon")
        daemon.proc.send_signal(signal.SIGHUP)

        state = wait_for(lambda: read_status(layout.state / "recorder.json").get("config_error"), 20,
                         "the rejected .env in the state file")
        assert "STALL_TIMEOUT" in state and "CAMERA_2_URL" in state
        valid = write_env(tmp_path / "status.env", {"DATA_DIR": layout.root, "CAMERA_1_URL": server.url("cam")})
        code, out = run_module("services", "status", env_file=valid)
        assert code == 1 and "rejected .env on reload" in out and "STALL_TIMEOUT" in out
        assert daemon.proc.poll() is None and cameras(layout)["1"]["pid"] == pid
        assert "2" not in cameras(layout)

        settings(tmp_path, {1: server.url("cam")})   # fixed: the next reload clears the problem
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: not read_status(layout.state / "recorder.json").get("config_error"), 20, "error cleared")
        assert cameras(layout)["1"]["pid"] == pid
    finally:
        assert daemon.stop() == 0
    log = daemon.output()
    assert "ERROR" in log and ".env rejected on reload: still running on the previous settings" in log
