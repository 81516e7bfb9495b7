"""Every S3 store that runs on this machine, one whole round each: upload, `sync --verify`,
`coverage`, `clip` from the bucket and `doctor`; the start-up probe's answers must be the row
docs/stores.md gives that store under "Probed here".

rclone serve s3 over HTTPS uses a self-signed certificate given as S3_CA_BUNDLE in the .env,
and rejects the CRC32 trailer botocore sends over HTTPS: the uploader must adapt (no checksums
for the run) and still upload. Without the CA bundle the failure is a configuration problem
naming S3_CA_BUNDLE, in the uploader and in doctor.

s3rver (npm, `make node-deps`) is the implementation independent of both rclone and moto; it
cannot abort multipart uploads, so the probes' two uploads stay on its disk.

The .env is a whole healthy host (one RTSP test camera, mode 600), so doctor's exit code is the
store's: 0 on each, with the warnings each store is expected to give and no others.
Over HTTPS, `lifecycle`, `decrypt` from the bucket and the viewer (`web`) use the CA too.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.bucket.keys import stored_key
from services.common.data_layout import DataLayout
from services.common.segment_names import SegmentName
from services.crypt.format import encrypt_bytes
from services.crypt.keys import derive_keys
from tests.integration.test_footage_commands import make_segment  # H.264 + AAC, 1-s keyframes
from tests.support.media import decode_errors
from tests.support.processes import REPO, CameraServer, read_status, run_module, stop_pid, wait_for, write_env
from tests.support.s3_fixtures import BUCKET, run_once
from tests.support.s3_server import S3Server, free_port, incomplete_uploads, list_keys, self_signed_certificate

START = datetime(2026, 1, 24, 14, 0, 0, tzinfo=timezone.utc)
SEGMENTS = 3          # of 2 s each, from START
STORES = {"rclone serve s3 over HTTP": ("rclone", False), "rclone serve s3 over HTTPS": ("rclone", True),
          "moto": ("moto", False), "s3rver": ("s3rver", False)}
ABILITIES = ("conditional_writes", "crc32", "sse")
# doctor exits 0 when no check fails, warnings allowed. The bucket warnings each store gives on a
# healthy setup: what it cannot report (rclone: no such calls; s3rver: 501 NotImplemented) or
# does not confirm (SSE taken silently; rclone over HTTPS rejects the CRC32 trailer, so none is
# sent), and on moto the bucket as the test creates it (no default encryption, no public access
# block). Any other warning, or a failure, is a regression.
CANNOT_REPORT = {"bucket encryption", "bucket public access", "bucket object lock", "bucket abilities"}
DOCTOR_WARNINGS = {"rclone serve s3 over HTTP": CANNOT_REPORT, "rclone serve s3 over HTTPS": CANNOT_REPORT,
                   "moto": {"bucket encryption", "bucket public access"}, "s3rver": CANNOT_REPORT}
# What doctor says of a bucket created without object lock: docs/stores.md, "Object lock, of the
# stores tested here" (moto has it; rclone does not report it; s3rver answers 501).
NOT_REPORTED = "bucket object lock: cannot check: the server does not report object lock"
OBJECT_LOCK_LINE = {"rclone serve s3 over HTTP": NOT_REPORTED, "rclone serve s3 over HTTPS": NOT_REPORTED,
                    "moto": "bucket object lock: disabled (S3_OBJECT_LOCK_DAYS=0)",
                    "s3rver": "bucket object lock: cannot check: this server does not implement it (NotImplemented)"}
PASSWORD, SALT = "stores-test-password", "stores-test-salt"


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


@pytest.fixture(scope="module")
def camera():
    """One RTSP test camera, so that the .env is a whole healthy host and doctor's exit code says
    something about the store (without a camera its configuration check fails on every store).
    At 120 fps ffprobe has its answer in 0.3 s instead of 3 s at 10 fps; idle, the server costs nothing."""
    server = CameraServer({"cam": "h264:none"}, None, 120, "--size", "160x120").start()
    yield server.url("cam")
    server.stop()


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
def test_whole_round_on_each_store(store, tmp_path, template, camera):
    name, server = store
    layout = DataLayout(tmp_path / "data")
    layout.prepare()
    for n in range(SEGMENTS):
        segment = SegmentName(START + timedelta(seconds=2 * n), 1)
        shutil.copy(template, layout.completed / segment.filename)
    values = {"DATA_DIR": layout.root, **server.env(BUCKET), "S3_PREFIX": "site", "SEGMENT_DURATION": 2,
              "S3_SSE": "aes256", "MIN_FREE_DISK_MB": 0, "LOCAL_RETENTION_HOURS": 1, "UPLOAD_RETRY_MAX_SECONDS": 1,
              "CAMERA_1_URL": camera}
    if server.tls:
        untrusted = write_env(tmp_path / "untrusted.env", values)
        untrusted.chmod(0o600)
        done = run_once(untrusted)
        assert done.returncode == 1 and "S3_CA_BUNDLE" in done.stdout + done.stderr, done.stdout[-2000:]
        assert "S3_CA_BUNDLE" in read_status(layout.state / "uploader.json")["config_error"]
        code, out = run_module("services", "doctor", env_file=untrusted)
        assert code == 1, out
        assert re.search(r"fail\s+bucket: .*not trusted .*self-signed", out) and "set S3_CA_BUNDLE=" in out, out
        values["S3_CA_BUNDLE"] = server.tls[0]
    env = write_env(tmp_path / ".env", values)
    env.chmod(0o600)   # doctor fails a .env other users can read

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
    assert code == 0 and re.search(r"^0 failed, ", out, re.M), out
    warned = {re.match(r"\s*warn\s+([^:]+):", line)[1] for line in bucket_lines if line.strip().startswith("warn")}
    assert warned == DOCTOR_WARNINGS[name], out
    assert any(line.split(None, 1)[1] == OBJECT_LOCK_LINE[name] for line in bucket_lines), out
    shown = next(line for line in bucket_lines if "bucket abilities" in line)
    wanted = probed_rows()[name]
    assert (f"conditional writes {wanted['conditional_writes']}; CRC32 checksums {wanted['crc32']}" in shown
            and f"SSE {wanted['sse']}" in shown), shown

    if server.tls:
        other_commands_over_https(server, values, tmp_path, template)


def get(url: str) -> tuple[int, bytes, dict]:
    """A GET that does not follow redirects: (status, body, headers)."""
    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    try:
        with urllib.request.build_opener(Stay).open(url, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def other_commands_over_https(server: S3Server, values: dict, tmp_path: Path, template: Path) -> None:
    """`lifecycle`, `decrypt` from the bucket and the viewer, each with the CA given in the .env.

    A sealed (rclone-crypt) copy of camera 2's first segment is put in the bucket by the test's
    own client, as another host with ENCRYPTION_PASSWORD would have uploaded it."""
    sealed_key = stored_key("site/", SegmentName(START, 2), encrypted=True)
    client = server.client()
    client.meta.config.request_checksum_calculation = "when_required"   # rclone over HTTPS refuses the trailer
    client.put_object(Bucket=BUCKET, Key=sealed_key, Body=encrypt_bytes(template.read_bytes(),
                                                                        derive_keys(PASSWORD, SALT)))
    port = free_port()
    env = write_env(tmp_path / "more.env", {**values, "ENCRYPTION_PASSWORD": PASSWORD, "ENCRYPTION_SALT": SALT,
                                            "VIEWER_PORT": port})
    env.chmod(0o600)

    # rclone keeps no lifecycle rules (it takes PUT ?lifecycle for a CreateBucket and answers
    # BucketAlreadyExists): the refusal must be that answer of the server's, read over HTTPS.
    code, out = run_module("services", "lifecycle", env_file=env)
    assert code == 1 and "(BucketAlreadyExists) when calling the PutBucketLifecycleConfiguration" in out, out

    plain = tmp_path / "decrypted.mp4"
    untrusted = write_env(tmp_path / "more-untrusted.env", {k: v for k, v in {
        **values, "ENCRYPTION_PASSWORD": PASSWORD, "ENCRYPTION_SALT": SALT}.items() if k != "S3_CA_BUNDLE"})
    code, out = run_module("services", "decrypt", f"s3://{BUCKET}/{sealed_key.removesuffix('.bin')}",
                           "-o", str(plain), env_file=untrusted)
    assert code == 1 and "not trusted" in out and "S3_CA_BUNDLE" in out and not plain.exists(), out
    code, out = run_module("services", "decrypt", f"s3://{BUCKET}/{sealed_key.removesuffix('.bin')}",
                           "-o", str(plain), env_file=env)
    assert code == 0 and f"from s3://{BUCKET}/{sealed_key}" in out, out
    assert plain.read_bytes() == template.read_bytes()

    log = tmp_path / "web.log"
    with open(log, "w") as sink:
        web = subprocess.Popen([sys.executable, "-m", "services", "web", "--env-file", str(env)], cwd=REPO,
                               stdout=sink, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "serving" in log.read_text(), 30, "the viewer to listen")
            base = f"http://127.0.0.1:{port}/"
            code, body, _ = get(base + "api/day?date=2026-01-24")
            assert code == 200, body
            day = json.loads(body)
            assert day["problem"] is None, day["problem"]   # a failed listing is a 200 with only local copies
            pieces = {c["camera"]: [(p["name"], p["where"]) for p in c["pieces"]] for c in day["cameras"]}
            assert pieces == {1: [(SegmentName(START + timedelta(seconds=2 * n), 1).filename, "bucket")
                                  for n in range(SEGMENTS)],
                              2: [(SegmentName(START, 2).filename, "bucket")]}, pieces
            # A sealed segment is read from the store and decrypted by the viewer as it streams;
            # a plain one is a redirect to a presigned URL at the HTTPS endpoint.
            code, body, _ = get(base + f"media/2/{SegmentName(START, 2).filename}")
            assert code == 200 and body == template.read_bytes(), (code, body[:200])
            code, _, headers = get(base + f"media/1/{SegmentName(START, 1).filename}")
            assert code == 302 and headers["Location"].startswith(server.endpoint + "/"), (code, headers)
        finally:
            stop_pid(web)
    assert "Traceback" not in log.read_text(), log.read_text()
