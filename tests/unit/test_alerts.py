import sys

from loguru import logger

from services.common.alerts import AlertTracker, WebhookSender, read_alert_settings
from services.common.config import EnvReader
from services.common.redact import redact
from tests.support.s3_server import free_port
from tests.support.webhook_receiver import WebhookReceiver


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


# ----- apprise (optional; installed by requirements-dev.txt) ------------------------------------
TELEGRAM = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/987654321"


def test_apprise_urls_are_split_and_their_tokens_become_secrets():
    env = EnvReader({"ALERT_APPRISE_URLS": f" {TELEGRAM}, ntfy://home-alerts mailto://me:pw-1234@example.com"
                                           "?to=a@example.com,b@example.com "})
    settings = read_alert_settings(env)
    assert env.issues == []
    assert settings.apprise_urls == (TELEGRAM, "ntfy://home-alerts",
                                     "mailto://me:pw-1234@example.com?to=a@example.com,b@example.com")
    # The bot token as apprise itself uses it (api.telegram.org/bot<token>/...) is masked too.
    assert redact("POST /bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage") == "POST /bot***:***/sendMessage"
    assert "pw-1234" not in redact("login me / pw-1234")


def test_an_apprise_url_it_does_not_understand_is_a_config_error_without_the_url():
    env = EnvReader({"ALERT_APPRISE_URLS": "ntfy://ok nosuchservice://sekrit-token@host"})
    read_alert_settings(env)
    assert [issue.key for issue in env.issues] == ["ALERT_APPRISE_URLS"]
    assert "nosuchservice://..." in str(env.issues[0]) and "sekrit" not in str(env.issues[0])


def test_apprise_urls_without_apprise_installed_are_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "apprise", None)   # `import apprise` raises ImportError
    env = EnvReader({"ALERT_APPRISE_URLS": "ntfy://home-alerts"})
    assert read_alert_settings(env).apprise_urls == ()
    assert [issue.key for issue in env.issues] == ["ALERT_APPRISE_URLS"]
    assert "pip install apprise" in str(env.issues[0])
    assert read_alert_settings(EnvReader({})).apprise_urls == ()   # unset: apprise is not needed


def test_a_real_apprise_notification_arrives_and_no_secret_is_logged(capfd):
    lines: list[str] = []
    sink = logger.add(lines.append, format="{level} {message}", level="TRACE")
    dead = free_port()
    try:
        with WebhookReceiver() as hook:
            port = hook.server.server_address[1]
            env = EnvReader({"ALERT_APPRISE_URLS": f"json://alerts:hunter2-secret@127.0.0.1:{port}/hook "
                                                   f"json://alerts:dead-secret@127.0.0.1:{dead}/hook"})
            sender = WebhookSender.for_settings(read_alert_settings(env), "s3-uploader")
            sender.attempts = 2
            sender.send("ALERT: uploads failing")
            sender.close(timeout=30)
            assert hook.messages == ["[s3-uploader] ALERT: uploads failing"]
    finally:
        logger.remove(sink)
    output = "\n".join(lines) + "".join(capfd.readouterr())
    assert "alert to apprise URL 2 (json://...) failed, message dropped" in output
    assert "apprise: " in output   # apprise's own warning about the dead target, masked
    assert "hunter2-secret" not in output and "dead-secret" not in output


def test_a_garbled_reply_does_not_end_the_sender_thread():
    """http.client raises BadStatusLine (not an OSError) when a proxy answers garbage."""
    import http.client

    from services.common.alerts import WebhookSender

    class Garbled:
        name = "the garbling proxy"

        def __init__(self):
            self.calls = 0

        def send(self, text):
            self.calls += 1
            if self.calls == 1:
                raise http.client.BadStatusLine("garbage")
    sender = WebhookSender(None, "test", attempts=1)
    garbled = Garbled()
    sender.destinations = [garbled]
    sender._thread.start()
    sender.send("first alert")
    sender.send("second alert")
    sender.close()
    assert garbled.calls == 2 and not sender._thread.is_alive()
