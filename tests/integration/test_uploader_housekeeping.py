"""Retention and the disk guard, in-process against a real S3 server (free space injected)."""
from __future__ import annotations

import os
import time

import pytest

from services.common.config import load_env
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


def test_retention_deletes_only_expired_uploaded_copies(tmp_path, s3_server, data_layout):
    env = uploader_env(tmp_path, s3_server, data_layout, LOCAL_RETENTION_HOURS=24)
    old = aged(data_layout.uploaded / "camera_1_2026-01-20_10-00-00.mp4", 30)
    recent = aged(data_layout.uploaded / "camera_1_2026-01-23_10-00-00.mp4", 20)
    unrelated = aged(data_layout.completed / "notes.txt", 100)
    names = [SEGMENT.format(cam=1, minute=m) for m in (1, 2)]
    for name in names:
        drop_segment(data_layout, name)
    assert run_once(env) == 0
    assert not old.exists() and recent.exists() and unrelated.exists()
    assert sorted(p.name for p in data_layout.uploaded.iterdir()) == sorted(names + [recent.name])
    assert len(list_keys(s3_server.client(), BUCKET)) == 2


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
