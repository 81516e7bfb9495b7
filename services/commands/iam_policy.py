"""`iam-policy`: print the least-privilege IAM policies for the bucket (JSON)."""
from __future__ import annotations

import argparse
import json
import re

from services.bucket.iam_policy import PolicySettings, render
from services.common.config import EnvReader
from services.common.settings import S3_BUCKET_NAME, S3_CHECKSUM, S3_SSE_KMS_KEY_ID
from services.uploader.config import BAD_BUCKET_NAME, _normalise_prefix, _object_lock, valid_bucket_name

NAME = "iam-policy"
HELP = "print the least-privilege IAM policies (JSON) for the bucket"
# A key's ARN: IAM grants KMS use on keys, so neither a bare key id nor an alias can be named.
_KEY_ARN = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+")


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
    lock_days, lock_mode = _object_lock(env, checksum)
    kms_key = env.get(S3_SSE_KMS_KEY_ID)
    if kms_key and not _KEY_ARN.fullmatch(kms_key):
        # Without the statement every upload would fail with AccessDenied from KMS.
        env.error(S3_SSE_KMS_KEY_ID.name, f"the policy must name the key by its ARN "
                  f"(arn:aws:kms:<region>:<account>:key/<key id>), got {kms_key!r}; S3 accepts the ARN "
                  "too, so put it in .env for the uploader as well")
    env.check()
    return PolicySettings(bucket, prefix, lock_days, lock_mode, kms_key)


def run(args: argparse.Namespace, settings: PolicySettings) -> int:
    print(json.dumps(render(settings, args.which), indent=2))
    return 0
