"""`systemctl reload s3-uploader` (SIGHUP) against a real S3 server: the next uploads use the new
settings; a `.env` that no longer validates changes nothing and says so in the log, the state
file, `status` and the systemd STATUS line."""
import signal
import socket

from services.bucket.metadata import CAMERA_NAME
from tests.support.processes import read_status, run_module, wait_for
from tests.support.s3_fixtures import BUCKET, SEGMENT, drop_segment, uploader_env


def test_reload_applies_new_settings_and_a_broken_env_keeps_the_old_ones(tmp_path, s3_server, data_layout,
                                                                          start_uploader, monkeypatch):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(0.2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    client = s3_server.client()

    def camera_name(minute: int) -> str | None:
        """The camera name the uploader wrote into a new segment's object (once it logged it verified:
        rclone serve s3 may list a folder from its cache, so the test does not poll the listing)."""
        name = SEGMENT.format(cam=1, minute=minute)
        drop_segment(data_layout, name)
        wait_for(lambda: f"{name} -> s3://" in daemon.output(), 30, f"{name} uploaded")
        key = f"site-a/2026/01/24/camera_1/{name}"
        metadata = client.head_object(Bucket=BUCKET, Key=key)["Metadata"]
        return {k.lower(): v for k, v in metadata.items()}.get(CAMERA_NAME)   # this server capitalises them

    statuses: list[str] = []

    def status_says(text: str) -> bool:
        try:
            statuses.append(notify.recv(4096).decode())
        except socket.timeout:
            pass
        return any(text in message for message in statuses)

    env = uploader_env(tmp_path, s3_server, data_layout, CAMERA_1_NAME="porch")
    daemon = start_uploader(env)
    try:
        assert camera_name(1) == "porch"

        uploader_env(tmp_path, s3_server, data_layout, CAMERA_1_NAME="front-door")
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: ".env reloaded" in daemon.output(), 20, "the reload")
        assert camera_name(2) == "front-door"

        uploader_env(tmp_path, s3_server, data_layout, CAMERA_1_NAME="garage", UPLOAD_CONCURRENCY="lots")
        daemon.proc.send_signal(signal.SIGHUP)
        error = wait_for(lambda: read_status(data_layout.state / "uploader.json").get("env_error"), 20,
                         "the rejected .env in the state file")
        assert "UPLOAD_CONCURRENCY" in error
        wait_for(lambda: status_says(".env rejected on reload, old settings kept"), 20,
                 "the rejection in the systemd STATUS line")
        assert any("UPLOAD_CONCURRENCY" in message for message in statuses if message.startswith("STATUS="))
        (tmp_path / "valid").mkdir()
        code, out = run_module("services", "status", env_file=uploader_env(
            tmp_path / "valid", s3_server, data_layout, CAMERA_1_URL="rtsp://127.0.0.1:9/cam"))
        assert code == 1 and "s3-uploader rejected .env on reload" in out and "UPLOAD_CONCURRENCY" in out, out
        assert camera_name(3) == "front-door", "a rejected .env changed the settings"
        assert daemon.proc.poll() is None
    finally:
        assert daemon.stop() == 0
        notify.close()
    assert ".env rejected on reload: still running on the previous settings" in daemon.output()
