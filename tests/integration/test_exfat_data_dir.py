"""DATA_DIR on a real exFAT file system, the usual USB disk or SD card: no hard links.

The image is mounted through a loop device with the kernel's exfat driver when it has one,
else with exfat-fuse (which also refuses rename flags, so moves take the last fallback).
"""
import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

from services.bucket.keys import object_key
from services.commands.doctor import check_filesystem
from services.common import data_layout
from services.common.data_layout import DataLayout, MoveMethod
from services.common.segment_names import parse_name
from tests.support.loop_disk import mounted, run
from tests.support.processes import run_module, write_env
from tests.support.s3_server import S3Server, list_keys
from tests.support.usb_disk import check_moves_never_overwrite, record_and_upload

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
    into = check_moves_never_overwrite(exfat, links=False)
    expected = MoveMethod.RENAME_NOREPLACE if kernel_has_exfat() else MoveMethod.CHECKED_RENAME
    assert data_layout._methods == {os.stat(into).st_dev: expected}


def test_recorder_and_uploader_on_exfat(tmp_path, exfat, camera_server):
    cameras = camera_server({"a": "h264:pcma", "b": "h265:none"})
    server = S3Server(tmp_path / "s3").start()
    try:
        server.create_bucket(BUCKET)
        layout = DataLayout(exfat / "data")
        env, recorder, uploader, files = record_and_upload(
            tmp_path, layout, cameras, server, BUCKET, 2, lambda uploaded: len(uploaded) >= 8,
            "eight uploads from the exFAT disk")
        assert len(files) >= 8
        assert "moves there use" in recorder.output() and "moves there use" in uploader.output()
        retention(tmp_path, layout, server, env)
    finally:
        server.stop()


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
