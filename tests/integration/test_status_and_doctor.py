"""`status` and `doctor` as a user runs them: the real CLI in a subprocess, real cameras."""
import json
import os

import pytest

from tests.support.processes import Daemon, read_status, run_module, wait_for, write_env

PASSWORD = "Doct0rPW"


def cli(*args, env_file):
    return run_module("services", *args, env_file=env_file)


@pytest.fixture
def env_file(tmp_path):
    def make(**values):
        path = write_env(tmp_path / ".env", {"DATA_DIR": tmp_path / "data", **values})
        path.chmod(0o600)
        return path
    return make


def test_doctor_good_setup(camera_server, env_file):
    plain = camera_server({"pcma": "h264:pcma", "hevc": "h265:none"})
    path = env_file(CAMERA_1_URL=plain.url("pcma"), CAMERA_2_URL=plain.url("hevc"))
    code, out = cli("doctor", env_file=path)
    assert code == 0, out
    assert "video h264, audio pcm_alaw (transcoded to AAC)" in out
    assert "video hevc, no audio recorded" in out
    assert "0 failed" in out


@pytest.mark.parametrize("case", ["world_readable", "unreachable", "wrong_password", "bad_value"])
def test_doctor_finds_each_problem(case, camera_server, env_file):
    secured = camera_server({"cam": "h264:none"}, auth=f"admin:{PASSWORD}")
    values = {"CAMERA_1_URL": secured.url("cam", f"admin:{PASSWORD}")}
    expected = {"world_readable": "chmod 600", "unreachable": "Connection refused",
                "wrong_password": "check user and password", "bad_value": "SEGMENT_DURATION"}[case]
    if case == "unreachable":
        values["CAMERA_1_URL"] = "rtsp://127.0.0.1:9/none"
    if case == "wrong_password":
        values["CAMERA_1_URL"] = secured.url("cam", "admin:wrong-pass")
    if case == "bad_value":
        values["SEGMENT_DURATION"] = "often"
    path = env_file(**values)
    if case == "world_readable":
        path.chmod(0o644)
    code, out = cli("doctor", env_file=path)
    assert code == 1 and expected in out, out
    assert PASSWORD not in out and "wrong-pass" not in out and "Traceback" not in out


def test_status_healthy_and_broken(camera_server, env_file, tmp_path):
    server = camera_server({"cam": "h264:aac"})
    path = env_file(CAMERA_1_URL=server.url("cam"), CAMERA_2_URL="rtsp://127.0.0.1:9/gone",
                    SEGMENT_DURATION=2, STALL_TIMEOUT=5)
    recorder = Daemon("services.video_recorder", path, tmp_path / "rec.log").start()
    try:
        state = tmp_path / "data" / "state" / "recorder.json"
        wait_for(lambda: read_status(state).get("cameras", {}).get("1", {}).get("state") == "recording",
                 40, "camera 1 recording")
        # Stand-in for a running uploader: this process, with a fresh state file.
        uploader_state = tmp_path / "data" / "state" / "uploader.json"
        uploader_state.write_text(json.dumps({"pid": os.getpid(), "updated_at": "2999-01-01T00:00:00+00:00"}))
        code, out = cli("status", env_file=path)
        assert code == 1 and "camera 2 is" in out and "camera 1 is" not in out
        code, out = cli("status", "--json", env_file=path)
        data = json.loads(out)
        assert data["cameras"]["1"]["state"] == "recording" and data["recorder_running"]
        env_file(CAMERA_1_URL=server.url("cam"), SEGMENT_DURATION=2)  # camera 2 removed
        code, out = cli("status", env_file=path)
        assert code == 0, out
    finally:
        recorder.stop()
    code, out = cli("status", env_file=path)
    assert code == 1 and "video-recorder not running" in out
