"""The edge to S3: client set-up, error classification, and the few calls it makes.

Errors are sorted into two kinds because they need opposite handling: transient ones
(network, 5xx, throttling) are retried per file with backoff; configuration ones (bucket
missing, access denied, bad keys) stop all uploads until the next probe and are logged once
per interval. Messages are redacted here so no caller can leak a key.
"""
from __future__ import annotations

import copy
import io
import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from services.bucket.verify import RemoteObject, remote_from_head
from services.common.redact import redact

# Threads each managed transfer uses for the parts of one file.
PART_THREADS = 4
STREAM_CHUNKS_IN_MEMORY = 2
CONFIG_ERROR_CODES = {
    "NoSuchBucket": "bucket does not exist",
    "AccessDenied": "access denied",
    "AllAccessDisabled": "access to the bucket is disabled",
    "InvalidAccessKeyId": "access key id is not known to the server",
    "SignatureDoesNotMatch": "secret access key is wrong",
    "InvalidBucketName": "invalid bucket name",
    "AuthorizationHeaderMalformed": "wrong AWS_REGION for this bucket",
    "PermanentRedirect": "bucket is in another region (check AWS_REGION / S3_ENDPOINT_URL)",
    "InvalidToken": "session token is invalid",
    "ExpiredToken": "session token has expired",
    "AccountProblem": "account problem",
    "KMS.NotFoundException": "KMS key not found",
    "KMS.DisabledException": "KMS key is disabled",
    "InvalidStorageClass": "S3_STORAGE_CLASS is not supported by this server",
    "InvalidEncryptionAlgorithmError": "S3_SSE is not supported by this server",
    "403": "access denied (HTTP 403: check the keys, and that the policy allows s3:ListBucket, s3:GetObject and s3:PutObject)",
}
_CODE_IN_TEXT = re.compile(r"An error occurred \((?P<code>[^)]+)\)")
# What servers answer for a key that holds no object.
NO_SUCH_KEY_CODES = ("404", "NoSuchKey", "NotFound")


class ClientSettings(Protocol):
    """What the client set-up reads of the uploader's settings (the bucket wing imports no wing)."""

    bucket: str
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None
    endpoint_url: str | None
    checksum: str
    concurrency: int
    multipart_threshold: int
    part_size: int


class ProblemKind(str, Enum):
    CONFIG = "config"          # the same for every request until someone fixes it
    TRANSIENT = "transient"    # worth retrying


@dataclass
class S3Problem(Exception):
    """A failed S3 call, already classified and with a one-line, redacted message."""

    kind: ProblemKind
    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def error_code(exc: BaseException) -> str | None:
    """The server's error code (or HTTP status) in `exc` or its causes; None when there is none."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ClientError):
            return str(exc.response.get("Error", {}).get("Code") or
                       exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        match = _CODE_IN_TEXT.search(str(exc))
        if match:
            return match["code"]
        exc = exc.__cause__ or exc.__context__
    return None


def classify(exc: BaseException, what: str) -> S3Problem:
    """Turn any exception from boto3 into an S3Problem; `what` says which call failed."""
    if isinstance(exc, S3Problem):
        return exc
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return S3Problem(ProblemKind.CONFIG, "NoCredentials", f"{what}: no AWS credentials found "
                         "(set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or configure an instance role)")
    code = error_code(exc)
    if code in CONFIG_ERROR_CODES:
        return S3Problem(ProblemKind.CONFIG, code, f"{what}: {code}: {CONFIG_ERROR_CODES[code]}")
    detail = redact(str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
    if len(detail) > 300:
        detail = detail[:300] + "..."
    return S3Problem(ProblemKind.TRANSIENT, code or exc.__class__.__name__, f"{what}: {detail}")


def new_session(config: ClientSettings) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        aws_session_token=config.session_token,
        region_name=config.region,
    )


def make_client(config: ClientSettings, streaming_puts: bool = False,
                session: boto3.session.Session | None = None) -> Any:
    """A client whose connection pool fits every part thread of every parallel upload.

    `streaming_puts`: a client for `ObjectStore.put_stream`, whose request body must be read
    once only: the payload is never hashed for the signature, and over plain HTTP (where
    botocore cannot send a checksum as a trailer) no checksum header is computed either; the
    upload is then checked afterwards, against the MD5 of what was sent.
    `session`: shared by clients made together (a new one loads botocore's models, ~0.2 s).
    """
    options: dict[str, Any] = {
        "max_pool_connections": config.concurrency * (PART_THREADS + 1) + 2,
        "connect_timeout": 10,
        "read_timeout": 60,
        # Our own backoff handles longer outages; botocore only smooths over blips.
        "retries": {"mode": "standard", "max_attempts": 3},
    }
    s3_options: dict[str, Any] = {}
    if config.endpoint_url:
        s3_options["addressing_style"] = "path"
    if config.checksum == "crc32" or streaming_puts:
        # Every upload request carries a CRC32 of its body that the server checks. Over plain
        # HTTP botocore would also SHA-256 the whole body for the signature, one more pass over
        # every byte (over HTTPS it never does); rclone does not either (UNSIGNED-PAYLOAD with
        # Content-MD5). Plain HTTP protects nothing from someone on the path anyway. A streaming
        # PUT's body is read once (a second read would encrypt it again): no payload hash either.
        s3_options["payload_signing_enabled"] = False
    if s3_options:
        options["s3"] = s3_options
    if config.checksum == "off":
        # boto3 >= 1.36 adds CRC32 trailers by default; some S3-compatible servers reject them.
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    session = session or new_session(config)
    client = session.client("s3", endpoint_url=config.endpoint_url, config=Config(**options))
    if streaming_puts and not is_https(client) and config.checksum != "off":
        # Over plain HTTP botocore would put the checksum in a header, computed in a read of its
        # own. Decided on the endpoint botocore chose (it may come from AWS_ENDPOINT_URL too).
        options["request_checksum_calculation"] = "when_required"
        client = session.client("s3", endpoint_url=config.endpoint_url, config=Config(**options))
    return client


def is_https(client: Any) -> bool:
    return urlsplit(client.meta.endpoint_url).scheme.lower() == "https"


def transfer_config(config: ClientSettings) -> TransferConfig:
    return TransferConfig(multipart_threshold=config.multipart_threshold,
                          multipart_chunksize=config.part_size,
                          max_concurrency=PART_THREADS, use_threads=True)


class ReadOnce(io.RawIOBase):
    """A forward-only view of a stream, so that s3transfer copies each part into memory once.

    Given a seekable stream, s3transfer hands a single-part body to botocore as is, and
    botocore reads it up to three times over plain HTTP (checksum header, SigV4 payload hash,
    send): for the encrypting reader that is three encryptions of every byte. Unseekable, the
    body is read once into memory and those passes run over bytes.
    """

    def __init__(self, stream: Any):
        super().__init__()
        self._stream = stream

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int | None = -1) -> bytes:
        return self._stream.read(size)

    def readinto(self, buffer: Any) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class ObjectStore:
    """The handful of bucket operations the uploader needs; every failure is an S3Problem."""

    def __init__(self, client: Any, bucket: str, transfer: TransferConfig, put_client: Any = None):
        self.client, self.bucket, self.transfer = client, bucket, transfer
        # From make_client(streaming_puts=True); without it every stream goes through upload_stream.
        self.put_client = put_client
        # Streams that are not put whole go through s3transfer, which buffers their parts in
        # memory (10 by default): keep one upload's memory bounded. It would hold a body below
        # its threshold whole, so such streams go multipart above one part (glibc maps buffers
        # above 32 MB afresh each time, which costs system CPU: docs/performance.md, section 2b).
        self.stream_transfer = copy.copy(transfer)
        self.stream_transfer.max_in_memory_upload_chunks = STREAM_CHUNKS_IN_MEMORY
        self.stream_transfer.multipart_threshold = min(transfer.multipart_threshold, transfer.multipart_chunksize)

    @classmethod
    def for_config(cls, config: ClientSettings) -> "ObjectStore":
        session = new_session(config)
        return cls(make_client(config, session=session), config.bucket, transfer_config(config),
                   put_client=make_client(config, streaming_puts=True, session=session))

    def puts_whole(self, size: int, extra_args: Mapping[str, Any]) -> bool:
        """Is a stream of `size` bytes sent as one streaming PUT (`put_stream`)?

        Below the multipart threshold, as files are. Over plain HTTP that PUT carries no
        checksum: only an MD5 ETag can check it afterwards, which SSE-KMS and SSE-C objects do
        not have, and S3 demands a checksum with object lock headers. Those go multipart.
        """
        if self.put_client is None or size >= self.transfer.multipart_threshold:
            return False
        if self._puts_over_https:
            return True
        kms = str(extra_args.get("ServerSideEncryption", "")).startswith("aws:kms")
        return not (kms or "SSECustomerAlgorithm" in extra_args or "ObjectLockMode" in extra_args)

    @property
    def _puts_over_https(self) -> bool:
        return is_https(self.put_client)

    def put_stream(self, stream: Any, size: int, key: str, extra_args: Mapping[str, Any]) -> None:
        """One PUT whose body is read from `stream` as it is sent: nothing is held in memory.

        Over HTTPS the CRC32 (if asked for) travels as a trailer the server checks; over plain
        HTTP a checksum header would need a second pass over the body, so none is sent and the
        caller verifies the object against the MD5 of what was read. A seekable stream lets
        botocore retry the request.
        """
        args = dict(extra_args)
        if not self._puts_over_https:
            args.pop("ChecksumAlgorithm", None)
        try:
            self.put_client.put_object(Bucket=self.bucket, Key=key, Body=stream, ContentLength=size, **args)
        except Exception as exc:
            raise classify(exc, f"uploading to s3://{self.bucket}/{key}") from None

    @property
    def stream_part_size(self) -> int:
        """The part size of streamed multipart uploads (their checksum is over these parts)."""
        return self.stream_transfer.multipart_chunksize

    def head(self, key: str) -> RemoteObject | None:
        """The object's facts, or None when there is no object under `key`."""
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if error_code(exc) in NO_SUCH_KEY_CODES:
                return None
            raise classify(exc, f"checking s3://{self.bucket}/{key}") from None
        except (BotoCoreError, OSError) as exc:
            raise classify(exc, f"checking s3://{self.bucket}/{key}") from None
        return remote_from_head(response)

    def upload(self, path: Path, key: str, extra_args: Mapping[str, Any],
               progress: Callable[[int], None] | None = None) -> None:
        """Managed transfer: multipart above the threshold, parts in parallel, aborted on error."""
        try:
            self.client.upload_file(str(path), self.bucket, key, ExtraArgs=dict(extra_args),
                                    Config=self.transfer, Callback=progress)
        except Exception as exc:  # boto3 wraps ClientError in S3UploadFailedError
            raise classify(exc, f"uploading {path.name} to s3://{self.bucket}/{key}") from None

    def upload_stream(self, stream: Any, key: str, extra_args: Mapping[str, Any]) -> None:
        """Managed transfer from a file object (the encrypting reader), read once from start to end.

        Memory stays bounded by `stream_transfer` (at most STREAM_CHUNKS_IN_MEMORY parts, or one
        body below the multipart threshold). Every byte is read once, and so encrypted once.
        """
        try:
            self.client.upload_fileobj(ReadOnce(stream), self.bucket, key, ExtraArgs=dict(extra_args),
                                       Config=self.stream_transfer)
        except Exception as exc:  # boto3 wraps ClientError in S3UploadFailedError
            raise classify(exc, f"uploading to s3://{self.bucket}/{key}") from None

    def bucket_lock_enabled(self) -> bool:
        """Does the bucket have object lock switched on (and so versioning)?"""
        try:
            response = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as exc:
            if error_code(exc) == "ObjectLockConfigurationNotFoundError":
                return False
            raise classify(exc, f"reading the object lock setting of s3://{self.bucket}") from None
        except (BotoCoreError, OSError) as exc:
            raise classify(exc, f"reading the object lock setting of s3://{self.bucket}") from None
        return (response.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") == "Enabled"

    def set_retention(self, key: str, version_id: str, mode: str, until: datetime) -> None:
        """Lock one version of an object until `until` (only call this on a lock-enabled bucket).

        Some servers without object lock (rclone serve s3) take this request for a PutObject
        and replace the object with the request's XML body; callers check bucket_lock_enabled().
        """
        try:
            self.client.put_object_retention(Bucket=self.bucket, Key=key, VersionId=version_id,
                                              Retention={"Mode": mode, "RetainUntilDate": until})
        except Exception as exc:
            raise classify(exc, f"setting the retention of s3://{self.bucket}/{key}") from None

    def abort_incomplete_uploads(self, prefix: str) -> list[str]:
        """Abort multipart uploads under our prefix that a crashed run left behind."""
        aborted: list[str] = []
        try:
            paginator = self.client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for upload in page.get("Uploads", []) or []:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                       UploadId=upload["UploadId"])
                    aborted.append(upload["Key"])
        except Exception as exc:
            problem = classify(exc, f"listing incomplete uploads in s3://{self.bucket}/{prefix}")
            if problem.code in ("NotImplemented", "501", "NoSuchUpload", "NoSuchKey"):
                # Not supported, or (gofakes3/rclone) no upload under a prefix not yet created.
                return aborted
            raise problem from None
        return aborted
