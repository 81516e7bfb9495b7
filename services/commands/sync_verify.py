"""`sync --verify`: local segments against the bucket (pure comparison, then an optional fix).

Only the day folders that local files belong to are listed, so the cost follows what is on
this host, not the size of the bucket.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from services.bucket.catalog import name_of_key
from services.bucket.keys import stored_key
from services.common.data_layout import DataLayout, move_no_clobber
from services.common.segment_names import parse_name
from services.crypt.format import encrypted_size


@dataclass(frozen=True)
class Finding:
    path: Path
    key: str
    verdict: str  # ok | waiting | missing | size-mismatch
    local_size: int
    remote_size: int | None

    @property
    def problem(self) -> bool:
        return self.verdict in ("missing", "size-mismatch")


def local_segments(layout: DataLayout) -> list[Path]:
    return sorted(p for folder in (layout.completed, layout.uploaded) for p in folder.glob("camera_*.mp4")
                  if parse_name(p.name) is not None)


def compare(paths: Iterable[Path], remote: dict[str, int], prefix: str, layout: DataLayout,
            encrypted: bool = False) -> list[Finding]:
    """One finding per local segment: is its object in the bucket with the expected size?

    Encrypted objects are `<name>.bin` and larger by rclone crypt's header and block MACs.
    """
    findings = []
    for path in paths:
        key = stored_key(prefix, parse_name(path.name), encrypted)
        size = encrypted_size(path.stat().st_size) if encrypted else path.stat().st_size
        remote_size = remote.get(key)
        if remote_size != size:
            # The uploader stores our file under a distinct key when the name was taken.
            twin = next((k for k in remote if k != key and name_of_key(k) == parse_name(path.name)
                         and remote[k] == size), None)
            if twin is not None:
                key, remote_size = twin, remote[twin]
        if remote_size == size:
            verdict = "ok"
        elif path.parent == layout.completed and remote_size is None:
            verdict = "waiting"
        else:
            verdict = "missing" if remote_size is None else "size-mismatch"
        findings.append(Finding(path, key, verdict, size, remote_size))
    return findings


def requeue(findings: Iterable[Finding], layout: DataLayout) -> list[Path]:
    """--fix: put uploaded/ files whose object is missing or different back into completed/."""
    moved = []
    for finding in findings:
        if finding.problem and finding.path.parent == layout.uploaded:
            target = layout.completed / finding.path.name
            move_no_clobber(finding.path, target)
            moved.append(target)
    return moved
