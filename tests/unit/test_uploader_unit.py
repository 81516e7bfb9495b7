"""The uploader against moto in-process: verification, idempotence, conflicts, housekeeping."""
import os
import time
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from services.bucket.client import classify, make_client, transfer_config
from services.bucket.store import ObjectStore
from services.common.config import EnvReader
from services.common.data_layout import DataLayout
from services.common.state_file import read_json
from services.uploader.config import read_uploader_config
from services.uploader.job import OutcomeKind, SegmentJob
from services.uploader.receipts import read_receipt
from services.uploader.scheduler import Uploader

BUCKET = "unit-bucket"
NAME = "camera_2_2026-01-24_14-30-00.mp4"
KEY = "cams/2026/01/24/camera_2/" + NAME


@pytest.fixture
def s3():
    with mock_aws():
        yield


def make_config(tmp_path, **extra):
    values = {"DATA_DIR": str(tmp_path / "data"), "S3_BUCKET_NAME": BUCKET, "S3_PREFIX": "cams",
              "AWS_ACCESS_KEY_ID": "AKIAUNITTESTKEY", "AWS_SECRET_ACCESS_KEY": "unit-secret-value",
              "CAMERA_2_NAME": "Back yard", "MULTIPART_THRESHOLD_MB": "5", "MULTIPART_PART_SIZE_MB": "5"}
    values.update({k: str(v) for k, v in extra.items()})
    config = read_uploader_config(EnvReader(values))
    DataLayout(config.common.data_dir).prepare()   # as run_daemon does: reading settings creates nothing
    return config


@pytest.fixture
def setup(tmp_path, s3):
    config = make_config(tmp_path)
    store = ObjectStore.for_config(config)
    store.client.create_bucket(Bucket=BUCKET)
    return config, store.client, store, DataLayout(config.common.data_dir)


def put_segment(layout, name=NAME, data=None, age_hours=0.0):
    path = layout.completed / name
    path.write_bytes(os.urandom(2048) if data is None else data)
    if age_hours:
        stamp = time.time() - age_hours * 3600
        os.utime(path, (stamp, stamp))
    return path


def test_upload_sets_key_metadata_and_moves_after_verification(setup):
    config, client, store, layout = setup
    path = put_segment(layout)
    data = path.read_bytes()
    outcome = SegmentJob(config, store, layout).run(path)
    assert (outcome.kind, outcome.key, outcome.verified_by) == ("done", KEY, "crc32")
    head = client.head_object(Bucket=BUCKET, Key=KEY)
    assert head["ContentType"] == "video/mp4" and head["ServerSideEncryption"] == "AES256"
    assert head["Metadata"]["camera-id"] == "2" and head["Metadata"]["camera-name"] == "Back yard"
    assert head["Metadata"]["segment-start"] == "2026-01-24T14:30:00Z"
    assert client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == data
    assert not path.exists() and (layout.uploaded / NAME).read_bytes() == data


def test_multipart_upload_is_verified(setup):
    config, client, store, layout = setup
    path = put_segment(layout, data=os.urandom(11 * 1024 * 1024))
    outcome = SegmentJob(config, store, layout).run(path)
    assert outcome.kind == "done" and outcome.uploaded_bytes == 11 * 1024 * 1024
    assert client.head_object(Bucket=BUCKET, Key=KEY)["ETag"].endswith('-3"')


def test_same_content_already_in_bucket_is_just_marked_done(setup):
    config, client, store, layout = setup
    data = os.urandom(4096)
    SegmentJob(config, store, layout).run(put_segment(layout, data=data))
    (layout.uploaded / NAME).unlink()
    outcome = SegmentJob(config, store, layout).run(put_segment(layout, data=data))
    assert outcome.kind == "done" and outcome.uploaded_bytes == 0 and outcome.key == KEY
    assert list(client.list_objects_v2(Bucket=BUCKET)["Contents"]) and \
        len(client.list_objects_v2(Bucket=BUCKET)["Contents"]) == 1


@pytest.mark.parametrize("same_size", [False, True])
def test_other_content_is_never_overwritten(setup, same_size):
    config, client, store, layout = setup
    theirs = b"x" * 4096
    client.put_object(Bucket=BUCKET, Key=KEY, Body=theirs)  # no checksum/metadata: unprovable
    ours = os.urandom(4096 if same_size else 5000)
    path = put_segment(layout, data=ours)
    outcome = SegmentJob(config, store, layout).run(path)
    assert outcome.kind == "done" and outcome.key != KEY and ".conflict-" in outcome.key
    assert client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == theirs
    assert client.get_object(Bucket=BUCKET, Key=outcome.key)["Body"].read() == ours
    # A retry (e.g. after a crash before the move) finds its own copy under the distinct key.
    outcome2 = SegmentJob(config, store, layout).run(put_segment(layout, data=ours))
    assert outcome2.key == outcome.key and outcome2.uploaded_bytes == 0


@pytest.mark.parametrize("size_mb", [0, 11])   # one PUT, and a multipart upload's CompleteMultipartUpload
@pytest.mark.parametrize("guarded", [True, False])
def test_a_key_taken_between_head_and_put_is_refused_by_the_server_and_chosen_again(setup, monkeypatch,
                                                                                  guarded, size_mb):
    """Another host wrote the key after our HEAD: with If-None-Match the server refuses ours (412),
    and the job uploads next to it; without the header the other host's object is replaced."""
    config, client, store, layout = setup
    theirs = b"host-b's footage"
    real_head, raced = store.head, []

    def head_then_race(key):   # our HEAD sees nothing; then the other host's PUT lands
        remote = real_head(key)
        if key == KEY and not raced:
            raced.append(key)
            client.put_object(Bucket=BUCKET, Key=KEY, Body=theirs, Metadata={"host-id": "host-b"})
        return remote
    monkeypatch.setattr(store, "head", head_then_race)
    store.no_overwrite.enabled = guarded
    if guarded and not size_mb:   # a single PUT asks no HEAD first there: theirs is simply first
        raced.append(KEY)
        client.put_object(Bucket=BUCKET, Key=KEY, Body=theirs, Metadata={"host-id": "host-b"})
    ours = os.urandom(size_mb * 1024 * 1024 or 4096)
    outcome = SegmentJob(config, store, layout).run(put_segment(layout, data=ours))
    assert outcome.kind == "done"
    if guarded:
        assert ".conflict-" in outcome.key and outcome.clash is not None and outcome.clash.other_host == "host-b"
        assert client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == theirs
        assert client.get_object(Bucket=BUCKET, Key=outcome.key)["Body"].read() == ours
    else:   # what the receipt and the check before deletion are for
        assert outcome.key == KEY and client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == ours


def test_the_probe_finds_whether_the_server_refuses_to_overwrite(setup, monkeypatch):
    config, client, store, layout = setup
    assert store.probe_conditional_writes("cams/.uploader-probe/h", b"probe") is True   # moto honours it
    assert store.no_overwrite.enabled
    ignoring = ObjectStore.for_config(config)
    ignoring.client.meta.events.register("before-parameter-build.s3.PutObject",
                                         lambda params, **_: params.pop("IfNoneMatch", None))
    assert ignoring.probe_conditional_writes("cams/.uploader-probe/h2", b"probe") is False
    assert not ignoring.no_overwrite.enabled


def test_clash_in_uploaded_folder_keeps_both(setup):
    config, client, store, layout = setup
    (layout.uploaded / NAME).write_bytes(b"older copy")
    outcome = SegmentJob(config, store, layout).run(put_segment(layout))
    assert outcome.kind == "done"
    kept = [p for p in layout.uploaded.iterdir() if not p.name.startswith(".")]
    assert len(kept) == 2 and (layout.uploaded / NAME).read_bytes() == b"older copy"


def test_missing_bucket_is_a_configuration_problem_and_file_stays(tmp_path, s3):
    config = make_config(tmp_path)
    store = ObjectStore(make_client(config), BUCKET, transfer_config(config))
    layout = DataLayout(config.common.data_dir)
    path = put_segment(layout)
    outcome = SegmentJob(config, store, layout).run(path)
    assert outcome.kind == "config" and "NoSuchBucket" in outcome.message
    assert path.exists()


def test_classify():
    def client_error(code):
        return ClientError({"Error": {"Code": code, "Message": "m"}}, "PutObject")
    assert classify(client_error("AccessDenied"), "x").kind == "config"
    assert classify(client_error("SignatureDoesNotMatch"), "x").kind == "config"
    assert classify(client_error("SlowDown"), "x").kind == "transient"
    assert classify(client_error("InternalError"), "x").kind == "transient"
    assert classify(EndpointConnectionError(endpoint_url="http://h"), "x").kind == "transient"
    wrapped = RuntimeError("Failed to upload f: An error occurred (InvalidAccessKeyId) when calling ...")
    assert classify(wrapped, "x").code == "InvalidAccessKeyId"


def test_run_once_uploads_all_skips_unknown_and_writes_status(setup):
    config, client, store, layout = setup
    names = [f"camera_1_2026-01-24_14-3{i}-00.mp4" for i in range(5)]
    for name in names:
        put_segment(layout, name)
    (layout.completed / "notes.txt").write_text("not a segment")
    (layout.completed / ".camera_1_2026-01-24_15-00-00.mp4.tmp").write_bytes(b"partial")
    # This host's crashed run left a multipart upload (its journal lists it); another host sharing
    # the prefix has one in flight, and one more lives outside the prefix.
    stale = client.create_multipart_upload(Bucket=BUCKET, Key="cams/2026/01/24/camera_1/stale.mp4")["UploadId"]
    client.create_multipart_upload(Bucket=BUCKET, Key="cams/2026/01/24/camera_9/other-host.mp4")
    client.create_multipart_upload(Bucket=BUCKET, Key="other/keep.mp4")
    journal = layout.state / "multipart-uploads"
    journal.write_text(f"{stale} cams/2026/01/24/camera_1/stale.mp4\n")
    store = ObjectStore.for_config(config, journal=journal)

    def started_just_now(parsed, **_):   # moto dates every upload 2010; a real server says when
        for upload in parsed.get("Uploads", []):
            upload["Initiated"] = datetime.now(timezone.utc)
    store.client.meta.events.register("after-call.s3.ListMultipartUploads", started_just_now)
    assert Uploader(config, store=store, once=True, install_signals=False).run() == 0
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {f"cams/2026/01/24/camera_1/{n}" for n in names} | {"cams/.uploader-probe/" + config.host_id}
    assert sorted(p.name for p in layout.uploaded.iterdir() if not p.name.startswith(".")) == names
    assert all(read_receipt(layout.uploaded / n).key == f"cams/2026/01/24/camera_1/{n}" for n in names)
    assert journal.read_text() == ""
    assert sorted(p.name for p in layout.completed.iterdir()) == [".camera_1_2026-01-24_15-00-00.mp4.tmp",
                                                                  "notes.txt"]
    left = sorted(u["Key"] for u in client.list_multipart_uploads(Bucket=BUCKET)["Uploads"])
    assert left == ["cams/2026/01/24/camera_9/other-host.mp4", "other/keep.mp4"]
    status = read_json(layout.state / "uploader.json")
    assert status["files_uploaded"] == 5 and status["queue"]["files"] == 0
    assert status["skipped_unknown_files"] == ["notes.txt"]
    assert "unit-secret-value" not in (layout.state / "uploader.json").read_text()


def test_run_once_missing_bucket_exits_1_keeps_files(tmp_path, s3):
    config = make_config(tmp_path, CONFIG_ERROR_RETRY_SECONDS=1)
    layout = DataLayout(config.common.data_dir)
    path = put_segment(layout)
    assert Uploader(config, once=True, install_signals=False).run() == 1
    assert path.exists()
    status = read_json(layout.state / "uploader.json")
    assert "NoSuchBucket" in status["config_error"] and status["queue"]["files"] == 1


def test_retention_deletes_only_old_uploaded_files(setup):
    config, client, store, layout = setup
    old, new = layout.uploaded / "camera_1_2026-01-01_00-00-00.mp4", layout.uploaded / "camera_1_2026-01-02_00-00-00.mp4"
    for path, age in ((old, 25), (new, 23)):
        path.write_bytes(b"v")
        os.utime(path, (time.time() - age * 3600,) * 2)
    waiting = put_segment(layout, age_hours=48)
    Uploader(config, store=store, install_signals=False).housekeeping()
    assert not old.exists() and new.exists() and waiting.exists()


@pytest.mark.parametrize("opt_in", [False, True])
def test_disk_guard(tmp_path, s3, opt_in):
    config = make_config(tmp_path, MIN_FREE_DISK_MB=2, DELETE_UNUPLOADED_WHEN_FULL=opt_in)
    layout = DataLayout(config.common.data_dir)
    uploaded = []
    for i, age in enumerate((3, 2, 1)):
        path = layout.uploaded / f"camera_1_2026-01-0{i + 1}_00-00-00.mp4"
        path.write_bytes(b"u" * 500_000)
        os.utime(path, (time.time() - age * 3600,) * 2)
        uploaded.append(path)
    waiting = put_segment(layout, data=b"w" * 500_000, age_hours=10)

    def free_bytes(_root):  # 0.2 MB free plus whatever was deleted
        return 200_000 + sum(500_000 for p in uploaded + [waiting] if not p.exists())

    store = ObjectStore(make_client(config), BUCKET, transfer_config(config))
    Uploader(config, store=store, free_bytes=free_bytes, install_signals=False).housekeeping()
    # 2 MiB minimum: 1_897_152 bytes short -> all three uploaded files, and still short.
    if opt_in:
        assert [p.exists() for p in uploaded] == [False, False, False] and not waiting.exists()
    else:
        assert [p.exists() for p in uploaded] == [False, False, False] and waiting.exists()


@pytest.mark.parametrize("size, scheme, sent_check", [
    (3 * 1024 * 1024, "http", "md5-etag"),         # one streaming PUT, no checksum header on plain HTTP
    (3 * 1024 * 1024, "https", "crc32"),           # one streaming PUT, CRC32 in a trailer
    (11 * 1024 * 1024, "http", "composite-crc32"),  # three parts
    (11 * 1024 * 1024, "https", "composite-crc32")])
@pytest.mark.parametrize("constructed", ["for_config", "without put client"])
def test_encrypted_upload_encrypts_every_block_exactly_once(tmp_path, s3, monkeypatch, size, scheme, sent_check,
                                                            constructed):
    """botocore reads a seekable body several times (checksum, payload hash, send); each read would re-encrypt."""
    import services.crypt.format as crypt_format

    sealed = []
    real = crypt_format.crypto_secretbox
    monkeypatch.setattr(crypt_format, "crypto_secretbox", lambda *args: sealed.append(1) or real(*args))
    config = make_config(tmp_path, ENCRYPTION_PASSWORD="unit password", S3_ENDPOINT_URL=f"{scheme}://s3.amazonaws.com")
    if constructed == "for_config":
        store = ObjectStore.for_config(config)
    else:  # every stream through s3transfer, multipart or not
        store = ObjectStore(make_client(config), BUCKET, transfer_config(config))
        sent_check = "crc32" if sent_check == "md5-etag" else sent_check
    store.client.create_bucket(Bucket=BUCKET)
    layout = DataLayout(config.common.data_dir)
    path = put_segment(layout, data=os.urandom(size))
    outcome = SegmentJob(config, store, layout).run(path)
    assert outcome.kind == "done", outcome.message
    assert len(sealed) == -(-size // crypt_format.BLOCK_DATA_SIZE)
    # The bytes sent are checked by the server's checksum, then the plaintext by the fingerprint.
    assert outcome.verified_by == f"{sent_check}+crypt-fingerprint"


def test_streams_below_the_threshold_are_put_whole_unless_a_lock_needs_a_checksum_header(tmp_path):
    small, large = 5 * 1024 * 1024 - 1, 5 * 1024 * 1024
    for scheme, extra in (("http", {}), ("http", {"ObjectLockMode": "GOVERNANCE"}),
                          ("http", {"ServerSideEncryption": "aws:kms"}), ("http", {"SSECustomerAlgorithm": "AES256"}),
                          ("HTTPS", {}), ("https", {"ObjectLockMode": "GOVERNANCE"}),
                          ("https", {"ServerSideEncryption": "aws:kms"})):
        store = ObjectStore.for_config(make_config(tmp_path, S3_ENDPOINT_URL=f"{scheme}://s3.example.net"))
        # Over plain HTTP only an MD5 ETag checks a whole PUT, and a lock needs a checksum header.
        assert store.puts_whole(small, extra) is (scheme.lower() == "https" or not extra)
        assert store.puts_whole(large, extra) is False
    config = make_config(tmp_path)
    without = ObjectStore(make_client(config), BUCKET, transfer_config(config))
    assert without.puts_whole(small, {}) is False


@pytest.mark.parametrize("endpoint", ["setting", "AWS_ENDPOINT_URL"])
@pytest.mark.parametrize("scheme, checksum", [("http", "crc32"), ("http", "off"), ("https", "crc32"), ("https", "off")])
def test_a_streaming_put_client_neither_hashes_the_payload_nor_puts_a_checksum_in_a_header(
        tmp_path, monkeypatch, scheme, checksum, endpoint):
    """Each would be a read of its own of the body (an encryption); the endpoint is the one botocore uses."""
    url = f"{scheme}://s3.example.net"
    if endpoint == "setting":
        config = make_config(tmp_path, S3_ENDPOINT_URL=url, S3_CHECKSUM=checksum)
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        config = make_config(tmp_path, S3_CHECKSUM=checksum)
    client = make_client(config, streaming_puts=True)
    assert client.meta.endpoint_url == url
    assert (client.meta.config.s3 or {}).get("payload_signing_enabled") is False
    header_free = scheme == "http" or checksum == "off"
    assert (client.meta.config.request_checksum_calculation == "when_required") is header_free


def lock_setup(tmp_path, lock_enabled):
    config = make_config(tmp_path, S3_OBJECT_LOCK_DAYS=1)
    store = ObjectStore.for_config(config)
    store.client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=lock_enabled)
    return config, store.client, store, DataLayout(config.common.data_dir)


def test_object_lock_on_a_bucket_without_it_uploads_nothing(tmp_path, s3):
    config, client, store, layout = lock_setup(tmp_path, lock_enabled=False)
    path = put_segment(layout)
    outcome = SegmentJob(config, store, layout).run(path)
    assert outcome.kind == "config" and "does not have object lock enabled" in outcome.message
    assert "Contents" not in client.list_objects_v2(Bucket=BUCKET) and path.exists()


def test_a_lock_that_does_not_take_is_retried_for_that_file_only(tmp_path, s3, monkeypatch):
    """moto drops the lock of a multipart upload; here setting it afterwards fails too."""
    config, client, store, layout = lock_setup(tmp_path, lock_enabled=True)
    monkeypatch.setattr(store, "set_retention", lambda *args: None)
    path = put_segment(layout, data=os.urandom(11 * 1024 * 1024))
    outcome = SegmentJob(config, store, layout).run(path)
    assert outcome.kind is OutcomeKind.RETRY and "s3:GetObjectRetention" in outcome.message   # not CONFIG
    assert path.exists() and not (layout.uploaded / NAME).exists()


def test_stream_uploads_hold_at_most_a_few_parts(setup):
    config, client, store, layout = setup
    assert store.stream_transfer.multipart_threshold == store.stream_transfer.multipart_chunksize == 5 * 1024 * 1024
    assert store.stream_transfer.max_in_memory_upload_chunks <= 4


def test_payload_is_left_unsigned_only_when_a_checksum_covers_it(tmp_path):
    signed = make_client(make_config(tmp_path, S3_CHECKSUM="off")).meta.config.s3 or {}
    assert signed.get("payload_signing_enabled") is None
    unsigned = make_client(make_config(tmp_path)).meta.config.s3 or {}
    assert unsigned.get("payload_signing_enabled") is False


def test_a_conflict_named_copy_goes_back_under_its_segment_name(tmp_path):
    from services.uploader.housekeeping import returned_path
    layout = DataLayout(tmp_path / "data")
    layout.prepare()
    name = "camera_2_2026-01-24_14-30-00"
    assert returned_path(layout, f"{name}.conflict-0123456789ab.mp4") == layout.completed / f"{name}.mp4"
    (layout.completed / f"{name}.mp4").write_bytes(b"x")
    assert returned_path(layout, f"{name}.mp4") == layout.completed / f"{name}_1.mp4"


def test_an_unreachable_bucket_is_asked_once_per_disk_guard_pass(setup, monkeypatch):
    from services.bucket.client import ProblemKind, S3Problem
    from services.uploader.housekeeping import sweep
    config, client, store, layout = setup
    for minute in range(5):
        put_segment(layout, f"camera_1_2026-01-24_14-3{minute}-00.mp4")
        os.replace(layout.completed / f"camera_1_2026-01-24_14-3{minute}-00.mp4",
                   layout.uploaded / f"camera_1_2026-01-24_14-3{minute}-00.mp4")
    heads = []

    def unreachable(key):
        heads.append(key)
        raise S3Problem(ProblemKind.TRANSIENT, "EndpointConnectionError", "cannot connect")
    monkeypatch.setattr(store, "head", unreachable)
    done = sweep(config, layout, SegmentJob(config, store, layout), lambda root: 0, frozenset())
    assert done.by_disk_guard == 5 and done.unreachable and len(heads) == 1


def test_the_disk_guard_deletes_nothing_where_the_size_is_unknown(tmp_path, s3):
    """A file system that reports no size (fusefat: 0 of 0) is not a full one: even with
    DELETE_UNUPLOADED_WHEN_FULL, nothing goes for space that cannot be measured."""
    config = make_config(tmp_path, MIN_FREE_DISK_MB=2, DELETE_UNUPLOADED_WHEN_FULL=True)
    layout = DataLayout(config.common.data_dir)
    kept = layout.uploaded / "camera_1_2026-01-01_00-00-00.mp4"
    kept.write_bytes(b"u" * 1000)
    waiting = put_segment(layout, data=b"w" * 1000, age_hours=10)
    store = ObjectStore(make_client(config), BUCKET, transfer_config(config))
    Uploader(config, store=store, free_bytes=lambda root: None, install_signals=False).housekeeping()
    assert kept.exists() and waiting.exists()
