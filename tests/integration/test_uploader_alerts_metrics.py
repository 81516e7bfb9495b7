"""Upload-failure alerts (once, then once resolved) and the uploader's metrics endpoint."""
import time
import urllib.request

from tests.support.processes import wait_for
from tests.support.s3_fixtures import SEGMENT, drop_segment, uploader_env
from tests.support.s3_server import free_port
from tests.support.webhook_receiver import WebhookReceiver


def test_s3_outage_alerts_once_and_recovers_once(tmp_path, s3_server, data_layout, start_uploader):
    port = free_port()
    with WebhookReceiver() as hook:
        env = uploader_env(tmp_path, s3_server, data_layout, ALERT_WEBHOOK_URL=hook.url,
                           ALERT_UPLOAD_FAILING_MINUTES=0.05, UPLOADER_METRICS_PORT=port)
        start_uploader(env)
        s3_server.stop()
        for minute in range(3):
            drop_segment(data_layout, SEGMENT.format(cam=1, minute=minute))
        wait_for(lambda: hook.messages, 60, "the upload-failure alert")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "s3_uploader_queue_files 3" in metrics
        assert "s3_uploader_failures_total" in metrics
        s3_server.start()
        wait_for(lambda: len(list(data_layout.uploaded.glob("*.mp4"))) == 3, 60, "the queue to drain")
        wait_for(lambda: len(hook.messages) >= 2, 30, "the recovery message")
        time.sleep(3)
        assert len(hook.messages) == 2, hook.messages
        assert hook.messages[0].startswith("[s3-uploader] ALERT: uploads to s3://")
        assert hook.messages[1].startswith("[s3-uploader] RESOLVED after")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "s3_uploader_files_uploaded_total 3" in metrics and "s3_uploader_queue_files 0" in metrics
