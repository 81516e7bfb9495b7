"""coverage, clip and lifecycle against a real S3 server and real FFmpeg segments."""
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.bucket.keys import object_key
from services.bucket.metadata import DURATION as DURATION_METADATA
from services.common.mp4_fragments import video_duration
from services.common.segment_names import SegmentName
from tests.support.media import decode_errors, make_segment, video_stream_duration
from tests.support.processes import run_module, write_env
from tests.support.s3_server import S3Server

BUCKET = "footage"
MIDNIGHT = datetime(2026, 1, 25, tzinfo=timezone.utc)
# Two-second segments around midnight with one missing (00:00:04-00:00:06); the one at
# 00:00:02 lasts only 1.5 s, which only its stored duration can tell.
OFFSETS = (-4, -2, 0, 2, 6)
SHORT = 2


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return make_segment(tmp_path_factory.mktemp("template") / "t.mp4")


@pytest.fixture(scope="module")
def short_template(tmp_path_factory):
    return make_segment(tmp_path_factory.mktemp("template") / "short.mp4", 1.5)


@pytest.fixture
def bucket_with_gap(tmp_path, template, short_template):
    server = S3Server(tmp_path / "s3").start()
    server.create_bucket(BUCKET)
    client = server.client()
    for offset in OFFSETS:
        name = SegmentName(MIDNIGHT + timedelta(seconds=offset), 1)
        source = short_template if offset == SHORT else template
        client.upload_file(str(source), BUCKET, object_key("site/", name),
                           ExtraArgs={"Metadata": {DURATION_METADATA: f"{video_duration(source):.3f}"}})
    env = write_env(tmp_path / ".env", {"DATA_DIR": tmp_path / "data", "S3_PREFIX": "site/",
                                        "SEGMENT_DURATION": 2, **server.env(BUCKET)})
    yield server, env
    server.stop()


def cli(*args, env_file):
    return run_module("services", *args, env_file=env_file)


def test_coverage_across_midnight_and_a_gap(bucket_with_gap):
    _, env = bucket_with_gap
    code, out = cli("coverage", "--camera", "1", "--date", "2026-01-24", "--to", "2026-01-25", "--json",
                    env_file=env)
    assert code == 0, out
    first, second = json.loads(out)
    assert first["covered_seconds"] == pytest.approx(4.0, abs=0.01)  # 23:59:56 - 24:00:00
    assert first["gaps"][0]["end"] == "2026-01-24T23:59:56+00:00"
    assert second["covered_seconds"] == pytest.approx(5.5, abs=0.01)
    assert second["gaps"][0] == {"start": "2026-01-25T00:00:03.500000+00:00", "end": "2026-01-25T00:00:06+00:00",
                                 "seconds": 2.5}
    code, text = cli("coverage", "--camera", "1", "--date", "2026-01-25", env_file=env)
    assert "gap 00:00:03 - 00:00:06 UTC" in text


def test_clip_from_bucket_across_midnight_reports_gap(bucket_with_gap, tmp_path):
    _, env = bucket_with_gap
    output = tmp_path / "out.mp4"
    code, out = cli("clip", "--camera", "1", "--start", "2026-01-24T23:59:57Z", "--end", "2026-01-25T00:00:08Z",
                    "-o", str(output), env_file=env)
    assert code == 0, out
    assert "gap in range: 2026-01-25 00:00:03 - 00:00:06" in out
    assert "0 local, 5 from the bucket" in out
    assert decode_errors(output) == ""
    # 3 s before midnight + 3.5 s after + 2 s after the gap; cuts land on 1-second keyframes.
    assert 7.5 <= video_stream_duration(output) <= 9.6


def test_clip_prefers_local_copies(bucket_with_gap, tmp_path, template):
    _, env = bucket_with_gap
    uploaded = tmp_path / "data" / "videos" / "uploaded"
    uploaded.mkdir(parents=True)
    (uploaded / SegmentName(MIDNIGHT, 1).filename).write_bytes(template.read_bytes())
    code, out = cli("clip", "--camera", "1", "--start", "2026-01-25T00:00:00Z", "--end", "2026-01-25T00:00:04Z",
                    "-o", str(tmp_path / "c.mp4"), env_file=env)
    assert code == 0 and "1 local, 1 from the bucket" in out, out


def test_clip_of_unrecorded_range_fails_cleanly(bucket_with_gap, tmp_path):
    _, env = bucket_with_gap
    code, out = cli("clip", "--camera", "1", "--start", "2026-01-20T00:00:00Z", "--end", "2026-01-20T00:01:00Z",
                    "-o", str(tmp_path / "none.mp4"), env_file=env)
    assert code == 1 and "nothing was recorded" in out and not (tmp_path / "none.mp4").exists()


def test_clip_presign_prints_urls(bucket_with_gap, tmp_path):
    server, env = bucket_with_gap
    code, out = cli("clip", "--camera", "1", "--start", "2026-01-25T00:00:00Z", "--end", "2026-01-25T00:00:03Z",
                    "--presign", env_file=env)
    urls = [line for line in out.splitlines() if line.startswith("http")]
    assert code == 0 and len(urls) == 2 and all(server.endpoint in u and "Signature" in u for u in urls)


def test_lifecycle_rules_read_back_from_moto(tmp_path):
    server = S3Server(tmp_path / "moto", kind="moto").start()
    try:
        server.create_bucket(BUCKET)
        client = server.client()
        other = {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 7}}
        client.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [other]})
        env = write_env(tmp_path / ".env", {"DATA_DIR": tmp_path / "data", "S3_PREFIX": "site",
                                            "LIFECYCLE_TRANSITION_DAYS": 30, "LIFECYCLE_EXPIRE_DAYS": 400,
                                            **server.env(BUCKET)})
        code, out = cli("lifecycle", "--dry-run", env_file=env)
        assert code == 0 and "dry run" in out
        assert client.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"] == [other]
        code, out = cli("lifecycle", env_file=env)
        assert code == 0, out
        rules = {r["ID"]: r for r in client.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
        ours = rules["video-recorder:site/"]
        assert ours["Transitions"][0]["Days"] == 30 and ours["Transitions"][0]["StorageClass"] == "GLACIER_IR"
        assert ours["Expiration"]["Days"] == 400 and ours["Filter"]["Prefix"] == "site/"
        assert "logs" in rules
    finally:
        server.stop()


def test_lifecycle_on_server_without_support_is_one_line(bucket_with_gap):
    _, env = bucket_with_gap
    code, out = cli("lifecycle", env_file=env)
    assert code == 1 and "Traceback" not in out and out.strip().splitlines()[-1].startswith("lifecycle:")
