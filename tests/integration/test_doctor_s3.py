"""`doctor`'s bucket checks (issues 4 and 7) as a user runs them: the real CLI, real S3 servers.

The .env names no camera (the recorder's checks fail on that); only the `bucket...` lines are
looked at here. rclone serve s3 does not report encryption, public access block or object
lock (those warn "cannot check"); moto's server mode does.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.processes import REPO, write_env
from tests.support.s3_fixtures import BUCKET
from tests.support.s3_server import S3Server, list_keys

WRONG_SECRET = "wrong-secret-Zx81"


def doctor(tmp_path, server: S3Server, **values) -> tuple[int, dict[str, tuple[str, str]], str]:
    """Run doctor; return the exit code, {check name: (level, detail)} of the bucket checks, all output."""
    path = write_env(tmp_path / "doctor.env", {"DATA_DIR": tmp_path / "data", **server.env(BUCKET),
                                               "S3_PREFIX": "site-a", **values})
    path.chmod(0o600)
    out = subprocess.run([sys.executable, "-m", "services", "doctor", "--env-file", str(path)], cwd=REPO,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    assert "Traceback" not in text and server.secret_key not in text and WRONG_SECRET not in text, text
    checks = {}
    for line in out.stdout.splitlines():
        level, _, rest = line.partition("  ")
        name, _, detail = rest.strip().partition(": ")
        if level.strip() in ("ok", "warn", "fail") and name.startswith(("bucket", "uploader")):
            checks[name] = (level.strip(), detail)
    return out.returncode, checks, text


@pytest.fixture
def rclone(tmp_path):
    server = S3Server(tmp_path / "rclone").start()
    server.create_bucket(BUCKET)
    yield server
    server.stop()


@pytest.fixture
def moto(tmp_path):
    server = S3Server(tmp_path / "moto", kind="moto").start()
    yield server
    server.stop()


def test_good_setup_on_rclone(tmp_path, rclone):
    _, checks, text = doctor(tmp_path, rclone)
    assert checks["bucket"][0] == "ok" and "reachable" in checks["bucket"][1], text
    assert checks["bucket write"] == ("ok", "wrote, read back and deleted a probe under site-a/.doctor/"), text
    for name in ("bucket encryption", "bucket public access", "bucket object lock"):
        assert checks[name][0] == "warn" and "cannot check" in checks[name][1], text
    assert not any(level == "fail" for level, _ in checks.values()), text
    assert list_keys(rclone.client(), BUCKET) == {}   # the probe is gone


def test_wrong_secret_key(tmp_path, rclone):
    code, checks, text = doctor(tmp_path, rclone, AWS_SECRET_ACCESS_KEY=WRONG_SECRET)
    assert code == 1
    assert checks == {"bucket": ("fail", f"s3://{BUCKET}: SignatureDoesNotMatch: secret access key is wrong")}, text
    assert "fix: fix AWS_SECRET_ACCESS_KEY" in text


def test_missing_bucket(tmp_path, rclone):
    code, checks, text = doctor(tmp_path, rclone, S3_BUCKET_NAME="no-such-bucket")
    assert code == 1
    assert checks["bucket"][0] == "fail" and "does not exist" in checks["bucket"][1], text
    assert len(checks) == 1


def test_bad_uploader_setting_is_one_line(tmp_path, rclone):
    code, checks, text = doctor(tmp_path, rclone, S3_OBJECT_LOCK_DAYS=7, S3_CHECKSUM="off")
    assert code == 1
    assert checks["uploader configuration"][0] == "fail", text
    assert checks["uploader configuration"][1].startswith("S3_OBJECT_LOCK_DAYS: object lock needs S3_CHECKSUM=crc32")


def test_object_lock_setting_without_lock_on_the_bucket(tmp_path, moto):
    moto.client().create_bucket(Bucket=BUCKET)
    _, checks, text = doctor(tmp_path, moto, S3_OBJECT_LOCK_DAYS=30)
    level, detail = checks["bucket object lock"]
    assert level == "warn" and "disabled" in detail and "cannot work" in detail, text
    assert checks["bucket"][0] == "ok" and checks["bucket write"][0] == "ok", text
    assert checks["bucket encryption"][0] == "warn" and "no default encryption" in checks["bucket encryption"][1]
    assert checks["bucket public access"][0] == "warn" and "no public access block" in checks["bucket public access"][1]


def test_moto_bucket_with_lock_and_settings(tmp_path, moto):
    client = moto.client()
    client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    # A bucket default retention: the probe gets locked too, so its delete is refused.
    client.put_object_lock_configuration(Bucket=BUCKET, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    client.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    client.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    _, checks, text = doctor(tmp_path, moto, S3_OBJECT_LOCK_DAYS=30, S3_OBJECT_LOCK_MODE="compliance")
    assert checks["bucket object lock"] == (
        "ok", "enabled, bucket default GOVERNANCE 1 days; every upload is retained 30 days (COMPLIANCE)"), text
    assert checks["bucket encryption"] == ("ok", "default encryption AES256"), text
    assert checks["bucket public access"] == ("ok", "all public access blocked"), text
    level, detail = checks["bucket write"]
    assert level == "ok" and "no delete permission" in detail and "the probe stays at" in detail, text
    assert [k for k in list_keys(client, BUCKET)] == [detail.split(f"s3://{BUCKET}/")[1].rstrip(")")]
