"""What `doctor` finds out about the file system under DATA_DIR."""
from pathlib import Path

from services.commands.doctor import check_filesystem
from services.common import filesystem
from services.common.data_layout import DataLayout
from services.common.filesystem import largest_segment, mount_of, probe_filesystem

MOUNTS = """/dev/sda1 / ext4 rw 0 0
/dev/sdb1 /media/usb vfat rw 0 0
/dev/sdc1 /media/usb\\040disk fuseblk rw 0 0
server:/footage /mnt/nas nfs4 rw 0 0
"""


def test_the_longest_mount_point_holding_the_path_wins():
    assert mount_of(Path("/media/usb/data"), MOUNTS) == ("/media/usb", "vfat")
    assert mount_of(Path("/media/usb disk/data"), MOUNTS) == ("/media/usb disk", "fuseblk")
    assert mount_of(Path("/media/usbx"), MOUNTS) == ("/", "ext4")
    assert mount_of(Path("/mnt/nas"), MOUNTS) == ("/mnt/nas", "nfs4")


def test_a_local_disk_moves_by_link_and_syncs(tmp_path):
    found = probe_filesystem(tmp_path)
    assert found.problem == "" and found.fsync and found.move is not None and found.free_bytes > 0
    assert list(tmp_path.iterdir()) == []


def test_fat32_cannot_hold_long_segments_of_a_busy_camera(tmp_path, monkeypatch):
    layout = DataLayout(tmp_path / "data")
    layout.prepare()
    monkeypatch.setattr(filesystem, "mount_of", lambda path: ("/media/usb", "vfat"))
    assert check_filesystem(layout, 600).level == "ok"           # 1.5 GB at 20 Mbit/s
    long = check_filesystem(layout, 3600)                          # 9 GB: over FAT32's 4 GiB
    assert long.level == "fail" and "SEGMENT_DURATION" in long.hint
    assert largest_segment(3600) > 2**32


def test_a_folder_that_refuses_writes_fails(tmp_path, monkeypatch):
    layout = DataLayout(tmp_path / "data")
    layout.prepare()
    monkeypatch.setattr(filesystem.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "Input/output error")))
    check = check_filesystem(layout, 600)
    assert check.level == "fail" and "Input/output error" in check.detail


def test_a_segment_that_may_not_fit_is_named_without_writing(tmp_path, monkeypatch):
    """FAT32 with hour-long segments: what the recorder warns about at start (and doctor fails on)."""
    monkeypatch.setattr(filesystem, "mount_of", lambda path: ("/media/usb", "vfat"))
    risk = filesystem.segment_size_risk(tmp_path, 3600)
    assert risk.startswith("vfat at /media/usb holds files up to 4.0 GB") and "lower SEGMENT_DURATION" in risk
    assert filesystem.segment_size_risk(tmp_path, 600) == ""   # 1.5 GB fits
    assert list(tmp_path.iterdir()) == []


def test_fat32_through_fusefat_has_the_same_file_limit(monkeypatch):
    """Where the kernel has no vfat driver, fusefat mounts FAT32 and /proc/self/mounts names it
    fuse.fusefat: the same 4 GiB limit, so hour-long segments are warned about there too."""
    mounts = "/dev/loop3 /media/usb fuse.fusefat rw,nosuid,nodev,relatime,user_id=0,group_id=0 0 0\n"
    monkeypatch.setattr(filesystem, "mount_of", lambda path: mount_of(path, mounts))
    refusal = filesystem.segment_size_risk(Path("/media/usb/data"), 3600)
    assert refusal.startswith("fuse.fusefat at /media/usb holds files up to 4.0 GB"), refusal
    assert filesystem.segment_size_risk(Path("/media/usb/data"), 10) == ""
    assert filesystem.segment_size_risk(Path("/srv/data"), 3600) == ""    # not on that mount


def test_a_file_system_without_a_size_is_unknown_not_full(tmp_path, monkeypatch):
    """fusefat reports 0 bytes of 0: no disk-guard deletion, no "disk low" in `status`, a doctor warning."""
    from collections import namedtuple

    from services.commands.doctor import check_disk
    from services.commands.status import Thresholds, build_report
    from services.uploader.housekeeping import disk_free_bytes

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(filesystem.shutil, "disk_usage", lambda path: usage(0, 0, 0))
    layout = DataLayout(tmp_path / "data")
    layout.prepare()
    assert filesystem.known_usage(layout.root) is None and disk_free_bytes(layout.root) is None
    report = build_report(layout, [], Thresholds(min_free_bytes=2**31))
    assert not any("disk low" in p for p in report.problems) and report.data["disk_free"] is None
    assert "size unknown" in "\n".join(report.lines)
    assert any("disk size unknown" in warning and "disk guard is off" in warning for warning in report.warnings)
    check = check_disk(layout, 2**31)
    assert check.level == "warn" and "reports no size" in check.detail
    monkeypatch.setattr(filesystem.shutil, "disk_usage", lambda path: usage(10, 10, 0))
    assert any("disk low" in p for p in build_report(layout, [], Thresholds(min_free_bytes=2**31)).problems)
