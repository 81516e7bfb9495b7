"""Retention and the disk guard, in-process against a real S3 server (free space injected)."""
from __future__ import annotations

import os
import time

import pytest

from services.commands.doctor import check_hosts
from services.commands.status import Thresholds, build_report
from services.common.config import load_env
from services.common.state_file import read_json
from services.uploader.config import read_uploader_config
from services.uploader.scheduler import Uploader
from tests.support.s3_fixtures import BUCKET, SEGMENT, drop_segment, uploader_env
from tests.support.s3_server import S3Server, list_keys

KB = 1000


def aged(path, hours: float, size: int = 100 * KB):
    path.write_bytes(b"v" * size)
    stamp = time.time() - hours * 3600
    os.utime(path, (stamp, stamp))
    return path


def run_once(env_file, **kwargs) -> int:
    config = read_uploader_config(load_env(str(env_file), environ={}))
    return Uploader(config, once=True, install_signals=False, **kwargs).run()


def age(path, hours: float):
    stamp = time.time() - hours * 3600
    os.utime(path, (stamp, stamp))
    return path


def test_retention_deletes_only_expired_copies_the_bucket_still_holds(tmp_path, s3_server, data_layout):
    """The bucket is asked again before each deletion: a copy whose object was replaced meanwhile
    (by another host, on a server that ignores If-None-Match) is uploaded again, never deleted."""
    env = uploader_env(tmp_path, s3_server, data_layout, LOCAL_RETENTION_HOURS=24, HOST_ID="host-a")
    old, replaced, recent = (SEGMENT.format(cam=1, minute=m) for m in (1, 2, 3))
    contents = {name: drop_segment(data_layout, name) for name in (old, replaced, recent)}
    unrelated = aged(data_layout.completed / "notes.txt", 100)
    assert run_once(env) == 0
    for name, hours in ((old, 30), (replaced, 30), (recent, 20)):
        age(data_layout.uploaded / name, hours)
    client = s3_server.client()
    key = f"site-a/2026/01/24/camera_1/{replaced}"
    client.put_object(Bucket=BUCKET, Key=key, Body=b"host-b's footage", Metadata={"host-id": "host-b"})

    assert run_once(env) == 0
    assert not (data_layout.uploaded / old).exists() and unrelated.exists()
    assert (data_layout.uploaded / recent).exists()
    keys = list_keys(client, BUCKET)
    conflict = [k for k in keys if k.startswith(key.removesuffix(".mp4") + ".conflict-")]
    assert len(conflict) == 1, keys
    assert client.get_object(Bucket=BUCKET, Key=conflict[0])["Body"].read() == contents[replaced]
    assert client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"host-b's footage"
    # Re-uploaded, the copy is fresh again in uploaded/, and the clash is on record for `status`.
    assert sorted(p.name for p in data_layout.uploaded.iterdir() if not p.name.startswith(".")) == [replaced, recent]
    status = read_json(data_layout.state / "uploader.json")
    assert status["returned_for_upload"] == 1
    assert [(c["camera_id"], c["other_host"]) for c in status["clashes"]] == [(1, "host-b")]
    report = build_report(data_layout, [], Thresholds(min_free_bytes=0))
    assert any("camera 1 is written by two hosts: this one (host-a) and host-b" in line for line in report.problems)
    assert [(c.level, c.name) for c in check_hosts(data_layout)] == [("fail", "hosts")]


@pytest.mark.parametrize("opt_in", [False, True])
def test_disk_guard_prunes_uploaded_oldest_first_and_unuploaded_only_if_opted_in(tmp_path, s3_server, data_layout,
                                                                               opt_in):
    s3_server.stop()  # nothing can be uploaded: the guard has to decide on its own
    env = uploader_env(tmp_path, s3_server, data_layout, MIN_FREE_DISK_MB=1, DELETE_UNUPLOADED_WHEN_FULL=opt_in)
    uploaded = [aged(data_layout.uploaded / f"camera_1_2026-01-2{i}_10-00-00.mp4", hours, 200 * KB)
                for i, hours in enumerate((3, 1, 2))]
    waiting = [aged(data_layout.completed / SEGMENT.format(cam=2, minute=m), hours, 400 * KB)
               for m, hours in ((1, 5), (2, 4))]

    def free_bytes(_root) -> int:  # 0.8 MB free, plus what was deleted
        return 800 * KB + 200 * KB * len(deleted_so_far(uploaded)) + 400 * KB * len(deleted_so_far(waiting))

    config = read_uploader_config(load_env(str(env), environ={}))
    Uploader(config, install_signals=False, free_bytes=free_bytes).housekeeping()
    # Minimum 1 MiB = 1_048_576: 248_576 short -> the two oldest uploaded copies (3 h, 2 h).
    assert [p.exists() for p in uploaded] == [False, True, False]
    assert all(p.exists() for p in waiting)

    def free_bytes_tight(_root) -> int:  # the disk filled up more: every uploaded copy, then opt-in only
        return free_bytes(_root) - 700 * KB

    Uploader(config, install_signals=False, free_bytes=free_bytes_tight).housekeeping()
    assert not any(p.exists() for p in uploaded)
    if opt_in:
        # 100 + 600 (three uploaded counted) = 700 KB; the oldest waiting segment brings 1.1 MB.
        assert [p.exists() for p in waiting] == [False, True]
    else:
        assert all(p.exists() for p in waiting)


def deleted_so_far(paths):
    return [p for p in paths if not p.exists()]


def test_moto_server_verifies_by_stored_crc32(tmp_path, data_layout):
    server = S3Server(tmp_path / "moto", kind="moto").start()
    try:
        server.create_bucket(BUCKET)
        env = uploader_env(tmp_path, server, data_layout, MULTIPART_THRESHOLD_MB=5, MULTIPART_PART_SIZE_MB=5)
        small, big = SEGMENT.format(cam=1, minute=1), SEGMENT.format(cam=1, minute=2)
        drop_segment(data_layout, small)
        drop_segment(data_layout, big, 11 * 1024 * 1024)
        assert run_once(env) == 0
        client = server.client()
        assert len(list_keys(client, BUCKET)) == 2
        head = client.head_object(Bucket=BUCKET, Key=f"site-a/2026/01/24/camera_1/{big}", ChecksumMode="ENABLED")
        assert head["ETag"].endswith('-3"') and head.get("ChecksumCRC32")
    finally:
        server.stop()
