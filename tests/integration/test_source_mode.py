"""Source mode against a real S3 server: another recorder's folder backed up in place, as rclone sync would.

Two foreign writers (FFmpeg's segment muxer naming files in local time, and a writer that
appends slowly and pauses with the file open) and an existing tree with names around both DST
changes. Nothing half-written is uploaded, every object is the file's final bytes, the source
is untouched, a restart resumes from the index, a changed file gets a second object, and doctor
reports a template that does not match.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from services.bucket.keys import object_key
from services.common.segment_names import SegmentName
from tests.support.media import make_segment
from tests.support.processes import run_module, wait_for
from tests.support.s3_fixtures import BUCKET, run_once, uploader_env
from tests.support.s3_server import list_keys

TZ = "Europe/Berlin"
ZONE = ZoneInfo(TZ)
PREFIX = "site-a/"
SLOW_WRITER = """
import sys, time
data = open(sys.argv[1], 'rb').read()
with open(sys.argv[2], 'wb') as out:
    step = len(data) // 4 + 1
    for start in range(0, len(data), step):
        out.write(data[start:start + step]); out.flush()
        time.sleep(2.5)
"""


def fingerprints(root: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def key_of(camera: int, local: str, written: datetime | None = None) -> str:
    from services.uploader.source_template import to_utc

    start = to_utc(datetime.strptime(local, "%Y-%m-%d_%H-%M-%S"), ZONE, written)
    return object_key(PREFIX, SegmentName(start, camera))


def test_foreign_writers_are_backed_up_whole_verified_and_untouched(tmp_path, s3_server, data_layout,
                                                                    start_uploader):
    source = tmp_path / "recordings"
    for camera in ("front", "yard", "door"):
        (source / camera).mkdir(parents=True)
    sample = make_segment(tmp_path / "sample.mp4", seconds=2)
    existing = {"2026-03-29_01-30-00": None, "2026-03-29_03-30-00": None,           # spring forward
                "2026-10-25_02-30-00": datetime(2026, 10, 25, 1, 40, tzinfo=timezone.utc)}  # the second 02:30
    for local, written in existing.items():
        path = source / "door" / f"{local}.mp4"
        path.write_bytes(sample.read_bytes())
        if written:
            os.utime(path, (written.timestamp(), written.timestamp()))
    for junk in (".DS_Store", "2026-01-01_00-00-00.mp4.part", "2026-01-01_00-00-01.mp4.tmp", ".hidden.mp4"):
        (source / "door" / junk).write_bytes(b"not footage")
    before = fingerprints(source)

    env = uploader_env(tmp_path, s3_server, data_layout, SOURCE_DIRS=f"{source}", SOURCE_TIMEZONE=TZ,
                       SOURCE_STABLE_SECONDS=1, CAMERA_1_NAME="front", CAMERA_2_NAME="yard", CAMERA_3_NAME="door",
                       UPLOAD_BWLIMIT="4M")
    uploader = start_uploader(env)
    ffmpeg = subprocess.Popen(["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10",
                               "-t", "6", "-c:v", "libx264", "-g", "10", "-f", "segment", "-segment_time", "2",
                               "-reset_timestamps", "1", "-strftime", "1",
                               str(source / "front" / "%Y-%m-%d_%H-%M-%S.mp4")], env=dict(os.environ, TZ=TZ))
    slow_name = datetime.now(ZONE).strftime("%Y-%m-%d_%H-%M-%S")
    slow = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(sample), str(source / "yard" / f"{slow_name}.mp4")])
    client = s3_server.client()
    seen: dict[str, int] = {}
    while ffmpeg.poll() is None or slow.poll() is None:   # watch the bucket while they write
        seen.update(list_keys(client, BUCKET))
        time.sleep(0.3)
    assert ffmpeg.returncode == 0 and slow.returncode == 0
    written = sorted((source / "front").glob("*.mp4"))
    assert len(written) >= 3
    expected = {key_of(1, p.stem): p for p in written}
    expected[key_of(2, slow_name)] = source / "yard" / f"{slow_name}.mp4"
    expected.update({key_of(3, local, when): source / "door" / f"{local}.mp4" for local, when in existing.items()})
    # DST: 01:30 CET, 03:30 CEST, and the second (CET) 02:30 of the fall-back night.
    assert {k.rsplit("/", 1)[1] for k in expected if "/camera_3/" in k} == {
        "camera_3_2026-03-29_00-30-00.mp4", "camera_3_2026-03-29_01-30-00.mp4", "camera_3_2026-10-25_01-30-00.mp4"}

    wait_for(lambda: set(expected) <= set(list_keys(client, BUCKET)), 30, "every source file in the bucket")
    time.sleep(1.5)
    keys = list_keys(client, BUCKET)
    assert set(keys) == set(expected), "nothing but the complete source files"
    for key, path in expected.items():   # every object is the file's final bytes: nothing half-written
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert body == path.read_bytes(), key
        assert seen.get(key, len(body)) == len(body), f"{key} was once uploaded shorter"
    answer = client.head_object(Bucket=BUCKET, Key=key_of(3, "2026-03-29_03-30-00"))
    head = {k.lower(): v for k, v in answer["Metadata"].items()}
    assert head["camera-id"] == "3" and head["camera-name"] == "door"
    assert head["segment-start"] == "2026-03-29T01:30:00Z" and float(head["segment-duration"]) > 1.5
    after_writers = fingerprints(source)
    assert {k: v for k, v in after_writers.items() if k in before} == before
    uploader.stop()

    # Restart: the index answers for every file, nothing goes up again.
    again = run_once(env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert " -> s3://" not in again.stdout + again.stderr
    assert list_keys(client, BUCKET) == keys

    # A file changed after its upload: a second object, the first one kept.
    changed = source / "door" / "2026-03-29_01-30-00.mp4"
    make_segment(changed, seconds=3)
    time.sleep(1.2)
    code, out = run_module("services", "sync", env_file=env)
    assert code == 0, out
    now = list_keys(client, BUCKET)
    assert now[key_of(3, "2026-03-29_01-30-00")] == keys[key_of(3, "2026-03-29_01-30-00")]
    second = [k for k in now if ".conflict-" in k]
    assert len(second) == 1 and now[second[0]] == changed.stat().st_size
    assert "changed after its upload" in out
    assert (source / "door" / ".DS_Store").exists() and (source / "door" / "2026-01-01_00-00-00.mp4.part").exists()

    code, out = run_module("services", "sync", "--verify", env_file=env)
    assert code == 0 and "ok" in out and "missing" not in out, out
    code, out = run_module("services", "sync", "--dry-run", env_file=env)
    assert code == 0 and "0 source files not yet verified" in out, out

    # doctor: a template that does not match the files is a failure naming them.
    (source / "front" / "notes.txt").write_text("not footage")
    code, out = run_module("services", "doctor", env_file=env)
    assert "notes.txt: does not match" in out, out
    wrong = uploader_env(tmp_path, s3_server, data_layout, SOURCE_DIRS=f"{source}={{camera}}/%Y%m%d-%H%M%S.mp4",
                         SOURCE_TIMEZONE=TZ)
    code, out = run_module("services", "doctor", env_file=wrong)
    assert code == 1 and "reads none of the" in out, out
