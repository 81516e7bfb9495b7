"""Single objects for the read-only commands: stream one (`decrypt`), download one, or hand out
a time-limited URL to it (`clip`).

Failures are raised as they came: the callers classify them with what they were doing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from botocore.exceptions import ClientError

from services.bucket.client import NO_SUCH_KEY_CODES, error_code


@dataclass(frozen=True)
class OpenedObject:
    key: str
    body: Any           # the object's bytes as a stream, read as they arrive; the caller closes it
    size: int | None    # None when the server does not say


def open_first(client: Any, bucket: str, keys: Sequence[str]) -> OpenedObject:
    """The first of `keys` that holds an object, opened for reading; FileNotFoundError if none does."""
    last: Exception | None = None
    for key in keys:
        try:
            response = client.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in NO_SUCH_KEY_CODES:
                last = exc
                continue
            raise
        size = int(response.get("ContentLength", -1))
        return OpenedObject(key, response["Body"], size if size >= 0 else None)
    raise FileNotFoundError(f"s3://{bucket}/{keys[-1]} does not exist") from last


def download(client: Any, bucket: str, key: str, target: Path) -> None:
    """Managed transfer into `target`: large objects come in parts, in parallel."""
    client.download_file(bucket, key, str(target))


def _keep_sigv4(signature_version: str, **_: Any) -> str | None:
    """botocore presigns S3 URLs with signature version 2 unless the client names a version;
    AWS regions opened since 2014 and S3-compatible servers (rclone) refuse those. Keep v4."""
    return "s3v4-query" if signature_version in ("v4-query", "s3v4-query") else None


def presigned_url(client: Any, bucket: str, key: str, expires: int) -> str:
    """A URL that GETs the object for `expires` seconds with our keys' rights; signed here (SigV4),
    no request."""
    client.meta.events.register_first("choose-signer.s3", _keep_sigv4, unique_id="presign-sigv4")
    return client.generate_presigned_url("get_object", ExpiresIn=expires, Params={"Bucket": bucket, "Key": key})
