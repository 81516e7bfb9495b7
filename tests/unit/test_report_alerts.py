"""A stuck hand-off and a camera id written by two hosts show in the STATUS line, the metrics and the alerts."""
from datetime import datetime, timezone

from services.common.alerts import AlertSettings
from services.recorder import report as recorder
from services.recorder.report import CameraReport, RecorderSnapshot, handoff_limit
from services.recorder.states import CameraState
from services.uploader import report as uploader
from services.uploader.report import Clash, UploaderSnapshot

NOW = datetime(2026, 1, 24, 14, 0, tzinfo=timezone.utc)
SETTINGS = AlertSettings(webhook_url=None, camera_down_after=60.0, upload_failing_after=600.0, disk_low_after=300.0)
SEGMENT = 60
KEY = "site/camera_3/2026/01/24/camera_3_20260124T135000Z.mp4"


def _recorder(waiting_seconds: float) -> RecorderSnapshot:
    cameras = {
        "3": CameraReport(name="gate", url="rtsp://x", state=CameraState.RECORDING,
                          handoff_waiting=4 if waiting_seconds else 0, handoff_waiting_seconds=waiting_seconds,
                          handoff_error="EPERM: link refused" if waiting_seconds else ""),
        "4": CameraReport(name="yard", url="rtsp://y", state=CameraState.RECORDING),
    }
    return RecorderSnapshot(pid=1, updated_at=NOW, segment_duration=SEGMENT, cameras=cameras)


def _alerts(conditions):
    return {key: (bad, message, after) for key, bad, message, after in conditions}


def _waiting(samples) -> dict[str, float]:
    return {s.labels["camera"]: s.value for s in samples if s.name == "video_recorder_handoff_waiting_seconds"}


def test_stuck_handoff_is_in_the_status_line_metrics_and_alerts():
    stuck = _recorder(waiting_seconds=347.0)
    assert 347.0 > handoff_limit(SEGMENT)

    line = recorder.status_line(stuck)
    assert line.startswith("2/2 cameras recording")
    assert "; hand-off stuck: camera 3 for 347s" in line
    assert "camera 4" not in line and ", 4" not in line

    assert stuck.stuck_handoffs() == [
        "camera 3: 4 closed segment(s) not in completed/ for 347s (EPERM: link refused)"]

    assert _waiting(recorder.metric_samples(stuck, disk_free=10**9)) == {"3": 347.0, "4": 0.0}

    alerts = _alerts(recorder.alert_conditions(stuck, SETTINGS))
    bad, message, after = alerts["handoff-3"]
    assert bad and after == 0.0
    assert message == ("camera 3 (gate): 4 closed segment(s) not handed to the uploader for 347s: "
                       "EPERM: link refused")
    assert alerts["handoff-4"][0] is False


def test_healthy_or_just_below_the_limit_raises_no_handoff_problem():
    for waiting in (0.0, handoff_limit(SEGMENT)):     # the limit itself is not yet stuck
        snapshot = _recorder(waiting_seconds=waiting)
        assert recorder.status_line(snapshot) == "2/2 cameras recording"
        assert snapshot.stuck_handoffs() == []
        assert _waiting(recorder.metric_samples(snapshot, disk_free=10**9)) == {"3": waiting, "4": 0.0}
        alerts = _alerts(recorder.alert_conditions(snapshot, SETTINGS))
        assert not alerts["handoff-3"][0] and not alerts["handoff-4"][0]


def test_clash_alert_names_both_hosts_the_camera_and_the_key():
    clashing = UploaderSnapshot(pid=1, updated_at=NOW, bucket="footage", host_id="gatehouse",
                                clashes=(Clash(camera_id=3, key=KEY, other_host="barn", at=NOW),))
    bad, message, after = _alerts(uploader.alert_conditions(clashing, SETTINGS))["clash"]
    assert bad and after == 0.0
    assert "camera 3 is written by two hosts" in message
    assert "this one (gatehouse)" in message and "and barn " in message
    assert KEY in message
    assert {s.name: s.value for s in uploader.metric_samples(clashing)}["s3_uploader_camera_clashes"] == 1


def test_two_clashes_are_both_in_the_one_alert():
    clashes = (Clash(3, KEY, "barn", NOW), Clash(5, KEY.replace("camera_3", "camera_5"), "shed", NOW))
    snapshot = UploaderSnapshot(pid=1, updated_at=NOW, host_id="gatehouse", clashes=clashes)
    bad, message, _ = _alerts(uploader.alert_conditions(snapshot, SETTINGS))["clash"]
    assert bad
    assert message.count("written by two hosts") == 2
    assert "camera 3" in message and "barn" in message and "camera 5" in message and "shed" in message


def test_no_clash_raises_no_clash_alert():
    healthy = UploaderSnapshot(pid=1, updated_at=NOW, bucket="footage", host_id="gatehouse")
    bad, message, _ = _alerts(uploader.alert_conditions(healthy, SETTINGS))["clash"]
    assert not bad and message == ""
    assert {s.name: s.value for s in uploader.metric_samples(healthy)}["s3_uploader_camera_clashes"] == 0
