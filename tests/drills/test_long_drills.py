"""Long fault drills (`make drills`): minutes of outage and repeated kills on the whole system.

Each asserts that nothing recorded is lost and records its figures for docs/reliability.md.
"""
import os
import random
import re
import signal
import time

import pytest

from services.bucket.keys import object_key
from services.common.data_layout import DataLayout
from services.common.mp4_fragments import video_duration
from services.common.segment_names import parse_name
from services.common.spans import Span, measure, segment_spans
from tests.support.figures import Stopwatch, record
from tests.support.media import decode_errors
from tests.support.processes import CameraServer, Daemon, read_status, wait_for, write_env
from tests.support.s3_server import S3Server, incomplete_uploads, list_keys

BUCKET = "drills"
READY = re.compile(r"segment ready: (camera_\S+\.mp4)")


class System:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.cameras = CameraServer({"a": "h264:aac", "b": "h264:pcma"}).start()
        self.s3 = S3Server(tmp_path / "s3").start()
        self.s3.create_bucket(BUCKET)
        self.layout = DataLayout(tmp_path / "data")
        self.env = write_env(tmp_path / ".env", {
            "DATA_DIR": self.layout.root, "SEGMENT_DURATION": 2, "STALL_TIMEOUT": 5,
            "CAMERA_1_URL": self.cameras.url("a"), "CAMERA_2_URL": self.cameras.url("b"), "RESCAN_INTERVAL": 1,
            "UPLOAD_RETRY_MAX_SECONDS": 5, "MIN_FREE_DISK_MB": 0, **self.s3.env(BUCKET)})
        self.recorder = Daemon("services.video_recorder", self.env, tmp_path / "recorder.log",
                               {"RECORDER_BACKOFF_MAX": "2"}).start()
        self.uploaders = [self.start_uploader()]

    def start_uploader(self):
        return Daemon("services.s3_uploader", self.env, self.tmp / f"uploader{len(getattr(self, 'uploaders', []))}.log").start()

    def handed_off(self):
        return set(READY.findall(self.recorder.output()))

    def finish(self):
        """Stop recording, let the uploader drain, and check that every segment is in the bucket."""
        assert self.recorder.stop() == 0
        wait_for(lambda: not list(self.layout.completed.glob("*.mp4")), 120, "the backlog to drain")
        keys = list_keys(self.s3.client(), BUCKET)
        missing = [n for n in self.handed_off() if object_key("", parse_name(n)) not in keys]
        assert not missing, f"not in the bucket: {missing}"
        assert not [k for k in keys if ".conflict-" in k], "duplicate objects"
        assert not incomplete_uploads(self.s3.client(), BUCKET)
        return keys

    def close(self):
        self.recorder.stop()
        for uploader in self.uploaders:
            uploader.stop()
        self.cameras.stop()
        self.s3.stop()


@pytest.fixture
def system(tmp_path):
    running = System(tmp_path)
    yield running
    running.close()


def contiguous(layout, camera_id):
    files = sorted(layout.uploaded.glob(f"camera_{camera_id}_*.mp4"))
    spans = segment_spans([(parse_name(p.name).start, video_duration(p)) for p in files], 2)
    window = Span(min(s.start for s in spans), max(s.end for s in spans))
    return measure(spans, window, tolerance=1.05).gaps


def test_s3_down_for_three_minutes(system):
    wait_for(lambda: len(list(system.layout.uploaded.glob("*.mp4"))) >= 4, 60, "first uploads")
    system.s3.stop()
    time.sleep(180)
    backlog = len(list(system.layout.completed.glob("*.mp4")))
    assert backlog >= 100  # 2 cameras x 2-s segments x 3 min, all still local
    system.s3.start()
    clock = Stopwatch()
    wait_for(lambda: not list(system.layout.completed.glob("*.mp4")), 180, "the backlog to drain")
    record("S3 down 3 min", f"backlog of {backlog} segments drained after S3 returned", clock.elapsed())
    keys = system.finish()
    record("S3 down 3 min", "segments lost", 0, "")
    assert len(keys) >= backlog
    assert contiguous(system.layout, 1) == () and contiguous(system.layout, 2) == ()


def test_uploader_killed_repeatedly(system):
    for _ in range(5):
        time.sleep(random.uniform(3, 12))
        system.uploaders[-1].kill9()
        time.sleep(random.uniform(0, 3))
        system.uploaders.append(system.start_uploader())
    keys = system.finish()
    record("kill -9 uploader x5", "segments lost / duplicate objects", 0, "")
    assert len(keys) >= 20


def test_one_ffmpeg_killed_repeatedly_other_camera_untouched(system):
    status = system.layout.state / "recorder.json"
    kills = 0
    for _ in range(5):
        wait_for(lambda: read_status(status).get("cameras", {}).get("2", {}).get("state") == "recording", 30,
                 "camera 2 recording")
        time.sleep(random.uniform(2, 8))
        os.kill(read_status(status)["cameras"]["2"]["pid"], signal.SIGKILL)
        kills += 1
    time.sleep(5)
    system.finish()
    assert contiguous(system.layout, 1) == (), "the untouched camera has a gap"
    for path in system.layout.uploaded.glob("camera_2_*.mp4"):
        assert decode_errors(path) == "", path.name
    record("kill -9 one FFmpeg x5", "gaps on the untouched camera", 0, "")
    gaps = contiguous(system.layout, 2)
    record("kill -9 one FFmpeg x5", "longest gap on the killed camera", max((g.seconds for g in gaps), default=0))
