"""Before the first upload of a run: learn what the server honours, clear this host's leftovers.

Runs in a pool thread; uploads wait until it has succeeded, so it can never abort an upload of
this run. Other hosts' uploads in flight are left alone (`ObjectStore.abort_incomplete_uploads`).
"""
from __future__ import annotations

from dataclasses import dataclass

from loguru import logger

from services.bucket.keys import probe_key
from services.bucket.store import ObjectStore
from services.uploader.config import UploaderConfig

MULTIPART_JOURNAL = "multipart-uploads"   # in DATA_DIR/state/
PROBE_BODY = b"conditional-write probe of the camera uploader; safe to delete\n"


@dataclass(frozen=True)
class Preparation:
    conditional_writes: bool      # the server refuses to overwrite with If-None-Match: *
    aborted: tuple[str, ...]      # keys of incomplete multipart uploads that were aborted


def prepare_bucket(store: ObjectStore, config: UploaderConfig) -> Preparation:
    honoured = store.probe_conditional_writes(probe_key(config.prefix, config.host_id), PROBE_BODY)
    if honoured:
        logger.info("s3://{} refuses to overwrite an existing key (If-None-Match): two hosts can never "
                    "replace each other's segments", config.bucket)
    else:
        logger.warning("s3://{} ignores conditional writes (If-None-Match): a segment another host writes under "
                       "the same key could replace ours; each local copy is checked against the bucket again "
                       "before it is deleted", config.bucket)
    aborted = store.abort_incomplete_uploads(config.prefix, config.multipart_abort_after)
    for key in aborted:
        logger.warning("aborted an incomplete multipart upload of {} (left by a crashed run of this host, or "
                       "older than MULTIPART_ABORT_AFTER_HOURS)", key)
    return Preparation(honoured, tuple(aborted))
