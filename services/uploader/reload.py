"""The uploader's reload (SIGHUP): new settings for new jobs, none dropped in flight.

A job holds the SegmentJob (and so the store and settings) it was submitted with, so uploads in
flight finish as they began; the next ones use a job built from the new settings. When where
or how objects are written changed, the start-up preparation of the bucket runs again before
the next upload.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

from loguru import logger

from services.bucket.store import ObjectStore
from services.common.alerts import WebhookSender
from services.common.reloading import (
    changed,
    keep,
    keep_common,
    log_restart_needed,
    log_unknown_keys,
    notify_reloaded,
    reload_with,
)
from services.common.settings import METRICS_BIND, SOURCE_DIRS, UPLOADER_METRICS_PORT
from services.uploader.config import UploaderConfig

if TYPE_CHECKING:
    from services.uploader.scheduler import Uploader

# The metrics socket is bound once.
RESTART_ONLY = {"metrics_port": UPLOADER_METRICS_PORT, "metrics_bind": METRICS_BIND, "sources": SOURCE_DIRS}
# Read by the scheduler or housekeeping each time: the bucket need not be prepared again.
LOCAL_FIELDS = frozenset({"common", "retention_hours", "min_free_bytes", "delete_unuploaded_when_full", "concurrency",
                          "rescan_interval", "retry_max_seconds", "config_error_retry_seconds", "stop_timeout",
                          "alerts", "camera_names", "bandwidth", *RESTART_ONLY})


@dataclass(frozen=True)
class UploaderReload:
    config: UploaderConfig            # what runs from now on: restart-only settings keep their old value
    needs_restart: tuple[str, ...]    # names of settings whose new value waits for a restart
    bucket_changed: bool              # where or how objects are written: prepare the bucket again


def plan_reload(old: UploaderConfig, new: UploaderConfig) -> UploaderReload:
    common, common_restart = keep_common(old.common, new.common)
    return UploaderReload(
        config=replace(keep(old, new, RESTART_ONLY), common=common),
        needs_restart=common_restart + changed(old, new, RESTART_ONLY),
        bucket_changed=any(getattr(old, f.name) != getattr(new, f.name)
                           for f in fields(UploaderConfig) if f.name not in LOCAL_FIELDS),
    )


def reload_settings(uploader: Uploader) -> None:
    """On the scheduler's thread: apply a valid .env; an invalid one changes nothing and is reported."""
    uploader.env_error = reload_with(lambda: plan_reload(uploader.config, uploader.reread()),
                                     lambda plan: _apply(uploader, plan))
    uploader.write_status()
    notify_reloaded()


def _apply(uploader: Uploader, plan: UploaderReload) -> None:
    old, new = uploader.config, plan.config
    log_unknown_keys(new.common)
    log_restart_needed("s3-uploader", plan.needs_restart)
    uploader.config = new
    if plan.bucket_changed:
        # A new client, probed again before the next upload (conditional writes, checksums).
        uploader.store = ObjectStore.for_config(new, journal=uploader.store.journal)
        uploader.cleanup_done, uploader.cleanup_attempts, uploader.cleanup_due = False, 0, 0.0
    if new != old:   # the store, and what its probe found, stay: only local settings changed
        uploader.job = uploader.make_job(new, uploader.store)
    if new.concurrency != old.concurrency:   # running jobs finish on the old pool's threads
        retired, uploader.executor = uploader.executor, ThreadPoolExecutor(max_workers=new.concurrency,
                                                                           thread_name_prefix="upload")
        retired.shutdown(wait=False)
    if new.alerts != old.alerts:
        uploader.webhook.close()
        uploader.webhook = WebhookSender.for_settings(new.alerts, "s3-uploader")
    logger.info(".env reloaded: {} upload(s) in flight finish with the old settings{}", len(uploader.in_flight),
                "; the bucket is prepared again before the next upload" if plan.bucket_changed else "")
