"""`iam-policy`: valid JSON, no delete, scoped to bucket/prefix, and exactly the actions the code uses."""
from __future__ import annotations

import fnmatch
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from services.bucket.iam_policy import PolicySettings, actions, admin_policy, render, uploader_policy
from services.bucket.probe import write_probe
from services.commands.iam_policy import read_settings
from services.common.config import ConfigError, EnvReader

REPO = Path(__file__).resolve().parents[2]
UPLOAD_PATH = ("services/bucket/client.py", "services/bucket/store.py") + tuple(
    str(p.relative_to(REPO)) for p in sorted((REPO / "services/uploader").glob("*.py")))
# coverage, clip, sync --verify and the viewer list and read (catalog); decrypt, clip and the
# viewer fetch single objects (objects, stream: ranged reads for playback).
READ_COMMANDS = ("services/bucket/catalog.py", "services/bucket/objects.py", "services/bucket/stream.py")
LIFECYCLE = "services/bucket/lifecycle.py"
DOCTOR = "services/bucket/probe.py"

# Every boto3 client call the code makes, and the IAM actions it needs.
CALL_ACTIONS = {
    "upload_file": {"s3:PutObject"},                 # PutObject or Create/UploadPart/CompleteMultipartUpload
    "upload_fileobj": {"s3:PutObject"},              # the same, from the encrypting reader
    "put_object": {"s3:PutObject"},                  # a stream put whole, through the streaming client
    "create_multipart_upload": {"s3:PutObject"},     # the start-up probes of CRC32 and SSE, then aborted
    "upload_part": {"s3:PutObject"},
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
    assert actions(uploader_policy(PolicySettings("b", "site-a/", object_lock_days=30))) == used
    lock_only = {"s3:PutObjectRetention", "s3:GetObjectRetention", "s3:GetBucketObjectLockConfiguration"}
    assert actions(uploader_policy(PolicySettings("b", "site-a/"))) == used - lock_only


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
    policy = uploader_policy(PolicySettings("cams", "site-a/", object_lock_days=30))
    assert not any("Delete" in a for a in actions(policy))
    for statement in policy["Statement"]:
        assert statement["Effect"] in ("Allow", "Deny")
        for resource in statement["Resource"]:
            assert resource in ("arn:aws:s3:::cams", "arn:aws:s3:::cams/site-a/*"), resource
            assert "*" not in resource.replace("/site-a/*", "")
    listing = next(s for s in policy["Statement"] if "s3:ListBucket" in s["Action"])
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["site-a/*"]}}
    whole = uploader_policy(PolicySettings("cams"))
    assert {r for s in whole["Statement"] for r in s["Resource"]} == {"arn:aws:s3:::cams", "arn:aws:s3:::cams/*"}


def test_settings(tmp_path):
    settings = read_settings(EnvReader({"S3_BUCKET_NAME": "cams", "S3_PREFIX": "/site-a", "S3_OBJECT_LOCK_DAYS": "9",
                                        "S3_OBJECT_LOCK_MODE": "compliance"}))
    assert settings == PolicySettings("cams", "site-a/", 9, "COMPLIANCE")
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


# ----- what the policy lets a request do ----------------------------------------------------------
# A model of IAM's evaluation, enough for the operators the uploader policy uses: an explicit Deny
# wins, else an Allow must match; a condition key missing from the request makes a condition
# false, except a negated one (StringNotEquals) and `Null: true`, which are then true.

def _condition_holds(operator: str, key: str, expected: str, request: dict[str, str]) -> bool:
    present = key in request
    if operator == "Null":
        return (expected == "true") is not present
    if not present:
        return operator.startswith("StringNot")
    value = request[key]
    return {"Bool": lambda: value.lower() == expected,
            "StringNotEquals": lambda: value != expected,
            "StringLike": lambda: fnmatch.fnmatchcase(value, expected),
            "NumericGreaterThan": lambda: float(value) > float(expected)}[operator]()


def _matches(statement: dict, action: str, resource: str, request: dict[str, str]) -> bool:
    if action not in statement["Action"] or not any(fnmatch.fnmatchcase(resource, r) for r in statement["Resource"]):
        return False
    for operator, keys in statement.get("Condition", {}).items():
        for key, values in keys.items():
            options = values if isinstance(values, list) else [values]
            if not any(_condition_holds(operator, key, option, request) for option in options):
                return False
    return True


def allowed(policy: dict, action: str, key: str, *request: dict[str, str]) -> bool:
    """Would `action` on cams/`key`, with the request's condition keys, be allowed?"""
    context = {k: v for part in request for k, v in part.items()}
    resource = f"arn:aws:s3:::cams/{key}"
    hits = [s["Effect"] for s in policy["Statement"] if _matches(s, action, resource, context)]
    return "Deny" not in hits and "Allow" in hits


def lock(mode: str = "GOVERNANCE", days: int = 30) -> dict[str, str]:
    return {"s3:object-lock-mode": mode, "s3:object-lock-remaining-retention-days": str(days)}


# The requests the uploader makes, as IAM sees them (ObjectCreationOperation: PutObject and
# CompleteMultipartUpload are "true", CreateMultipartUpload and UploadPart "false").
PUT = "s3:PutObject"
NEW = {"s3:if-none-match": "*", "s3:ObjectCreationOperation": "true"}
UNCONDITIONAL = {"s3:ObjectCreationOperation": "true"}
PART = {"s3:ObjectCreationOperation": "false"}


def test_the_conditional_write_probe_and_uploads_pass_and_an_overwrite_does_not():
    """The start-up probe PUTs twice with If-None-Match (no lock headers): both reach S3, which
    answers the second with 412. Multipart parts pass; an unconditional PUT is refused."""
    for days in (0, 30):
        policy = uploader_policy(PolicySettings("cams", "site-a/", object_lock_days=days))
        retention = lock() if days else {}
        assert allowed(policy, PUT, "site-a/.uploader-probe/host-1", NEW)
        assert allowed(policy, PUT, "site-a/camera_1/x.mp4", NEW, retention)     # single PUT, Complete
        assert allowed(policy, PUT, "site-a/camera_1/x.mp4", PART, retention)    # CreateMultipartUpload
        assert allowed(policy, PUT, "site-a/camera_1/x.mp4", PART)               # UploadPart
        assert not allowed(policy, PUT, "site-a/camera_1/x.mp4", UNCONDITIONAL, retention)
        assert not allowed(policy, PUT, "other/x.mp4", NEW)
        assert not allowed(policy, "s3:DeleteObject", "site-a/camera_1/x.mp4")


def test_object_lock_is_pinned_to_the_configured_mode_and_days():
    policy = uploader_policy(PolicySettings("cams", "", object_lock_days=30, object_lock_mode="GOVERNANCE"))
    assert allowed(policy, PUT, "k", NEW, lock(days=31))    # a day of slack for clocks and rounding
    assert not allowed(policy, PUT, "k", NEW, lock("COMPLIANCE"))
    assert not allowed(policy, PUT, "k", NEW, lock(days=36500))
    assert not allowed(policy, PUT, "k", PART, lock(days=3650))          # CreateMultipartUpload too
    assert allowed(policy, "s3:PutObjectRetention", "k", lock())          # set afterwards (moto drops headers)
    assert not allowed(policy, "s3:PutObjectRetention", "k", lock("COMPLIANCE"))
    assert not allowed(policy, "s3:PutObjectRetention", "k", lock(days=400))
    unlocked = uploader_policy(PolicySettings("cams"))
    assert not allowed(unlocked, PUT, "k", NEW, lock())                   # lock off: no retention at all
    assert not allowed(unlocked, "s3:PutObjectRetention", "k", lock())


def test_a_kms_key_that_is_not_a_key_arn_is_a_config_error():
    arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    settings = read_settings(EnvReader({"S3_BUCKET_NAME": "cams", "S3_SSE": "aws:kms", "S3_SSE_KMS_KEY_ID": arn}))
    kms = next(s for s in uploader_policy(settings)["Statement"] if s["Sid"] == "UseUploadKmsKey")
    assert kms["Resource"] == [arn]
    for not_an_arn in ("1234abcd-12ab-34cd-56ef-1234567890ab", "alias/cams",
                       "arn:aws:kms:eu-west-1:123456789012:alias/cams"):
        with pytest.raises(ConfigError) as info:
            read_settings(EnvReader({"S3_BUCKET_NAME": "cams", "S3_SSE": "aws:kms", "S3_SSE_KMS_KEY_ID": not_an_arn}))
        assert [i.key for i in info.value.issues] == ["S3_SSE_KMS_KEY_ID"] and "ARN" in info.value.issues[0].problem


class RecordingClient:
    """put_object/get_object/delete_object of a bucket; optionally rejecting If-None-Match."""

    def __init__(self, rejects_condition: bool):
        self.rejects_condition, self.puts, self.body = rejects_condition, [], b""

    def put_object(self, **args):
        self.puts.append(args)
        if "IfNoneMatch" in args and self.rejects_condition:
            raise ClientError({"Error": {"Code": "NotImplemented", "Message": "no"}}, "PutObject")
        self.body = args["Body"]
        return {}

    def get_object(self, **_):
        return {"Body": io.BytesIO(self.body)}

    def delete_object(self, **_):
        return {}


@pytest.mark.parametrize("rejects", [False, True])
def test_doctors_write_probe_is_a_conditional_put_the_uploader_policy_allows(rejects):
    client = RecordingClient(rejects_condition=rejects)
    assert write_probe(client, "cams", "site-a/").failed_at is None
    assert client.puts[0]["IfNoneMatch"] == "*"
    assert len(client.puts) == (2 if rejects else 1)   # a server without conditional writes: once more without
    policy = uploader_policy(PolicySettings("cams", "site-a/"))
    assert allowed(policy, PUT, client.puts[0]["Key"], NEW)
