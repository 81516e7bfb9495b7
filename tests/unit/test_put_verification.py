"""Verifying a single PUT from its answer, and where the HEAD after it stays (moto in-process)."""
import os

import pytest
from moto import mock_aws

from services.bucket.store import ObjectStore
from services.bucket.verify import RemoteObject, remote_from_put, verify_put
from services.common.data_layout import DataLayout
from services.common.digest import digest_bytes
from services.uploader.job import SegmentJob
from tests.unit.test_uploader_unit import BUCKET, KEY, NAME, make_config, put_segment

DATA = b"segment bytes " * 1000
LOCAL = digest_bytes(DATA)


def test_a_put_answer_proves_by_crc32_or_md5_etag_only():
    crc = remote_from_put({"ETag": '"' + LOCAL.md5 + '"', "ChecksumCRC32": LOCAL.crc32}, LOCAL.size)
    assert crc.size == LOCAL.size and verify_put(LOCAL, crc).method == "crc32"
    assert verify_put(LOCAL, remote_from_put({"ETag": f'"{LOCAL.md5}"'}, LOCAL.size)).method == "md5-etag"
    # What the answer cannot prove is left to a HEAD: no checksum, and an ETag that is no MD5.
    assert verify_put(LOCAL, remote_from_put({"ETag": '"abc-2"'}, LOCAL.size)) is None
    kms = {"ETag": '"' + "1" * 32 + '"', "ServerSideEncryption": "aws:kms"}
    assert verify_put(LOCAL, remote_from_put(kms, LOCAL.size)) is None
    assert verify_put(LOCAL, remote_from_put({"ETag": f'"{LOCAL.md5}"', "SSECustomerAlgorithm": "AES256"},
                                             LOCAL.size)) is None


def test_a_put_answer_that_does_not_match_fails():
    for answer in (RemoteObject(LOCAL.size, etag="0" * 32), RemoteObject(LOCAL.size, etag=LOCAL.md5, crc32="AAAAAA=="),
                   RemoteObject(LOCAL.size - 1, etag=LOCAL.md5)):
        check = verify_put(LOCAL, answer)
        assert check is not None and not check.ok


@pytest.fixture
def job(tmp_path):
    with mock_aws():
        config = make_config(tmp_path)
        store = ObjectStore.for_config(config)
        store.client.create_bucket(Bucket=BUCKET)
        yield config, store, DataLayout(config.common.data_dir)


def count_heads(store, monkeypatch):
    heads, real = [], store.head
    monkeypatch.setattr(store, "head", lambda key: heads.append(key) or real(key))
    return heads


def forge_answer(store, **fields):
    """The server's answer to every PutObject, with `fields` replaced (None: removed)."""
    def forge(parsed, **_):
        for name, value in fields.items():
            parsed.pop(name, None) if value is None else parsed.__setitem__(name, value)
    store.client.meta.events.register("after-call.s3.PutObject", forge)


def test_where_the_store_refuses_to_overwrite_the_put_answer_verifies_without_a_head(job, monkeypatch):
    config, store, layout = job
    store.no_overwrite.enabled = True     # as the start-up probe finds on moto, AWS, MinIO
    heads = count_heads(store, monkeypatch)
    calls = []
    store.client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    outcome = SegmentJob(config, store, layout).run(put_segment(layout))
    assert (outcome.kind, outcome.key, outcome.verified_by) == ("done", KEY, "crc32")
    assert heads == []                    # nor one before it: the PUT itself fails on a taken key
    assert calls == ["PutObject"]         # one request per new file
    assert (layout.uploaded / NAME).exists()


def test_where_the_store_refuses_to_overwrite_a_taken_key_is_looked_at_after_the_refused_put(job, monkeypatch):
    config, store, layout = job
    store.no_overwrite.enabled = True
    path = put_segment(layout)
    data = path.read_bytes()
    store.client.put_object(Bucket=BUCKET, Key=KEY, Body=data)   # sent before a crash: the same bytes
    heads = count_heads(store, monkeypatch)
    outcome = SegmentJob(config, store, layout).run(path)
    assert outcome.kind == "done" and outcome.key == KEY and heads == [KEY]
    other = put_segment(layout)                                   # now other bytes under that key
    other.write_bytes(b"other " + data)
    outcome = SegmentJob(config, store, layout).run(other)
    assert outcome.kind == "done" and outcome.key != KEY and ".conflict-" in outcome.key
    assert store.client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == data


@pytest.mark.parametrize("forged", [{"ETag": '"' + "0" * 32 + '"', "ChecksumCRC32": None},
                                    {"ChecksumCRC32": "AAAAAA=="}])
def test_a_put_answer_that_does_not_match_fails_the_upload_as_a_head_would(job, monkeypatch, forged):
    config, store, layout = job
    store.no_overwrite.enabled = True
    forge_answer(store, **forged)
    heads = count_heads(store, monkeypatch)
    path = put_segment(layout)
    outcome = SegmentJob(config, store, layout).run(path)
    assert outcome.kind == "retry" and "verification failed" in outcome.message
    assert heads == [] and path.exists() and not (layout.uploaded / NAME).exists()


def test_a_store_that_ignores_conditional_writes_still_gets_the_head(job, monkeypatch):
    """There another host's PUT can land over ours after it was answered: only the HEAD sees that."""
    config, store, layout = job
    assert not store.no_overwrite.enabled     # rclone serve s3: If-None-Match ignored
    forge_answer(store, ETag='"' + "0" * 32 + '"', ChecksumCRC32=None)   # not looked at
    heads = count_heads(store, monkeypatch)
    outcome = SegmentJob(config, store, layout).run(put_segment(layout))
    assert outcome.kind == "done" and outcome.verified_by == "crc32" and heads == [KEY, KEY]
    # Another host's PUT lands right after ours was answered: the HEAD sees it, the file stays.
    other = ObjectStore.for_config(config).client

    def overwrite(**_):
        other.put_object(Bucket=BUCKET, Key=KEY.replace("14-30", "14-40"), Body=b"host-b's footage")
    store.client.meta.events.register("after-call.s3.PutObject", overwrite)
    path = put_segment(layout, name=NAME.replace("14-30", "14-40"))
    outcome = SegmentJob(config, store, layout).run(path)
    assert outcome.kind == "retry" and "verification failed" in outcome.message and path.exists()


@pytest.mark.parametrize("extra", [{"ENCRYPTION_PASSWORD": "unit password"}, {"S3_OBJECT_LOCK_DAYS": 1},
                                   {"S3_SSE": "aws:kms"}, {"MULTIPART_THRESHOLD_MB": 5, "size": 6}])
def test_encrypted_locked_kms_and_multipart_uploads_keep_the_head(tmp_path, monkeypatch, extra):
    with mock_aws():
        extra = dict(extra)
        size_mb = extra.pop("size", 0)
        config = make_config(tmp_path, **extra)
        store = ObjectStore.for_config(config)
        store.client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=bool(config.object_lock_days))
        store.no_overwrite.enabled = True
        layout = DataLayout(config.common.data_dir)
        heads = count_heads(store, monkeypatch)
        outcome = SegmentJob(config, store, layout).run(put_segment(layout, data=os.urandom(
            size_mb * 1024 * 1024 or 4096)))
        assert outcome.kind == "done", outcome.message
        assert heads[-1] == outcome.key                   # the HEAD after the upload checks it
        assert len(heads) == (2 if size_mb else 1)        # one before it for a multipart upload only
