"""`iam-policy`: valid JSON, no delete, scoped to bucket/prefix, and exactly the actions the code uses."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from services.bucket.iam_policy import PolicySettings, actions, admin_policy, render, uploader_policy
from services.commands.iam_policy import read_settings
from services.common.config import ConfigError, EnvReader

REPO = Path(__file__).resolve().parents[2]
UPLOAD_PATH = ("services/bucket/client.py", "services/bucket/store.py") + tuple(
    str(p.relative_to(REPO)) for p in sorted((REPO / "services/uploader").glob("*.py")))
# coverage, clip and sync --verify list and read (catalog); decrypt and clip fetch single objects.
READ_COMMANDS = ("services/bucket/catalog.py", "services/bucket/objects.py")
LIFECYCLE = "services/bucket/lifecycle.py"
DOCTOR = "services/bucket/probe.py"

# Every boto3 client call the code makes, and the IAM actions it needs.
CALL_ACTIONS = {
    "upload_file": {"s3:PutObject"},                 # PutObject or Create/UploadPart/CompleteMultipartUpload
    "upload_fileobj": {"s3:PutObject"},              # the same, from the encrypting reader
    "put_object": {"s3:PutObject"},                  # a stream put whole, through the streaming client
    "download_file": {"s3:GetObject"},
    "get_object": {"s3:GetObject"},
    "generate_presigned_url": {"s3:GetObject"},      # signed locally; whoever uses the URL makes the GET
    "head_bucket": {"s3:ListBucket"},
    "delete_object": {"s3:DeleteObject"},            # doctor's probe only; the uploader policy refuses it
    "head_object": {"s3:GetObject", "s3:ListBucket"},  # without ListBucket a missing key is a 403, not a 404
    "list_objects_v2": {"s3:ListBucket"},
    "list_multipart_uploads": {"s3:ListBucketMultipartUploads"},
    "abort_multipart_upload": {"s3:AbortMultipartUpload"},
    "get_bucket_lifecycle_configuration": {"s3:GetLifecycleConfiguration"},
    "put_bucket_lifecycle_configuration": {"s3:PutLifecycleConfiguration"},
    "get_object_lock_configuration": {"s3:GetBucketObjectLockConfiguration"},
    "get_bucket_encryption": {"s3:GetEncryptionConfiguration"},
    "get_public_access_block": {"s3:GetBucketPublicAccessBlock"},
    "put_object_retention": {"s3:PutObjectRetention"},
    "get_paginator": set(),                           # the paginated operation is counted instead
}
# Request arguments that need an action of their own.
ARGUMENT_ACTIONS = {"ObjectLockRetainUntilDate": {"s3:PutObjectRetention"},
                    "retain_until": {"s3:GetObjectRetention"}}   # read back from HEAD, which needs it
_CALL = re.compile(r"\w*client\.(\w+)\(")   # also put_client, self.client
_PAGINATOR = re.compile(r"get_paginator\(\"(\w+)\"\)")


def calls_in(*files: str) -> set[str]:
    found: set[str] = set()
    for name in files:
        text = (REPO / name).read_text()
        found |= set(_CALL.findall(text)) | set(_PAGINATOR.findall(text))
    return found


def actions_used(*files: str) -> set[str]:
    needed: set[str] = set()
    for call in calls_in(*files):
        assert call in CALL_ACTIONS, f"{call} is called in {files} but has no IAM action in this test's table"
        needed |= CALL_ACTIONS[call]
    for name in files:
        text = (REPO / name).read_text()
        for argument, extra in ARGUMENT_ACTIONS.items():
            if argument in text:
                needed |= extra
    return needed


def test_the_scan_finds_the_upload_calls():
    assert {"head_object", "upload_file", "list_multipart_uploads", "abort_multipart_upload",
            "put_object"} <= calls_in(*UPLOAD_PATH)   # put_object: only through put_client


def test_uploader_policy_has_exactly_the_actions_of_the_upload_path():
    used = actions_used(*UPLOAD_PATH)
    assert actions(uploader_policy(PolicySettings("b", "site-a/", object_lock=True))) == used
    lock_only = {"s3:PutObjectRetention", "s3:GetObjectRetention", "s3:GetBucketObjectLockConfiguration"}
    assert actions(uploader_policy(PolicySettings("b", "site-a/", object_lock=False))) == used - lock_only


def test_read_only_commands_work_with_the_uploader_policy():
    assert {"list_objects_v2", "head_object", "get_object", "download_file",
            "generate_presigned_url"} <= calls_in(*READ_COMMANDS)
    assert actions_used(*READ_COMMANDS) <= actions(uploader_policy(PolicySettings("b", "p/")))


def test_admin_policy_covers_lifecycle_and_doctor_settings():
    admin = actions(admin_policy(PolicySettings("b")))
    assert actions_used(LIFECYCLE) == {"s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration"}
    assert actions_used(LIFECYCLE) <= admin
    # Doctor's reachability and write probe need the uploader's rights (its delete is refused
    # there on purpose, and doctor says so); the bucket settings it reads need the admin's.
    uploader = actions(uploader_policy(PolicySettings("b", "p/")))
    settings = actions_used(DOCTOR) - uploader - {"s3:DeleteObject"}
    assert settings == {"s3:GetEncryptionConfiguration", "s3:GetBucketPublicAccessBlock",
                        "s3:GetBucketObjectLockConfiguration"}
    assert settings <= admin


def test_every_file_with_client_calls_is_scanned():
    """A call in a file none of the lists above names would escape every policy check."""
    scanned = set(UPLOAD_PATH) | set(READ_COMMANDS) | {LIFECYCLE, DOCTOR}
    calling = {str(p.relative_to(REPO)) for p in (REPO / "services").rglob("*.py")
               if calls_in(str(p.relative_to(REPO)))}
    assert calling - scanned == set()


def test_a_call_missing_from_the_table_fails_the_scan(tmp_path):
    source = tmp_path / "new_command.py"
    source.write_text('client.put_bucket_policy(Bucket="b", Policy="{}")\n')
    with pytest.raises(AssertionError, match="put_bucket_policy is called"):
        actions_used(str(source))


def test_no_delete_and_scoped_resources():
    policy = uploader_policy(PolicySettings("cams", "site-a/", object_lock=True))
    assert not any("Delete" in a for a in actions(policy))
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        for resource in statement["Resource"]:
            assert resource in ("arn:aws:s3:::cams", "arn:aws:s3:::cams/site-a/*"), resource
            assert "*" not in resource.replace("/site-a/*", "")
    listing = next(s for s in policy["Statement"] if "s3:ListBucket" in s["Action"])
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["site-a/*"]}}
    whole = uploader_policy(PolicySettings("cams"))
    assert {r for s in whole["Statement"] for r in s["Resource"]} == {"arn:aws:s3:::cams", "arn:aws:s3:::cams/*"}


def test_settings(tmp_path):
    settings = read_settings(EnvReader({"S3_BUCKET_NAME": "cams", "S3_PREFIX": "/site-a", "S3_OBJECT_LOCK_DAYS": "9"}))
    assert settings == PolicySettings("cams", "site-a/", True)
    with pytest.raises(ConfigError) as info:
        read_settings(EnvReader({"S3_BUCKET_NAME": "Bad_Name", "S3_OBJECT_LOCK_DAYS": "x"}))
    assert [i.key for i in info.value.issues] == ["S3_BUCKET_NAME", "S3_OBJECT_LOCK_DAYS"]
    assert set(render(settings)) == {"uploader", "admin"}


def cli(tmp_path, *args, **values):
    env_file = tmp_path / "policy.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "AWS_"))}
    return subprocess.run([sys.executable, "-m", "services", "iam-policy", "--env-file", str(env_file), *args],
                          cwd=REPO, env=dict(environ, PYTHONPATH=str(REPO)), capture_output=True, text=True,
                          timeout=60)


def test_cli_prints_valid_json_and_rejects_bad_input(tmp_path):
    out = cli(tmp_path, "--which", "uploader", S3_BUCKET_NAME="cams", S3_PREFIX="site-a",
              AWS_SECRET_ACCESS_KEY="Secret-Key-Never-Printed", AWS_ACCESS_KEY_ID="AKIAEXAMPLEKEY")
    assert out.returncode == 0, out.stderr
    policy = json.loads(out.stdout)
    assert policy["Version"] == "2012-10-17" and "s3:PutObject" in actions(policy)
    assert "Secret-Key" not in out.stdout + out.stderr and "AKIAEXAMPLEKEY" not in out.stdout + out.stderr
    both = json.loads(cli(tmp_path, S3_BUCKET_NAME="cams").stdout)
    assert set(both) == {"uploader", "admin"}
    bad = cli(tmp_path, S3_BUCKET_NAME="cams", S3_OBJECT_LOCK_DAYS="soon")
    assert bad.returncode == 78 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        f"config error ({tmp_path / 'policy.env'}): S3_OBJECT_LOCK_DAYS: must be a whole number, got 'soon'"]
