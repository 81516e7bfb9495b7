"""Guards for a bucket shared by several hosts, hooked into boto3's request events.

s3transfer builds the PutObject and CompleteMultipartUpload requests of a managed upload
itself and passes no conditional headers, so the headers are added where botocore builds
every request (`before-parameter-build`), and multipart upload ids are read where botocore
sends them (`after-call` of CreateMultipartUpload, `before-call` of Complete/Abort).
"""
from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from loguru import logger


# What a server that does not do conditional writes answers to `If-None-Match: *`.
CONDITIONAL_WRITE_REJECTED = ("NotImplemented", "501", "InvalidArgument", "InvalidRequest")


class NoOverwrite:
    """`If-None-Match: *` on every PUT and CompleteMultipartUpload of the clients it is attached to.

    A server that honours it answers 412 when the key exists: someone else wrote it between
    our HEAD and our PUT, and the file goes to a conflict key instead. `enabled` is decided by
    a probe at start (a server that ignores the header gains nothing from it, one that rejects
    it would fail every upload).
    """

    OPERATIONS = ("PutObject", "CompleteMultipartUpload")

    def __init__(self) -> None:
        self.enabled = False

    def attach(self, client: Any) -> None:
        for operation in self.OPERATIONS:
            client.meta.events.register(f"before-parameter-build.s3.{operation}", self._add_header)

    def _add_header(self, params: dict[str, Any], **_: Any) -> None:
        if self.enabled:
            params.setdefault("IfNoneMatch", "*")


class MultipartJournal:
    """The multipart uploads this host has started and not yet finished, kept in a small file.

    After a crash they are this host's leftovers: the next start aborts exactly these (and,
    beyond a safe age, anyone's), never an upload another host has in flight. Rewritten whole
    and atomically on each change; it holds at most the uploads in flight.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self._open: dict[str, str] = {}   # upload id -> key, started by this process
        # Read once, before this process starts anything: a store made later (a reload) shares
        # this journal and must never take this run's uploads in flight for leftovers.
        self._leftovers = self._read()

    def attach(self, client: Any) -> None:
        client.meta.events.register("after-call.s3.CreateMultipartUpload", self._started)
        for operation in ("CompleteMultipartUpload", "AbortMultipartUpload"):
            client.meta.events.register(f"before-call.s3.{operation}", self._finished)

    def leftovers(self) -> dict[str, str]:
        """What an earlier run started and never finished (upload id -> key)."""
        return dict(self._leftovers)

    def _read(self) -> dict[str, str]:
        if self.path is None:
            return {}
        try:
            lines = self.path.read_text().splitlines()
        except OSError:
            return {}
        pairs = (line.split(" ", 1) for line in lines if " " in line)
        return {upload_id: key for upload_id, key in pairs}

    def forget_leftovers(self, still_open: dict[str, str]) -> None:
        """After the start-up clean-up: only what this run has started since stays listed."""
        with self._lock:
            self._leftovers = dict(still_open)
            self._save()

    def _started(self, parsed: dict[str, Any], **_: Any) -> None:
        upload_id, key = parsed.get("UploadId"), parsed.get("Key")
        if upload_id and key:
            with self._lock:
                self._open[upload_id] = key
                self._save()

    def _finished(self, params: dict[str, Any], **_: Any) -> None:
        upload_id = (params.get("query_string") or {}).get("uploadId")
        if upload_id:
            with self._lock:
                if self._open.pop(upload_id, None) is not None:
                    self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        text = "".join(f"{upload_id} {key}\n" for upload_id, key in (self._leftovers | self._open).items())
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, self.path)
        except OSError as exc:   # a full disk must not fail the upload itself
            logger.warning("cannot record multipart uploads in {}: {}", self.path, exc.strerror)
