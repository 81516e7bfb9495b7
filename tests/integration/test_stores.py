"""Every S3 store that runs on this machine, one whole round each: upload, `sync --verify`,
`coverage`, `clip` from the bucket and `doctor`; the start-up probe's answers must be the row
docs/stores.md gives that store under "Probed here".

rclone serve s3 over HTTPS uses a self-signed certificate given as S3_CA_BUNDLE in the .env,
and rejects the CRC32 trailer botocore sends over HTTPS: the uploader must adapt (no checksums
for the run) and still upload. Without the CA bundle the failure is a configuration problem
naming S3_CA_BUNDLE, in the uploader and in doctor.

s3rver (npm, `make node-deps`) is the implementation independent of both rclone and moto; it
cannot abort multipart uploads, so the probes' two uploads stay on its disk.
"""
from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.common.data_layout import DataLayout
from services.common.segment_names import SegmentName
from tests.integration.test_footage_commands import make_segment   # H.264 + AAC, 1-s keyframes
from tests.support.media import decode_errors
from tests.support.processes import REPO, read_status, run_module, write_env
from tests.support.s3_fixtures import BUCKET, run_once
from tests.support.s3_server import S3Server, incomplete_uploads, list_keys, self_signed_certificate

START = datetime(2026, 1, 24, 14, 0, 0, tzinfo=timezone.utc)
SEGMENTS = 3          # of 2 s each, from START
STORES = {"rclone serve s3 over HTTP": ("rclone", False), "rclone serve s3 over HTTPS": ("rclone", True),
          "moto": ("moto", False), "s3rver": ("s3rver", False)}
ABILITIES = ("conditional_writes", "crc32", "sse")


def probed_rows() -> dict[str, dict[str, str]]:
    """docs/stores.md's "Probed here" table: store -> {ability: answer}."""
    text = (REPO / "docs" / "stores.md").read_text()
    table = text.split("## Probed here", 1)[1].split("\n## ", 1)[0]
    rows = [[cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
            for line in table.splitlines() if line.startswith("|") and not line.startswith("| ---")]
    header, *body = rows
    assert header[1:4] == ["conditional writes", "CRC32 checksums", "S3_SSE=aes256"], header
    return {row[0]: dict(zip(ABILITIES, row[1:4])) for row in body}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return make_segment(tmp_path_factory.mktemp("template") / "t.mp4")


@pytest.fixture
def store(request, tmp_path):
    kind, https = STORES[request.param]
    tls = self_signed_certificate(tmp_path / "tls") if https else None
    server = S3Server(tmp_path / "s3", kind=kind, tls=tls).start()
    server.create_bucket(BUCKET)
    yield request.param, server
    server.stop()


def test_the_table_names_every_store_tested_here():
    assert set(probed_rows()) == set(STORES)


@pytest.mark.parametrize("store", list(STORES), indirect=True)
def test_whole_round_on_each_store(store, tmp_path, template):
    name, server = store
    layout = DataLayout(tmp_path / "data")
    layout.prepare()
    for n in range(SEGMENTS):
        segment = SegmentName(START + timedelta(seconds=2 * n), 1)
        shutil.copy(template, layout.completed / segment.filename)
    values = {"DATA_DIR": layout.root, **server.env(BUCKET), "S3_PREFIX": "site", "SEGMENT_DURATION": 2,
              "S3_SSE": "aes256", "MIN_FREE_DISK_MB": 0, "LOCAL_RETENTION_HOURS": 1, "UPLOAD_RETRY_MAX_SECONDS": 1}
    if server.tls:
        untrusted = write_env(tmp_path / "untrusted.env", values)
        done = run_once(untrusted)
        assert done.returncode == 1 and "S3_CA_BUNDLE" in done.stdout + done.stderr, done.stdout[-2000:]
        assert "S3_CA_BUNDLE" in read_status(layout.state / "uploader.json")["config_error"]
        code, out = run_module("services", "doctor", env_file=untrusted)
        assert re.search(r"fail\s+bucket: .*not trusted .*self-signed", out) and "set S3_CA_BUNDLE=" in out, out
        values["S3_CA_BUNDLE"] = server.tls[0]
    env = write_env(tmp_path / ".env", values)

    done = run_once(env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    status = read_status(layout.state / "uploader.json")
    abilities = status["abilities"]
    assert {k: abilities[k] for k in ABILITIES} == probed_rows()[name], abilities
    assert abilities["checksums_sent"] is (abilities["crc32"] != "rejected")
    if abilities["crc32"] == "rejected":
        assert "rejects CRC32 checksums (HTTP 411 MissingContentLength)" in done.stdout + done.stderr
    if server.kind == "s3rver":   # no AbortMultipartUpload (405): the CRC32 and SSE probes' uploads stay
        assert len(list((server.root / BUCKET / "._S3rver_uploads").iterdir())) == 2
    else:
        assert incomplete_uploads(server.client(), BUCKET) == []
    keys = list_keys(server.client(), BUCKET, "site/")
    assert len(keys) == SEGMENTS and set(keys.values()) == {template.stat().st_size}, keys
    assert not list(layout.completed.glob("*.mp4"))

    code, out = run_module("services", "sync", "--verify", env_file=env)
    assert code == 0, out
    code, out = run_module("services", "coverage", "--camera", "1", "--date", "2026-01-24", "--json", env_file=env)
    assert code == 0, out
    assert json.loads(out)[0]["covered_seconds"] == pytest.approx(2.0 * SEGMENTS, abs=0.2)
    for copy in layout.uploaded.glob("*.mp4"):    # the clip must come from the bucket
        copy.unlink()
    clip = tmp_path / "clip.mp4"
    code, out = run_module("services", "clip", "--camera", "1", "--start", "2026-01-24T14:00:01Z",
                           "--end", "2026-01-24T14:00:05Z", "-o", str(clip), env_file=env)
    assert code == 0 and f"0 local, {SEGMENTS} from the bucket" in out, out
    assert decode_errors(clip) == ""

    code, out = run_module("services", "doctor", env_file=env)
    bucket_lines = [line for line in out.splitlines() if re.match(r"\s*(ok|warn|fail)\s+bucket", line)]
    assert bucket_lines and not any(line.strip().startswith("fail") for line in bucket_lines), out
    shown = next(line for line in bucket_lines if "bucket abilities" in line)
    wanted = probed_rows()[name]
    assert (f"conditional writes {wanted['conditional_writes']}; CRC32 checksums {wanted['crc32']}" in shown
            and f"SSE {wanted['sse']}" in shown), shown
