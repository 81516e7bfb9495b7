"""A receipt beside each copy in uploaded/: which object holds it, as verified at upload time.

Before a local copy is deleted, the object is looked at again and must still be the one on
the receipt (same ETag and size, written by this host): on a server that ignores conditional
writes, another host may have replaced it since. The receipt is a hidden file, so the folder
scans pass over it; a copy without one (an older version's, or a crash between the move and
the receipt) is checked by its content instead.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from loguru import logger

from services.common.state_file import read_snapshot, to_jsonable, write_json_atomic


@dataclass(frozen=True)
class Receipt:
    key: str
    size: int          # of the object (the ciphertext when encrypted)
    etag: str
    host_id: str
    verified_by: str
    at: datetime


def receipt_path(local: Path) -> Path:
    return local.with_name(f".{local.name}.receipt")


def write_receipt(local: Path, receipt: Receipt) -> None:
    try:
        write_json_atomic(receipt_path(local), to_jsonable(receipt))
    except OSError as exc:   # the copy is then checked by its content before deletion
        logger.warning("cannot write the receipt of {}: {}", local.name, exc.strerror)


def read_receipt(local: Path) -> Receipt | None:
    return read_snapshot(receipt_path(local), Receipt)


def remove_receipt(local: Path) -> None:
    try:
        os.unlink(receipt_path(local))
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("cannot delete the receipt of {}: {}", local.name, exc.strerror)


def orphan_receipts(folder: Path) -> list[Path]:
    """Receipts whose copy is gone (deleted by hand): nothing needs them any more."""
    try:
        names = set(os.listdir(folder))
    except OSError:
        return []
    return [folder / name for name in names
            if name.startswith(".") and name.endswith(".receipt") and name[1:-len(".receipt")] not in names]
