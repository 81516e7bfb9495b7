"""`iam-policy`: the least-privilege IAM policies for the configured bucket and prefix.

Two documents, built from settings alone (no AWS call):
- uploader: what the upload path calls, on its own prefix only: put (single and multipart),
  read back for verification (head_object), list its prefix (so a missing key is a 404, not a
  403), list and abort its own stale multipart uploads, and set the retention date when object
  lock is on. No delete of any kind: a compromised host cannot erase what it already uploaded.
  A stolen key cannot overwrite either: PutObject and CompleteMultipartUpload are allowed only
  with `If-None-Match` (which the uploader, its start-up probe and doctor's probe send; the
  multipart steps that cannot carry it are allowed by `s3:ObjectCreationOperation`), and a
  retention other than the configured mode, or longer than the configured days, is refused
  (none at all with object lock off), so the key cannot lock junk into the bucket for years.
  `doctor` and the read-only commands (`coverage`, `clip`, `sync --verify`) also work with it.
- admin: the bucket settings `lifecycle` writes and `doctor` reads (encryption, public access
  block, object lock). Meant for a person, not for the recording host.
tests/unit/test_iam_policy.py derives the uploader's actions from the code's client calls.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VERSION = "2012-10-17"
PUT = "s3:PutObject"
UPLOADER_OBJECT_ACTIONS = ("s3:GetObject", "s3:AbortMultipartUpload")
# Sending a retain-until date, and reading it back (S3 leaves it out of HEAD without GetObjectRetention).
LOCK_ACTIONS = ("s3:PutObjectRetention", "s3:GetObjectRetention")
LOCK_BUCKET_ACTIONS = ("s3:GetBucketObjectLockConfiguration",)
ADMIN_ACTIONS = ("s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration",
                 "s3:GetEncryptionConfiguration", "s3:GetBucketPublicAccessBlock",
                 "s3:GetBucketObjectLockConfiguration")
WHICH = ("uploader", "admin", "both")


# AWS counts whole days left until the retain-until date; the slack absorbs rounding and a host
# clock ahead of AWS's, which would otherwise refuse every upload.
RETENTION_SLACK_DAYS = 1


@dataclass(frozen=True)
class PolicySettings:
    bucket: str
    prefix: str = ""              # normalised: "" or ending in "/"
    object_lock_days: int = 0     # 0: object lock off
    object_lock_mode: str = "GOVERNANCE"
    kms_key_arn: str | None = None

    @property
    def object_lock(self) -> bool:
        return self.object_lock_days > 0


def _bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def uploader_policy(settings: PolicySettings) -> dict[str, Any]:
    bucket_arn = _bucket_arn(settings.bucket)
    objects = f"{bucket_arn}/{settings.prefix}*"
    object_actions = list(UPLOADER_OBJECT_ACTIONS) + (list(LOCK_ACTIONS) if settings.object_lock else [])
    list_own: dict[str, Any] = {"Sid": "ListOwnPrefix", "Effect": "Allow", "Action": ["s3:ListBucket"],
                                "Resource": [bucket_arn]}
    if settings.prefix:
        list_own["Condition"] = {"StringLike": {"s3:prefix": [f"{settings.prefix}*"]}}
    statements = [
        # PutObject and CompleteMultipartUpload: only as new objects (a 412 instead of an overwrite).
        {"Sid": "CreateOnlyNewObjectsInOwnPrefix", "Effect": "Allow", "Action": [PUT], "Resource": [objects],
         "Condition": {"Null": {"s3:if-none-match": "false"}}},
        # CreateMultipartUpload and UploadPart take no conditional header; the upload only becomes
        # an object through the CompleteMultipartUpload above.
        {"Sid": "SendMultipartParts", "Effect": "Allow", "Action": [PUT], "Resource": [objects],
         "Condition": {"Bool": {"s3:ObjectCreationOperation": "false"}}},
        {"Sid": "VerifyOwnPrefix", "Effect": "Allow", "Action": object_actions, "Resource": [objects]},
        list_own,
        {"Sid": "FindOwnStaleMultipartUploads", "Effect": "Allow", "Action": ["s3:ListBucketMultipartUploads"],
         "Resource": [bucket_arn]},
    ]
    if settings.object_lock:
        # The uploader reads the bucket's lock setting before it marks a file done.
        statements.append({"Sid": "ReadObjectLockSetting", "Effect": "Allow", "Action": list(LOCK_BUCKET_ACTIONS),
                           "Resource": [bucket_arn]})
    if settings.kms_key_arn:
        # SSE-KMS: encrypting new objects and reading them back (multipart needs Decrypt too).
        statements.append({"Sid": "UseUploadKmsKey", "Effect": "Allow",
                           "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": [settings.kms_key_arn]})
    return {"Version": VERSION, "Statement": statements + _retention_limits(settings, objects)}


def _retention_limits(settings: PolicySettings, objects: str) -> list[dict[str, Any]]:
    """Denials that pin object lock to the settings. Each applies only where the request sets a
    retention: the start-up probe and the multipart parts carry none and pass."""
    if not settings.object_lock:
        return [{"Sid": "NoObjectLock", "Effect": "Deny", "Action": [PUT], "Resource": [objects],
                 "Condition": {"Null": {"s3:object-lock-mode": "false"}}}]
    writes = [PUT, "s3:PutObjectRetention"]
    return [
        {"Sid": "OnlyTheConfiguredLockMode", "Effect": "Deny", "Action": writes, "Resource": [objects],
         "Condition": {"StringNotEquals": {"s3:object-lock-mode": settings.object_lock_mode},
                       "Null": {"s3:object-lock-mode": "false"}}},
        {"Sid": "NoLongerRetentionThanConfigured", "Effect": "Deny", "Action": writes, "Resource": [objects],
         "Condition": {"NumericGreaterThan": {"s3:object-lock-remaining-retention-days":
                                              str(settings.object_lock_days + RETENTION_SLACK_DAYS)}}},
    ]


def admin_policy(settings: PolicySettings) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": [
        {"Sid": "LifecycleAndDoctorBucketSettings", "Effect": "Allow", "Action": list(ADMIN_ACTIONS),
         "Resource": [_bucket_arn(settings.bucket)]},
    ]}


def render(settings: PolicySettings, which: str = "both") -> dict[str, Any]:
    """One policy document, or both keyed by role."""
    if which == "uploader":
        return uploader_policy(settings)
    if which == "admin":
        return admin_policy(settings)
    return {"uploader": uploader_policy(settings), "admin": admin_policy(settings)}


def actions(policy: dict[str, Any]) -> set[str]:
    """What the policy allows (under some condition); its denials only narrow these."""
    return {action for statement in policy["Statement"] if statement["Effect"] == "Allow"
            for action in statement["Action"]}
