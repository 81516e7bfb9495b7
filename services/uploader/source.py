"""The files of the source folders waiting for upload: found by inotify and rescans, queued once complete.

The same queue as completed/'s (`Backlog`: oldest segment first, backoff, hurry), fed
differently: a file is watched until `source_stable` says it is complete, and a file the index
already holds as verified (same path, size, mtime) is never queued again. Owned by the
scheduler's thread, like the Backlog; the watchdog thread only puts events on the queue.
"""
from __future__ import annotations

import os
import queue
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from loguru import logger
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from services.common.redact import redact
from services.uploader.backlog import Backlog, Entry
from services.uploader.report import SourceProgress
from services.uploader.source_config import SourceFolder, SourceSettings
from services.uploader.source_index import FileState, IndexRow, SourceIndex
from services.uploader.source_stable import Verdict, Watched, judge, open_for_writing, whole_mp4
from services.uploader.source_template import SourceName, describe, skipped_name

CHECK_INTERVAL = 1.0   # seconds between passes over the watched files


@dataclass(frozen=True)
class Seen:
    """An inotify event on a source file: written to (closed False) or closed after writing."""

    path: Path
    closed: bool


class _SourceHandler(FileSystemEventHandler):
    def __init__(self, put: Any):
        self.put = put

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        where = event.dest_path if event.event_type == "moved" else event.src_path
        self.put(Seen(Path(os.fsdecode(where)), event.event_type in ("closed", "moved")))


def source_name(settings: SourceSettings, path: Path, mtime: float | None = None) -> SourceName | str:
    """The segment a source file stands for, or why it is not one."""
    folder = settings.folder_of(path)
    if folder is None:
        return "not in a source folder"
    written = datetime.fromtimestamp(mtime, timezone.utc) if mtime is not None else None
    return describe(path.relative_to(folder.path).as_posix(), folder.template, settings.zone, settings.names, written)


def walk(folder: SourceFolder) -> list[Path]:
    """Every file under a source folder but hidden folders and skipped names."""
    found = []
    for root, dirs, files in os.walk(folder.path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(root) / name for name in files if not skipped_name(name))
    return found


class SourceBacklog(Backlog):
    def __init__(self, settings: SourceSettings, index: SourceIndex, once: bool = False):
        super().__init__(settings.folders[0].path)
        self.settings, self.index = settings, index
        self.once = once   # `sync`: a file still being written once it is due is left for the next run
        self.known: dict[str, IndexRow] = index.rows()
        self.watched: dict[Path, Watched] = {}
        self.names: dict[Path, SourceName] = {}
        self.next_check = 0.0
        self.scans = 0

    def offer(self, item: Path | Seen) -> None:
        path, event = (item.path, item) if isinstance(item, Seen) else (item, None)
        if skipped_name(path.name) or path in self.given_up:
            return
        folder = self.settings.folder_of(path)
        if folder is None or any(p.startswith(".") for p in path.relative_to(folder.path).parts):
            return
        try:
            stat = path.stat()
        except OSError:
            self.watched.pop(path, None)
            return
        now = time.monotonic()
        known = self.known.get(str(path))
        if known is not None and known.same_file(stat.st_size, stat.st_mtime_ns) and event is None:
            return
        if path in self.entries:
            if event is None or event.closed:
                return
            self.entries.pop(path)   # written to again before its upload: watched until complete again
        watched = self.watched.get(path)
        if watched is None:
            if known is not None and known.same_file(stat.st_size, stat.st_mtime_ns):
                return   # an event without a change (a reader closed it)
            named = source_name(self.settings, path, stat.st_mtime)
            if isinstance(named, str):
                self._unknown(path, folder, named)
                return
            self.names[path] = named
            # Found by a scan: quiet since its mtime. Seen by inotify: being written now.
            quiet = 0.0 if event is not None else max(0.0, time.time() - stat.st_mtime)
            watched = self.watched[path] = Watched(stat.st_size, stat.st_mtime_ns, now - quiet)
        elif watched.saw(stat.st_size, stat.st_mtime_ns, now):
            watched.not_whole = ""
        if event is not None:
            watched.open_seen = not event.closed

    def _unknown(self, path: Path, folder: SourceFolder, why: str) -> None:
        relative = path.relative_to(folder.path).as_posix()
        if relative not in self.warned_unknown:
            self.warned_unknown.add(relative)
            logger.warning("{}/{}: {}; skipped", folder.path, relative, why)

    def scan(self) -> None:
        self.scans += 1
        for folder in self.settings.folders:
            for path in walk(folder):
                self.offer(path)

    def watch(self, events: "queue.Queue[tuple[Any, Any]]", kind: Any, rescan_interval: float) -> Any:
        try:
            observer = Observer()
            handler = _SourceHandler(lambda seen: events.put((kind, seen)))
            for folder in self.settings.folders:
                observer.schedule(handler, str(folder.path), recursive=True)
            observer.daemon = True
            observer.start()
            return observer
        except Exception as exc:  # e.g. inotify watch limit: rescans still find everything
            logger.warning("cannot watch the source folders ({}); relying on rescans every {:.0f}s",
                           redact(str(exc)), rescan_interval)
            return None

    def release_due(self, now: float) -> None:
        super().release_due(now)
        if now >= self.next_check:
            self.next_check = now + CHECK_INTERVAL
            self.promote(now)

    def promote(self, now: float) -> None:
        """Queue the watched files that are complete now (one /proc scan for all of them)."""
        stable = self.settings.stable_seconds
        due = [p for p, w in self.watched.items() if now - w.changed_at >= stable]
        if not due:
            return
        held = open_for_writing(tuple(str(f.path) + os.sep for f in self.settings.folders))
        for path in due:
            watched = self.watched[path]
            try:
                stat = path.stat()
            except OSError:
                self.watched.pop(path)
                continue
            changed = watched.saw(stat.st_size, stat.st_mtime_ns, now)
            problem = "" if changed else whole_mp4(path)
            verdict = Verdict.WAIT if changed else judge(watched, now, stable, str(path) in held, problem)
            if verdict is Verdict.WAIT and self.once:
                logger.info("{} is still being written ({}); left for the next run", path,
                            problem or ("held open for writing" if str(path) in held else "changing"))
                self.watched.pop(path)
                self.given_up.add(path)
                continue
            if verdict is Verdict.WAIT:
                if problem and problem != watched.not_whole:
                    watched.not_whole = problem
                    logger.debug("{} is not whole yet ({}); waiting", path, problem)
                continue
            if verdict is Verdict.ABANDONED:
                logger.warning("{} stayed incomplete for {:.0f}s ({}); uploading it as it is", path,
                               now - watched.changed_at, problem or "no close seen")
            self._queue(path, stat.st_size)

    def _queue(self, path: Path, size: int) -> None:
        self.watched.pop(path, None)
        segment = self.names[path].segment
        self.entries[path] = Entry(path, (segment.start.timestamp(), str(path)), size)
        self.requeue(self.entries[path])

    def forget(self, path: Path) -> None:
        super().forget(path)
        self.names.pop(path, None)
        row = self.index.get(str(path))
        if row is not None:
            self.known[str(path)] = row

    def segment_of(self, path: Path) -> SourceName | None:
        return self.names.get(path)

    def progress(self) -> SourceProgress:
        totals = self.index.totals()
        verified = totals.get(FileState.VERIFIED, (0, 0))
        pruned = totals.get(FileState.PRUNED, (0, 0))
        return SourceProgress(
            folders=tuple(str(f.path) for f in self.settings.folders),
            verified_files=verified[0] + pruned[0], verified_bytes=verified[1] + pruned[1],
            pruned_files=pruned[0], queued_files=len(self.entries),
            queued_bytes=sum(e.size for e in self.entries.values()),
            settling_files=len(self.watched), settling_bytes=sum(w.size for w in self.watched.values()),
            unparsed=tuple(sorted(self.warned_unknown))[:20], unparsed_count=len(self.warned_unknown),
            first_scan_done=self.scans > 0)

    def __len__(self) -> int:
        return len(self.entries) + len(self.watched)
