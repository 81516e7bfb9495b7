"""Drill: a network blip. The camera is fine, but its open TCP connection goes silent (no FIN,
no RST) while a new connection works at once, as with Wi-Fi cameras and cheap switches.

A TCP proxy in front of the test camera silences every open connection on cue and keeps
accepting new ones. The recorder runs with its default timings; the hole in the footage is
measured from the segments it handed off.
"""
from tests.support.figures import Stopwatch, record
from tests.support.media import decode_errors, footage_gaps
from tests.support.processes import wait_for
from tests.support.recorder_drills import DEFAULT_STALL_TIMEOUT, start_recorder
from tests.support.tcp_proxy import TcpProxy

SEGMENT = 2
TARGET = 15.0  # seconds of footage a blip may cost one camera


def test_network_blip_costs_seconds_of_footage(tmp_path, camera_server):
    server = camera_server({"cam": "h264:aac"})
    proxy = TcpProxy(server.port).start()
    recorder = start_recorder(tmp_path, {1: proxy.url("cam")}, SEGMENT)
    try:
        wait_for(lambda: len(recorder.segments(1)) >= 2, 40, "segments before the blip")
        assert proxy.silence() >= 1
        blip = Stopwatch()
        wait_for(lambda: "stalled" in recorder.daemon.output(), 2 * DEFAULT_STALL_TIMEOUT, "the stall noticed")
        record("network blip", f"stall noticed after (STALL_TIMEOUT={DEFAULT_STALL_TIMEOUT})", blip.elapsed())
        wait_for(lambda: recorder.camera(1).get("restarts", 0) >= 1 and recorder.camera(1).get("state") == "recording",
                 30, "recording again over a new connection")
        record("network blip", "recording again after the blip", blip.elapsed())
        before = len(recorder.segments(1))
        wait_for(lambda: len(recorder.segments(1)) >= before + 2, 20, "segments after the blip")
    finally:
        stopped = recorder.daemon.stop()
        proxy.stop()
    assert stopped == 0
    output = recorder.daemon.output()
    assert "did not stop within" not in output, "a stalled FFmpeg was given a graceful stop"
    assert "-> backoff" not in output, "the reconnection waited for a backoff"
    files = recorder.segments(1)
    for path in files:
        assert decode_errors(path) == "", path.name
    gaps = footage_gaps(files, SEGMENT)
    record("network blip", "footage lost (hole between the segments)", sum(gaps))
    assert len(gaps) == 1, gaps
    assert gaps[0] <= TARGET, f"the blip cost {gaps[0]:.1f}s of footage"
