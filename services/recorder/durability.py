"""The segments FFmpeg is writing, pushed from the page cache to the disk every FSYNC_INTERVAL.

`flush_packets=1` hands each fragment to the kernel, not to the disk: until writeback
(`vm.dirty_expire_centisecs`, 30 s by default) a power cut loses it, although a crash of
FFmpeg does not. fsync through a descriptor opened read-only flushes the file's dirty pages
as well (Linux), so the recorder does it for FFmpeg. One worker thread syncs, so a slow disk
never delays the main loop; a round that falls due while the last one still runs is skipped,
not queued, so a stalled disk costs one blocked thread, never a pile of them.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol

from loguru import logger

LATENCY_SECONDS = 60.0   # the report's percentiles cover the fsyncs of this last stretch
JOIN_TIMEOUT = 5.0       # a worker stuck on a dead disk must not hold up the shutdown


class OpenRun(Protocol):
    """A RecordingRun as far as syncing goes."""
    run_dir: Path

    def current_segment(self) -> str | None: ...


@dataclass(frozen=True)
class FsyncReport:
    """Counters since the start; latencies (ms) of the fsyncs of the last LATENCY_SECONDS."""
    interval: float
    rounds: int = 0
    skipped: int = 0           # due while the previous round still ran
    files: int = 0
    errors: int = 0
    file_p50_ms: float = 0.0   # one segment's fsync (and its directory's, when the segment is new)
    file_p99_ms: float = 0.0
    file_max_ms: float = 0.0
    round_p50_ms: float = 0.0  # every open segment of every camera, one after the other
    round_p99_ms: float = 0.0
    round_max_ms: float = 0.0


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """(p50, p99, max) by nearest rank; zeros when there is nothing yet."""
    if not values:
        return 0.0, 0.0, 0.0
    ordered = sorted(values)
    rank = lambda p: ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]  # noqa: E731
    return rank(50), rank(99), ordered[-1]


def recent(samples: Iterable[tuple[float, float]], now: float, span: float = LATENCY_SECONDS) -> list[float]:
    """The values of (time, value) samples taken within `span` seconds before `now`."""
    return [value for at, value in samples if now - at <= span]


def fsync_path(path: Path, directory: bool = False) -> None:
    """fsync a file another process writes (or a directory) without opening it for writing."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SegmentSyncer:
    """Every `interval` seconds (0: never), fsync each run's current segment in a worker thread.

    A segment's first sync also syncs its run directory, so the file's name survives too.
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic,
                 sync: Callable[..., None] = fsync_path):
        self.interval = interval
        self._clock, self._sync = clock, sync
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: list[OpenRun] | None = None   # handed to the worker, not finished yet
        self._stopping = False
        self._next_round = 0.0
        self._names: dict[Path, str] = {}            # worker only: the segment each run had last
        self._file_times: deque[tuple[float, float]] = deque()
        self._round_times: deque[tuple[float, float]] = deque()
        self._rounds = self._skipped = self._files = self._errors = 0
        self._failing = False
        self._thread = threading.Thread(target=self._work, name="segment-fsync", daemon=True)

    def start(self) -> None:
        """Also when off: `interval` may be changed later (a reload), the idle thread costs nothing."""
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stopping = True
            self._wake.set()
            self._thread.join(JOIN_TIMEOUT)

    def offer(self, runs: Iterable[OpenRun]) -> bool:
        """Main loop, every tick: start a round when one is due; False when it had to be skipped."""
        now = self._clock()
        if self.interval <= 0 or now < self._next_round:
            return True
        self._next_round = now + self.interval
        with self._lock:
            if self._pending is not None:
                self._skipped += 1
                return False
            self._pending = list(runs)
        self._wake.set()
        return True

    def report(self) -> FsyncReport | None:
        """None when syncing is off."""
        if self.interval <= 0:
            return None
        now = self._clock()
        with self._lock:
            files = percentiles(recent(self._file_times, now))
            rounds = percentiles(recent(self._round_times, now))
            counts = self._rounds, self._skipped, self._files, self._errors
        ms = [round(1000 * v, 2) for v in (*files, *rounds)]
        return FsyncReport(self.interval, *counts, *ms)

    def run_round(self) -> None:
        """One round over the pending runs (the worker's body; tests call it directly)."""
        with self._lock:
            runs = self._pending or []
        started = self._clock()
        timings, problems = [], []
        names = {}
        for run in runs:
            name = run.current_segment()
            if name is None:
                continue
            names[run.run_dir] = name
            try:
                begun = self._clock()
                self._sync(run.run_dir / name)
                if self._names.get(run.run_dir) != name:
                    self._sync(run.run_dir, directory=True)
                timings.append(self._clock() - begun)
            except FileNotFoundError:
                pass  # closed and handed off meanwhile; the hand-off syncs it
            except OSError as exc:
                problems.append(f"{run.run_dir / name}: {exc.strerror or exc}")
        self._names = names
        finished = self._clock()
        with self._lock:
            self._rounds += 1
            self._files += len(timings)
            self._errors += len(problems)
            self._file_times.extend((finished, t) for t in timings)
            self._round_times.append((finished, finished - started))
            for samples in (self._file_times, self._round_times):
                while samples and finished - samples[0][0] > LATENCY_SECONDS:
                    samples.popleft()
            self._pending = None
        self._log_change(problems)

    def _log_change(self, problems: list[str]) -> None:
        # An error fsync reports is reported once per file description, so the hand-off's own
        # fsync may never see it: this line is the only place it shows.
        if problems and not self._failing:
            logger.error("fsync of the open segments failed, footage may not be on the disk: {}",
                         "; ".join(problems))
        elif not problems and self._failing:
            logger.info("fsync of the open segments works again")
        self._failing = bool(problems)

    def _work(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                self.run_round()
            except Exception:  # noqa: BLE001 - the thread must outlive any surprise
                logger.exception("segment fsync round failed")
                with self._lock:
                    self._pending = None
