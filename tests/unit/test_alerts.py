from services.common.alerts import AlertTracker, read_alert_settings
from services.common.config import EnvReader


def test_alert_once_after_delay_then_resolved_once():
    tracker = AlertTracker()
    sent = [tracker.update("cam1", True, "camera 1 down", 300, now) for now in (0, 100, 299)]
    assert sent == [None, None, None]
    assert tracker.update("cam1", True, "camera 1 down", 300, 300) == "ALERT: camera 1 down"
    assert tracker.update("cam1", True, "camera 1 down", 300, 600) is None  # no repeat
    assert tracker.update("cam1", False, "", 300, 900) == "RESOLVED after 15 min: camera 1 down"
    assert tracker.update("cam1", False, "", 300, 901) is None


def test_short_blip_sends_nothing():
    tracker = AlertTracker()
    assert tracker.update("disk", True, "disk low", 60, 0) is None
    assert tracker.update("disk", False, "", 60, 30) is None


def test_zero_delay_alerts_at_once_and_keys_are_independent():
    tracker = AlertTracker()
    assert tracker.update("disk", True, "disk low", 0, 5) == "ALERT: disk low"
    assert tracker.update("cam2", True, "camera 2 down", 10, 5) is None


def test_settings():
    env = EnvReader({"ALERT_WEBHOOK_URL": "https://hooks.example/T/B/secret", "ALERT_CAMERA_DOWN_MINUTES": "0.5"})
    settings = read_alert_settings(env)
    assert settings.camera_down_after == 30 and settings.upload_failing_after == 900
    bad = EnvReader({"ALERT_WEBHOOK_URL": "ftp://x"})
    read_alert_settings(bad)
    assert bad.issues[0].key == "ALERT_WEBHOOK_URL"
