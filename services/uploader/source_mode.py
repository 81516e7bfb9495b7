"""What the scheduler does differently in source mode, in one place: its queue, its job, its sweep.

Without SOURCE_DIRS these give completed/'s Backlog, the SegmentJob and the plain sweep.
"""
from __future__ import annotations

from pathlib import Path

from services.bucket.store import ObjectStore
from services.common.data_layout import DataLayout
from services.uploader.backlog import Backlog
from services.uploader.bandwidth import throttle_for
from services.uploader.config import UploaderConfig
from services.uploader.housekeeping import FreeBytes, Sweep, sweep
from services.uploader.job import SegmentJob
from services.uploader.source import SourceBacklog
from services.uploader.source_config import INDEX_FILE
from services.uploader.source_index import SourceIndex
from services.uploader.source_job import SourceJob, prune


def make_backlog(config: UploaderConfig, layout: DataLayout, once: bool) -> Backlog:
    if config.sources is None:
        return Backlog(layout.completed)
    return SourceBacklog(config.sources, SourceIndex(layout.state / INDEX_FILE), once)


def make_job(config: UploaderConfig, store: ObjectStore, layout: DataLayout,
             backlog: Backlog) -> SegmentJob | SourceJob:
    """The job new uploads run with (again after a reload); the store gets UPLOAD_BWLIMIT."""
    store.throttle = throttle_for(config.bandwidth)
    if isinstance(backlog, SourceBacklog):
        return SourceJob(config, store, layout, backlog.index, backlog.segment_of)
    return SegmentJob(config, store, layout)


def sweep_pass(config: UploaderConfig, layout: DataLayout, job: SegmentJob | SourceJob, free_bytes: FreeBytes,
               busy: frozenset[Path]) -> Sweep:
    """Housekeeping of uploaded/, then (SOURCE_PRUNE) of the source folders."""
    done = sweep(config, layout, job.segments if isinstance(job, SourceJob) else job, free_bytes, busy)
    if isinstance(job, SourceJob) and config.sources is not None and config.sources.prune:
        done.by_retention += prune(job, job.index, config.retention_hours, busy)
    return done
