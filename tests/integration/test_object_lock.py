"""Object lock: settings, and uploads honoured by a server that implements it (moto).

moto 5.2 keeps the lock of a single PUT but drops it when a multipart upload completes (and has
no GetObjectRetention), so: the retention is read from head_object; the multipart case checks
the requests the uploader sends (lock headers on CreateMultipartUpload, a checksum on every
request), and that the uploader notices the dropped lock and sets the retention afterwards.
rclone serve s3 has no object lock but stores the lock headers and echoes them back: the
uploader must go by the bucket's setting, and must never send it PutObjectRetention, which it
takes for a PutObject that replaces the object.
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from services.bucket.client import transfer_config
from services.bucket.store import ObjectStore
from services.bucket.keys import object_key, stored_key
from services.bucket.verify import remote_from_head, verify
from services.common.config import ConfigError, EnvReader
from services.common.data_layout import DataLayout
from services.common.digest import digest_file
from services.common.segment_names import parse_name
from services.uploader.config import MB, read_uploader_config
from services.uploader.job import SegmentJob
from tests.support.s3_fixtures import BUCKET, drop_segment, run_once, uploader_env
from tests.support.s3_server import S3Server, list_keys

NAME = "camera_3_2026-01-24_14-30-00.mp4"


def read(tmp_path, **values):
    base = {"DATA_DIR": str(tmp_path / "data"), "S3_BUCKET_NAME": "my-bucket", **values}
    return read_uploader_config(EnvReader({k: str(v) for k, v in base.items()}))


def problems(tmp_path, **values):
    with pytest.raises(ConfigError) as info:
        read(tmp_path, **values)
    return [str(issue) for issue in info.value.issues]


def test_lock_settings(tmp_path):
    config = read(tmp_path)
    assert (config.object_lock_days, config.object_lock_mode) == (0, "GOVERNANCE")
    config = read(tmp_path, S3_OBJECT_LOCK_DAYS=30, S3_OBJECT_LOCK_MODE="Compliance")
    assert (config.object_lock_days, config.object_lock_mode) == (30, "COMPLIANCE")
    assert problems(tmp_path, S3_OBJECT_LOCK_DAYS="forever") == [
        "S3_OBJECT_LOCK_DAYS: must be a whole number, got 'forever'"]
    assert problems(tmp_path, S3_OBJECT_LOCK_DAYS=36501)[0].startswith("S3_OBJECT_LOCK_DAYS: must be between 0")
    assert problems(tmp_path, S3_OBJECT_LOCK_MODE="legal")[0].startswith("S3_OBJECT_LOCK_MODE: must be one of")
    found = problems(tmp_path, S3_OBJECT_LOCK_DAYS=7, S3_CHECKSUM="off")
    assert len(found) == 1 and found[0].startswith("S3_OBJECT_LOCK_DAYS: object lock needs S3_CHECKSUM=crc32")
    # Lock off: S3_CHECKSUM=off stays allowed.
    assert read(tmp_path, S3_CHECKSUM="off", S3_OBJECT_LOCK_MODE="compliance").object_lock_days == 0


def test_extra_args_carry_retention_only_when_on(tmp_path):
    layout = DataLayout(tmp_path / "data")
    segment = parse_name(NAME)
    path = tmp_path / NAME
    path.write_bytes(b"x" * 100)
    digest = digest_file(path)
    off = SegmentJob(read(tmp_path), None, layout).extra_args(segment, digest, None)
    assert "ObjectLockMode" not in off and "ObjectLockRetainUntilDate" not in off
    before = time.time()
    on = SegmentJob(read(tmp_path, S3_OBJECT_LOCK_DAYS=10), None, layout).extra_args(segment, digest, None)
    until = on["ObjectLockRetainUntilDate"]
    assert on["ObjectLockMode"] == "GOVERNANCE" and until.tzinfo is not None
    assert before + 10 * 86400 - 1 <= until.timestamp() <= time.time() + 10 * 86400 + 1
    assert on["ChecksumAlgorithm"] == "CRC32" and on["ChecksumCRC32"] == digest.crc32


@pytest.fixture
def moto_lock(tmp_path):
    server = S3Server(tmp_path / "moto", kind="moto").start()
    server.client().create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    yield server
    server.stop()


def test_uploaded_object_is_retained_and_cannot_be_deleted(moto_lock, tmp_path):
    layout = DataLayout(tmp_path / "data")
    layout.prepare()
    drop_segment(layout, NAME)
    env = uploader_env(tmp_path, moto_lock, layout, S3_OBJECT_LOCK_DAYS=2, S3_OBJECT_LOCK_MODE="governance")
    started = datetime.now(timezone.utc)
    out = run_once(env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (layout.uploaded / NAME).is_file()
    client = moto_lock.client()
    key = object_key("site-a/", parse_name(NAME))
    head = client.head_object(Bucket=BUCKET, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    days = (head["ObjectLockRetainUntilDate"] - started).total_seconds() / 86400
    assert 1.99 < days < 2.01
    with pytest.raises(ClientError) as info:
        client.delete_object(Bucket=BUCKET, Key=key, VersionId=head["VersionId"])
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    versions = client.list_object_versions(Bucket=BUCKET, Prefix=key)["Versions"]
    assert [v["VersionId"] for v in versions] == [head["VersionId"]]
    assert client.head_object(Bucket=BUCKET, Key=key, VersionId=head["VersionId"])["ContentLength"] == 4096


def test_multipart_upload_sends_lock_headers_and_checksums(moto_lock, tmp_path):
    config = read(tmp_path, **moto_lock.env(BUCKET), S3_OBJECT_LOCK_DAYS=1, MULTIPART_THRESHOLD_MB=5,
                  MULTIPART_PART_SIZE_MB=5)
    client = moto_lock.client()
    sent: list[tuple[str, dict]] = []

    def record(request, **_):
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        sent.append((f"{request.method} {request.url}", headers))
    client.meta.events.register("before-send.s3", record)
    store = ObjectStore(client, BUCKET, transfer_config(config))
    path = tmp_path / NAME
    path.write_bytes(os.urandom(11 * MB))
    digest = digest_file(path)
    key = object_key(config.prefix, parse_name(NAME))
    store.upload(path, key, SegmentJob(config, store, DataLayout(tmp_path / "data")).extra_args(
        parse_name(NAME), digest, None))
    create = [h for what, h in sent if what.startswith("POST") and what.endswith("?uploads")]
    parts = [h for what, h in sent if what.startswith("PUT") and "partNumber=" in what]
    assert len(create) == 1 and len(parts) == 3
    assert create[0]["x-amz-object-lock-mode"] == "GOVERNANCE"
    assert create[0]["x-amz-object-lock-retain-until-date"]
    assert all("x-amz-checksum-crc32" in h or "x-amz-trailer" in h for h in parts)
    assert verify(digest, remote_from_head(client.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED"))).ok


@pytest.mark.parametrize("encrypted", [False, True])
def test_multipart_upload_whose_lock_the_server_dropped_gets_its_retention(moto_lock, tmp_path, encrypted):
    layout = DataLayout(tmp_path / "data")
    layout.prepare()
    drop_segment(layout, NAME, size=11 * MB)
    env = uploader_env(tmp_path, moto_lock, layout, S3_OBJECT_LOCK_DAYS=3, MULTIPART_THRESHOLD_MB=5,
                       MULTIPART_PART_SIZE_MB=5, ENCRYPTION_PASSWORD="lock test" if encrypted else None)
    started = datetime.now(timezone.utc)
    out = run_once(env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "retention set afterwards" in out.stdout + out.stderr
    client = moto_lock.client()
    key = stored_key("site-a/", parse_name(NAME), encrypted)
    head = client.head_object(Bucket=BUCKET, Key=key)
    assert head["ETag"].endswith('-3"')          # it was a multipart upload
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert 2.99 < (head["ObjectLockRetainUntilDate"] - started).total_seconds() / 86400 < 3.01
    with pytest.raises(ClientError) as info:
        client.delete_object(Bucket=BUCKET, Key=key, VersionId=head["VersionId"])
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    assert (layout.uploaded / NAME).is_file()


def test_lock_on_a_server_without_object_lock_uploads_nothing_and_keeps_the_file(s3_server, tmp_path):
    layout = DataLayout(tmp_path / "data")
    layout.prepare()
    data = drop_segment(layout, NAME, size=6 * MB)
    env = uploader_env(tmp_path, s3_server, layout, S3_OBJECT_LOCK_DAYS=3)
    out = run_once(env)
    assert out.returncode == 1
    assert "does not have object lock enabled" in out.stdout + out.stderr
    assert (layout.completed / NAME).read_bytes() == data           # kept locally
    assert list_keys(s3_server.client(), BUCKET) == {}                # no unlocked object
