"""Both daemons on a DATA_DIR of a given file system, recording two synthetic cameras and uploading
to a local S3 server: the end-to-end run the exFAT, FAT32 and NTFS tests share."""
from __future__ import annotations

import errno
import hashlib
import os
import time
from pathlib import Path
from typing import Callable

from services.bucket.keys import object_key
from services.common.data_layout import DataLayout, move_no_clobber
from services.common.segment_names import parse_name
from tests.support.processes import Daemon, wait_for, write_env
from tests.support.s3_server import S3Server, list_keys

PREFIX = "usb"


def check_moves_never_overwrite(mount: Path, links: bool) -> Path:
    """On the mounted disk: hard links work (`links`) or are refused with EPERM, and
    `move_no_clobber` moves a file to a free name but never over an existing one. Returns the
    folder moved into."""
    import pytest

    source, into = mount / "from", mount / "into"
    source.mkdir()
    into.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (source / name).write_text(f"new {name}")
    (into / "b.mp4").write_text("older")
    if links:
        os.link(source / "a.mp4", mount / "link-test")
        os.unlink(mount / "link-test")
    else:
        with pytest.raises(OSError) as refused:
            os.link(source / "a.mp4", mount / "link-test")
        assert refused.value.errno == errno.EPERM
    move_no_clobber(source / "a.mp4", into / "a.mp4")
    with pytest.raises(FileExistsError):
        move_no_clobber(source / "b.mp4", into / "b.mp4")
    assert (into / "a.mp4").read_text() == "new a.mp4" and not (source / "a.mp4").exists()
    assert (into / "b.mp4").read_text() == "older" and (source / "b.mp4").read_text() == "new b.mp4"
    return into


def drain_and_stop(recorder: Daemon, uploader: Daemon, layout: DataLayout) -> None:
    """Stop the recorder (it hands off the segments the stop closes), let the uploader empty
    completed/, then stop it; both must exit 0."""
    assert recorder.stop() == 0
    wait_for(lambda: not list(layout.completed.glob("*.mp4")), 60, "the queue to drain")
    assert uploader.stop() == 0


def record_and_upload(tmp_path: Path, layout: DataLayout, cameras, server: S3Server, bucket: str,
                      segment_seconds: int, enough: Callable[[list[Path]], bool], what: str,
                      ) -> tuple[Path, Daemon, Daemon, list[Path]]:
    """Record cameras "a" and "b" until `enough(uploaded copies)`, stop both daemons, then check that
    every segment handed off was uploaded, nothing stayed in recordings/, and each object holds its
    local copy's bytes. Returns the .env, both daemons (stopped) and the uploaded copies."""
    env = write_env(tmp_path / ".env", {
        "DATA_DIR": layout.root, "SEGMENT_DURATION": segment_seconds, "STALL_TIMEOUT": 5,
        "CAMERA_1_URL": cameras.url("a"), "CAMERA_2_URL": cameras.url("b"), "S3_PREFIX": PREFIX,
        "RESCAN_INTERVAL": 1, "UPLOAD_RETRY_MAX_SECONDS": 1, "MIN_FREE_DISK_MB": 0, **server.env(bucket)})
    started = time.monotonic()
    recorder = Daemon("services.video_recorder", env, tmp_path / "recorder.log").start()
    uploader = Daemon("services.s3_uploader", env, tmp_path / "uploader.log").start()
    try:
        wait_for(lambda: enough(list(layout.uploaded.glob("*.mp4"))), 90, what)
        first_uploads = time.monotonic() - started
        drain_and_stop(recorder, uploader, layout)
    finally:
        recorder.stop()
        uploader.stop()

    files = sorted(layout.uploaded.glob("*.mp4"))
    handed_off = recorder.output().count("segment ready:")
    objects = list_keys(server.client(), bucket, f"{PREFIX}/")
    print(f"\n{what}: {handed_off} segments handed off, {len(files)} uploaded and verified; the first "
          f"{first_uploads:.1f}s after the start, {time.monotonic() - started:.1f}s in all")
    assert not list(layout.recordings.rglob("*.mp4")), "segments left behind in recordings/"
    assert len(objects) == len(files) == handed_off
    for path in files:
        key = object_key(f"{PREFIX}/", parse_name(path.name))
        body = server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        assert len(body) > 0 and hashlib.md5(body).digest() == hashlib.md5(path.read_bytes()).digest(), key
    for daemon in (recorder, uploader):
        assert "Traceback" not in daemon.output(), daemon.output()
    return env, recorder, uploader, files
