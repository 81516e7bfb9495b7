"""`iam-policy`: print the least-privilege IAM policies for the bucket (JSON)."""
from __future__ import annotations

import argparse
import json

from services.bucket.iam_policy import PolicySettings, render
from services.common.config import EnvReader
from services.common.settings import S3_BUCKET_NAME, S3_CHECKSUM, S3_SSE_KMS_KEY_ID
from services.uploader.config import BAD_BUCKET_NAME, _normalise_prefix, _object_lock, valid_bucket_name

NAME = "iam-policy"
HELP = "print the least-privilege IAM policies (JSON) for the bucket"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--which", choices=("uploader", "admin", "both"), default="both",
                        help="uploader (the recording host), admin (lifecycle, doctor's bucket settings) or both")


def read_settings(env: EnvReader) -> PolicySettings:
    """Only the keys the policies depend on (no DATA_DIR needed: runs on an admin's machine)."""
    bucket = env.get(S3_BUCKET_NAME)
    if not bucket:
        env.error(S3_BUCKET_NAME.name, "required: the bucket the policy is for")
    elif not valid_bucket_name(bucket):
        env.error(S3_BUCKET_NAME.name, BAD_BUCKET_NAME.format(bucket=bucket))
    prefix = _normalise_prefix(env)
    # Not validated here (the uploader does): the policies only care whether it is "off".
    checksum = (env.raw(S3_CHECKSUM.name) or S3_CHECKSUM.default).lower()
    lock_days, _ = _object_lock(env, checksum)
    kms_key = env.get(S3_SSE_KMS_KEY_ID)
    env.check()
    return PolicySettings(bucket, prefix, lock_days > 0,
                          kms_key if kms_key and kms_key.startswith("arn:") else None)


def run(args: argparse.Namespace, settings: PolicySettings) -> int:
    print(json.dumps(render(settings, args.which), indent=2))
    return 0
