"""Drill: DATA_DIR on a small filesystem (tmpfs) that fills up, with S3 up and then down.

Invariants: the disk guard frees space by deleting only verified copies; when the disk is
truly full the recorder keeps retrying instead of crashing; every segment that was handed
to the uploader ends up in the bucket.
"""
import os
import re
import subprocess
import uuid

import pytest

from services.bucket.keys import object_key
from services.common.data_layout import DataLayout
from services.common.segment_names import parse_name
from tests.support.figures import Stopwatch, record
from tests.support.processes import CameraServer, Daemon, wait_for, write_env
from tests.support.s3_server import S3Server, list_keys

BUCKET = "drill"
MB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def free_mb(path):
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize / MB


def test_disk_fills_up_and_nothing_unverified_is_lost(tmp_path, small_disk):
    camera = CameraServer({"cam": "h264:none"}, None, 15, "--kbps", "2500", "--pattern", "snow",
                          "--size", "640x480").start()
    server = S3Server(tmp_path / "s3").start()
    server.create_bucket(BUCKET)
    layout = DataLayout(small_disk / "data")
    env = write_env(tmp_path / ".env", {
        "DATA_DIR": layout.root, "SEGMENT_DURATION": 2, "STALL_TIMEOUT": 5, "CAMERA_1_URL": camera.url("cam"),
        "MIN_FREE_DISK_MB": 6, "RESCAN_INTERVAL": 1, "UPLOAD_RETRY_MAX_SECONDS": 1, **server.env(BUCKET)})
    extra = {"RECORDER_BACKOFF_MAX": "2"}
    recorder = Daemon("services.video_recorder", env, tmp_path / "recorder.log", extra).start()
    uploader = Daemon("services.s3_uploader", env, tmp_path / "uploader.log").start()
    filler = small_disk / f"filler-{uuid.uuid4().hex}"
    try:
        wait_for(lambda: list(layout.uploaded.glob("*.mp4")), 40, "first upload")
        # Leave about 9 MB: the guard (6 MB minimum) must start deleting verified copies early.
        with open(filler, "wb") as handle:
            handle.write(b"\0" * int(max(0, free_mb(small_disk) - 9) * MB))
        wait_for(lambda: "disk guard: deleted uploaded/" in uploader.output(), 60, "the disk guard")
        # S3 goes away: completed/ fills the disk for real.
        server.stop()
        wait_for(lambda: free_mb(small_disk) < 1, 60, "the disk to fill")
        wait_for(lambda: re.search(r"camera 1 .*-> backoff", recorder.output()), 60, "FFmpeg failing on a full disk")
        filler.unlink()  # the operator frees space
        server.start()
        clock = Stopwatch()
        wait_for(lambda: not list(layout.completed.glob("*.mp4")), 90, "the backlog to drain")
        record("disk full, S3 down", "backlog drained after space and S3 returned", clock.elapsed())
        ready = set(re.findall(r"segment ready: (camera_\S+\.mp4)", recorder.output()))
        wait_for(lambda: len(set(re.findall(r"segment ready: (camera_\S+\.mp4)", recorder.output()))) > len(ready) + 2,
                 60, "recording to resume")
    finally:
        recorder_code = recorder.stop()
        uploader.stop()
        camera.stop()
    try:
        assert recorder_code == 0
        assert "Traceback" not in recorder.output() + uploader.output()
        # Any segment handed to completed/ is in the bucket (those still there at the end excepted).
        handed = set(re.findall(r"segment ready: (camera_\S+\.mp4)", recorder.output()))
        waiting = {p.name for p in layout.completed.glob("*.mp4")}
        keys = list_keys(server.client(), BUCKET)
        missing = [n for n in handed - waiting if object_key("", parse_name(n)) not in keys]
        assert not missing, missing
        assert "NOT uploaded" not in uploader.output()
    finally:
        server.stop()
