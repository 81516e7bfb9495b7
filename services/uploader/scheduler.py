"""The uploader's scheduler: which segment goes next, what happens with each outcome, the main loop.

Threads and who owns what:
- the watchdog observer thread only puts paths on `events` (an unbounded queue: it never blocks);
- the main thread owns every piece of scheduler state: it drains `events`, keeps the priority
  queue (oldest segment first), hands work to a bounded pool, applies outcomes, rescans
  completed/ (inotify can drop events silently), runs housekeeping, and publishes one
  snapshot per tick, from which the state file, systemd's STATUS, alerts and metrics are made
  (the metrics thread reads only the latest published snapshot);
- pool threads run `SegmentJob.run` for one file and return an Outcome.

A file leaves completed/ only after its object was verified in the bucket.
"""
from __future__ import annotations

import os
import queue
import signal
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Callable

from loguru import logger

from services.bucket.abilities import StoreAbilities
from services.bucket.client import ProblemKind, classify
from services.bucket.store import ObjectStore
from services.common.alerts import AlertTracker, WebhookSender
from services.common.data_layout import DataLayout
from services.common.metrics import MetricsServer
from services.common.redact import redact
from services.common.reporting import publish_report
from services.common.sd_notify import notify, watchdog_interval
from services.uploader.backlog import retry_delay
from services.uploader.config import UploaderConfig
from services.uploader.housekeeping import FreeBytes, Sweep, disk_free_bytes
from services.uploader.job import Outcome, OutcomeKind, SegmentJob
from services.uploader.preparation import MULTIPART_JOURNAL, Preparation, prepare_bucket
from services.uploader.reload import reload_settings
from services.uploader.report import (
    STATE_FILE,
    Counters,
    DiskSnapshot,
    UploaderSnapshot,
    UploaderState,
    alert_conditions,
    metric_samples,
    status_line,
)
from services.uploader.source import SourceBacklog
from services.uploader.source_job import SourceJob
from services.uploader.source_mode import make_backlog, make_job, sweep_pass

STATUS_INTERVAL = 2.0
TICK = 0.5
ONCE_MAX_ATTEMPTS = 5   # --once gives up on a file after this many transient failures


class Event(Enum):
    PATH = "path"          # a name appeared in completed/
    DONE = "done"          # a job finished
    CLEANUP = "cleanup"    # the start-up preparation of the bucket finished
    SWEPT = "swept"        # a housekeeping pass finished
    SIGNAL = "signal"      # SIGTERM/SIGINT
    RELOAD = "reload"      # SIGHUP: re-read .env


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Uploader:
    """The scheduler; `run()` returns the exit code."""

    def __init__(self, config: UploaderConfig, store: ObjectStore | None = None, once: bool = False,
                 free_bytes: FreeBytes = disk_free_bytes, install_signals: bool = True,
                 reread: Callable[[], UploaderConfig] | None = None):
        self.config, self.reread = config, reread or (lambda: config)
        self.env_error: str | None = None   # why the last reload's .env was rejected
        self.layout = DataLayout(config.common.data_dir)
        self.store = store or ObjectStore.for_config(config, journal=self.layout.state / MULTIPART_JOURNAL)
        self.once, self.free_bytes, self.install_signals = once, free_bytes, install_signals
        self.events: queue.Queue[tuple[Event, Any]] = queue.Queue()
        # Source mode (SOURCE_DIRS): another recorder's folders, read in place, instead of completed/.
        self.backlog = make_backlog(config, self.layout, once)
        self.job = self.make_job(config, self.store)
        self.in_flight: dict[Path, Future] = {}
        self.stats = Counters()
        self.conditional_writes: bool | None = None
        self.abilities: StoreAbilities | None = None
        self.sweep_future: Future | None = None
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
        self.webhook = WebhookSender.for_settings(config.alerts, "s3-uploader")
        self.latest: UploaderSnapshot = self.snapshot()   # replaced whole; the metrics thread reads it

    def make_job(self, config: UploaderConfig, store: ObjectStore) -> SegmentJob | SourceJob:
        return make_job(config, store, self.layout, self.backlog)

    # ----- dispatch --------------------------------------------------------------------------
    def _capacity(self) -> int:
        limit = 1 if self.probing else self.config.concurrency
        return limit - len(self.in_flight)

    def dispatch(self, now: float) -> None:
        self.backlog.release_due(now)
        if self.stopping or now < self.paused_until:
            return
        if not self.cleanup_done:
            self._start_cleanup(now)
            return
        while self._capacity() > 0:
            path = self.backlog.pop_ready(self.in_flight)
            if path is None:
                break
            future = self.executor.submit(self.job.run, path)
            self.in_flight[path] = future
            future.add_done_callback(lambda f, p=path: self.events.put((Event.DONE, (p, f))))

    def _start_cleanup(self, now: float) -> None:
        if self.cleanup_future is not None or now < self.cleanup_due:
            return
        self.cleanup_future = self.executor.submit(prepare_bucket, self.store, self.config)
        self.cleanup_future.add_done_callback(lambda f: self.events.put((Event.CLEANUP, f)))

    def _cleanup_finished(self, future: Future) -> None:
        self.cleanup_future = None
        try:
            prepared: Preparation = future.result()
        except Exception as exc:
            problem = classify(exc, "cleaning up incomplete uploads")
            self.cleanup_attempts += 1
            if problem.kind is ProblemKind.CONFIG:
                self._config_problem(problem.message)
            else:
                delay = retry_delay(self.cleanup_attempts, self.config.retry_max_seconds)
                self._record_error(problem.message)
                logger.warning("{}; retrying in {:.0f}s", problem.message, delay)
                self.cleanup_due = time.monotonic() + delay
                if self.once and self.cleanup_attempts >= ONCE_MAX_ATTEMPTS:
                    self.exit_code = 1
                    self.stopping = True
            return
        self.cleanup_done = True
        self.conditional_writes = prepared.conditional_writes
        self.abilities = prepared.abilities
        self._config_fixed()

    # ----- outcomes --------------------------------------------------------------------------
    def _record_error(self, message: str) -> None:
        self.stats.error(redact(message))

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
            outcome = Outcome(path, OutcomeKind.RETRY, message=f"unexpected {exc.__class__.__name__}: {redact(str(exc))}")
        entry = self.backlog.entries.get(path)
        if outcome.kind in (OutcomeKind.DONE, OutcomeKind.GONE):
            self.backlog.forget(path)
            if outcome.kind is OutcomeKind.DONE:
                self._succeeded(outcome)
            return
        if entry is None:
            return
        if outcome.kind is OutcomeKind.CONFIG:
            self.backlog.requeue(entry)
            self._config_problem(outcome.message)
            return
        entry.attempts += 1
        self._record_error(outcome.message)
        if self.once and entry.attempts >= ONCE_MAX_ATTEMPTS:
            logger.error("{}; giving up on {} for this run (it stays in completed/)", outcome.message, path.name)
            self.backlog.give_up(path)
            self.exit_code = 1
            return
        delay = retry_delay(entry.attempts, self.config.retry_max_seconds)
        logger.warning("{}; retry {} in {:.0f}s", outcome.message, entry.attempts, delay)
        self.backlog.retry_at(entry, time.monotonic() + delay)

    def _succeeded(self, outcome: Outcome) -> None:
        self._config_fixed()
        self.stats.success(outcome.path.name, outcome.key, outcome.verified_by, outcome.uploaded_bytes)
        self.stats.clash(outcome.clash)
        try:  # the file's mtime is when the recorder finished writing it
            self.stats.last_latency = time.time() - (self.layout.uploaded / outcome.path.name).stat().st_mtime
        except OSError:
            pass
        self.backlog.hurry(time.monotonic())

    # ----- housekeeping and report ----------------------------------------------------------
    def housekeeping(self) -> None:
        """One pass now, on this thread (the loop runs them in the pool: they ask the bucket)."""
        self._swept(sweep_pass(self.config, self.layout, self.job, self.free_bytes, frozenset(self.in_flight)))

    def _start_sweep(self) -> None:
        if self.sweep_future is None:
            self.sweep_future = self.executor.submit(sweep_pass, self.config, self.layout, self.job, self.free_bytes,
                                                     frozenset(self.in_flight))
            self.sweep_future.add_done_callback(lambda f: self.events.put((Event.SWEPT, f)))

    def _sweep_finished(self, future: Future) -> None:
        self.sweep_future = None
        try:
            self._swept(future.result())
        except Exception:   # a bug here must not stop uploads; the next pass tries again
            logger.exception("housekeeping failed")

    def _swept(self, done: Sweep) -> None:
        done.record(self.stats, self.backlog)
        if done.disk_free is not None:
            self.disk_free = done.disk_free

    def snapshot(self) -> UploaderSnapshot:
        state = UploaderState.STOPPING if self.stopping else (
            UploaderState.CONFIG_PROBLEM if self.config_error else UploaderState.RUNNING)
        stats = self.stats
        return UploaderSnapshot(
            pid=os.getpid(), updated_at=_now(), state=state, bucket=self.config.bucket,
            endpoint=self.config.safe_endpoint, prefix=self.config.prefix,
            queue=self.backlog.snapshot(self.in_flight),
            in_flight=tuple(sorted(p.name for p in self.in_flight)),
            last_success=stats.last_success, last_error=stats.last_error, config_error=self.config_error,
            files_uploaded=stats.files_uploaded, files_already_present=stats.files_already_present,
            bytes_uploaded_total=stats.bytes_uploaded, failures=stats.failures,
            last_upload_latency_seconds=stats.last_latency,
            deleted=stats.deleted, returned_for_upload=stats.returned,
            skipped_unknown_files=tuple(sorted(self.backlog.warned_unknown)),
            disk=DiskSnapshot(self.disk_free, self.config.min_free_bytes),
            host_id=self.config.host_id, conditional_writes=self.conditional_writes,
            abilities=self.abilities,
            clashes=tuple(stats.clashes[c] for c in sorted(stats.clashes)), env_error=self.env_error,
            source=self.backlog.progress() if isinstance(self.backlog, SourceBacklog) else None,
        )

    def write_status(self) -> None:
        snapshot = self.latest = self.snapshot()
        publish_report(self.layout.state / STATE_FILE, snapshot, status_line(snapshot),
                       alert_conditions(snapshot, self.config.alerts), self.alerts, self.webhook,
                       alerting=not (self.once or self.stopping))

    # ----- main loop -------------------------------------------------------------------------
    def _handle(self, kind: Event, value: Any) -> None:
        if kind is Event.PATH:
            self.backlog.offer(value)
        elif kind is Event.DONE:
            self.finished(*value)
        elif kind is Event.CLEANUP:
            self._cleanup_finished(value)
        elif kind is Event.SWEPT:
            self._sweep_finished(value)
        elif kind is Event.RELOAD and not self.stopping:
            reload_settings(self)
        elif kind is Event.SIGNAL:
            if not self.stopping:
                logger.info("{} received: finishing uploads in flight, taking no new work", value)
                notify("STOPPING=1")
            self.stopping = True

    def _drained(self) -> bool:
        if self.in_flight or self.cleanup_future is not None or self.sweep_future is not None:
            return False
        if self.stopping:
            return True
        return self.once and self.cleanup_done and not self.backlog

    def run(self) -> int:
        if self.install_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda n, _f: self.events.put((Event.SIGNAL, signal.Signals(n).name)))
            signal.signal(signal.SIGHUP, lambda _n, _f: self.events.put((Event.RELOAD, None)))
        logger.info("s3-uploader starting: bucket {} at {}, prefix {!r}, {} parallel uploads{}",
                    self.config.bucket, self.config.safe_endpoint, self.config.prefix, self.config.concurrency,
                    " (--once)" if self.once else "")
        if not self.once:
            self.observer = self.backlog.watch(self.events, Event.PATH, self.config.rescan_interval)
        self.backlog.scan()
        self._start_sweep()
        metrics = MetricsServer(self.config.metrics_bind, self.config.metrics_port,
                                lambda: metric_samples(self.latest)).start() \
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
                    self.backlog.scan()
                    self._start_sweep()
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
                    self.stats.files_uploaded, self.stats.bytes_uploaded, len(self.backlog))
        return self.exit_code

    def _wait_for_in_flight(self) -> None:
        deadline = time.monotonic() + self.config.stop_timeout
        next_status = 0.0
        while self.in_flight or self.cleanup_future is not None or self.sweep_future is not None:
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

