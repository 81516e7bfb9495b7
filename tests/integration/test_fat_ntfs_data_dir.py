"""DATA_DIR on real FAT32 and NTFS file systems, as USB disks come formatted.

Each image is mounted through a loop device with the FUSE driver a kernel without vfat or ntfs
uses: fusefat (FAT32: no hard links, no rename flags, so moves take the checked rename; a 4 GiB
file limit, so the recorder refuses hour-long segments) and ntfs-3g (NTFS: hard links, so moves
take link+unlink). After each test the unmounted image is checked by the file system's own
checker, so a driver that corrupts the disk fails the test.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.commands.doctor import check_filesystem
from services.common import data_layout
from services.common.data_layout import DataLayout, MoveMethod, move_method
from services.common.segment_names import parse_name
from tests.support.loop_disk import mounted, run
from tests.support.processes import Daemon, wait_for, write_env
from tests.support.s3_server import S3Server
from tests.support.usb_disk import check_moves_never_overwrite, record_and_upload

BUCKET = "usb-disks"
SEGMENT_SECONDS = 10   # what a FAT32 disk must still take


@dataclass(frozen=True)
class Disk:
    name: str
    mkfs: tuple[str, ...]      # given the image last
    driver: tuple[str, ...]    # given the loop device and the mount point last
    check: tuple[str, ...]     # read-only check of the unmounted image, given it last
    fstype: str                # as /proc/self/mounts names the mount
    move: MoveMethod           # how moves into a folder are made there
    packages: dict[str, str]   # program -> the Debian package (Makefile's APT_PACKAGES) that has it


DISKS = {
    "fat32": Disk("FAT32", ("mkfs.vfat", "-F", "32"), ("fusefat", "-o", "rw+"), ("fsck.vfat", "-n"),
                  "fuse.fusefat", MoveMethod.CHECKED_RENAME,
                  {"mkfs.vfat": "dosfstools", "fsck.vfat": "dosfstools", "fusefat": "fusefat"}),
    "ntfs": Disk("NTFS", ("mkntfs", "-F", "-Q"), ("ntfs-3g",), ("ntfsfix", "--no-action"),
                 "fuseblk", MoveMethod.LINK, {"mkntfs": "ntfs-3g", "ntfs-3g": "ntfs-3g", "ntfsfix": "ntfs-3g"}),
}


def mount_disk(kind: str, tmp_path: Path):
    """A 64 MiB file system of `kind` at tmp_path/<kind>: (Disk, mount point); unmounted, detached
    and checked afterwards."""
    disk = DISKS[kind]
    missing = [f"{program} (apt: {package})" for program, package in disk.packages.items()
               if shutil.which(program) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (make system-deps)")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse: this kernel or container has no FUSE")
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root")
    image, mount = tmp_path / f"{kind}.img", tmp_path / kind
    run("truncate", "-s", "64M", str(image))
    run(*disk.mkfs, str(image))
    with mounted(image, mount, disk.driver):
        assert mount_type(mount) == disk.fstype
        yield disk, mount
    run(*disk.check, str(image))   # fails, naming the checker's complaint, if the driver left the disk damaged


def mount_type(mount: Path) -> str:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == str(mount):
            return fields[2]
    return ""


@pytest.fixture(params=sorted(DISKS))
def disk(request, tmp_path):
    yield from mount_disk(request.param, tmp_path)


@pytest.fixture
def fat32(tmp_path):
    yield from mount_disk("fat32", tmp_path)


def test_moves_never_overwrite(disk, monkeypatch):
    kind, mount = disk
    monkeypatch.setattr(data_layout, "_methods", {})
    into = check_moves_never_overwrite(mount, links=kind.move is MoveMethod.LINK)
    # A method is remembered only where a refusal made the move fall back.
    remembered = {} if kind.move is MoveMethod.LINK else {os.stat(into).st_dev: kind.move}
    assert data_layout._methods == remembered and move_method(into) is kind.move


def test_doctor_explains_the_file_system(disk, monkeypatch):
    kind, mount = disk
    monkeypatch.setattr(data_layout, "_methods", {})
    layout = DataLayout(mount / "data")
    layout.prepare()
    check = check_filesystem(layout, segment_seconds=600)
    expected = "warn" if kind.move is MoveMethod.CHECKED_RENAME else "ok"
    assert check.level == expected and check.name == "file system", check
    assert f"{kind.fstype} at {mount}: moves by {kind.move.value}, fsync works" in check.detail, check
    hour = check_filesystem(layout, segment_seconds=3600)
    if kind.fstype == "fuse.fusefat":   # 9 GB at 20 Mbit/s, over FAT32's 4 GiB
        assert hour.level == "fail" and "holds files up to 4.0 GB" in hour.detail, hour
        assert "SEGMENT_DURATION" in hour.hint, hour
    else:
        assert hour.level == "ok", hour
    assert not list(layout.completed.iterdir()), "the probe left a file behind"


def test_the_recorder_warns_about_hour_long_segments_on_fat32(tmp_path, fat32):
    """A warning at start, not a refusal: the camera's real bitrate is not known yet, and a site
    whose hour-long segments stay well under 4 GiB must keep recording after an update."""
    _, mount = fat32
    env = write_env(tmp_path / ".env", {"DATA_DIR": mount / "data", "SEGMENT_DURATION": 3600,
                                        "CAMERA_1_URL": "rtsp://127.0.0.1:9/none"})
    recorder = Daemon("services.video_recorder", env, tmp_path / "recorder.log").start()
    try:
        wait_for(lambda: "holds files up to 4.0 GB" in recorder.output(), 30, "the file size warning")
        line = next(line for line in recorder.output().splitlines() if "holds files up to 4.0 GB" in line)
        assert "WARNING" in line and f"DATA_DIR: fuse.fusefat at {mount}" in line and "lower SEGMENT_DURATION" in line
        wait_for(lambda: (mount / "data" / "state" / "recorder.json").exists(), 30, "the recorder running")
        assert recorder.proc.poll() is None
    finally:
        assert recorder.stop() == 0


def test_recorder_and_uploader(tmp_path, disk, camera_server):
    """Both daemons on the disk with 10-s segments (which FAT32 takes): two cameras record, each
    closed segment is handed off and uploaded, and so are those the stop closes; every object
    holds its local copy's bytes."""
    kind, mount = disk
    cameras = camera_server({"a": "h264:pcma", "b": "h265:none"})
    server = S3Server(tmp_path / "s3").start()
    try:
        server.create_bucket(BUCKET)
        layout = DataLayout(mount / "data")
        _, recorder, uploader, files = record_and_upload(
            tmp_path, layout, cameras, server, BUCKET, SEGMENT_SECONDS,
            lambda uploaded: {parse_name(p.name).camera_id for p in uploaded} == {1, 2},
            f"a segment of each camera uploaded from the {kind.name} disk")
        assert len(files) >= 2 and {parse_name(p.name).camera_id for p in files} == {1, 2}
        if kind.move is not MoveMethod.LINK:
            for daemon in (recorder, uploader):
                assert f"moves there use {kind.move.value}" in daemon.output()
    finally:
        server.stop()
