"""The S3 uploader daemon: every segment in completed/ goes to the bucket, is verified, then moves.

Threads and who owns what:
- the watchdog observer thread only puts paths on `events` (an unbounded queue: it never blocks);
- the main thread owns every piece of scheduler state: it drains `events`, keeps the priority
  queue (oldest segment first), hands work to a bounded pool, applies outcomes, rescans
  completed/ (inotify can drop events silently), runs retention and the disk guard, writes
  the status file and talks to systemd;
- pool threads run `SegmentJob.run` for one file: check the key, upload, verify, move.

A file leaves completed/ only after its object was verified in the bucket, and an existing
object is never overwritten (same content: marked done; other content: a distinct key).
"""
from __future__ import annotations

import argparse
import ctypes
import heapq
import os
import queue
import random
import shutil
import signal
import sys
import time
import urllib.parse
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from loguru import logger
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from services.common.startup import add_env_file_argument, load_config_or_exit, run_daemon
from services.common.data_layout import DataLayout, move_no_clobber
from services.bucket.catalog import DURATION_METADATA
from services.common.alerts import AlertTracker, WebhookSender
from services.common.metrics import MetricsServer, Sample
from services.common.mp4_fragments import video_duration
from services.common.redact import redact
from services.uploader.retention import LocalFile, disk_guard, expired
from services.bucket.client import ObjectStore, S3Problem, classify
from services.crypt.rclone_crypt import EncryptingReader, content_fingerprint, encrypted_size
from services.bucket.keys import distinct_filename, distinct_key, stored_key
from services.common.sd_notify import notify, watchdog_interval
from services.common.segment_names import SegmentName, parse_name
from services.common.state_file import publish
from services.bucket.verify import (CRC_METADATA, LocalDigest, RemoteObject, Verification, digest_file,
                                    verify)

PLAIN_SIZE_METADATA = "crypt-plain-size"
FINGERPRINT_METADATA = "crypt-fingerprint"
from services.uploader.config import UploaderConfig, read_uploader_config

STATUS_INTERVAL = 2.0
TICK = 0.5
ONCE_MAX_ATTEMPTS = 5   # --once gives up on a file after this many transient failures
FreeBytes = Callable[[Path], int]
_M_ARENA_MAX = -8   # mallopt parameter, glibc's malloc.h


def utc_iso(timestamp: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if timestamp is None else timestamp, timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def disk_free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def header_safe(text: str) -> str:
    """S3 metadata travels in HTTP headers: ASCII only, so anything else is %-encoded."""
    return urllib.parse.quote(text, safe=" !#$&'()*+,-./:;=?@[]^_`{|}~")


@dataclass
class Outcome:
    path: Path
    kind: str                  # done | gone | retry | config
    size: int = 0
    key: str = ""
    message: str = ""
    uploaded_bytes: int = 0
    verified_by: str = ""


class SegmentJob:
    """Upload, verify and move one segment; runs in a pool thread, returns an Outcome."""

    def __init__(self, config: UploaderConfig, store: ObjectStore, layout: DataLayout):
        self.config, self.store, self.layout = config, store, layout
        self.bucket_lock = False     # object lock seen enabled on the bucket

    def extra_args(self, segment: SegmentName, digest: LocalDigest, duration: float | None) -> dict[str, Any]:
        metadata = {"camera-id": str(segment.camera_id),
                    "segment-start": segment.start.strftime("%Y-%m-%dT%H:%M:%SZ")}
        crypt = self.config.crypt
        if crypt is None:
            metadata[CRC_METADATA] = digest.crc32
        else:
            # Ciphertexts differ on every encryption (new nonce): these decide "same content".
            metadata[PLAIN_SIZE_METADATA] = str(digest.size)
            metadata[FINGERPRINT_METADATA] = content_fingerprint(crypt, digest.sha256)
        if duration is not None:
            # `coverage` and `clip` read it to place the segment's end exactly.
            metadata[DURATION_METADATA] = f"{duration:.3f}"
        name = self.config.camera_name(segment.camera_id)
        if name:
            metadata["camera-name"] = header_safe(name)
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
            raise S3Problem("config", "ObjectLockNotEnabled",
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
            raise S3Problem("transient", "NoSuchKey", f"{key} vanished right after it was verified")
        if remote.lock_mode and remote.retain_until:
            return
        if not remote.version_id:
            raise S3Problem("transient", "ObjectLockNotKept", f"s3://{self.config.bucket}/{key} has neither a "
                            "retention nor a version id, on a bucket that reports object lock enabled")
        self.store.set_retention(key, remote.version_id, self.config.object_lock_mode, self._retain_until())
        after = self.store.head(key)
        if after is None or (after.size, after.etag) != (remote.size, remote.etag) or not after.retain_until:
            raise S3Problem("transient", "ObjectLockNotKept",
                            f"setting the retention of s3://{self.config.bucket}/{key} did not take "
                            "(can the uploader read it back? it needs s3:GetObjectRetention)")
        logger.info("{}: the server dropped the lock headers of the upload; retention set afterwards", key)

    def _same_content(self, digest: LocalDigest, remote: RemoteObject) -> Verification:
        """Does `remote` hold this file? Encrypted objects are compared by size and keyed fingerprint."""
        crypt = self.config.crypt
        if crypt is None:
            return verify(digest, remote)
        expected = encrypted_size(digest.size)
        if remote.size != expected:
            return Verification(False, "crypt-fingerprint", f"size {remote.size}, encrypted file is {expected}")
        if (remote.metadata or {}).get(FINGERPRINT_METADATA) != content_fingerprint(crypt, digest.sha256):
            return Verification(False, "crypt-fingerprint", "other content or another password")
        return Verification(True, "crypt-fingerprint")

    def _target_key(self, key: str, digest: LocalDigest, name: str) -> tuple[str, Verification | None]:
        """Where to upload, or the verification of an object that is already there."""
        remote = self.store.head(key)
        if remote is None:
            return key, None
        check = self._same_content(digest, remote)
        # A size-only match cannot tell our file from someone else's: keep both.
        if check.ok and check.method != "size":
            logger.info("{} is already in the bucket as {} (verified by {})", name, key, check.method)
            return key, check
        alternative = distinct_key(key, digest.short_hash)
        other = self.store.head(alternative)
        if other is None:
            why = check.detail or "content cannot be compared"
            logger.warning("s3://{}/{} already exists with other content ({}); not overwriting, "
                           "uploading {} as {}", self.config.bucket, key, why, name, alternative)
            return alternative, None
        again = self._same_content(digest, other)
        if again.ok:  # the name holds our content hash, so a size match is enough here
            logger.info("{} is already in the bucket as {} (verified by {})", name, alternative, again.method)
            return alternative, again
        raise S3Problem("transient", "Conflict", f"both {key} and {alternative} hold other content; "
                        f"{name} stays in completed/")

    def _move_to_uploaded(self, path: Path, digest: LocalDigest) -> None:
        target = self.layout.uploaded / path.name
        try:
            move_no_clobber(path, target)
            return
        except FileExistsError:
            pass
        target = self.layout.uploaded / distinct_filename(path.name, digest.short_hash)
        try:
            move_no_clobber(path, target)
            logger.warning("uploaded/{} already exists; kept this copy as {}", path.name, target.name)
        except FileExistsError:
            # Byte-identical copy already kept (its name carries the same content hash).
            os.unlink(path)

    def _upload(self, path: Path, key: str, extra_args: dict[str, Any], digest: LocalDigest) -> LocalDigest:
        """Send the file (encrypted on the fly when configured); the digest of what was sent."""
        if self.config.crypt is None:
            self.store.upload(path, key, extra_args)
            return digest
        size = encrypted_size(digest.size)
        whole = self.store.puts_whole(size, extra_args)
        # Multipart: the reader keeps each part's CRC32, which S3 combines into the object's.
        part_size = None if whole else self.store.stream_part_size
        with EncryptingReader(path, self.config.crypt, part_size=part_size) as reader:
            if not whole:
                self.store.upload_stream(reader, key, extra_args)
            elif reader.size != size:  # Content-Length must be what is read, or the server keeps a cut
                raise S3Problem("transient", "FileChanged", f"{path.name} changed size before its upload")
            else:
                self.store.put_stream(reader, size, key, extra_args)
            return reader.digest()

    def run(self, path: Path) -> Outcome:
        segment = parse_name(path.name)
        assert segment is not None, "the scheduler only queues parseable names"
        try:
            before = path.stat()
            digest = digest_file(path, for_encryption=self.config.crypt is not None)
        except FileNotFoundError:
            return Outcome(path, "gone")
        except OSError as exc:
            return Outcome(path, "retry", message=f"cannot read {path.name}: {exc.strerror}")
        key = stored_key(self.config.prefix, segment, self.config.crypt is not None)
        uploaded = 0
        remote = None
        try:
            if self.config.object_lock_days:
                self._require_bucket_lock()
            key, check = self._target_key(key, digest, path.name)
            if check is None:
                sent = self._upload(path, key, self.extra_args(segment, digest, video_duration(path)), digest)
                uploaded = digest.size
                remote = self.store.head(key)
                if remote is None:
                    return Outcome(path, "retry", message=f"{key} not found right after uploading {path.name}")
                # The bytes actually sent, then (encrypted) that they are this file's encryption.
                check = verify(sent, remote)
                if check.ok and self.config.crypt is not None:
                    sent_check, check = check, self._same_content(digest, remote)
                    check = Verification(check.ok, f"{sent_check.method}+{check.method}", check.detail)
                if not check.ok:
                    logger.error("verification of s3://{}/{} failed ({}); {} stays in completed/",
                                 self.config.bucket, key, check.detail, path.name)
                    return Outcome(path, "retry", message=f"verification failed for {key}: {check.detail}")
            if self.config.object_lock_days:
                self._ensure_locked(key, remote)
        except S3Problem as problem:
            return Outcome(path, problem.kind, message=str(problem))
        try:
            after = path.stat()
        except FileNotFoundError:
            return Outcome(path, "gone")
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            return Outcome(path, "retry", message=f"{path.name} changed while it was uploaded")
        try:
            self._move_to_uploaded(path, digest)
        except OSError as exc:
            return Outcome(path, "retry", message=f"cannot move {path.name} to uploaded/: {exc.strerror}")
        logger.info("{} -> s3://{}/{} ({} bytes, verified by {}{})", path.name, self.config.bucket, key,
                    digest.size, check.method, "" if uploaded else ", already there")
        return Outcome(path, "done", size=digest.size, key=key, uploaded_bytes=uploaded,
                       verified_by=check.method)


class _CompletedHandler(FileSystemEventHandler):
    """Runs on the watchdog thread: only enqueue, never block."""

    def __init__(self, events: "queue.Queue[tuple[str, Any]]"):
        self.events = events

    def on_created(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.events.put(("path", Path(os.fsdecode(event.src_path))))

    def on_moved(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.events.put(("path", Path(os.fsdecode(event.dest_path))))


@dataclass
class _Entry:
    path: Path
    sort_key: tuple[float, str]
    size: int
    attempts: int = 0


@dataclass
class _Stats:
    files_uploaded: int = 0
    files_already_present: int = 0
    bytes_uploaded: int = 0
    last_success: dict[str, Any] | None = None
    last_error: dict[str, Any] | None = None
    deleted_by_retention: int = 0
    deleted_by_disk_guard: int = 0
    deleted_unuploaded: int = 0
    failures: int = 0
    last_latency: float = 0.0


class Uploader:
    """The scheduler; `run()` returns the exit code."""

    def __init__(self, config: UploaderConfig, store: ObjectStore | None = None, once: bool = False,
                 free_bytes: FreeBytes = disk_free_bytes, install_signals: bool = True):
        self.config = config
        self.layout = DataLayout(config.common.data_dir)
        self.store = store or ObjectStore.for_config(config)
        self.job = SegmentJob(config, self.store, self.layout)
        self.once, self.free_bytes, self.install_signals = once, free_bytes, install_signals
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.entries: dict[Path, _Entry] = {}
        self.ready: list[tuple[tuple[float, str], Path]] = []
        self.delayed: list[tuple[float, tuple[float, str], Path]] = []
        self.in_flight: dict[Path, Future] = {}
        self.warned_unknown: set[str] = set()
        self.given_up: set[Path] = set()
        self.stats = _Stats()
        self.stopping = False
        self.cleanup_done = False
        self.cleanup_attempts = 0
        self.cleanup_due = 0.0
        self.cleanup_future: Future | None = None
        self.paused_until = 0.0       # after a configuration error (monotonic)
        self.probing = False          # one upload at a time until a configuration error is fixed
        self.config_error: str | None = None
        self.config_error_logged_at = -1e9
        self.exit_code = 0
        self.disk_free: int | None = None
        self.executor = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="upload")
        self.observer: Any = None
        self.alerts = AlertTracker()
        self.webhook = WebhookSender(config.alerts.webhook_url, "s3-uploader")

    # ----- discovery -------------------------------------------------------------------------
    def offer(self, path: Path) -> None:
        """Queue `path` if it is a segment in completed/ not yet known."""
        name = path.name
        if path.parent != self.layout.completed or name.startswith("."):
            return
        if path in self.entries or path in self.given_up:
            return
        segment = parse_name(name)
        if segment is None:
            if name not in self.warned_unknown and path.exists():
                self.warned_unknown.add(name)
                logger.warning("completed/{} is not a segment name (camera_<id>_YYYY-MM-DD_HH-MM-SS.mp4); "
                               "skipped", name)
            return
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return
        entry = _Entry(path, (segment.start.timestamp(), name), size)
        self.entries[path] = entry
        heapq.heappush(self.ready, (entry.sort_key, path))

    def scan(self) -> None:
        try:
            names = os.listdir(self.layout.completed)
        except OSError as exc:
            logger.error("cannot list {}: {}", self.layout.completed, exc.strerror)
            return
        for name in names:
            self.offer(self.layout.completed / name)

    def start_observer(self) -> None:
        try:
            observer = Observer()
            observer.schedule(_CompletedHandler(self.events), str(self.layout.completed), recursive=False)
            observer.daemon = True
            observer.start()
            self.observer = observer
        except Exception as exc:  # e.g. inotify watch limit: the rescans still find everything
            logger.warning("cannot watch {} ({}); relying on rescans every {:.0f}s",
                           self.layout.completed, redact(str(exc)), self.config.rescan_interval)

    # ----- dispatch --------------------------------------------------------------------------
    def _capacity(self) -> int:
        limit = 1 if self.probing else self.config.concurrency
        return limit - len(self.in_flight)

    def dispatch(self, now: float) -> None:
        while self.delayed and self.delayed[0][0] <= now:
            _, sort_key, path = heapq.heappop(self.delayed)
            if path in self.entries:
                heapq.heappush(self.ready, (sort_key, path))
        if self.stopping or now < self.paused_until:
            return
        if not self.cleanup_done:
            self._start_cleanup(now)
            return
        while self.ready and self._capacity() > 0:
            _, path = heapq.heappop(self.ready)
            if path not in self.entries or path in self.in_flight:
                continue
            future = self.executor.submit(self.job.run, path)
            self.in_flight[path] = future
            future.add_done_callback(lambda f, p=path: self.events.put(("done", (p, f))))

    def _start_cleanup(self, now: float) -> None:
        if self.cleanup_future is not None or now < self.cleanup_due:
            return
        self.cleanup_future = self.executor.submit(self.store.abort_incomplete_uploads, self.config.prefix)
        self.cleanup_future.add_done_callback(lambda f: self.events.put(("cleanup", f)))

    def _cleanup_finished(self, future: Future) -> None:
        self.cleanup_future = None
        try:
            aborted = future.result()
        except Exception as exc:
            problem = classify(exc, "cleaning up incomplete uploads")
            self.cleanup_attempts += 1
            if problem.kind == "config":
                self._config_problem(problem.message)
            else:
                delay = self._backoff(self.cleanup_attempts)
                self._record_error(problem.message)
                logger.warning("{}; retrying in {:.0f}s", problem.message, delay)
                self.cleanup_due = time.monotonic() + delay
                if self.once and self.cleanup_attempts >= ONCE_MAX_ATTEMPTS:
                    self.exit_code = 1
                    self.stopping = True
            return
        self.cleanup_done = True
        self._config_fixed()
        for key in aborted:
            logger.warning("aborted an incomplete multipart upload of {} left by an earlier run", key)

    def _backoff(self, attempts: int) -> float:
        delay = min(self.config.retry_max_seconds, 2.0 ** max(attempts - 1, 0))
        return delay * random.uniform(0.8, 1.0)

    # ----- outcomes --------------------------------------------------------------------------
    def _record_error(self, message: str) -> None:
        self.stats.failures += 1
        self.stats.last_error = {"message": redact(message), "at": utc_iso()}

    def _config_problem(self, message: str) -> None:
        now = time.monotonic()
        self.paused_until = now + self.config.config_error_retry_seconds
        self.probing = True
        self.config_error = redact(message)
        self._record_error(message)
        if now - self.config_error_logged_at >= self.config.config_error_retry_seconds:
            self.config_error_logged_at = now
            logger.error("S3 configuration problem: {}; segments stay queued, next try in {:.0f}s",
                         message, self.config.config_error_retry_seconds)
        if self.once:
            self.exit_code = 1
            self.stopping = True

    def _config_fixed(self) -> None:
        if self.config_error:
            logger.info("S3 is accepting requests again; resuming uploads")
        self.config_error = None
        self.probing = False

    def finished(self, path: Path, future: Future) -> None:
        self.in_flight.pop(path, None)
        try:
            outcome: Outcome = future.result()
        except Exception as exc:  # a bug in the job must never drop the file
            logger.exception("unexpected error uploading {}", path.name)
            outcome = Outcome(path, "retry", message=f"unexpected {exc.__class__.__name__}: {redact(str(exc))}")
        entry = self.entries.get(path)
        if outcome.kind in ("done", "gone"):
            self.entries.pop(path, None)
            if outcome.kind == "done":
                self._succeeded(outcome)
            return
        if entry is None:
            return
        if outcome.kind == "config":
            heapq.heappush(self.ready, (entry.sort_key, path))
            self._config_problem(outcome.message)
            return
        entry.attempts += 1
        self._record_error(outcome.message)
        if self.once and entry.attempts >= ONCE_MAX_ATTEMPTS:
            logger.error("{}; giving up on {} for this run (it stays in completed/)", outcome.message, path.name)
            self.entries.pop(path, None)
            self.given_up.add(path)
            self.exit_code = 1
            return
        delay = self._backoff(entry.attempts)
        logger.warning("{}; retry {} in {:.0f}s", outcome.message, entry.attempts, delay)
        heapq.heappush(self.delayed, (time.monotonic() + delay, entry.sort_key, path))

    def _succeeded(self, outcome: Outcome) -> None:
        self._config_fixed()
        self.stats.files_uploaded += 1 if outcome.uploaded_bytes else 0
        self.stats.files_already_present += 0 if outcome.uploaded_bytes else 1
        self.stats.bytes_uploaded += outcome.uploaded_bytes
        self.stats.last_success = {"file": outcome.path.name, "key": outcome.key, "at": utc_iso(),
                                   "verified_by": outcome.verified_by}
        try:  # the file's mtime is when the recorder finished writing it
            self.stats.last_latency = time.time() - (self.layout.uploaded / outcome.path.name).stat().st_mtime
        except OSError:
            pass
        if self.delayed:
            # S3 is reachable again: files waiting out a backoff need not wait any longer.
            now = time.monotonic()
            self.delayed = [(min(due, now), key, path) for due, key, path in self.delayed]
            heapq.heapify(self.delayed)

    # ----- housekeeping ----------------------------------------------------------------------
    @staticmethod
    def _local_files(folder: Path) -> list[LocalFile]:
        files = []
        try:
            names = os.listdir(folder)
        except OSError:
            return files
        for name in names:
            if name.startswith("."):
                continue
            try:
                st = (folder / name).stat()
            except FileNotFoundError:
                continue
            if os.path.isfile(folder / name):
                files.append(LocalFile(folder / name, st.st_mtime, st.st_size))
        return files

    def _delete(self, file: LocalFile, why: str) -> bool:
        try:
            file.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            logger.error("cannot delete {} ({}): {}", file.path, why, exc.strerror)
            return False
        return True

    def housekeeping(self) -> None:
        """Retention by age, then the disk guard."""
        for file in expired(self._local_files(self.layout.uploaded), time.time(), self.config.retention_hours):
            if self._delete(file, "retention"):
                self.stats.deleted_by_retention += 1
                logger.debug("deleted uploaded/{} (older than {} h)", file.path.name, self.config.retention_hours)
        try:
            free = self.free_bytes(self.layout.root)
        except OSError as exc:
            logger.error("cannot read free disk space: {}", exc.strerror)
            return
        self.disk_free = free
        if free >= self.config.min_free_bytes:
            return
        waiting = [f for f in self._local_files(self.layout.completed)
                   if f.path not in self.in_flight and parse_name(f.path.name)]
        plan = disk_guard(free, self.config.min_free_bytes, self._local_files(self.layout.uploaded),
                          waiting, self.config.delete_unuploaded_when_full)
        for file in plan.delete:
            unuploaded = file.path.parent == self.layout.completed
            if unuploaded and file.path in self.in_flight:
                continue
            if not self._delete(file, "disk guard"):
                continue
            self.stats.deleted_by_disk_guard += 1
            if unuploaded:
                self.stats.deleted_unuploaded += 1
                self.entries.pop(file.path, None)
                logger.error("disk guard: deleted {} which was NOT uploaded yet (DELETE_UNUPLOADED_WHEN_FULL)",
                             file.path.name)
            else:
                logger.warning("disk guard: deleted uploaded/{} early ({} MB free, minimum {} MB)",
                               file.path.name, free // 2**20, self.config.min_free_bytes // 2**20)
        if plan.shortfall > 0:
            logger.warning("disk guard: free space stays below MIN_FREE_DISK_MB ({} MB short); {}",
                           plan.shortfall // 2**20,
                           "nothing uploaded is left to delete" if not self.config.delete_unuploaded_when_full
                           else "nothing left to delete")

    # ----- status ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        queued = [e for p, e in self.entries.items() if p not in self.in_flight]
        oldest = min(queued, key=lambda e: e.sort_key, default=None)
        state = "stopping" if self.stopping else ("waiting: S3 configuration problem" if self.config_error
                                                  else "running")
        return {
            "pid": os.getpid(),
            "updated_at": utc_iso(),
            "state": state,
            "bucket": self.config.bucket,
            "endpoint": self.config.safe_endpoint,
            "prefix": self.config.prefix,
            "queue": {"files": len(queued), "bytes": sum(e.size for e in queued),
                      "oldest": oldest.path.name if oldest else None,
                      "oldest_start": utc_iso(oldest.sort_key[0]) if oldest else None},
            "in_flight": sorted(p.name for p in self.in_flight),
            "last_success": self.stats.last_success,
            "last_error": self.stats.last_error,
            "config_error": self.config_error,
            "files_uploaded": self.stats.files_uploaded,
            "files_already_present": self.stats.files_already_present,
            "bytes_uploaded_total": self.stats.bytes_uploaded,
            "deleted": {"retention": self.stats.deleted_by_retention,
                        "disk_guard": self.stats.deleted_by_disk_guard,
                        "not_uploaded": self.stats.deleted_unuploaded},
            "skipped_unknown_files": sorted(self.warned_unknown),
            "disk": {"free_bytes": self.disk_free, "min_free_bytes": self.config.min_free_bytes},
        }

    def write_status(self) -> None:
        status = self.status()
        publish(self.layout.state / "uploader.json", status)
        queue_info = status["queue"]
        notify(f"STATUS={queue_info['files']} queued, {len(status['in_flight'])} uploading, "
               f"{status['files_uploaded']} uploaded" + (f"; {status['config_error']}" if self.config_error else ""))
        if not self.once and not self.stopping:
            self._raise_alerts(status)

    def _raise_alerts(self, status: dict[str, Any]) -> None:
        now = time.monotonic()
        error, success = status["last_error"], status["last_success"]
        failing = bool(self.config_error) or bool(
            status["queue"]["files"] and error and (success is None or error["at"] > success["at"]))
        reason = self.config_error or (error or {}).get("message", "")
        checks = [
            ("uploads", failing, f"uploads to s3://{self.config.bucket} are failing: {reason}; "
                                  f"{status['queue']['files']} segments waiting", self.config.alerts.upload_failing_after),
            ("disk", self.disk_free is not None and self.disk_free < self.config.min_free_bytes,
             f"disk low: {(self.disk_free or 0) // 2**20} MB free, minimum {self.config.min_free_bytes // 2**20} MB",
             self.config.alerts.disk_low_after),
        ]
        for key, bad, text, delay in checks:
            message = self.alerts.update(key, bad, text, delay, now)
            if message:
                self.webhook.send(message)

    def metrics(self) -> list[Sample]:
        status = self.status()
        return [
            Sample("s3_uploader_queue_files", status["queue"]["files"], "segments waiting in completed/"),
            Sample("s3_uploader_queue_bytes", status["queue"]["bytes"], "bytes waiting in completed/"),
            Sample("s3_uploader_in_flight", len(status["in_flight"]), "uploads running now"),
            Sample("s3_uploader_files_uploaded_total", status["files_uploaded"], "segments uploaded and verified",
                   "counter"),
            Sample("s3_uploader_bytes_uploaded_total", status["bytes_uploaded_total"], "bytes uploaded", "counter"),
            Sample("s3_uploader_failures_total", self.stats.failures, "failed upload attempts", "counter"),
            Sample("s3_uploader_config_error", bool(self.config_error), "1 while uploads are blocked by configuration"),
            Sample("s3_uploader_last_upload_latency_seconds", self.stats.last_latency,
                   "segment closed (file mtime) to verified in the bucket, last upload"),
            Sample("s3_uploader_disk_free_bytes", self.disk_free or 0, "free bytes on the DATA_DIR filesystem"),
        ]

    # ----- main loop -------------------------------------------------------------------------
    def _handle(self, kind: str, value: Any) -> None:
        if kind == "path":
            self.offer(value)
        elif kind == "done":
            self.finished(*value)
        elif kind == "cleanup":
            self._cleanup_finished(value)
        elif kind == "signal":
            if not self.stopping:
                logger.info("{} received: finishing uploads in flight, taking no new work", value)
                notify("STOPPING=1")
            self.stopping = True

    def _drained(self) -> bool:
        if self.in_flight or self.cleanup_future is not None:
            return False
        if self.stopping:
            return True
        return self.once and self.cleanup_done and not self.entries

    def run(self) -> int:
        if self.install_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda n, _f: self.events.put(("signal", signal.Signals(n).name)))
        logger.info("s3-uploader starting: bucket {} at {}, prefix {!r}, {} parallel uploads{}",
                    self.config.bucket, self.config.safe_endpoint, self.config.prefix, self.config.concurrency,
                    " (--once)" if self.once else "")
        if not self.once:
            self.start_observer()
        self.scan()
        self.housekeeping()
        metrics = MetricsServer("127.0.0.1", self.config.metrics_port, self.metrics).start() \
            if self.config.metrics_port and not self.once else None
        notify("READY=1")
        self.write_status()
        keepalive = watchdog_interval()
        now = time.monotonic()
        next_scan = next_status = next_keepalive = now
        next_scan += self.config.rescan_interval
        try:
            while True:
                self.dispatch(time.monotonic())
                if self._drained():
                    break
                try:
                    kind, value = self.events.get(timeout=TICK)
                    self._handle(kind, value)
                    while True:
                        kind, value = self.events.get_nowait()
                        self._handle(kind, value)
                except queue.Empty:
                    pass
                now = time.monotonic()
                if self.stopping:
                    self._wait_for_in_flight()
                    break
                if now >= next_scan:
                    next_scan = now + self.config.rescan_interval
                    self.scan()
                    self.housekeeping()
                if now >= next_status:
                    next_status = now + STATUS_INTERVAL
                    self.write_status()
                if keepalive and now >= next_keepalive:
                    next_keepalive = now + keepalive
                    notify("WATCHDOG=1")
        finally:
            if self.observer is not None:
                self.observer.stop()
            if metrics is not None:
                metrics.stop()
            self.webhook.close()
        self.write_status()
        self.executor.shutdown(wait=True)
        logger.info("s3-uploader stopped: {} uploaded ({} bytes), {} still queued",
                    self.stats.files_uploaded, self.stats.bytes_uploaded, len(self.entries))
        return self.exit_code

    def _wait_for_in_flight(self) -> None:
        deadline = time.monotonic() + self.config.stop_timeout
        next_status = 0.0
        while self.in_flight or self.cleanup_future is not None:
            now = time.monotonic()
            if now >= deadline:
                logger.warning("{} upload(s) still running after {:.0f}s; exiting anyway (the files stay in "
                               "completed/, the next start aborts the partial uploads)",
                               len(self.in_flight), self.config.stop_timeout)
                self.write_status()
                logger.complete()
                os._exit(self.exit_code)
            if now >= next_status:
                next_status = now + STATUS_INTERVAL
                self.write_status()
                notify("WATCHDOG=1")
            try:
                kind, value = self.events.get(timeout=min(deadline - now, TICK))
                self._handle(kind, value)
            except queue.Empty:
                pass


def limit_malloc_arenas(count: int = 2) -> None:
    """Cap glibc's per-thread heaps before the upload threads start.

    Each upload thread frees its part buffers (16 MB) into a heap of its own, where no other
    thread reuses them: with 4 parallel encrypted multipart uploads the peak RSS measured
    435-560 MB with glibc's default and 253-308 MB with two heaps (docs/performance.md, 2b).
    The same as MALLOC_ARENA_MAX=2; a no-op without glibc.
    """
    try:
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, count)
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.s3_uploader",
                                     description="Upload finished segments to S3, verify them, prune local copies.")
    add_env_file_argument(parser)
    parser.add_argument("--once", action="store_true",
                        help="upload everything waiting in completed/, then exit (0: all done, 1: some left)")
    args = parser.parse_args(argv)
    config = load_config_or_exit(args.env_file, read_uploader_config)
    limit_malloc_arenas()
    return run_daemon("s3-uploader", "uploader", config.common, lambda: Uploader(config, once=args.once).run())


if __name__ == "__main__":
    sys.exit(main())
