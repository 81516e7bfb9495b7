"""One segment's way to the bucket: check the key, upload, verify, move to uploaded/.

Runs in a pool thread and touches nothing of the scheduler: it returns an Outcome. An existing
object is never overwritten (same content: marked done; other content: a distinct key).
"""
from __future__ import annotations

import os
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from loguru import logger

from services.bucket.client import ProblemKind, S3Problem
from services.bucket.keys import distinct_filename, distinct_key, stored_key
from services.bucket.metadata import (
    CAMERA_ID,
    CAMERA_NAME,
    CRC32,
    DURATION,
    END,
    FINGERPRINT,
    FIRST_FRAME,
    HOST_ID,
    PLAIN_SIZE,
    SEGMENT_START,
    iso_ms,
)
from services.bucket.store import CONFLICT_CODES, ObjectStore
from services.bucket.verify import RemoteObject, Verification, verify, verify_put
from services.common.data_layout import DataLayout, move_no_clobber
from services.common.digest import LocalDigest, digest_file
from services.common.mp4_fragments import SegmentTiming, segment_timing, video_duration
from services.common.segment_names import SegmentName, parse_name
from services.crypt.format import encrypted_size
from services.crypt.keys import content_fingerprint
from services.crypt.reader import EncryptingReader
from services.uploader.config import UploaderConfig
from services.uploader.receipts import Receipt, write_receipt
from services.uploader.report import Clash


def header_safe(text: str) -> str:
    """S3 metadata travels in HTTP headers: ASCII only, so anything else is %-encoded."""
    return urllib.parse.quote(text, safe=" !#$&'()*+,-./:;=?@[]^_`{|}~")


class OutcomeKind(str, Enum):
    DONE = "done"        # verified in the bucket, moved to uploaded/
    GONE = "gone"        # the file disappeared before or during the job
    RETRY = "retry"      # this file failed; try it again after a backoff
    CONFIG = "config"    # S3 refuses everything (keys, bucket, policy): pause all uploads


@dataclass(frozen=True)
class Outcome:
    path: Path
    kind: OutcomeKind
    size: int = 0
    key: str = ""
    message: str = ""
    uploaded_bytes: int = 0
    verified_by: str = ""
    clash: Clash | None = None     # another host wrote this segment's key


@dataclass(frozen=True)
class Target:
    """The key a segment goes to, and the check of the object there once it holds the segment."""

    key: str
    check: Verification | None = None     # None: nothing there yet, upload
    remote: RemoteObject | None = None
    clash: Clash | None = None
    uploaded: bool = False                # sent by this job (not found already there)


def _problem_outcome(path: Path, problem: S3Problem) -> Outcome:
    kind = OutcomeKind.CONFIG if problem.kind is ProblemKind.CONFIG else OutcomeKind.RETRY
    return Outcome(path, kind, message=str(problem))


class SegmentJob:
    """Upload, verify and move one segment; runs in a pool thread, returns an Outcome."""

    def __init__(self, config: UploaderConfig, store: ObjectStore, layout: DataLayout):
        self.config, self.store, self.layout = config, store, layout
        self.bucket_lock = False     # object lock seen enabled on the bucket

    def extra_args(self, segment: SegmentName, digest: LocalDigest, duration: float | None,
                   timing: SegmentTiming | None = None) -> dict[str, Any]:
        metadata = {CAMERA_ID: str(segment.camera_id), SEGMENT_START: segment.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    HOST_ID: self.config.host_id}
        crypt = self.config.crypt
        if crypt is None:
            metadata[CRC32] = digest.crc32
        else:
            # Ciphertexts differ on every encryption (new nonce): these decide "same content".
            metadata[PLAIN_SIZE] = str(digest.size)
            metadata[FINGERPRINT] = content_fingerprint(crypt, digest.sha256)
        if duration is not None:
            # `coverage` and `clip` read it to place the segment's end exactly.
            metadata[DURATION] = f"{duration:.3f}"
        if timing is not None:
            # The exact times `coverage`, `clip` and the viewer place the segment by.
            metadata[FIRST_FRAME], metadata[END] = iso_ms(timing.first_frame), iso_ms(timing.end)
        name = self.config.camera_name(segment.camera_id)
        if name:
            metadata[CAMERA_NAME] = header_safe(name)
        args: dict[str, Any] = {"ContentType": "video/mp4" if crypt is None else "application/octet-stream",
                                "Metadata": metadata}
        if self.config.storage_class != "STANDARD":
            args["StorageClass"] = self.config.storage_class
        if self.config.sse:
            args["ServerSideEncryption"] = self.config.sse
        if self.config.sse_kms_key_id:
            args["SSEKMSKeyId"] = self.config.sse_kms_key_id
        if self.config.checksum == "crc32":
            # Full-object checksum: S3 validates the whole object and stores it for head_object.
            args["ChecksumAlgorithm"] = "CRC32"
            if crypt is None:  # the ciphertext's CRC32 is only known once it has been sent
                args["ChecksumCRC32"] = digest.crc32
        if self.config.object_lock_days:
            # Write once, read many: nobody (governance: nobody without the bypass permission) can
            # delete or overwrite this version before the date. S3 demands a checksum with these
            # headers; the config guarantees the CRC32 above (and its per-part CRC32s in multipart,
            # where the lock headers go with CreateMultipartUpload).
            args["ObjectLockMode"] = self.config.object_lock_mode
            args["ObjectLockRetainUntilDate"] = self._retain_until()
        return args

    def _retain_until(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self.config.object_lock_days * 86400, timezone.utc)

    def _require_bucket_lock(self) -> None:
        """With object lock on, nothing is uploaded to a bucket that does not have it.

        Asked until the answer is yes (object lock cannot be switched off again). The bucket's
        setting decides, not an object's HEAD: rclone serve s3, which has no object lock,
        stores the lock headers and echoes them back.
        """
        if not self.bucket_lock:
            self.bucket_lock = self.store.bucket_lock_enabled()
        if not self.bucket_lock:
            raise S3Problem(ProblemKind.CONFIG, "ObjectLockNotEnabled",
                            f"S3_OBJECT_LOCK_DAYS is set but s3://{self.config.bucket} does not have object lock "
                            "enabled: enable it on the bucket, or set S3_OBJECT_LOCK_DAYS=0")

    def _ensure_locked(self, key: str, remote: RemoteObject | None) -> None:
        """The verified object must carry a retain-until date (read back: needs s3:GetObjectRetention).

        Some servers drop the lock headers of a multipart upload (moto): the retention is then
        set on the version just verified. A failure here concerns this object only: the file
        stays in completed/ and is retried with backoff, other files go on.
        """
        remote = remote or self.store.head(key)
        if remote is None:
            raise S3Problem(ProblemKind.TRANSIENT, "NoSuchKey", f"{key} vanished right after it was verified")
        if remote.lock_mode and remote.retain_until:
            return
        if not remote.version_id:
            raise S3Problem(ProblemKind.TRANSIENT, "ObjectLockNotKept", f"s3://{self.config.bucket}/{key} has neither a "
                            "retention nor a version id, on a bucket that reports object lock enabled")
        self.store.set_retention(key, remote.version_id, self.config.object_lock_mode, self._retain_until())
        after = self.store.head(key)
        if after is None or (after.size, after.etag) != (remote.size, remote.etag) or not after.retain_until:
            raise S3Problem(ProblemKind.TRANSIENT, "ObjectLockNotKept",
                            f"setting the retention of s3://{self.config.bucket}/{key} did not take "
                            "(can the uploader read it back? it needs s3:GetObjectRetention)")
        logger.info("{}: the server dropped the lock headers of the upload; retention set afterwards", key)

    def same_content(self, digest: LocalDigest, remote: RemoteObject) -> Verification:
        """Does `remote` hold this file? Encrypted objects are compared by size and keyed fingerprint."""
        crypt = self.config.crypt
        if crypt is None:
            return verify(digest, remote)
        expected = encrypted_size(digest.size)
        if remote.size != expected:
            return Verification(False, "crypt-fingerprint", f"size {remote.size}, encrypted file is {expected}")
        if (remote.metadata or {}).get(FINGERPRINT) != content_fingerprint(crypt, digest.sha256):
            return Verification(False, "crypt-fingerprint", "other content or another password")
        return Verification(True, "crypt-fingerprint")

    def _target_key(self, key: str, digest: LocalDigest, segment: SegmentName) -> Target:
        """Where to upload, or the verification of an object that is already there."""
        name = segment.filename
        remote = self.store.head(key)
        if remote is None:
            return Target(key)
        check = self.same_content(digest, remote)
        # A size-only match cannot tell our file from someone else's: keep both.
        if check.ok and check.method != "size":
            logger.info("{} is already in the bucket as {} (verified by {})", name, key, check.method)
            return Target(key, check, remote)
        clash = self.clash_with(segment.camera_id, key, remote)
        alternative = distinct_key(key, digest.short_hash)
        other = self.store.head(alternative)
        if other is None:
            why = check.detail or "content cannot be compared"
            logger.warning("s3://{}/{} already exists with other content ({}{}); not overwriting, "
                           "uploading {} as {}", self.config.bucket, key, why,
                           f", written by host {clash.other_host}" if clash else "", name, alternative)
            return Target(alternative, clash=clash)
        again = self.same_content(digest, other)
        if again.ok:  # the name holds our content hash, so a size match is enough here
            logger.info("{} is already in the bucket as {} (verified by {})", name, alternative, again.method)
            return Target(alternative, again, other, clash)
        raise S3Problem(ProblemKind.TRANSIENT, "Conflict", f"both {key} and {alternative} hold other content; "
                        f"{name} stays in completed/")

    def clash_with(self, camera_id: int, key: str, remote: RemoteObject) -> Clash | None:
        """Another host's object under this host's key: the same camera id is recorded twice."""
        writer = (remote.metadata or {}).get(HOST_ID)
        if writer is None or writer == self.config.host_id:
            return None   # written before hosts were named, or an earlier copy of our own
        logger.error("camera {}: s3://{}/{} was written by host {}, and this host ({}) records the same camera "
                     "id: give each camera id to one host", camera_id, self.config.bucket, key, writer,
                     self.config.host_id)
        return Clash(camera_id, key, writer, datetime.now(timezone.utc))

    def read_local(self, path: Path, label: str) -> tuple[os.stat_result, LocalDigest] | Outcome:
        """The file's state before the upload and its digest, or the Outcome that ends the job."""
        try:
            return path.stat(), digest_file(path, for_encryption=self.config.crypt is not None)
        except FileNotFoundError:
            return Outcome(path, OutcomeKind.GONE)
        except OSError as exc:
            return Outcome(path, OutcomeKind.RETRY, message=f"cannot read {label}: {exc.strerror}")

    def put_unchanged(self, path: Path, segment: SegmentName, digest: LocalDigest, before: os.stat_result,
                      label: str) -> Target | Outcome:
        """Upload and verify `path` (locked, if object lock is on), then make sure the file did not
        change meanwhile: where it went, or the Outcome that ends the job."""
        try:
            if self.config.object_lock_days:
                self._require_bucket_lock()
            target = self._send_and_verify(path, segment, digest)
            if self.config.object_lock_days:
                self._ensure_locked(target.key, target.remote)
        except S3Problem as problem:
            return _problem_outcome(path, problem)
        try:
            after = path.stat()
        except FileNotFoundError:
            return Outcome(path, OutcomeKind.GONE)
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            return Outcome(path, OutcomeKind.RETRY, message=f"{label} changed while it was uploaded")
        return target

    def still_held(self, local: Path) -> bool:
        """Does the bucket hold this copy's content, at its key or its conflict key? (No receipt.)

        A name that is not a segment's (a copy kept under a distinct local name) cannot be
        looked up: it counts as held, as every verified copy did before receipts existed.
        """
        segment = parse_name(local.name)
        if segment is None:
            return True
        digest = digest_file(local, for_encryption=self.config.crypt is not None)
        key = stored_key(self.config.prefix, segment, self.config.crypt is not None)
        for candidate in (key, distinct_key(key, digest.short_hash)):
            remote = self.store.head(candidate)
            check = self.same_content(digest, remote) if remote is not None else None
            if check is not None and check.ok and check.method != "size":   # a size says whose it is not
                return True
        return False

    def _send_and_verify(self, path: Path, segment: SegmentName, digest: LocalDigest) -> Target:
        """Upload where nothing is (retrying the choice when another host took the key meanwhile)."""
        key = stored_key(self.config.prefix, segment, self.config.crypt is not None)
        for attempt in range(3):
            asked = attempt > 0 or not self._put_first(digest)
            target = self._target_key(key, digest, segment) if asked else Target(key)
            if target.check is not None:
                return target
            duration = video_duration(path)
            try:
                sent, answer = self._upload(path, target.key, self.extra_args(
                    segment, digest, duration, segment_timing(path, duration)), digest)
            except S3Problem as problem:
                if problem.code not in CONFLICT_CODES:
                    raise
                if not asked:
                    logger.debug("s3://{}/{} exists; looking at it", self.config.bucket, target.key)
                    continue
                logger.warning("s3://{}/{} was written by someone else while {} was uploaded (the server refused "
                               "to overwrite it); choosing again", self.config.bucket, target.key, path.name)
                continue
            check, remote = self._verify_upload(target.key, sent, digest, answer)
            if not check.ok:
                logger.error("verification of s3://{}/{} failed ({}); {} stays in completed/",
                             self.config.bucket, target.key, check.detail, path.name)
                raise S3Problem(ProblemKind.TRANSIENT, "VerificationFailed",
                                f"verification failed for {target.key}: {check.detail}")
            return Target(target.key, check, remote, target.clash, uploaded=True)
        raise S3Problem(ProblemKind.TRANSIENT, "Conflict", f"{path.name}: the key kept being taken by other writers")

    def _put_first(self, digest: LocalDigest) -> bool:
        """Send without asking first whether the key is free? Where the store refuses to overwrite
        (If-None-Match), a file that goes in one PUT needs no HEAD before it: a taken key fails
        the PUT, and the choice is made then, by HEAD, as before. One request per new file
        instead of two. A multipart upload still asks first, so that a file already in the
        bucket (sent before a crash) does not cost its whole transfer again."""
        return self.store.no_overwrite.enabled and digest.size < self.store.transfer.multipart_threshold

    def _answer_proves(self) -> bool:
        """Can a PUT's answer stand for the stored object, so that no HEAD need check it afterwards?

        Only where nobody can have replaced the object since: the store honours If-None-Match
        (one that ignores it, such as rclone serve s3, stores another host's PUT over ours, and
        the HEAD is what sees it). Not for an encrypted object (its fingerprint is checked in the
        stored metadata), a locked one (its retention is read back), nor under SSE-KMS (its ETag
        is no MD5).
        """
        return (self.store.no_overwrite.enabled and self.config.crypt is None and not self.config.object_lock_days
                and not (self.config.sse or "").startswith("aws:kms"))

    def _verify_upload(self, key: str, sent: LocalDigest, digest: LocalDigest,
                       answer: RemoteObject | None) -> tuple[Verification, RemoteObject]:
        """The check of the object just sent: from the PUT's answer where it proves the content
        (a mismatch there fails the upload as a HEAD's would), else from a fresh HEAD."""
        if answer is not None and self._answer_proves():
            check = verify_put(sent, answer)
            if check is not None:
                return check, answer
        remote = self.store.head(key)
        if remote is None:
            raise S3Problem(ProblemKind.TRANSIENT, "NoSuchKey", f"{key} not found right after its upload")
        # The bytes actually sent, then (encrypted) that they are this file's encryption.
        check = verify(sent, remote)
        if check.ok and self.config.crypt is not None:
            sent_check, check = check, self.same_content(digest, remote)
            check = Verification(check.ok, f"{sent_check.method}+{check.method}", check.detail)
        return check, remote

    def _move_to_uploaded(self, path: Path, digest: LocalDigest) -> Path | None:
        """The copy's new place, or None when an identical copy was already kept."""
        target = self.layout.uploaded / path.name
        try:
            move_no_clobber(path, target)
            return target
        except FileExistsError:
            pass
        target = self.layout.uploaded / distinct_filename(path.name, digest.short_hash)
        try:
            move_no_clobber(path, target)
            logger.warning("uploaded/{} already exists; kept this copy as {}", path.name, target.name)
            return target
        except FileExistsError:
            # Byte-identical copy already kept (its name carries the same content hash).
            os.unlink(path)
            return None

    def _upload(self, path: Path, key: str, extra_args: dict[str, Any],
                digest: LocalDigest) -> tuple[LocalDigest, RemoteObject | None]:
        """Send the file (encrypted on the fly when configured): the digest of what was sent, and what
        a single PUT's answer says of the stored object (None for the other uploads)."""
        if self.config.crypt is None:
            return digest, self.store.upload(path, key, extra_args)
        size = encrypted_size(digest.size)
        whole = self.store.puts_whole(size, extra_args)
        # Multipart: the reader keeps each part's CRC32, which S3 combines into the object's.
        part_size = None if whole else self.store.stream_part_size
        with EncryptingReader(path, self.config.crypt, part_size=part_size) as reader:
            if not whole:
                self.store.upload_stream(reader, key, extra_args)
            elif reader.size != size:  # Content-Length must be what is read, or the server keeps a cut
                raise S3Problem(ProblemKind.TRANSIENT, "FileChanged", f"{path.name} changed size before its upload")
            else:
                self.store.put_stream(reader, size, key, extra_args)
            return reader.digest(), None

    def run(self, path: Path) -> Outcome:
        segment = parse_name(path.name)
        assert segment is not None, "the scheduler only queues parseable names"
        read = self.read_local(path, path.name)
        if isinstance(read, Outcome):
            return read
        before, digest = read
        target = self.put_unchanged(path, segment, digest, before, path.name)
        if isinstance(target, Outcome):
            return target
        try:
            kept = self._move_to_uploaded(path, digest)
        except OSError as exc:
            return Outcome(path, OutcomeKind.RETRY, message=f"cannot move {path.name} to uploaded/: {exc.strerror}")
        check, uploaded = target.check, digest.size if target.uploaded else 0
        if kept is not None and target.remote is not None:
            write_receipt(kept, Receipt(target.key, target.remote.size, target.remote.etag, self.config.host_id,
                                        check.method, datetime.now(timezone.utc)))
        logger.info("{} -> s3://{}/{} ({} bytes, verified by {}{})", path.name, self.config.bucket, target.key,
                    digest.size, check.method, "" if uploaded else ", already there")
        return Outcome(path, OutcomeKind.DONE, size=digest.size, key=target.key, uploaded_bytes=uploaded,
                       verified_by=check.method, clash=target.clash)
