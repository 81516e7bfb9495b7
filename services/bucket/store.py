"""The uploader's calls on the bucket: HEAD, uploads, object lock, probes of the store, clean-up.

Every failure comes out as an S3Problem (`client.classify`). Two guards keep one host from
destroying another's work in a shared bucket: `If-None-Match: *` on every PUT and
CompleteMultipartUpload where the server honours it (`NoOverwrite`, probed once per start), and
a journal of the multipart uploads this host started, so that its start-up clean-up aborts only
those and uploads older than a safe age (`MultipartJournal`).
"""
from __future__ import annotations

import copy
import io
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.utils import ReadFileChunk

from services.bucket.abilities import Support
from services.bucket.client import (
    NO_SUCH_KEY_CODES,
    ClientSettings,
    ProblemKind,
    classify,
    error_code,
    is_https,
    make_client,
    new_session,
    transfer_config,
)
from services.bucket.guards import CONDITIONAL_WRITE_REJECTED, MultipartJournal, NoOverwrite
from services.bucket.verify import RemoteObject, remote_from_head, remote_from_put

STREAM_CHUNKS_IN_MEMORY = 2
PART_BODY = b"feature probe of the camera uploader; aborted, never stored\n"
# Configuration answers that are about the feature asked for, not about the keys or the bucket.
_FEATURE_CODES = ("InvalidEncryptionAlgorithmError", "InvalidStorageClass")
# What uploads carry for the server to check; dropped for a run on a store that rejects them.
CHECKSUM_ARGS = ("ChecksumAlgorithm", "ChecksumCRC32")
# Answers of a server that does not do conditional writes at all (rather than ignoring them).
CONFLICT_CODES = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


def _clients(config: ClientSettings, checksum: str) -> tuple[Any, Any]:
    """The managed-transfer client and the streaming-PUT client, sharing one session."""
    session = new_session(config)
    return (make_client(config, session=session, checksum=checksum),
            make_client(config, streaming_puts=True, session=session, checksum=checksum))


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

    def __init__(self, client: Any, bucket: str, transfer: TransferConfig, put_client: Any = None,
                 journal: MultipartJournal | None = None, settings: ClientSettings | None = None):
        self.bucket, self.transfer = bucket, transfer
        self.no_overwrite = NoOverwrite()
        self.journal = journal or MultipartJournal(None)
        self.checksums = True          # False once the store is found to reject them (`drop_checksums`)
        self._settings = settings      # lets drop_checksums remake the clients
        # Wraps every body read (UPLOAD_BWLIMIT's token bucket); None: files go as boto3 reads them.
        self.throttle: Callable[[Any], Any] | None = None
        self._use_clients(client, put_client)
        # Streams that are not put whole go through s3transfer, which buffers their parts in
        # memory (10 by default): keep one upload's memory bounded. It would hold a body below
        # its threshold whole, so such streams go multipart above one part (glibc maps buffers
        # above 32 MB afresh each time, which costs system CPU: docs/performance.md, section 2b).
        self.stream_transfer = copy.copy(transfer)
        self.stream_transfer.max_in_memory_upload_chunks = STREAM_CHUNKS_IN_MEMORY
        self.stream_transfer.multipart_threshold = min(transfer.multipart_threshold, transfer.multipart_chunksize)

    def _use_clients(self, client: Any, put_client: Any) -> None:
        self.client = client
        # From make_client(streaming_puts=True); without it every stream goes through upload_stream.
        self.put_client = put_client
        for each in {id(c): c for c in (client, put_client) if c is not None}.values():
            self.no_overwrite.attach(each)
            self.journal.attach(each)

    @classmethod
    def for_config(cls, config: ClientSettings, journal: Path | MultipartJournal | None = None) -> "ObjectStore":
        """`journal`: its file, or the journal of the store this one replaces (a reload)."""
        client, put_client = _clients(config, config.checksum)
        shared = journal if isinstance(journal, MultipartJournal) else MultipartJournal(journal)
        return cls(client, config.bucket, transfer_config(config), put_client=put_client, journal=shared,
                   settings=config)

    def drop_checksums(self) -> None:
        """Send no checksums for the rest of the run, as S3_CHECKSUM=off does: for a store that
        rejects them. Uploads are then checked against the ETag (MD5) or the size afterwards."""
        self.checksums = False
        if self._settings is not None:
            self._use_clients(*_clients(self._settings, "off"))

    def _args(self, extra_args: Mapping[str, Any]) -> dict[str, Any]:
        args = dict(extra_args)
        if not self.checksums:
            for name in CHECKSUM_ARGS:
                args.pop(name, None)
        return args

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
        args = self._args(extra_args)
        if not self._puts_over_https:
            args.pop("ChecksumAlgorithm", None)
        body = self.throttle(stream) if self.throttle else stream
        try:
            self.put_client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentLength=size, **args)
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

    def upload(self, path: Path, key: str, extra_args: Mapping[str, Any]) -> RemoteObject | None:
        """Send a file: one PUT below the multipart threshold, else a managed multipart transfer.

        Returns what the PUT's answer says of the stored object (`remote_from_put`), None after a
        multipart or throttled upload. The PUT is made here rather than by s3transfer, which costs
        a thread pool and two hand-offs per file (1 ms of CPU per file: docs/performance.md, section 6).
        Throttled, the file is read once through the limit (as streams are) rather than opened
        by s3transfer, which reads it where no wrapper can reach.
        """
        if self.throttle is not None:
            with open(path, "rb") as handle:
                self.upload_stream(handle, key, extra_args)
            return None
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < self.transfer.multipart_threshold:
                    # At most `size` bytes, whatever is appended meanwhile: the Content-Length is fixed.
                    body = ReadFileChunk(handle, size, size, enable_callbacks=False)
                    answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                                    **self._args(extra_args))
                    return remote_from_put(answer, size)
            self.client.upload_file(str(path), self.bucket, key, ExtraArgs=self._args(extra_args),
                                    Config=self.transfer)
        except Exception as exc:  # boto3 wraps ClientError in S3UploadFailedError
            raise classify(exc, f"uploading {path.name} to s3://{self.bucket}/{key}") from None
        return None

    def upload_stream(self, stream: Any, key: str, extra_args: Mapping[str, Any]) -> None:
        """Managed transfer from a file object (the encrypting reader), read once from start to end.

        Memory stays bounded by `stream_transfer` (at most STREAM_CHUNKS_IN_MEMORY parts, or one
        body below the multipart threshold). Every byte is read once, and so encrypted once.
        """
        try:
            body = self.throttle(stream) if self.throttle else stream
            self.client.upload_fileobj(ReadOnce(body), self.bucket, key, ExtraArgs=self._args(extra_args),
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

    def probe_conditional_writes(self, key: str, body: bytes) -> bool:
        """Does the server refuse a PUT with `If-None-Match: *` over an existing key? Sets the guard.

        The probe object (`key`, a few bytes under the prefix, written at every start) is
        never deleted: the uploader may not delete. A first 412 already answers yes; a server
        that stores both PUTs ignores the header; one that rejects it does not do them at all.
        """
        self.no_overwrite.enabled = True
        try:
            for _ in range(2):
                self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
        except Exception as exc:
            problem = classify(exc, f"probing conditional writes at s3://{self.bucket}/{key}")
            if problem.code in CONFLICT_CODES:
                return True
            self.no_overwrite.enabled = False
            if problem.code in CONDITIONAL_WRITE_REJECTED:
                return False
            raise problem from None
        self.no_overwrite.enabled = False
        return False

    def probe_crc32(self, key: str) -> tuple[Support, str]:
        """Does the server take a part with a CRC32 checksum, sent as uploads send it (a trailer
        over HTTPS)? YES when it answers with the checksum; the refusal's words when REJECTED."""
        def part(upload_id: str) -> dict[str, Any]:
            return self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=1,
                                           Body=PART_BODY, ChecksumAlgorithm="CRC32")
        answer, rejected = self._multipart_probe(key, {"ChecksumAlgorithm": "CRC32"}, part, "CRC32 checksums")
        if rejected:
            return Support.REJECTED, rejected
        return (Support.YES if answer.get("ChecksumCRC32") else Support.ACCEPTED), ""

    def probe_sse(self, key: str, sse: str, kms_key_id: str | None) -> tuple[Support, str]:
        """Does the server take the S3_SSE header on a new object, and say it applied it?"""
        start: dict[str, Any] = {"ServerSideEncryption": sse, **({"SSEKMSKeyId": kms_key_id} if kms_key_id else {})}
        answer, rejected = self._multipart_probe(key, start, None, f"S3_SSE={sse}")
        if rejected:
            return Support.REJECTED, rejected
        return (Support.YES if answer.get("ServerSideEncryption") == sse else Support.ACCEPTED), ""

    def _multipart_probe(self, key: str, start: Mapping[str, Any], send_part: Callable[[str], Any] | None,
                         what: str) -> tuple[Mapping[str, Any], str | None]:
        """Start a multipart upload with `start`'s arguments, send one part if asked, abort it:
        nothing is left behind (the uploader may not delete an object). Returns the answer that
        tells (the part's, else the start's) and the server's refusal, if it refused."""
        upload_id = None
        try:
            created = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **start)
            upload_id = created["UploadId"]
            return (send_part(upload_id) if send_part else created), None
        except Exception as exc:  # noqa: BLE001 - sorted here
            rejected = _rejection(exc)
            if rejected is None:
                raise classify(exc, f"probing {what} at s3://{self.bucket}/{key}") from None
            return {}, rejected
        finally:
            if upload_id is not None:
                try:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                except Exception:  # noqa: BLE001 - the journal lists it: the next start aborts it
                    pass

    def abort_incomplete_uploads(self, prefix: str, stale_after: float) -> list[str]:
        """Abort the multipart uploads under `prefix` that this host left behind in a crash.

        Those are the ones its journal lists; another host's upload is aborted only when it was
        initiated more than `stale_after` seconds ago (no upload takes that long), never while
        that host may still be sending parts.
        """
        mine = self.journal.leftovers()
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=stale_after)
        aborted: list[str] = []
        try:
            paginator = self.client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for upload in page.get("Uploads", []) or []:
                    started = upload.get("Initiated")
                    stale = isinstance(started, datetime) and started < cutoff
                    if upload["UploadId"] not in mine and not stale:
                        continue
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                       UploadId=upload["UploadId"])
                    aborted.append(upload["Key"])
        except Exception as exc:
            problem = classify(exc, f"listing incomplete uploads in s3://{self.bucket}/{prefix}")
            if problem.code not in ("NotImplemented", "501", "NoSuchUpload", "NoSuchKey"):
                raise problem from None
            # Not supported, or (gofakes3/rclone) no upload under a prefix not yet created.
        self.journal.forget_leftovers({})
        return aborted


def _rejection(exc: BaseException) -> str | None:
    """The server's refusal of a request it does not support (a 4xx but keys or bucket, or 501), else None.

    Answers such as 411 MissingContentLength (rclone to an aws-chunked body), 400
    InvalidArgument or 501 NotImplemented concern the request's form, not its authority.
    """
    if not isinstance(exc, ClientError):
        return None
    problem = classify(exc, "probe")
    if problem.kind is ProblemKind.CONFIG and problem.code not in _FEATURE_CODES:
        return None
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    if status == 501 or (400 <= status < 500 and status not in (403, 404)):
        return f"HTTP {status} {problem.code}"
    return None
