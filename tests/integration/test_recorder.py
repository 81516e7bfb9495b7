"""The recorder against real FFmpeg and a real RTSP server, with 2-second segments."""
import csv
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from services.common.data_layout import DataLayout
from services.common.segment_names import parse_name
from services.recorder.config import CameraConfig
from services.recorder.ffmpeg_command import StreamInfo, build_record_command, parse_version
from services.recorder.handoff import hand_off
from tests.support.figures import Stopwatch, record
from tests.support.media import codecs, decode_errors, duration
from tests.support.processes import Daemon, pids_with_argument, read_status, wait_for, write_env
from tests.support.s3_server import free_port

SEGMENT = 2
FPS = 10
PASSWORD = "s3cretPW"


@pytest.fixture
def recorder(tmp_path):
    """Factory: write an .env for the given cameras and start the daemon; stopped afterwards."""
    daemons = []

    def start(cameras: dict[int, str], **settings) -> tuple[Daemon, DataLayout]:
        values = {"DATA_DIR": tmp_path / "data", "SEGMENT_DURATION": SEGMENT, "STALL_TIMEOUT": 5,
                  "FFMPEG_STOP_TIMEOUT": 5, "LOG_LEVEL": "DEBUG", **settings}
        values.update({f"CAMERA_{n}_URL": url for n, url in cameras.items()})
        env = write_env(tmp_path / ".env", values)
        daemon = Daemon("services.video_recorder", env, tmp_path / "recorder.log",
                        {"RECORDER_BACKOFF_MAX": "2", "RECORDER_STABLE_AFTER": "5"}).start()
        daemons.append(daemon)
        return daemon, DataLayout(tmp_path / "data")

    yield start
    for daemon in daemons:
        daemon.stop()


def status(layout):
    return read_status(layout.state / "recorder.json")


def camera_status(layout, camera_id):
    return status(layout).get("cameras", {}).get(str(camera_id), {})


def completed(layout, camera_id):
    return sorted((p for p in layout.completed.glob(f"camera_{camera_id}_*.mp4")), key=lambda p: p.name)


def assert_all_playable(paths):
    for path in paths:
        assert decode_errors(path) == "", path.name


def test_four_camera_kinds_record_and_stop_cleanly(recorder, camera_server):
    plain = camera_server({"pcma": "h264:pcma", "aac": "h264:aac", "hevc": "h265:none"})
    secured = camera_server({"secure": "h264:none"}, auth=f"admin:{PASSWORD}")
    daemon, layout = recorder({1: plain.url("pcma"), 2: plain.url("aac"), 3: plain.url("hevc"),
                               4: secured.url("secure", f"admin:{PASSWORD}")})
    wait_for(lambda: all(len(completed(layout, n)) >= 2 for n in (1, 2, 3, 4)), 40, "two segments per camera")
    assert daemon.stop() == 0

    assert not list(layout.recordings.rglob("*.mp4")), "segments left behind in recordings/"
    assert pids_with_argument(str(layout.root)) == [], "FFmpeg still running after stop"
    expected = {1: ("h264", "aac"), 2: ("h264", "aac"), 3: ("hevc", None), 4: ("h264", None)}
    for camera_id, (video, audio) in expected.items():
        files = completed(layout, camera_id)
        assert_all_playable(files)
        for path in files:
            found = codecs(path)
            assert found["video"][0] == video, path.name
            assert found.get("audio", (None,))[0] == audio, path.name
            assert parse_name(path.name).camera_id == camera_id
    assert all(codecs(p)["video"][1] == "hvc1" for p in completed(layout, 3))
    for text in (daemon.output(), (layout.logs / "video-recorder.log").read_text(),
                 (layout.state / "recorder.json").read_text()):
        assert PASSWORD not in text
    assert "admin:***@" in daemon.output()
    assert status(layout)["cameras"]["4"]["url"].startswith("rtsp://admin:***@")


def test_segments_are_contiguous(camera_server, tmp_path):
    """The exact command the recorder runs: each segment starts where the previous ended."""
    server = camera_server({"cam": "h264:aac"})
    version = parse_version(subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout)
    plan = build_record_command(shutil.which("ffmpeg"), CameraConfig(1, server.url("cam"), "c"),
                                StreamInfo("h264", "aac"), tmp_path, version=version,
                                segment_duration=SEGMENT, video_codec="copy", socket_timeout_s=10)
    proc = subprocess.Popen(plan.argv, env=dict(os.environ, TZ="UTC0"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: plan.segment_list.exists() and len(plan.segment_list.read_text().splitlines()) >= 4,
                 30, "four closed segments")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    rows = list(csv.reader(plan.segment_list.read_text().splitlines()))
    frame = 1 / FPS
    for previous, current in zip(rows, rows[1:]):
        assert abs(float(current[1]) - float(previous[2])) < frame, (previous, current)
    for name, start, end in rows[1:-1]:
        assert abs(duration(tmp_path / name) - (float(end) - float(start))) <= frame, name
        assert abs(float(end) - float(start) - SEGMENT) <= frame, name  # cut on the clock boundary


def test_kill9_of_ffmpeg_gives_playable_segment_and_restart(recorder, camera_server):
    server = camera_server({"cam": "h264:pcma"})
    _, layout = recorder({1: server.url("cam")}, SEGMENT_DURATION=60)
    first = wait_for(lambda: camera_status(layout, 1).get("media_seconds", 0) > 4
                     and camera_status(layout, 1), 40, "four seconds recorded")
    os.kill(first["pid"], signal.SIGKILL)
    clock = Stopwatch()
    cut = wait_for(lambda: completed(layout, 1), 10, "the killed segment in completed/")
    record("kill -9 FFmpeg", "killed segment in completed/ after", clock.elapsed())
    assert_all_playable(cut)
    assert duration(cut[0]) >= 2
    wait_for(lambda: camera_status(layout, 1).get("restarts", 0) >= 1
             and camera_status(layout, 1).get("state") == "recording", 30, "FFmpeg restarted")
    record("kill -9 FFmpeg", "recording again after", clock.elapsed())


def test_torn_real_segment_is_trimmed_and_decodes(recorder, camera_server, tmp_path):
    server = camera_server({"cam": "h264:aac"})
    daemon, layout = recorder({1: server.url("cam")}, SEGMENT_DURATION=6)
    path = wait_for(lambda: completed(layout, 1)[1:2], 40, "a whole segment")[0]
    daemon.stop()
    data = path.read_bytes()
    work = DataLayout(tmp_path / "torn")
    work.prepare()
    torn = work.recordings / path.name
    torn.write_bytes(data[: int(len(data) * 0.8)])  # cut inside a fragment
    result = hand_off(torn, work)
    assert result.inspection.torn and result.target.exists()
    assert decode_errors(result.target) == ""
    assert duration(result.target) > 2


def test_stalled_camera_is_detected_and_recovers(recorder, camera_server):
    server = camera_server({"cam": "h264:none"})
    daemon, layout = recorder({1: server.url("cam")})
    wait_for(lambda: camera_status(layout, 1).get("state") == "recording", 30, "recording")
    stalls_before = daemon.output().count("stalled")
    server.pause()
    clock = Stopwatch()
    try:
        wait_for(lambda: daemon.output().count("stalled") > stalls_before, 30, "stall detected")
        record("camera stalled (SIGSTOP)", "stall detected after (STALL_TIMEOUT=5)", clock.elapsed())
        wait_for(lambda: camera_status(layout, 1).get("state") != "recording", 15, "camera not recording")
    finally:
        server.resume()
    clock = Stopwatch()
    before = len(completed(layout, 1))
    wait_for(lambda: camera_status(layout, 1).get("state") == "recording", 60, "recording again")
    record("camera stalled (SIGSTOP)", "recording again after SIGCONT", clock.elapsed())
    wait_for(lambda: len(completed(layout, 1)) > before + 1, 30, "new segments after the stall")
    assert_all_playable(completed(layout, 1))


def test_camera_gone_and_back_is_recorded_again(recorder, camera_server):
    server = camera_server({"cam": "h264:aac"})
    _, layout = recorder({1: server.url("cam")})
    wait_for(lambda: len(completed(layout, 1)) >= 1, 30, "first segment")
    server.stop()
    wait_for(lambda: camera_status(layout, 1).get("state") in ("backoff", "probing", "starting"), 30,
             "camera seen as down")
    server.start()  # same port
    clock = Stopwatch()
    wait_for(lambda: camera_status(layout, 1).get("state") == "recording", 60, "recording again")
    record("camera gone and back", "recording again after the camera returned (backoff max 2 s)", clock.elapsed())
    count = len(completed(layout, 1))
    wait_for(lambda: len(completed(layout, 1)) >= count + 2, 60, "segments after the camera returned")
    assert camera_status(layout, 1)["restarts"] >= 1
    assert_all_playable(completed(layout, 1))


def test_one_camera_down_does_not_affect_another(recorder, camera_server):
    server = camera_server({"cam": "h264:none"})
    port = free_port()
    _, layout = recorder({1: server.url("cam"), 2: "rtsp://127.0.0.1:9/nothing"}, RECORDER_METRICS_PORT=port)
    wait_for(lambda: len(completed(layout, 1)) >= 3, 40, "camera 1 segments")
    assert camera_status(layout, 2)["state"] in ("backoff", "probing")
    assert camera_status(layout, 1)["restarts"] == 0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert 'video_recorder_camera_recording{camera="1",name="camera_1"} 1' in metrics
    assert 'video_recorder_camera_recording{camera="2",name="camera_2"} 0' in metrics


def test_kill9_of_recorder_then_restart_recovers_leftovers(recorder, camera_server):
    server = camera_server({"cam": "h264:aac"})
    daemon, layout = recorder({1: server.url("cam")}, SEGMENT_DURATION=60)
    wait_for(lambda: camera_status(layout, 1).get("media_seconds", 0) > 3, 40, "recording")
    daemon.kill9()
    wait_for(lambda: not pids_with_argument(str(layout.recordings)), 15, "orphaned FFmpeg gone")
    second, _ = recorder({1: server.url("cam")}, SEGMENT_DURATION=60)
    clock = Stopwatch()
    recovered = wait_for(lambda: completed(layout, 1), 20, "leftover handed off")
    record("kill -9 recorder", "leftover segment recovered after restart", clock.elapsed())
    assert_all_playable(recovered)
    assert "recovering segments left in" in second.output()
    leftover_runs = [p for p in layout.recordings.glob("camera_1/run-*")]
    assert len(leftover_runs) <= 1  # only the new run's own directory


def test_bad_env_exits_78_with_one_line_per_key(tmp_path):
    env = write_env(tmp_path / ".env", {"DATA_DIR": tmp_path / "d", "CAMERA_1_URL": "http://x",
                                        "SEGMENT_DURATION": "soon"})
    daemon = Daemon("services.video_recorder", env, tmp_path / "out.log").start()
    assert daemon.proc.wait(30) == 78
    daemon.stop()
    lines = daemon.output().strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in daemon.output()
    assert any("CAMERA_1_URL" in line for line in lines) and any("SEGMENT_DURATION" in line for line in lines)


def test_systemd_notifications(recorder, camera_server, tmp_path, monkeypatch):
    """READY once cameras are started, STATUS lines, and WATCHDOG keep-alives."""
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(1)
    server = camera_server({"cam": "h264:none"})
    monkeypatch.setenv("NOTIFY_SOCKET", sock_path)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    daemon, _ = recorder({1: server.url("cam")})
    seen = []

    def received():
        try:
            seen.append(sock.recv(200).decode())
        except socket.timeout:
            pass
        return {"READY=1", "WATCHDOG=1", "STATUS=1/1 cameras recording"} <= set(seen)
    wait_for(received, 40, "READY, WATCHDOG and a recording STATUS")
    assert daemon.stop() == 0
    while True:
        try:
            seen.append(sock.recv(200).decode())
        except socket.timeout:
            break
    assert "STOPPING=1" in seen
    sock.close()


def test_camera_down_alert_once_and_recovery_once(recorder, camera_server):
    from tests.support.webhook_receiver import WebhookReceiver
    server = camera_server({"cam": "h264:none"})
    with WebhookReceiver() as hook:
        _, layout = recorder({1: server.url("cam")}, ALERT_WEBHOOK_URL=hook.url, ALERT_CAMERA_DOWN_MINUTES=0.1)
        wait_for(lambda: camera_status(layout, 1).get("state") == "recording", 30, "recording")
        server.stop()
        wait_for(lambda: hook.messages, 40, "the down alert")
        server.start()
        wait_for(lambda: len(hook.messages) >= 2, 60, "the recovery message")
        time.sleep(3)  # a flood would show up here
        assert len(hook.messages) == 2, hook.messages
        assert hook.messages[0].startswith("[video-recorder] ALERT: camera 1 (camera_1) is not recording")
        assert hook.messages[1].startswith("[video-recorder] RESOLVED after")
