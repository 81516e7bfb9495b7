"""`iam-policy`: print the least-privilege IAM policies for the bucket (JSON)."""
from __future__ import annotations

import argparse
import json

from services.bucket.iam_policy import PolicySettings, render
from services.common.config import EnvReader
from services.uploader.config import _BUCKET, _normalise_prefix, _object_lock


def read_settings(env: EnvReader) -> PolicySettings:
    """Only the keys the policies depend on (no DATA_DIR needed: runs on an admin's machine)."""
    bucket = env.string("S3_BUCKET_NAME")
    if not bucket:
        env.error("S3_BUCKET_NAME", "required: the bucket the policy is for")
    elif not _BUCKET.match(bucket) or ".." in bucket:
        env.error("S3_BUCKET_NAME", f"not a valid bucket name (3-63 lowercase letters, digits, '.', '-'): {bucket!r}")
    prefix = _normalise_prefix(env)
    checksum = env.string("S3_CHECKSUM", "crc32").lower()
    lock_days, _ = _object_lock(env, checksum)
    kms_key = env.raw("S3_SSE_KMS_KEY_ID")
    env.check()
    return PolicySettings(bucket, prefix, lock_days > 0,
                          kms_key if kms_key and kms_key.startswith("arn:") else None)


def run(args: argparse.Namespace, settings: PolicySettings) -> int:
    print(json.dumps(render(settings, args.which), indent=2))
    return 0
