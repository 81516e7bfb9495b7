"""DATA_DIR on a real exFAT file system, the usual USB disk or SD card: no hard links.

The image is mounted through a loop device with the kernel's exfat driver when it has one,
else with exfat-fuse (which also refuses rename flags, so moves take the last fallback).
"""
import errno
import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

from services.bucket.keys import object_key
from services.commands.doctor import check_filesystem
from services.common import data_layout
from services.common.data_layout import DataLayout, MoveMethod, move_no_clobber
from services.common.segment_names import parse_name
from tests.support.loop_disk import mounted, run
from tests.support.processes import Daemon, run_module, wait_for, write_env
from tests.support.s3_server import S3Server, list_keys

BUCKET = "exfat"


def kernel_has_exfat() -> bool:
    return "exfat" in Path("/proc/filesystems").read_text()


@pytest.fixture
def exfat(tmp_path):
    """A 64 MiB exFAT file system mounted at tmp_path/exfat; unmounted and detached afterwards."""
    fuse = shutil.which("mount.exfat-fuse")
    if not kernel_has_exfat() and fuse is None:
        pytest.skip("neither a kernel exfat driver nor mount.exfat-fuse (apt: exfat-fuse) is here")
    if shutil.which("mkfs.exfat") is None:
        pytest.skip("mkfs.exfat (apt: exfatprogs) not installed")
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root")
    image, mount = tmp_path / "exfat.img", tmp_path / "exfat"
    run("truncate", "-s", "64M", str(image))
    run("mkfs.exfat", str(image))
    with mounted(image, mount, ["mount", "-t", "exfat"] if kernel_has_exfat() else [fuse]):
        yield mount


def test_moves_on_exfat_never_overwrite(exfat, monkeypatch):
    monkeypatch.setattr(data_layout, "_methods", {})
    source, into = exfat / "from", exfat / "into"
    source.mkdir()
    into.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (source / name).write_text(f"new {name}")
    (into / "b.mp4").write_text("older")
    with pytest.raises(OSError) as refused:
        os.link(source / "a.mp4", exfat / "link-test")
    assert refused.value.errno == errno.EPERM

    move_no_clobber(source / "a.mp4", into / "a.mp4")
    with pytest.raises(FileExistsError):
        move_no_clobber(source / "b.mp4", into / "b.mp4")

    assert (into / "a.mp4").read_text() == "new a.mp4" and not (source / "a.mp4").exists()
    assert (into / "b.mp4").read_text() == "older" and (source / "b.mp4").read_text() == "new b.mp4"
    expected = MoveMethod.RENAME_NOREPLACE if kernel_has_exfat() else MoveMethod.CHECKED_RENAME
    assert data_layout._methods == {os.stat(into).st_dev: expected}


def test_recorder_and_uploader_on_exfat(tmp_path, exfat, camera_server):
    cameras = camera_server({"a": "h264:pcma", "b": "h265:none"})
    server = S3Server(tmp_path / "s3").start()
    try:
        server.create_bucket(BUCKET)
        layout = DataLayout(exfat / "data")
        env = record_and_upload(tmp_path, layout, cameras, server)
        retention(tmp_path, layout, server, env)
    finally:
        server.stop()


def record_and_upload(tmp_path, layout, cameras, server) -> Path:
    env = write_env(tmp_path / ".env", {
        "DATA_DIR": layout.root, "SEGMENT_DURATION": 2, "STALL_TIMEOUT": 5, "CAMERA_1_URL": cameras.url("a"),
        "CAMERA_2_URL": cameras.url("b"), "S3_PREFIX": "usb", "RESCAN_INTERVAL": 1,
        "UPLOAD_RETRY_MAX_SECONDS": 1, "MIN_FREE_DISK_MB": 0, **server.env(BUCKET)})
    started = time.monotonic()
    recorder = Daemon("services.video_recorder", env, tmp_path / "recorder.log").start()
    uploader = Daemon("services.s3_uploader", env, tmp_path / "uploader.log").start()
    try:
        wait_for(lambda: len(list(layout.uploaded.glob("*.mp4"))) >= 8, 90, "eight uploads from the exFAT disk")
        first_uploads = time.monotonic() - started
        assert recorder.stop() == 0
        wait_for(lambda: not list(layout.completed.glob("*.mp4")), 60, "the queue to drain")
        assert uploader.stop() == 0
    finally:
        recorder.stop()
        uploader.stop()

    files = sorted(layout.uploaded.glob("*.mp4"))
    handed_off = recorder.output().count("segment ready:")
    objects = list_keys(server.client(), BUCKET, "usb/")
    print(f"\nexFAT end to end: {handed_off} segments handed off, {len(files)} uploaded and verified; "
          f"8 uploaded {first_uploads:.1f}s after the start, {time.monotonic() - started:.1f}s in all")
    assert not list(layout.recordings.rglob("*.mp4")), "segments left behind in recordings/"
    assert len(objects) == len(files) == handed_off >= 8
    for path in files:
        body = server.client().get_object(Bucket=BUCKET, Key=object_key("usb/", parse_name(path.name)))
        assert hashlib.md5(body["Body"].read()).hexdigest() == hashlib.md5(path.read_bytes()).hexdigest()
    assert "moves there use" in recorder.output() and "moves there use" in uploader.output()
    return env


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def retention(tmp_path, layout, server, env):
    """Retention by age on exFAT: copies past LOCAL_RETENTION_HOURS go once the bucket is seen to hold
    them; a younger copy stays; a copy whose object is gone is uploaded again, not deleted."""
    client = server.client()
    files = sorted(layout.uploaded.glob("*.mp4"), key=lambda p: (p.stat().st_mtime, p.name))
    key = {p.name: object_key("usb/", parse_name(p.name)) for p in files}
    content = {p.name: md5(p.read_bytes()) for p in files}
    *old, young = files
    stamp = time.time() - 2 * 3600
    for path in old:
        os.utime(path, (stamp, stamp))
    assert all(abs(p.stat().st_mtime - stamp) < 3 for p in old)   # FAT rounds to 2 s; exFAT keeps 10 ms
    gone = old[0]
    client.delete_object(Bucket=BUCKET, Key=key[gone.name])
    write_env(env, {**dict(line.split("=", 1) for line in env.read_text().splitlines()), "LOCAL_RETENTION_HOURS": 1})

    code, output = run_module("services.s3_uploader", "--once", env_file=env, timeout=60)
    assert code == 0, output
    left = {p.name for p in layout.uploaded.glob("*.mp4")}
    assert not left & {p.name for p in old[1:]}, f"expired copies the bucket holds were kept: {sorted(left)}"
    assert young.name in left, "a copy younger than LOCAL_RETENTION_HOURS was deleted"
    assert f"the bucket no longer holds uploaded/{gone.name}" in output
    assert not list(layout.completed.glob("*.mp4")), "the returned copy was not uploaded again"
    assert not [p for p in layout.uploaded.iterdir() if p.name.endswith(".receipt") and p.name[1:-8] not in left]
    objects = list_keys(client, BUCKET, "usb/")
    assert set(objects) == set(key.values())
    for name, object_name in key.items():
        assert md5(client.get_object(Bucket=BUCKET, Key=object_name)["Body"].read()) == content[name], name


def test_doctor_explains_an_exfat_data_dir(exfat, monkeypatch):
    monkeypatch.setattr(data_layout, "_methods", {})
    layout = DataLayout(exfat / "data")
    layout.prepare()
    check = check_filesystem(layout, segment_seconds=600)
    fuse = not kernel_has_exfat()
    assert check.level == ("warn" if fuse else "ok") and check.name == "file system", check
    assert ("fuseblk" if fuse else "exfat") in check.detail and "fsync works" in check.detail
    method = MoveMethod.CHECKED_RENAME if fuse else MoveMethod.RENAME_NOREPLACE
    assert method.value in check.detail
    assert not [p for p in layout.completed.iterdir()], "the probe left a file behind"
