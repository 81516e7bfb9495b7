"""Drill: a burst of junk in every data folder while both daemons run, then a malformed .env."""
import os

from services.common.data_layout import DataLayout
from tests.support.figures import record
from tests.support.processes import Daemon, wait_for, write_env
from tests.support.s3_server import S3Server

BUCKET = "junk"


def test_junk_files_are_skipped_and_recording_goes_on(tmp_path, camera_server):
    cameras = camera_server({"cam": "h264:aac"})
    s3 = S3Server(tmp_path / "s3").start()
    s3.create_bucket(BUCKET)
    layout = DataLayout(tmp_path / "data")
    env = write_env(tmp_path / ".env", {"DATA_DIR": layout.root, "SEGMENT_DURATION": 2, "CAMERA_1_URL": cameras.url("cam"),
                                        "RESCAN_INTERVAL": 1, "MIN_FREE_DISK_MB": 0, **s3.env(BUCKET)})
    recorder = Daemon("services.video_recorder", env, tmp_path / "recorder.log").start()
    uploader = Daemon("services.s3_uploader", env, tmp_path / "uploader.log").start()
    try:
        wait_for(lambda: list(layout.uploaded.glob("*.mp4")), 40, "first upload")
        for n in range(100):
            (layout.completed / f"junk-{n}.mp4").write_bytes(os.urandom(100))
            (layout.completed / f"camera_x_{n}.txt").write_text("?")
            (layout.uploaded / f"stray-{n}.bin").write_bytes(b"")
        (layout.completed / "a-directory.mp4").mkdir()
        (layout.recordings / "not-a-camera").mkdir()
        (layout.recordings / "camera_1" / "stray.txt").write_text("?")
        count = len(list(layout.uploaded.glob("camera_*.mp4")))
        wait_for(lambda: len(list(layout.uploaded.glob("camera_*.mp4"))) >= count + 3, 40, "uploads to go on")
        assert recorder.proc.poll() is None and uploader.proc.poll() is None
    finally:
        assert recorder.stop() == 0 and uploader.stop() == 0
        s3.stop()
    out = uploader.output()
    assert out.count("junk-7.mp4") == 1, "each unknown file is warned about once"
    assert "Traceback" not in out + recorder.output()
    assert len(list(layout.completed.glob("junk-*.mp4"))) == 100  # skipped, never deleted
    record("burst of 300 junk files", "daemons crashed", 0, "")


def test_malformed_env_stops_both_daemons_with_78(tmp_path):
    env = tmp_path / ".env"
    env.write_text("CAMERA_1_URL=rtsp://h/x\nSEGMENT_DURATION=ten\nS3_BUCKET_NAME=Bad_Bucket!\n=oops\nnot a line\n")
    for module in ("services.video_recorder", "services.s3_uploader"):
        daemon = Daemon(module, env, tmp_path / f"{module}.log").start()
        assert daemon.proc.wait(30) == 78
        daemon.stop()
        assert "Traceback" not in daemon.output() and "config error" in daemon.output()
