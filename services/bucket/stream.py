"""Segments read from the bucket for playback and clips: whole into a file, or a byte range of
the plain content as it streams (rclone-crypt objects decrypted block by block, never whole).

Failures of S3 calls are classified here (S3Problem); a bad password or damaged object is a
CryptError. Nothing here logs: keys, passwords and signed URLs stay with the caller.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from services.bucket.client import classify
from services.bucket.objects import download
from services.common.clip_plan import Piece
from services.crypt.format import (BLOCK_DATA_SIZE, BLOCK_SIZE, HEADER_SIZE, SUFFIX, decrypt_file, file_nonce,
                                   open_block, plain_size, read_full)
from services.crypt.keys import CryptError, CryptKeys


@dataclass(frozen=True)
class BucketSource:
    """Where remote footage comes from: the client, the bucket and the keys of encrypted objects."""
    client: Any
    bucket: str
    crypt: CryptKeys | None


def is_encrypted(key: str) -> bool:
    return key.endswith(SUFFIX)


def _keys_for(source: BucketSource, key: str) -> CryptKeys:
    if source.crypt is None:
        raise CryptError(f"{key} is encrypted; set ENCRYPTION_PASSWORD")
    return source.crypt


def fetch_segment(source: BucketSource, key: str, target: Path) -> None:
    """The plain segment of `key` into `target` (downloaded, then decrypted for a `.bin` object)."""
    try:
        if not is_encrypted(key):
            download(source.client, source.bucket, key, target)
            return
        keys = _keys_for(source, key)
        sealed = target.with_name(target.name + SUFFIX)
        download(source.client, source.bucket, key, sealed)
        try:
            decrypt_file(sealed, target, keys)
        except CryptError as exc:
            raise CryptError(f"{key}: {exc}") from None
        finally:
            sealed.unlink(missing_ok=True)
    except CryptError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise classify(exc, f"downloading {key}") from None


def piece_files(pieces: tuple[Piece, ...], local: Mapping[str, Path], remote: Mapping[str, str],
                source: BucketSource | None, work: Path) -> dict[str, Path]:
    """A file for every piece of a clip: the local copy where there is one, else fetched into `work`."""
    paths = {}
    for piece in pieces:
        if piece.name in local:
            paths[piece.name] = local[piece.name]
            continue
        if source is None:
            raise FileNotFoundError(f"{piece.name} is neither here nor in a bucket")
        paths[piece.name] = work / piece.name
        fetch_segment(source, remote[piece.name], paths[piece.name])
    return paths


def plain_length(key: str, stored_size: int) -> int:
    """The size the segment has once decrypted (the stored size of a plain object)."""
    return plain_size(stored_size) if is_encrypted(key) else stored_size


def _ranged(source: BucketSource, key: str, first: int, last: int) -> Any:
    response = source.client.get_object(Bucket=source.bucket, Key=key, Range=f"bytes={first}-{last}")
    return response["Body"]


def plain_range(source: BucketSource, key: str, stored_size: int, first: int, last: int,
                chunk: int = BLOCK_DATA_SIZE) -> Iterator[bytes]:
    """Bytes `first`..`last` (inclusive) of the plain segment, as they arrive.

    An encrypted object is read from the header (for its nonce) and then only the blocks that
    hold the range, each authenticated before any of its bytes are passed on."""
    try:
        if not is_encrypted(key):
            body = _ranged(source, key, first, last)
            try:
                while data := body.read(chunk):
                    yield data
            finally:
                body.close()
            return
        keys = _keys_for(source, key)
        first_block, last_block = first // BLOCK_DATA_SIZE, last // BLOCK_DATA_SIZE
        start = HEADER_SIZE + first_block * BLOCK_SIZE
        end = min(HEADER_SIZE + (last_block + 1) * BLOCK_SIZE, stored_size) - 1
        if first_block == 0:
            body = _ranged(source, key, 0, end)
            nonce = file_nonce(read_full(body, HEADER_SIZE))
        else:
            header = _ranged(source, key, 0, HEADER_SIZE - 1)
            try:
                nonce = file_nonce(read_full(header, HEADER_SIZE))
            finally:
                header.close()
            body = _ranged(source, key, start, end)
        try:
            for index in range(first_block, last_block + 1):
                block = read_full(body, BLOCK_SIZE)
                if not block:
                    raise CryptError(f"{key}: truncated before block {index}")
                plain = open_block(keys, nonce, index, block)
                offset = index * BLOCK_DATA_SIZE
                yield plain[max(first - offset, 0):last - offset + 1]
        finally:
            body.close()
    except (CryptError, GeneratorExit):
        raise
    except Exception as exc:  # noqa: BLE001
        raise classify(exc, f"reading {key}") from None
