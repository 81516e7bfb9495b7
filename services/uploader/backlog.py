"""The segments waiting in completed/: found by inotify and by rescans, served oldest first.

Owned by the scheduler's thread. The watchdog observer's thread only puts paths on the
scheduler's event queue; files that fail wait out a backoff in `delayed`.
"""
from __future__ import annotations

import heapq
import os
import queue
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Collection

from loguru import logger
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from services.common.redact import redact
from services.common.segment_names import parse_name
from services.uploader.report import QueueSnapshot

SortKey = tuple[float, str]   # segment start (UTC seconds), name


def retry_delay(attempts: int, cap: float) -> float:
    """1, 2, 4 ... seconds up to `cap`, less up to a fifth at random so retries spread out."""
    return min(cap, 2.0 ** max(attempts - 1, 0)) * random.uniform(0.8, 1.0)


@dataclass
class Entry:
    path: Path
    sort_key: SortKey
    size: int
    attempts: int = 0


class _CompletedHandler(FileSystemEventHandler):
    """Runs on the watchdog thread: only enqueue, never block."""

    def __init__(self, found: Callable[[Path], None]):
        self.found = found

    def on_created(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.found(Path(os.fsdecode(event.src_path)))

    def on_moved(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.found(Path(os.fsdecode(event.dest_path)))


class Backlog:
    def __init__(self, folder: Path):
        self.folder = folder
        self.entries: dict[Path, Entry] = {}
        self.ready: list[tuple[SortKey, Path]] = []
        self.delayed: list[tuple[float, SortKey, Path]] = []   # (monotonic due time, ...)
        self.given_up: set[Path] = set()                        # --once: left for the next run
        self.warned_unknown: set[str] = set()

    def __len__(self) -> int:
        return len(self.entries)

    def offer(self, path: Path) -> None:
        """Queue `path` if it is a segment in the folder not yet known; warn once about other names."""
        name = path.name
        if path.parent != self.folder or name.startswith("."):
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
        entry = Entry(path, (segment.start.timestamp(), name), size)
        self.entries[path] = entry
        heapq.heappush(self.ready, (entry.sort_key, path))

    def scan(self) -> None:
        try:
            names = os.listdir(self.folder)
        except OSError as exc:
            logger.error("cannot list {}: {}", self.folder, exc.strerror)
            return
        for name in names:
            self.offer(self.folder / name)

    def watch(self, events: "queue.Queue[tuple[Any, Any]]", kind: Any, rescan_interval: float) -> Any:
        """Start an inotify observer that puts (kind, path) on `events`; None when it cannot."""
        try:
            observer = Observer()
            observer.schedule(_CompletedHandler(lambda path: events.put((kind, path))), str(self.folder),
                              recursive=False)
            observer.daemon = True
            observer.start()
            return observer
        except Exception as exc:  # e.g. inotify watch limit: the rescans still find everything
            logger.warning("cannot watch {} ({}); relying on rescans every {:.0f}s",
                           self.folder, redact(str(exc)), rescan_interval)
            return None

    def release_due(self, now: float) -> None:
        while self.delayed and self.delayed[0][0] <= now:
            _, sort_key, path = heapq.heappop(self.delayed)
            if path in self.entries:
                heapq.heappush(self.ready, (sort_key, path))

    def pop_ready(self, busy: Collection[Path]) -> Path | None:
        """The oldest queued segment not being uploaded, or None."""
        while self.ready:
            _, path = heapq.heappop(self.ready)
            if path in self.entries and path not in busy:
                return path
        return None

    def requeue(self, entry: Entry) -> None:
        heapq.heappush(self.ready, (entry.sort_key, entry.path))

    def retry_at(self, entry: Entry, due: float) -> None:
        heapq.heappush(self.delayed, (due, entry.sort_key, entry.path))

    def hurry(self, now: float) -> None:
        """S3 is reachable again: files waiting out a backoff need not wait any longer."""
        if self.delayed:
            self.delayed = [(min(due, now), key, path) for due, key, path in self.delayed]
            heapq.heapify(self.delayed)

    def forget(self, path: Path) -> None:
        self.entries.pop(path, None)

    def give_up(self, path: Path) -> None:
        self.entries.pop(path, None)
        self.given_up.add(path)

    def snapshot(self, busy: Collection[Path]) -> QueueSnapshot:
        queued = [e for p, e in self.entries.items() if p not in busy]
        oldest = min(queued, key=lambda e: e.sort_key, default=None)
        if oldest is None:
            return QueueSnapshot(len(queued), sum(e.size for e in queued))
        return QueueSnapshot(len(queued), sum(e.size for e in queued), oldest.path.name,
                             datetime.fromtimestamp(oldest.sort_key[0], timezone.utc))
