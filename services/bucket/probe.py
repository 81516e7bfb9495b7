"""What the store is and does, asked of the server: reachable, writable (a probe object written,
read back and deleted), default encryption, public access block and object lock.

Every answer is a typed record and a failed call a `Failure` (the server's code and one
classified, redacted line), never an exception: `doctor` words each case as a check line.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Mapping

from services.bucket.client import classify, error_code
from services.bucket.guards import CONDITIONAL_WRITE_REJECTED

PUBLIC_BLOCK_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
PROBE_BODY = b"s3-uploader doctor probe; safe to delete\n"
_UNSUPPORTED = ("NotImplemented", "501", "MethodNotAllowed", "405", "NotSupported", "XNotImplemented")
_DENIED = ("AccessDenied", "403", "AllAccessDisabled")
_NO_CONNECTION = ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ReadTimeoutError")
_NO_SUCH_BUCKET = ("404", "NoSuchBucket", "NotFound")


@dataclass(frozen=True)
class Failure:
    """A failed call: the server's error code (else the exception's class name) and one line why."""

    code: str
    reason: str

    @classmethod
    def of(cls, exc: BaseException, what: str) -> "Failure":
        return cls(_code(exc), str(classify(exc, what)))

    @property
    def unsupported(self) -> bool:
        """The server does not implement the call (rclone, MinIO and others lack some)."""
        return self.code in _UNSUPPORTED

    @property
    def denied(self) -> bool:
        """The keys may not make the call: least-privilege policies leave some out on purpose."""
        return self.code in _DENIED

    @property
    def no_connection(self) -> bool:
        return self.code in _NO_CONNECTION


def _code(exc: BaseException) -> str:
    return error_code(exc) or exc.__class__.__name__


# ----- reachable --------------------------------------------------------------------------------
class Reach(str, Enum):
    HEAD = "head"          # HEAD on the bucket answered
    LISTING = "listing"    # HEAD did not, a listing of our prefix did (a policy may allow only that)
    MISSING = "missing"    # there is no such bucket
    FAILED = "failed"      # neither answered; `failure` is the listing's, which says why


@dataclass(frozen=True)
class Reachability:
    reach: Reach
    failure: Failure | None = None


def reachability(client: Any, bucket: str, prefix: str) -> Reachability:
    try:
        client.head_bucket(Bucket=bucket)
        return Reachability(Reach.HEAD)
    except Exception as exc:  # noqa: BLE001 - every failure is an answer
        if _code(exc) in _NO_SUCH_BUCKET:
            return Reachability(Reach.MISSING)
    # HEAD answers carry no error body: a listing of our own prefix says why (and succeeds
    # where the policy allows s3:ListBucket only under the prefix).
    try:
        client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        return Reachability(Reach.LISTING)
    except Exception as exc:  # noqa: BLE001
        return Reachability(Reach.FAILED, Failure.of(exc, f"s3://{bucket}"))


# ----- writable ---------------------------------------------------------------------------------
class WriteStep(str, Enum):
    WRITE = "write"
    READ_BACK = "read back"
    COMPARE = "compare"    # other bytes came back
    DELETE = "delete"


@dataclass(frozen=True)
class WriteProbe:
    """The probe's round trip: `failed_at` None when it was written, read back intact and deleted.

    From READ_BACK on, a failed step leaves the probe at `key`.
    """

    key: str
    failed_at: WriteStep | None = None
    failure: Failure | None = None    # why `failed_at` failed (None for COMPARE)


def probe_folder(prefix: str) -> str:
    return f"{prefix}.doctor/"


def write_probe(client: Any, bucket: str, prefix: str, sse: str | None = None,
                kms_key_id: str | None = None) -> WriteProbe:
    """Write a small object under our prefix as the uploader would, read it back, delete it."""
    key = f"{probe_folder(prefix)}probe-{secrets.token_hex(6)}"
    where = f"s3://{bucket}/{key}"
    put_args: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": PROBE_BODY,
                                # Content-MD5 satisfies object-lock buckets even with S3_CHECKSUM=off.
                                "ContentMD5": base64.b64encode(hashlib.md5(PROBE_BODY).digest()).decode()}
    if sse:
        put_args["ServerSideEncryption"] = sse
    if kms_key_id:
        put_args["SSEKMSKeyId"] = kms_key_id
    try:
        version = _put_new(client, put_args)
    except Exception as exc:  # noqa: BLE001
        return WriteProbe(key, WriteStep.WRITE, Failure.of(exc, f"writing a probe to {where}"))
    try:
        back = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:  # noqa: BLE001
        return WriteProbe(key, WriteStep.READ_BACK, Failure.of(exc, f"reading the probe {where} back"))
    if back != PROBE_BODY:
        return WriteProbe(key, WriteStep.COMPARE)
    delete_args = {"Bucket": bucket, "Key": key, **({"VersionId": version} if version and version != "null" else {})}
    try:
        client.delete_object(**delete_args)
    except Exception as exc:  # noqa: BLE001
        return WriteProbe(key, WriteStep.DELETE, Failure.of(exc, "delete"))
    return WriteProbe(key)


def _put_new(client: Any, put_args: Mapping[str, Any]) -> str | None:
    """PutObject with `If-None-Match: *`, as the uploader writes (its IAM policy allows no other
    PUT); again without it where the server rejects the header. The key is new either way."""
    try:
        return client.put_object(**put_args, IfNoneMatch="*").get("VersionId")
    except Exception as exc:  # noqa: BLE001
        if _code(exc) not in CONDITIONAL_WRITE_REJECTED:
            raise
    return client.put_object(**put_args).get("VersionId")


# ----- bucket settings --------------------------------------------------------------------------
class Answer(str, Enum):
    FOUND = "found"                # read: see the record's values
    NOT_SET = "not set"            # the bucket has no such setting
    NOT_REPORTED = "not reported"  # the call succeeded but said nothing (rclone)
    FAILED = "failed"              # see `failure`


@dataclass(frozen=True)
class SettingRead:
    """One bucket setting as read, and why not when the call failed."""

    answer: Answer
    failure: Failure | None = None


@dataclass(frozen=True)
class DefaultEncryption(SettingRead):
    algorithms: tuple[str, ...] = ()     # sorted


@dataclass(frozen=True)
class PublicAccessBlock(SettingRead):
    off: tuple[str, ...] = ()            # the PUBLIC_BLOCK_FLAGS not switched on


@dataclass(frozen=True)
class DefaultRetention:
    mode: str | None
    days: int | None
    years: int | None


@dataclass(frozen=True)
class ObjectLock(SettingRead):
    """Never NOT_SET: a bucket without an object lock configuration has lock disabled."""

    enabled: bool = False
    default: DefaultRetention | None = None


def _read_setting(read: Callable[[], Mapping[str, Any]], field: str, absent_code: str,
                  what: str) -> tuple[Answer, Mapping[str, Any], Failure | None]:
    """`read()`'s `field`, with the error code that means the bucket has none of it."""
    try:
        value = read().get(field) or {}
    except Exception as exc:  # noqa: BLE001
        if _code(exc) == absent_code:
            return Answer.NOT_SET, {}, None
        return Answer.FAILED, {}, Failure.of(exc, what)
    return (Answer.FOUND if value else Answer.NOT_REPORTED), value, None


def default_encryption(client: Any, bucket: str) -> DefaultEncryption:
    answer, found, failure = _read_setting(
        lambda: client.get_bucket_encryption(Bucket=bucket), "ServerSideEncryptionConfiguration",
        "ServerSideEncryptionConfigurationNotFoundError", "get_bucket_encryption")
    rules = found.get("Rules") or []
    if answer is Answer.FOUND and not rules:
        answer = Answer.NOT_REPORTED
    algorithms = {(rule.get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm", "?") for rule in rules}
    return DefaultEncryption(answer, failure, tuple(sorted(algorithms)))


def public_access_block(client: Any, bucket: str) -> PublicAccessBlock:
    answer, block, failure = _read_setting(
        lambda: client.get_public_access_block(Bucket=bucket), "PublicAccessBlockConfiguration",
        "NoSuchPublicAccessBlockConfiguration", "get_public_access_block")
    return PublicAccessBlock(answer, failure, tuple(flag for flag in PUBLIC_BLOCK_FLAGS if not block.get(flag)))


def object_lock(client: Any, bucket: str) -> ObjectLock:
    answer, lock, failure = _read_setting(
        lambda: client.get_object_lock_configuration(Bucket=bucket), "ObjectLockConfiguration",
        "ObjectLockConfigurationNotFoundError", "get_object_lock_configuration")
    if answer is Answer.NOT_SET:
        return ObjectLock(Answer.FOUND, enabled=False)
    retention = (lock.get("Rule") or {}).get("DefaultRetention") or {}
    default = DefaultRetention(retention.get("Mode"), retention.get("Days"), retention.get("Years"))
    return ObjectLock(answer, failure, enabled=lock.get("ObjectLockEnabled") == "Enabled",
                      default=default if retention else None)
