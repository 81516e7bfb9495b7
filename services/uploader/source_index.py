"""What the uploader has verified of the source folders: one SQLite row per file, in DATA_DIR/state/.

The source is never written to (unless SOURCE_PRUNE), so this index is how a restart or a
rescan of 100,000 files knows, from a stat alone, which ones are already safe: same path, size
and mtime as a verified row. A row whose file changed is uploaded again (a new key) and replaced.
"""
from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    verified_at REAL NOT NULL
)"""


class FileState(str, Enum):
    VERIFIED = "verified"   # the bucket holds this content under `key`
    PRUNED = "pruned"       # verified, then deleted from the source (SOURCE_PRUNE)


@dataclass(frozen=True)
class IndexRow:
    path: str
    size: int
    mtime_ns: int
    fingerprint: str      # content hash of what was verified (SHA-256 or MD5, hex)
    key: str
    state: FileState
    verified_at: float    # Unix time

    def same_file(self, size: int, mtime_ns: int) -> bool:
        return self.size == size and self.mtime_ns == mtime_ns


class SourceIndex:
    """One connection shared by the scheduler and the pool threads, behind a lock."""

    def __init__(self, path: Path | str):
        self.lock = threading.Lock()
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(_SCHEMA)

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def rows(self) -> dict[str, IndexRow]:
        with self.lock:
            found = self.db.execute("SELECT path, size, mtime_ns, fingerprint, key, state, verified_at FROM files")
            return {row[0]: _row(row) for row in found}

    def get(self, path: str) -> IndexRow | None:
        with self.lock:
            row = self.db.execute("SELECT path, size, mtime_ns, fingerprint, key, state, verified_at FROM files "
                                  "WHERE path = ?", (path,)).fetchone()
        return _row(row) if row else None

    def record(self, row: IndexRow) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (row.path, row.size, row.mtime_ns, row.fingerprint, row.key, row.state.value,
                             row.verified_at))

    def mark(self, path: str, state: FileState) -> None:
        with self.lock:
            self.db.execute("UPDATE files SET state = ? WHERE path = ?", (state.value, path))

    def totals(self) -> dict[FileState, tuple[int, int]]:
        """(files, bytes) per state."""
        with self.lock:
            found = self.db.execute("SELECT state, COUNT(*), COALESCE(SUM(size), 0) FROM files GROUP BY state")
            return {FileState(state): (count, size) for state, count, size in found}


def _row(row: tuple) -> IndexRow:
    return IndexRow(row[0], row[1], row[2], row[3], row[4], FileState(row[5]), row[6])
