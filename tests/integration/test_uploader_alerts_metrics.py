"""Upload-failure alerts (once, then once resolved) to a webhook and through apprise, and the
uploader's metrics endpoint."""
import os
import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import REPO, wait_for
from tests.support.s3_fixtures import SEGMENT, drop_segment, uploader_env
from tests.support.s3_server import free_port
from tests.support.webhook_receiver import WebhookReceiver

APPRISE_PASSWORD = "hunter2-apprise-secret"


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}


def test_s3_outage_alerts_once_and_recovers_once(tmp_path, s3_server, data_layout, start_uploader):
    port = free_port()
    with WebhookReceiver() as hook, WebhookReceiver() as apprise_target:
        apprise_url = f"json://alerts:{APPRISE_PASSWORD}@127.0.0.1:{apprise_target.server.server_address[1]}/hook"
        env = uploader_env(tmp_path, s3_server, data_layout, ALERT_WEBHOOK_URL=hook.url,
                           ALERT_APPRISE_URLS=apprise_url, ALERT_UPLOAD_FAILING_MINUTES=0.05,
                           UPLOADER_METRICS_PORT=port)
        uploader = start_uploader(env)
        s3_server.stop()
        for minute in range(3):
            drop_segment(data_layout, SEGMENT.format(cam=1, minute=minute))
        wait_for(lambda: hook.messages and apprise_target.messages, 60, "the upload-failure alert")
        metrics = scrape(port)
        assert metrics["s3_uploader_queue_files"] == 3 and metrics["s3_uploader_failures_total"] > 0
        s3_server.start()
        wait_for(lambda: len(list(data_layout.uploaded.glob("*.mp4"))) == 3, 60, "the queue to drain")
        wait_for(lambda: len(hook.messages) >= 2 and len(apprise_target.messages) >= 2, 30, "the recovery message")
        time.sleep(3)
        assert len(hook.messages) == 2, hook.messages
        assert hook.messages[0].startswith("[s3-uploader] ALERT: uploads to s3://")
        assert hook.messages[1].startswith("[s3-uploader] RESOLVED after")
        assert apprise_target.messages == hook.messages
        metrics = scrape(port)
        assert metrics["s3_uploader_files_uploaded_total"] == 3 and metrics["s3_uploader_queue_files"] == 0
        assert metrics["s3_uploader_bytes_uploaded_total"] == 3 * 4096
    logs = uploader.output() + (data_layout.logs / "s3-uploader.log").read_text()
    assert APPRISE_PASSWORD not in logs


def test_apprise_urls_without_apprise_exit_78_naming_the_key(tmp_path, s3_server, data_layout):
    shim = tmp_path / "no-apprise"
    shim.mkdir()
    (shim / "apprise.py").write_text("raise ImportError('apprise is not installed')\n")
    env = uploader_env(tmp_path, s3_server, data_layout, ALERT_APPRISE_URLS="ntfy://home-alerts")
    out = subprocess.run([sys.executable, "-m", "services.s3_uploader", "--env-file", str(env), "--once"],
                         cwd=REPO, env=dict(os.environ, PYTHONPATH=f"{shim}{os.pathsep}{REPO}"),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 78, out.stdout + out.stderr
    assert "ALERT_APPRISE_URLS" in out.stdout + out.stderr and "pip install apprise" in out.stdout + out.stderr
