"""The upload body: a seekable file object yielding a file's rclone crypt ciphertext.

It also hashes the ciphertext it produces (CRC32, per-part CRC32s, MD5), so the upload can
be checked against what S3 computed without reading the bytes a second time.
"""
from __future__ import annotations

import hashlib
import io
import os
import zlib
from typing import IO, BinaryIO, Union

from services.common.digest import LocalDigest, crc32_base64
from services.crypt.format import (
    BLOCK_DATA_SIZE,
    BLOCK_SIZE,
    HEADER_SIZE,
    MAGIC,
    encrypted_size,
    new_nonce,
    read_full,
    seal_block,
)
from services.crypt.keys import CryptError, CryptKeys

PathOrFile = Union[str, os.PathLike, BinaryIO, IO[bytes]]


class EncryptingReader(io.RawIOBase):
    """A read-only file object yielding the rclone crypt ciphertext of a file, block by block.

    Memory: one 64 KiB plaintext block and its sealed form, plus what the caller asks for.
    With a seekable source (a path, or a seekable file object) the size is known up front
    (`.size`, seek to the end; no __len__, which botocore would misread) and any position
    can be read again: the ciphertext depends only on keys, nonce and plaintext, so
    re-reading block i re-encrypts it with nonce + i and yields the same bytes. That is what boto3 needs to compute checksums and
    to retry a request. A non-seekable source (a pipe) makes a non-seekable reader.

    `crc32`, `md5_hex` and `digest()` cover the ciphertext actually produced, in order from
    byte 0: bytes read again after a seek back are not counted twice, and `hashed_size`
    says how far the contiguous coverage reaches. With `part_size`, the CRC32 of every part
    of that size is kept instead of the whole one: S3's checksum of a multipart upload is a
    CRC32 of those, and a single part's CRC32 is the whole object's.
    """

    def __init__(self, source: PathOrFile, keys: CryptKeys, nonce: bytes | None = None,
                 part_size: int | None = None):
        super().__init__()
        self.nonce = new_nonce(nonce)
        self._keys = keys
        self._header = MAGIC + self.nonce
        if isinstance(source, (str, os.PathLike)):
            self._src: IO[bytes] = open(source, "rb")
            self._owns_src = True
        else:
            self._src = source
            self._owns_src = False
        self._src_seekable = _is_seekable(self._src)
        self._src_base = self._src.tell() if self._src_seekable else 0
        self._src_pos = 0                      # plaintext offset the source is at
        self.plain_size: int | None = None
        if self._src_seekable:
            end = self._src.seek(0, io.SEEK_END)
            self._src.seek(self._src_base)
            self.plain_size = end - self._src_base
        self.size: int | None = None if self.plain_size is None else encrypted_size(self.plain_size)
        self._pos = 0
        self._block_index = -1
        self._block = b""
        self._eof_block: int | None = None     # first block index with no data (unknown size)
        self._plain_before_eof = 0
        self._crc = 0
        self._md5 = hashlib.md5()
        self.hashed_size = 0
        self._part_size = part_size
        self._part_crcs: list[int] = []   # finished parts, then the one being filled

    # -- io.RawIOBase protocol
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._src_seekable

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if not self._src_seekable or self.size is None:
            raise io.UnsupportedOperation("the source is not seekable")
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence {whence}")
        position = base + offset
        if position < 0:
            raise ValueError("negative seek position")
        self._pos = position
        return position

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def read(self, size: int | None = -1) -> bytes:
        """Exactly `size` bytes unless the end comes first (boto3 relies on full reads)."""
        if self.closed:
            raise ValueError("read from a closed EncryptingReader")
        if size is None or size < 0:
            size = 1 << 62
        parts: list[bytes] = []
        wanted = size
        while wanted > 0:
            chunk = self._chunk_at(self._pos, wanted)
            if not chunk:
                break
            self._account(self._pos, chunk)
            self._pos += len(chunk)
            wanted -= len(chunk)
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed and self._owns_src:
            self._src.close()
        self._block = b""
        super().close()

    # -- checksums of the bytes produced
    @property
    def crc32(self) -> int | None:
        """The whole ciphertext's CRC32; with `part_size`, known only while there is one part."""
        if self._part_size:
            return self._part_crcs[0] if len(self._part_crcs) == 1 else None
        return self._crc & 0xFFFFFFFF

    @property
    def md5_hex(self) -> str:
        return self._md5.hexdigest()

    @property
    def complete(self) -> bool:
        """True once every ciphertext byte has been produced (and hashed)."""
        if self.size is not None:
            return self.hashed_size == self.size
        return self._eof_block is not None and self.hashed_size == self._end_of_stream()

    def digest(self) -> LocalDigest:
        """The ciphertext's digest; only valid once it was read to the end."""
        if not self.complete:
            raise CryptError("the ciphertext has not been read to the end; no checksum yet")
        composite = ""
        if self._part_crcs:
            joined = b"".join(crc.to_bytes(4, "big") for crc in self._part_crcs)
            composite = f"{crc32_base64(zlib.crc32(joined))}-{len(self._part_crcs)}"
        crc = self.crc32
        return LocalDigest(self.hashed_size, "" if crc is None else crc32_base64(crc), self.md5_hex,
                           composite_crc32=composite)

    # -- internals
    def _account(self, position: int, chunk: bytes) -> None:
        end = position + len(chunk)
        if position <= self.hashed_size < end:
            fresh = memoryview(chunk)[self.hashed_size - position:]
            self._md5.update(fresh)
            if self._part_size:
                self._account_parts(self.hashed_size, fresh)
            else:
                self._crc = zlib.crc32(fresh, self._crc)
            self.hashed_size = end

    def _account_parts(self, position: int, fresh: memoryview) -> None:
        while fresh:
            index, offset = divmod(position, self._part_size)
            if index == len(self._part_crcs):
                self._part_crcs.append(0)
            take = min(len(fresh), self._part_size - offset)
            self._part_crcs[index] = zlib.crc32(fresh[:take], self._part_crcs[index])
            position += take
            fresh = fresh[take:]

    def _end_of_stream(self) -> int:
        if self.size is not None:
            return self.size
        assert self._eof_block is not None
        return encrypted_size(self._plain_before_eof)

    def _chunk_at(self, position: int, limit: int) -> bytes:
        """Up to `limit` bytes of ciphertext starting at `position`, without crossing a block."""
        if position < HEADER_SIZE:
            return self._header[position:position + limit]
        index, offset = divmod(position - HEADER_SIZE, BLOCK_SIZE)
        block = self._sealed_block(index)
        return block[offset:offset + limit]

    def _sealed_block(self, index: int) -> bytes:
        if index == self._block_index:
            return self._block
        if self._eof_block is not None and index >= self._eof_block:
            return b""
        start = index * BLOCK_DATA_SIZE
        if self.plain_size is not None:
            length = min(BLOCK_DATA_SIZE, self.plain_size - start)
            if length <= 0:
                return b""
        else:
            if start != self._src_pos:
                raise io.UnsupportedOperation("the source is not seekable")
            length = BLOCK_DATA_SIZE
        if start != self._src_pos:
            self._src.seek(self._src_base + start)
            self._src_pos = start
        plain = read_full(self._src, length)
        self._src_pos += len(plain)
        if self.plain_size is not None and len(plain) != length:
            raise CryptError("the file got shorter while it was being encrypted")
        if not plain:   # unknown size: the end of the stream
            self._eof_block = index
            self._plain_before_eof = start
            self._block_index, self._block = index, b""
            return b""
        self._block = seal_block(self._keys, self.nonce, index, plain)
        self._block_index = index
        if self.plain_size is None and len(plain) < BLOCK_DATA_SIZE:   # a short block is the last
            self._eof_block = index + 1
            self._plain_before_eof = start + len(plain)
        return self._block


def _is_seekable(handle: IO[bytes]) -> bool:
    try:
        return bool(handle.seekable())
    except (AttributeError, ValueError, OSError):
        return False
