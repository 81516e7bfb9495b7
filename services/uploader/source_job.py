"""One source file's way to the bucket: upload, verify, record in the index. The file stays put.

The upload and its checks are `SegmentJob`'s (same keys, metadata, encryption, object lock,
never over an existing object). What differs: nothing is moved, the verified content is
remembered in the index, and a file whose content changed after its upload goes up again
under a distinct key next to the first object, with a warning.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from loguru import logger

from services.bucket.client import S3Problem
from services.bucket.store import ObjectStore
from services.common.data_layout import DataLayout
from services.common.digest import LocalDigest, digest_file
from services.uploader.config import UploaderConfig
from services.uploader.job import Outcome, OutcomeKind, SegmentJob
from services.uploader.source_index import FileState, IndexRow, SourceIndex
from services.uploader.source_template import SourceName


def fingerprint(digest: LocalDigest) -> str:
    return digest.sha256 or digest.md5 or digest.crc32


class SourceJob:
    """Runs in a pool thread; `name_of` is the backlog's lookup of what a path stands for."""

    def __init__(self, config: UploaderConfig, store: ObjectStore, layout: DataLayout, index: SourceIndex,
                 name_of: Callable[[Path], SourceName | None]):
        self.config, self.store, self.index, self.name_of = config, store, index, name_of
        self.segments = SegmentJob(config, store, layout)

    def run(self, path: Path) -> Outcome:
        named = self.name_of(path)
        if named is None:
            return Outcome(path, OutcomeKind.GONE)
        read = self.segments.read_local(path, str(path))
        if isinstance(read, Outcome):
            return read
        before, digest = read
        previous = self.index.get(str(path))
        if previous is not None and previous.fingerprint == fingerprint(digest):
            self._record(path, before.st_size, before.st_mtime_ns, digest, previous.key)  # touched, same bytes
            return Outcome(path, OutcomeKind.DONE, size=digest.size, key=previous.key, verified_by="index")
        if previous is not None:
            logger.warning("{} changed after its upload to {} ({} -> {} bytes); uploading it again under a new "
                           "key, the first object stays", path, previous.key, previous.size, digest.size)
        target = self.segments.put_unchanged(path, named.segment, digest, before, str(path))
        if isinstance(target, Outcome):
            return target
        self._record(path, before.st_size, before.st_mtime_ns, digest, target.key)
        check, uploaded = target.check, digest.size if target.uploaded else 0
        logger.info("{} -> s3://{}/{} ({} bytes, verified by {}{})", path, self.config.bucket, target.key,
                    digest.size, check.method, "" if uploaded else ", already there")
        return Outcome(path, OutcomeKind.DONE, size=digest.size, key=target.key, uploaded_bytes=uploaded,
                       verified_by=check.method, clash=target.clash)

    def _record(self, path: Path, size: int, mtime_ns: int, digest: LocalDigest, key: str) -> None:
        self.index.record(IndexRow(str(path), size, mtime_ns, fingerprint(digest), key, FileState.VERIFIED,
                                   time.time()))

    def still_held(self, row: IndexRow, path: Path) -> bool:
        """Does the bucket still hold this file's content under the key the index names?"""
        digest = digest_file(path, for_encryption=self.config.crypt is not None)
        if fingerprint(digest) != row.fingerprint:
            return False
        remote = self.store.head(row.key)
        check = self.segments.same_content(digest, remote) if remote is not None else None
        return check is not None and check.ok and check.method != "size"   # a size says whose it is not


def prune(job: SourceJob, index: SourceIndex, retention_hours: float, busy: frozenset[Path]) -> int:
    """SOURCE_PRUNE: delete source files verified longer than the retention ago, once the bucket is
    seen to still hold them unchanged. Runs in a pool thread; returns how many went."""
    cutoff = time.time() - retention_hours * 3600
    deleted = 0
    for row in index.rows().values():
        path = Path(row.path)
        if row.state is not FileState.VERIFIED or row.verified_at > cutoff or path in busy:
            continue
        try:
            stat = path.stat()
            if not row.same_file(stat.st_size, stat.st_mtime_ns) or not job.still_held(row, path):
                continue
            path.unlink()
        except FileNotFoundError:
            pass
        except (OSError, S3Problem) as exc:
            logger.warning("not pruning {} now: {}", path, exc)
            continue
        index.mark(row.path, FileState.PRUNED)
        deleted += 1
        logger.info("pruned {} (verified as s3://{}/{})", path, job.config.bucket, row.key)
    return deleted
