"""A camera's own clock against the host's, as `status` and `doctor` show it: real FFmpeg, real
RTSP cameras whose RTCP sender reports run on a clock offset by a known amount (libfaketime in the
camera server), one on the host's clock, and one that sends no sender reports at all."""
import json

from services.common.data_layout import DataLayout
from tests.support.processes import CameraServer, Daemon, read_status, run_module, wait_for, write_env

AHEAD = 120.0
WARNING = "camera 1: camera clock 120 s ahead of the host; set the camera's NTP server"


def test_status_and_doctor_show_each_cameras_clock(camera_server, tmp_path):
    on_time = camera_server({"cam": "h264:none"})
    ahead = CameraServer({"cam": "h264:none"}, None, 10, clock_offset=AHEAD).start()
    silent = CameraServer({"cam": "h264:none"}, None, 10, "--no-rtcp").start()
    env = write_env(tmp_path / ".env", {"DATA_DIR": tmp_path / "data", "SEGMENT_DURATION": 10,
                                        "CAMERA_CLOCK_WARN_SECONDS": 10, "CAMERA_1_URL": ahead.url("cam"),
                                        "CAMERA_2_URL": on_time.url("cam"), "CAMERA_3_URL": silent.url("cam")})
    env.chmod(0o600)
    state = DataLayout(tmp_path / "data").state / "recorder.json"
    cameras = lambda: read_status(state).get("cameras", {})  # noqa: E731
    daemon = Daemon("services.video_recorder", env, tmp_path / "recorder.log").start()
    try:
        wait_for(lambda: all(cameras().get(i, {}).get("camera_clock_offset") is not None for i in "12"), 60,
                 "both cameras with sender reports measured")
        # Long enough that the camera without sender reports would have been measured by now.
        wait_for(lambda: cameras().get("3", {}).get("media_seconds", 0) >= 12, 40, "camera 3 recording 12 s")
        code, out = run_module("services", "status", "--json", env_file=env)
        data = json.loads(out)
        offsets = {i: data["cameras"][i]["camera_clock_offset"] for i in "123"}
        print(f"\ncamera clock minus host clock: {offsets}")
        assert abs(offsets["1"] - AHEAD) <= 1.0, offsets
        assert abs(offsets["2"]) <= 1.0, offsets
        assert offsets["3"] is None, offsets          # unknown, not 0
        assert data["warnings"] == [WARNING]
        code, out = run_module("services", "status", env_file=env)
        table = {line.split()[0]: line for line in out.splitlines() if line[:2] in ("1 ", "2 ", "3 ")}
        assert table["3"].endswith("unknown") and f"+{AHEAD:.0f}" in table["1"], out
        assert "WARNINGS:\n  " + WARNING in out
        code, out = run_module("services", "doctor", env_file=env)
        clock_lines = [line for line in out.splitlines() if " clock: " in line and "camera " in line]
        assert clock_lines[0].startswith("warn  camera 1 (camera_1) clock: camera clock 120 s ahead"), out
        assert clock_lines[1].startswith("ok    camera 2 (camera_2) clock: camera clock "), out
        assert "camera 3 (camera_3) clock: camera clock unknown: no RTCP sender reports" in clock_lines[2], out
    finally:
        daemon.stop()
        ahead.stop()
        silent.stop()
