"""Recorder and uploader together on real cameras, real FFmpeg and a real S3 server.

The uploader is killed with SIGKILL while segments keep coming; afterwards every recorded
segment must be in the bucket, byte for byte, with its duration, and the recording of each
camera must have no gap.
"""
import hashlib

from services.bucket.keys import object_key
from services.common.data_layout import DataLayout
from services.common.mp4_fragments import video_duration
from services.common.segment_names import parse_name
from services.common.spans import Span, measure, segment_spans
from tests.support.processes import Daemon, wait_for, write_env
from tests.support.s3_server import S3Server, list_keys
from tests.support.usb_disk import drain_and_stop

BUCKET = "e2e"


def test_every_recorded_segment_reaches_the_bucket(tmp_path, camera_server):
    cameras = camera_server({"a": "h264:pcma", "b": "h265:none"})
    server = S3Server(tmp_path / "s3").start()
    server.create_bucket(BUCKET)
    layout = DataLayout(tmp_path / "data")
    env = write_env(tmp_path / ".env", {
        "DATA_DIR": layout.root, "SEGMENT_DURATION": 2, "STALL_TIMEOUT": 5, "CAMERA_1_URL": cameras.url("a"),
        "CAMERA_2_URL": cameras.url("b"), "CAMERA_2_NAME": "Garage", "S3_PREFIX": "e2e", "RESCAN_INTERVAL": 1,
        "UPLOAD_RETRY_MAX_SECONDS": 1, "MIN_FREE_DISK_MB": 0, **server.env(BUCKET)})
    recorder = Daemon("services.video_recorder", env, tmp_path / "recorder.log").start()
    uploader = Daemon("services.s3_uploader", env, tmp_path / "uploader.log").start()
    try:
        uploaded = lambda: list(layout.uploaded.glob("*.mp4"))  # noqa: E731
        wait_for(lambda: len(uploaded()) >= 4, 60, "first uploads")
        uploader.kill9()
        wait_for(lambda: len(list(layout.completed.glob("*.mp4"))) >= 2, 30, "a backlog while the uploader is down")
        uploader = Daemon("services.s3_uploader", env, tmp_path / "uploader2.log").start()
        count = len(uploaded())
        wait_for(lambda: len(uploaded()) >= count + 6, 60, "uploads after the restart")
        drain_and_stop(recorder, uploader, layout)
    finally:
        recorder.stop()
        uploader.stop()

    try:
        assert not list(layout.recordings.rglob("*.mp4"))
        client = server.client()
        objects = list_keys(client, BUCKET, "e2e/")
        files = sorted(layout.uploaded.glob("*.mp4"))
        assert len(objects) == len(files) >= 12
        for path in files:
            key = object_key("e2e/", parse_name(path.name))
            body = client.get_object(Bucket=BUCKET, Key=key)
            assert hashlib.md5(body["Body"].read()).hexdigest() == hashlib.md5(path.read_bytes()).hexdigest()
            metadata = {k.lower(): v for k, v in body["Metadata"].items()}
            assert abs(float(metadata["segment-duration"]) - video_duration(path)) < 0.01
            assert metadata["camera-id"] == str(parse_name(path.name).camera_id)
        for camera_id in (1, 2):
            names = [parse_name(p.name) for p in files if parse_name(p.name).camera_id == camera_id]
            spans = segment_spans([(n.start, video_duration(layout.uploaded / n.filename)) for n in names], 2)
            window = Span(min(s.start for s in spans), max(s.end for s in spans))
            # Names have one-second resolution, so a join can look up to a second apart.
            assert measure(spans, window, tolerance=1.05).gaps == (), f"camera {camera_id} has a gap"
    finally:
        server.stop()
