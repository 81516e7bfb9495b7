"""`sync --dry-run`, `sync --verify [--fix]`, `status` and `doctor` over source folders (SOURCE_DIRS).

What each source file is (the template's reading), what the uploader's index says of it, and
whether the bucket holds it. The source is only read; `--fix` forgets index rows, so the
uploader's next start uploads those files again.
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from services.bucket.keys import stored_key
from services.common.data_layout import DataLayout
from services.crypt.format import encrypted_size
from services.uploader.config import UploaderConfig
from services.uploader.source import source_name, walk
from services.uploader.source_config import INDEX_FILE, SourceSettings
from services.uploader.source_index import FileState, IndexRow, SourceIndex


@dataclass(frozen=True)
class SourceFile:
    path: Path
    size: int
    key: str | None          # where its object is (the index's key once verified), None: not a segment
    verified: bool           # the index holds this path, size and mtime as verified
    problem: str = ""        # why the template does not read it


def index_path(config: UploaderConfig) -> Path:
    return DataLayout(config.common.data_dir).state / INDEX_FILE


def read_index(config: UploaderConfig) -> dict[str, IndexRow]:
    path = index_path(config)
    if not path.exists():
        return {}
    try:
        index = SourceIndex(path)
    except sqlite3.Error:
        return {}
    try:
        return index.rows()
    finally:
        index.close()


def survey(config: UploaderConfig) -> list[SourceFile]:
    """Every file of the source folders, oldest name first, as the uploader would see it."""
    settings = config.sources
    assert settings is not None
    rows, found = read_index(config), []
    for folder in settings.folders:
        for path in walk(folder):
            try:
                stat = path.stat()
            except OSError:
                continue
            row = rows.get(str(path))
            if row is not None and row.same_file(stat.st_size, stat.st_mtime_ns):
                found.append(SourceFile(path, stat.st_size, row.key, True))
                continue
            named = source_name(settings, path, stat.st_mtime)
            if isinstance(named, str):
                found.append(SourceFile(path, stat.st_size, None, False, named))
            else:
                found.append(SourceFile(path, stat.st_size, stored_key(config.prefix, named.segment,
                                                                       config.crypt is not None), False))
    return sorted(found, key=lambda f: (f.key or "", str(f.path)))


def verdict(file: SourceFile, remote: dict[str, int], encrypted: bool) -> str:
    """ok | waiting | missing | size-mismatch | unparsed (the same words as completed/'s)."""
    if file.key is None:
        return "unparsed"
    expected = encrypted_size(file.size) if encrypted else file.size
    there = remote.get(file.key)
    if there == expected:
        return "ok" if file.verified else "waiting"
    if not file.verified:
        return "waiting"
    return "missing" if there is None else "size-mismatch"


def forget(config: UploaderConfig, paths: list[Path]) -> int:
    """--fix: drop these files' index rows so the uploader uploads them again at its next start."""
    index = SourceIndex(index_path(config))
    try:
        with index.lock:
            index.db.executemany("DELETE FROM files WHERE path = ?", [(str(p),) for p in paths])
    finally:
        index.close()
    return len(paths)


def progress_of(config: UploaderConfig, sizes: dict[Path, int]) -> tuple[int, int, int, int]:
    """(files done, files, bytes done, bytes) of a `sync` run: done once the index holds it."""
    rows = read_index(config)
    done = [p for p in sizes if (row := rows.get(str(p))) is not None and row.state is FileState.VERIFIED
            and row.size == sizes[p]]
    return len(done), len(sizes), sum(sizes[p] for p in done), sum(sizes.values())


def template_report(settings: SourceSettings, sample: int = 2000) -> tuple[int, list[str]]:
    """doctor: (files the templates read, up to 5 'path: why' for those they do not), over a sample."""
    read, unread = 0, []
    for folder in settings.folders:
        for count, path in enumerate(walk(folder)):
            if count >= sample:
                break
            named = source_name(settings, path)
            if isinstance(named, str):
                unread.append(f"{os.path.relpath(path, folder.path)}: {named}")
            else:
                read += 1
    return read, unread


def verify_sources(args: object, config: UploaderConfig, list_sizes: object) -> int:
    """`sync --verify [--fix] [--json]` over the source folders."""
    import json

    files = survey(config)
    keys = [f.key for f in files if f.key]
    try:
        remote = list_sizes(keys) if keys else {}   # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001 - one line for the operator
        print(f"sync: {exc}")
        return 1
    encrypted = config.crypt is not None
    findings = [(f, verdict(f, remote, encrypted)) for f in files]
    counts: dict[str, int] = {}
    for _, word in findings:
        counts[word] = counts.get(word, 0) + 1
    problems = [f for f, word in findings if word in ("missing", "size-mismatch")]
    forgotten = forget(config, [f.path for f in problems]) if problems and getattr(args, "fix", False) else 0
    if getattr(args, "json", False):
        print(json.dumps({"findings": [{"file": str(f.path), "key": f.key, "verdict": word, "local_size": f.size,
                                        "remote_size": remote.get(f.key or "")} for f, word in findings],
                          "counts": counts, "requeued": forgotten}, indent=2))
        return 1 if problems else 0
    for file, word in findings:
        if word in ("missing", "size-mismatch", "unparsed"):
            print(f"{word:<14} {file.path} ({file.problem or file.key})")
    print(", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "no source files")
    if forgotten:
        print(f"{forgotten} files forgotten by the index: the uploader uploads them again at its next start")
    return 1 if problems else 0


def dry_run_sources(args: object, config: UploaderConfig) -> int:
    """`sync --dry-run [--json]`: what the uploader would send from the source folders."""
    import json

    files = [f for f in survey(config) if not f.verified]
    if getattr(args, "json", False):
        print(json.dumps([{"file": str(f.path), "key": f.key, "bucket": config.bucket, "problem": f.problem}
                          for f in files], indent=2))
        return 0
    waiting = [f for f in files if f.key]
    print(f"{len(waiting)} source files not yet verified in the bucket "
          f"({sum(f.size for f in waiting)} bytes)")
    for file in files:
        print(f"would upload {file.path} -> s3://{config.bucket}/{file.key}" if file.key
              else f"would skip {file.path} ({file.problem})")
    return 0
