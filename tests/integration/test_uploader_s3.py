"""The uploader daemon as a subprocess against rclone's S3 server over HTTP."""
from __future__ import annotations

import signal

import pytest

from services.common.state_file import read_json
from tests.support.processes import wait_for
from tests.support.s3_fixtures import BUCKET, SEGMENT, drop_segment, run_once, uploader_env
from tests.support.s3_server import SlowProxy, incomplete_uploads, list_keys

MB = 1024 * 1024


def key_for(name: str, prefix: str = "site-a/") -> str:
    return f"{prefix}2026/01/24/camera_{name.split('_')[1]}/{name}"


def status_of(layout) -> dict:
    return read_json(layout.state / "uploader.json") or {}


def uploaded_names(layout) -> list[str]:
    return sorted(p.name for p in layout.uploaded.iterdir() if not p.name.startswith("."))   # receipts are hidden


def test_segments_appear_with_keys_sizes_and_metadata(tmp_path, s3_server, data_layout, start_uploader):
    # A long rescan interval: discovery must come from the watchdog events.
    env = uploader_env(tmp_path, s3_server, data_layout, RESCAN_INTERVAL=300, CAMERA_2_NAME="Front door")
    daemon = start_uploader(env)
    wait_for(lambda: status_of(data_layout).get("pid") == daemon.proc.pid, 20, "uploader status")
    names = [SEGMENT.format(cam=cam, minute=m) for cam, m in ((1, 30), (2, 30), (1, 40))]
    sizes = {name: len(drop_segment(data_layout, name, 3000 + i)) for i, name in enumerate(names)}
    (data_layout.completed / "holiday.mov").write_bytes(b"not ours")
    wait_for(lambda: uploaded_names(data_layout) == sorted(names), 30, "three segments uploaded")

    client = s3_server.client()
    assert list_keys(client, BUCKET) == {key_for(n): sizes[n] for n in names}
    head = client.head_object(Bucket=BUCKET, Key=key_for(names[1]))
    meta = {k.lower(): v for k, v in head["Metadata"].items()}
    assert head["ContentType"] == "video/mp4"
    assert meta["camera-id"] == "2" and meta["camera-name"] == "Front door"
    assert meta["segment-start"] == "2026-01-24T14:30:00Z"
    assert (data_layout.completed / "holiday.mov").exists()
    wait_for(lambda: status_of(data_layout).get("files_uploaded") == 3, 10, "status to count uploads")
    status = status_of(data_layout)
    assert status["bytes_uploaded_total"] == sum(sizes.values()) and status["queue"]["files"] == 0
    assert status["last_success"]["verified_by"] in ("crc32", "md5-etag")
    assert daemon.stop() == 0
    log = daemon.output()
    assert log.count("holiday.mov is not a segment name") == 1
    assert "verified by" in log and s3_server.secret_key not in log


def test_kill9_mid_upload_then_restart_loses_nothing(tmp_path, s3_server, data_layout, start_uploader):
    proxy = SlowProxy(s3_server.port, bytes_per_second=15 * MB)
    try:
        env = uploader_env(tmp_path, s3_server, data_layout, S3_ENDPOINT_URL=proxy.endpoint,
                           MULTIPART_THRESHOLD_MB=5, MULTIPART_PART_SIZE_MB=5, UPLOAD_CONCURRENCY=1)
        names = [SEGMENT.format(cam=1, minute=m) for m in (10, 20)]
        data = {name: drop_segment(data_layout, name, 60 * MB) for name in names}
        client = s3_server.client()
        first = start_uploader(env, "first")
        wait_for(lambda: incomplete_uploads(client, BUCKET, "site-a/"), 60, "a multipart upload in progress")
        first.kill9()
        assert incomplete_uploads(client, BUCKET, "site-a/"), "expected an interrupted multipart upload"
        assert sorted(p.name for p in data_layout.completed.iterdir()) == sorted(names)

        second = start_uploader(env, "second")
        wait_for(lambda: uploaded_names(data_layout) == sorted(names), 90, "both segments uploaded after restart")
        assert second.stop() == 0
    finally:
        proxy.close()
    assert list_keys(client, BUCKET) == {key_for(n): 60 * MB for n in names}
    for name in names:
        body = client.get_object(Bucket=BUCKET, Key=key_for(name))["Body"].read()
        assert body == data[name] == (data_layout.uploaded / name).read_bytes()
    assert incomplete_uploads(client, BUCKET, "site-a/") == []
    assert "aborted an incomplete multipart upload" in second.output()


def test_s3_down_then_back_drains_and_deletes_nothing_early(tmp_path, s3_server, data_layout, start_uploader):
    s3_server.stop()
    env = uploader_env(tmp_path, s3_server, data_layout, LOCAL_RETENTION_HOURS=0)
    daemon = start_uploader(env)
    names = [SEGMENT.format(cam=3, minute=m) for m in range(5)]
    for name in names:
        drop_segment(data_layout, name)
    wait_for(lambda: (status_of(data_layout).get("last_error") or {}).get("message"), 30, "an error in the status")
    wait_for(lambda: status_of(data_layout)["queue"]["files"] == 5, 10, "all five queued")
    # Retention 0 and several housekeeping passes while S3 is away: nothing may go.
    wait_for(lambda: daemon.output().count("retry") >= 3, 30, "a few retries")
    assert sorted(p.name for p in data_layout.completed.iterdir()) == names
    assert uploaded_names(data_layout) == []

    s3_server.start()
    wait_for(lambda: len(list_keys(s3_server.client(), BUCKET)) == 5, 60, "the queue to drain")
    wait_for(lambda: not any(data_layout.completed.iterdir()), 20, "completed/ to empty")
    assert daemon.stop() == 0
    assert daemon.proc.returncode == 0


def test_wrong_credentials_clear_message_once_and_files_stay(tmp_path, s3_server, data_layout, start_uploader):
    env = uploader_env(tmp_path, s3_server, data_layout, AWS_SECRET_ACCESS_KEY="wrong-secret-xyz",
                       CONFIG_ERROR_RETRY_SECONDS=60)
    name = SEGMENT.format(cam=1, minute=0)
    drop_segment(data_layout, name)
    daemon = start_uploader(env)
    status = wait_for(lambda: status_of(data_layout).get("config_error") and status_of(data_layout), 30,
                      "a configuration error in the status")
    assert "SignatureDoesNotMatch" in status["config_error"] and "\n" not in status["config_error"]
    assert status["state"].startswith("waiting")
    first = status["updated_at"]
    wait_for(lambda: status_of(data_layout)["updated_at"] != first, 10, "the next status update")
    log = daemon.output()
    assert log.count("S3 configuration problem") == 1
    assert "wrong-secret-xyz" not in log and "wrong-secret-xyz" not in str(status_of(data_layout))
    assert (data_layout.completed / name).exists() and list_keys(s3_server.client(), BUCKET) == {}
    assert daemon.stop() == 0


def test_missing_bucket_once_exits_1_with_clear_message(tmp_path, s3_server, data_layout):
    env = uploader_env(tmp_path, s3_server, data_layout, S3_BUCKET_NAME="no-such-bucket")
    name = SEGMENT.format(cam=1, minute=0)
    drop_segment(data_layout, name)
    result = run_once(env)
    assert result.returncode == 1
    assert "NoSuchBucket: bucket does not exist" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert (data_layout.completed / name).exists()


def test_bad_env_exits_78_naming_the_key(tmp_path, s3_server, data_layout):
    env = uploader_env(tmp_path, s3_server, data_layout, UPLOAD_CONCURRENCY="lots", S3_BUCKET_NAME=None)
    result = run_once(env)
    assert result.returncode == 78
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in result.stderr
    assert any("S3_BUCKET_NAME: required" in line for line in lines)
    assert any("UPLOAD_CONCURRENCY: must be a whole number" in line for line in lines)


def test_second_uploader_on_same_data_dir_refused(tmp_path, s3_server, data_layout, start_uploader):
    env = uploader_env(tmp_path, s3_server, data_layout)
    daemon = start_uploader(env)
    wait_for(lambda: status_of(data_layout).get("pid") == daemon.proc.pid, 20, "first uploader running")
    result = run_once(env)
    assert result.returncode == 75
    assert result.stderr.strip().count("\n") == 0 and "another uploader is running" in result.stderr
    daemon.proc.send_signal(signal.SIGINT)
    assert daemon.proc.wait(20) == 0


def test_kill9_mid_encrypted_upload_then_restart(tmp_path, s3_server, data_layout, start_uploader):
    """Encrypted: the restart re-encrypts with a new nonce; still one object per file, decrypting
    to the original bytes, and no incomplete multipart upload."""
    from services.crypt.format import decrypt_bytes, encrypted_size
    from services.crypt.keys import derive_keys
    proxy = SlowProxy(s3_server.port, bytes_per_second=15 * MB)
    try:
        env = uploader_env(tmp_path, s3_server, data_layout, S3_ENDPOINT_URL=proxy.endpoint,
                           MULTIPART_THRESHOLD_MB=5, MULTIPART_PART_SIZE_MB=5, UPLOAD_CONCURRENCY=1,
                           ENCRYPTION_PASSWORD="kill nine")
        names = [SEGMENT.format(cam=3, minute=m) for m in (10, 20)]
        data = {name: drop_segment(data_layout, name, 30 * MB) for name in names}
        client = s3_server.client()
        first = start_uploader(env, "first")
        wait_for(lambda: incomplete_uploads(client, BUCKET, "site-a/"), 60, "a multipart upload in progress")
        first.kill9()
        second = start_uploader(env, "second")
        wait_for(lambda: uploaded_names(data_layout) == sorted(names), 90, "both segments uploaded after restart")
        assert second.stop() == 0
    finally:
        proxy.close()
    keys = list_keys(client, BUCKET)
    assert keys == {key_for(n) + ".bin": encrypted_size(30 * MB) for n in names}
    keys_for_password = derive_keys("kill nine")
    for name in names:
        body = client.get_object(Bucket=BUCKET, Key=key_for(name) + ".bin")["Body"].read()
        assert decrypt_bytes(body, keys_for_password) == data[name]
    assert incomplete_uploads(client, BUCKET, "site-a/") == []


@pytest.mark.parametrize("encrypted", [False, True])
def test_kill9_mid_single_put_then_restart(tmp_path, s3_server, data_layout, start_uploader, encrypted):
    """Below the multipart threshold a segment goes up in one PUT: killed halfway, the server must
    keep nothing of it, and the restart uploads it once (no truncated object, no .conflict- copy)."""
    from services.crypt.format import decrypt_bytes, encrypted_size
    from services.crypt.keys import derive_keys
    proxy = SlowProxy(s3_server.port, bytes_per_second=10 * MB)
    extra = {"ENCRYPTION_PASSWORD": "kill nine"} if encrypted else {}
    try:
        env = uploader_env(tmp_path, s3_server, data_layout, S3_ENDPOINT_URL=proxy.endpoint, **extra)
        name = SEGMENT.format(cam=4, minute=10)
        data = drop_segment(data_layout, name, 30 * MB)
        first = start_uploader(env, "first")
        wait_for(lambda: proxy.forwarded > 10 * MB, 60, "the PUT under way")
        first.kill9()
        client = s3_server.client()
        assert (data_layout.completed / name).exists()
        assert incomplete_uploads(client, BUCKET, "site-a/") == []   # one PUT, not multipart
        second = start_uploader(env, "second")
        wait_for(lambda: uploaded_names(data_layout) == [name], 90, "the segment uploaded after restart")
        assert second.stop() == 0
        assert "verified by md5-etag+crypt-fingerprint" in second.output() or not encrypted
    finally:
        proxy.close()
    key = key_for(name) + (".bin" if encrypted else "")
    assert list_keys(client, BUCKET) == {key: encrypted_size(30 * MB) if encrypted else 30 * MB}
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert (decrypt_bytes(body, derive_keys("kill nine")) if encrypted else body) == data
