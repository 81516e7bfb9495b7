"""A local file's size and checksums, computed in one read (pure: no S3, no keys).

The uploader compares them with what the bucket reports (`bucket.verify`); the encrypting
reader fills in the same record for the ciphertext it sends.
"""
from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class LocalDigest:
    size: int
    crc32: str = ""    # base64 of the big-endian 4 bytes, as S3 encodes ChecksumCRC32 ("": not known)
    md5: str = ""      # hex
    sha256: str = ""   # hex; only the plaintext of an encrypted upload (see digest_file)
    composite_crc32: str = ""   # "<CRC32 of the parts' CRC32s>-<parts>", of a streamed upload

    @property
    def short_hash(self) -> str:
        return (self.md5 or self.sha256)[:12]



def crc32_base64(value: int) -> str:
    return base64.b64encode((value & 0xFFFFFFFF).to_bytes(4, "big")).decode()


def digest_bytes(data: bytes) -> LocalDigest:
    return LocalDigest(len(data), crc32_base64(zlib.crc32(data)), hashlib.md5(data).hexdigest())


def digest_file(path: Path, for_encryption: bool = False) -> LocalDigest:
    """The file's size and hashes in one read.

    Plain uploads: CRC32 and MD5, which the server's checksums are compared with. Before an
    encrypted upload only a strong hash of the plaintext is needed (for the keyed fingerprint;
    the ciphertext is hashed while it is sent): SHA-256, 2.3x faster than MD5 on CPUs with
    SHA extensions (docs/performance.md).
    """
    crc, md5, sha256, size = 0, hashlib.md5(), hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            if for_encryption:
                sha256.update(chunk)
            else:
                crc = zlib.crc32(chunk, crc)
                md5.update(chunk)
            size += len(chunk)
    if for_encryption:
        return LocalDigest(size, sha256=sha256.hexdigest())
    return LocalDigest(size, crc32_base64(crc), md5.hexdigest())
