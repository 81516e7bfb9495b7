"""Before the first upload of a run: learn what the server honours, clear this host's leftovers.

Runs in a pool thread; uploads wait until it has succeeded, so it can never abort an upload of
this run. Other hosts' uploads in flight are left alone (`ObjectStore.abort_incomplete_uploads`).
What the store does of the features the settings use is probed here (`StoreAbilities`): the
uploader adapts where it can (no checksums on a store that rejects them) and refuses, as a
configuration problem, a setting that cannot work there (SSE it rejects, object lock it lacks).
"""
from __future__ import annotations

from dataclasses import dataclass

from loguru import logger

from services.bucket.abilities import StoreAbilities, Support
from services.bucket.client import ProblemKind, S3Problem
from services.bucket.keys import probe_key
from services.bucket.store import ObjectStore
from services.uploader.config import UploaderConfig

MULTIPART_JOURNAL = "multipart-uploads"   # in DATA_DIR/state/
PROBE_BODY = b"conditional-write probe of the camera uploader; safe to delete\n"


@dataclass(frozen=True)
class Preparation:
    conditional_writes: bool      # the server refuses to overwrite with If-None-Match: *
    aborted: tuple[str, ...]      # keys of incomplete multipart uploads that were aborted
    abilities: StoreAbilities = StoreAbilities()


def probe_abilities(store: ObjectStore, config: UploaderConfig) -> StoreAbilities:
    """Ask the store about each feature the settings use (`doctor` asks the same).

    Checksums first: where they are rejected, `store` stops sending them before the other
    probes, whose PUTs would otherwise carry one too.
    """
    key = probe_key(config.prefix, config.host_id)
    crc32, crc32_answer = (store.probe_crc32(f"{key}.crc32") if config.checksum == "crc32"
                           else (Support.NOT_PROBED, ""))
    if crc32 is Support.REJECTED:
        store.drop_checksums()
    honoured = store.probe_conditional_writes(key, PROBE_BODY)
    sse, sse_answer = (store.probe_sse(f"{key}.sse", config.sse, config.sse_kms_key_id) if config.sse
                       else (Support.NOT_PROBED, ""))
    lock = Support.NOT_PROBED
    if config.object_lock_days:
        lock = Support.YES if store.bucket_lock_enabled() else Support.NOT_ENABLED
    return StoreAbilities(conditional_writes=Support.YES if honoured else Support.IGNORED, crc32=crc32, sse=sse,
                          object_lock=lock, checksums_sent=config.checksum == "crc32" and crc32.usable,
                          crc32_answer=crc32_answer, sse_answer=sse_answer)


def refusal(abilities: StoreAbilities, config: UploaderConfig) -> S3Problem | None:
    """The setting that cannot work on this store, as a configuration problem; None when all can."""
    if abilities.sse is Support.REJECTED:
        return S3Problem(ProblemKind.CONFIG, "SSERejected",
                         f"this store rejects S3_SSE={(config.sse or '').lower()} ({abilities.sse_answer}): "
                         "set S3_SSE=none, or use the store's own encryption at rest")
    days = config.object_lock_days
    if days and abilities.object_lock is Support.NOT_ENABLED:
        return S3Problem(ProblemKind.CONFIG, "ObjectLockNotEnabled",
                         f"S3_OBJECT_LOCK_DAYS={days} but s3://{config.bucket} does not have object lock enabled: "
                         "enable it on the bucket, or set S3_OBJECT_LOCK_DAYS=0")
    if days and abilities.crc32 is Support.REJECTED:
        return S3Problem(ProblemKind.CONFIG, "ChecksumRejected",
                         f"this store rejects CRC32 checksums ({abilities.crc32_answer}), which "
                         "S3_OBJECT_LOCK_DAYS needs: set S3_OBJECT_LOCK_DAYS=0 or use another store")
    return None


def prepare_bucket(store: ObjectStore, config: UploaderConfig) -> Preparation:
    # Leftovers first: the probes' own multipart uploads would rewrite the journal that lists them.
    aborted = store.abort_incomplete_uploads(config.prefix, config.multipart_abort_after)
    for key in aborted:
        logger.warning("aborted an incomplete multipart upload of {} (left by a crashed run of this host, or "
                       "older than MULTIPART_ABORT_AFTER_HOURS)", key)
    abilities = probe_abilities(store, config)
    problem = refusal(abilities, config)
    if problem is not None:
        raise problem
    if abilities.conditional_writes is Support.YES:
        logger.info("s3://{} refuses to overwrite an existing key (If-None-Match): two hosts can never "
                    "replace each other's segments", config.bucket)
    else:
        logger.warning("s3://{} ignores conditional writes (If-None-Match): a segment another host writes under "
                       "the same key could replace ours; each local copy is checked against the bucket again "
                       "before it is deleted", config.bucket)
    if abilities.crc32 is Support.REJECTED:
        logger.warning("s3://{} at {} rejects CRC32 checksums ({}): uploads of this run send none, as with "
                       "S3_CHECKSUM=off, and are checked against the MD5 ETag or the size instead; set "
                       "S3_CHECKSUM=off to skip this probe", config.bucket, config.safe_endpoint,
                       abilities.crc32_answer)
    if abilities.sse is Support.ACCEPTED:
        logger.warning("s3://{} takes S3_SSE={} but does not confirm it: check the store's encryption at rest",
                       config.bucket, config.sse)
    logger.info("store abilities: {}", abilities.summary())
    return Preparation(abilities.conditional_writes is Support.YES, tuple(aborted), abilities)
