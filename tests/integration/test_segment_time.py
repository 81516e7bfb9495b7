"""Segment times against an independent reference recording of the same live camera.

The reference is a plain FFmpeg reading the camera from before the recorder starts and stamping
every packet with the host time it read it. Each segment's first video packet is found in the
reference by its bytes; that is the true time of its first frame. Checked for the first segment
of a start, of a restart after `kill -9` of FFmpeg, of a restart after a stall (FFmpeg stopped
with SIGSTOP: no media, while the reference, a client of the same shared camera media, goes
on), and for the segments in between (docs/architecture.md, "Time").
"""
import os
import signal
import time
from datetime import datetime, timedelta, timezone

from services.common.data_layout import DataLayout
from services.common.mp4_fragments import read_stamp
from services.common.segment_names import parse_name
from tests.support.media import first_frame_in_reference, reference_index, start_reference, video_packets
from tests.support.processes import Daemon, read_status, run_module, wait_for, write_env

SEGMENT = 4
GOP = 1.0          # the test camera's key-frame interval
STAMP_ERROR = 0.2  # seconds a stored first-frame time may be off


def _camera(layout):
    return read_status(layout.state / "recorder.json").get("cameras", {}).get("1", {})


def _completed(layout):
    return sorted(layout.completed.glob("camera_1_*.mp4"))


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def test_names_and_stamps_match_the_first_frame_across_start_kill9_and_stall(camera_server, tmp_path):
    server = camera_server({"cam": "h264:none"})
    reference_file = tmp_path / "reference.mkv"
    reference = start_reference(server.url("cam"), reference_file)
    env = write_env(tmp_path / ".env", {"DATA_DIR": tmp_path / "data", "SEGMENT_DURATION": SEGMENT,
                                        "STALL_TIMEOUT": 5, "FFMPEG_STOP_TIMEOUT": 5, "LOG_LEVEL": "DEBUG",
                                        "CAMERA_1_URL": server.url("cam")})
    layout = DataLayout(tmp_path / "data")
    try:
        time.sleep(2)   # the reference is live before the recorder starts
        daemon = Daemon("services.video_recorder", env, tmp_path / "recorder.log",
                        {"RECORDER_BACKOFF_MAX": "1", "RECORDER_STABLE_AFTER": "5"}).start()
        try:
            wait_for(lambda: len(_completed(layout)) >= 2, 40, "two segments after the start")
            os.kill(_camera(layout)["pid"], signal.SIGKILL)
            seen = len(_completed(layout))
            wait_for(lambda: _camera(layout).get("restarts", 0) >= 1 and len(_completed(layout)) >= seen + 3,
                     40, "two segments after kill -9 of FFmpeg")
            os.kill(_camera(layout)["pid"], signal.SIGSTOP)   # stopped as stalled after STALL_TIMEOUT
            seen = len(_completed(layout))
            wait_for(lambda: _camera(layout).get("restarts", 0) >= 2 and len(_completed(layout)) >= seen + 3,
                     60, "two segments after the stall")
            assert _camera(layout)["restarts"] >= 2
        finally:
            daemon.stop()
    finally:
        reference.send_signal(signal.SIGINT)
        reference.wait(15)
    truth = reference_index(reference_file)
    segments = _completed(layout)
    rows = []
    for path in segments:
        named = parse_name(path.name).start.timestamp()
        true = first_frame_in_reference(path, truth, named)
        assert true is not None, f"{path.name}: first packet not in the reference"
        stamp = read_stamp(path)
        assert stamp is not None, f"{path.name} has no first-frame stamp"
        rows.append((path.name, named - true, stamp.timestamp() - true))
    print("\nsegment, name - first frame, stamp - first frame (s)")
    print("\n".join(f"{name}  {by_name:+.3f}  {by_stamp:+.3f}" for name, by_name, by_stamp in rows))
    for name, by_name, by_stamp in rows:
        # The name is the stamp truncated to the second; the stamp is the first frame's time.
        assert -1.0 < by_name - by_stamp <= 1e-6, f"{name} named {by_name - by_stamp:+.3f} s from its stamp"
        assert abs(by_stamp) <= STAMP_ERROR, f"{name} stamped {by_stamp:+.3f} s from its first frame"

    # A 3-s clip around a known frame (the middle of the second segment) shows it 1.5 s in.
    packets = video_packets(segments[1])
    _, digest = packets[len(packets) // 2]
    moment = _utc(min(truth[digest], key=lambda seconds: abs(seconds - read_stamp(segments[1]).timestamp())))
    clip = tmp_path / "clip.mp4"
    code, output = run_module("services", "clip", "--camera", "1",
                              "--start", (moment - timedelta(seconds=1.5)).isoformat(),
                              "--end", (moment + timedelta(seconds=1.5)).isoformat(), "-o", str(clip), env_file=env)
    assert code == 0, output
    at = {d: seconds for seconds, d in video_packets(clip)}
    assert abs(at[digest] - 1.5) <= STAMP_ERROR, f"the frame is {at[digest]:.3f} s into the clip, not 1.5"
