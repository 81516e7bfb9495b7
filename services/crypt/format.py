"""rclone `crypt` file format (filename encryption off), so rclone users can read our footage.

Format, as in rclone's backend/crypt/cipher.go:

    "RCLONE\\x00\\x00"  (8 bytes magic)
    nonce             (24 random bytes)
    block 0 .. N-1    each = secretbox(up to 64 KiB of plaintext, nonce + i, data key)
                      = 16-byte Poly1305 tag + ciphertext of the same length as the plaintext

`nonce + i` is the nonce read as a little-endian 192-bit integer. An empty file is the
32-byte header alone. PyNaCl supplies XSalsa20-Poly1305 (secretbox); this module is only
the framing. Uploads stream through `reader.EncryptingReader`, which seals with `seal_block`.

Note the format has no end marker: a file cut exactly at a block boundary still decrypts
(to a shorter plaintext). Callers that know the stored size pass `expected_size` so that
such a cut is detected too.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO

from nacl.bindings import crypto_secretbox, crypto_secretbox_open
from nacl.exceptions import CryptoError as _NaclCryptoError

from services.crypt.keys import CryptError, CryptKeys

MAGIC = b"RCLONE\x00\x00"
NONCE_SIZE = 24
HEADER_SIZE = len(MAGIC) + NONCE_SIZE          # 32
BLOCK_DATA_SIZE = 64 * 1024                    # plaintext per block
BLOCK_OVERHEAD = 16                            # Poly1305 tag per block
BLOCK_SIZE = BLOCK_DATA_SIZE + BLOCK_OVERHEAD  # ciphertext per full block
SUFFIX = ".bin"                                # what rclone appends to a name (filename_encryption = off)
_NONCE_MODULUS = 1 << (8 * NONCE_SIZE)


# --- sizes and names ----------------------------------------------------------------------

def encrypted_size(plain_size: int) -> int:
    """Size of the rclone crypt file for `plain_size` bytes of plaintext."""
    if plain_size < 0:
        raise CryptError(f"impossible plain size {plain_size}")
    blocks, residue = divmod(plain_size, BLOCK_DATA_SIZE)
    size = HEADER_SIZE + blocks * BLOCK_SIZE
    return size + (BLOCK_OVERHEAD + residue if residue else 0)


def plain_size(encrypted_size: int) -> int:
    """Inverse of encrypted_size; raises on sizes no rclone crypt file can have."""
    if encrypted_size < HEADER_SIZE:
        raise CryptError(f"{encrypted_size} bytes is too short for an rclone crypt file "
                         f"(the header alone is {HEADER_SIZE})")
    blocks, residue = divmod(encrypted_size - HEADER_SIZE, BLOCK_SIZE)
    if residue and residue <= BLOCK_OVERHEAD:
        raise CryptError(f"{encrypted_size} bytes is not a possible rclone crypt file size (truncated?)")
    return blocks * BLOCK_DATA_SIZE + (residue - BLOCK_OVERHEAD if residue else 0)


def encrypted_name(name: str) -> str:
    """rclone crypt with filename_encryption = off appends ".bin"."""
    return name + SUFFIX


def plain_name(name: str) -> str:
    """Strip the ".bin" suffix; a name without it is not an encrypted file for rclone."""
    if not name.endswith(SUFFIX) or len(name) == len(SUFFIX):
        raise CryptError(f"{name!r} does not end in {SUFFIX}: not an encrypted object")
    return name[:-len(SUFFIX)]


# --- nonces and blocks --------------------------------------------------------------------

def new_nonce(nonce: bytes | None = None) -> bytes:
    """A random file nonce, or the one given once checked (a fixed nonce makes output repeatable)."""
    if nonce is None:
        nonce = os.urandom(NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise CryptError(f"the nonce must be {NONCE_SIZE} bytes")
    return bytes(nonce)


def _nonce_add(nonce: bytes, count: int) -> bytes:
    """rclone's nonce.add: little-endian, carries through all 24 bytes, wraps around."""
    value = (int.from_bytes(nonce, "little") + count) % _NONCE_MODULUS
    return value.to_bytes(NONCE_SIZE, "little")


def seal_block(keys: CryptKeys, nonce: bytes, index: int, plain: bytes) -> bytes:
    """Block `index` of the file with this `nonce`: a tag and ciphertext as long as `plain`."""
    return crypto_secretbox(plain, _nonce_add(nonce, index), keys.data_key)


def read_full(handle: IO[bytes], size: int) -> bytes:
    """Read until `size` bytes or EOF (raw streams and sockets return short reads)."""
    data = handle.read(size)
    if data is None:
        data = b""
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = handle.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def open_block(keys: CryptKeys, nonce: bytes, index: int, block: bytes) -> bytes:
    """Block `index` decrypted on its own: the format allows random access, block by block."""
    try:
        return crypto_secretbox_open(block, _nonce_add(nonce, index), keys.data_key)
    except _NaclCryptoError:
        raise CryptError(f"wrong password or salt, or damaged: block {index} failed authentication") from None


def file_nonce(header: bytes) -> bytes:
    """The nonce of a file from its first HEADER_SIZE bytes; CryptError if they are no rclone header."""
    if len(header) < HEADER_SIZE or header[:len(MAGIC)] != MAGIC:
        raise CryptError("not an rclone crypt file (bad magic or short header)")
    return header[len(MAGIC):HEADER_SIZE]


# --- whole files --------------------------------------------------------------------------

def encrypt_bytes(data: bytes, keys: CryptKeys, nonce: bytes | None = None) -> bytes:
    """Whole-buffer convenience for tests and small data."""
    nonce = new_nonce(nonce)
    starts = range(0, len(data), BLOCK_DATA_SIZE)
    blocks = [seal_block(keys, nonce, index, data[start:start + BLOCK_DATA_SIZE])
              for index, start in enumerate(starts)]
    return MAGIC + nonce + b"".join(blocks)


def decrypt_stream(src: IO[bytes], dst: IO[bytes], keys: CryptKeys,
                   expected_size: int | None = None) -> int:
    """Decrypt rclone crypt data from `src` into `dst`; returns the plaintext size.

    Streams one block at a time. Raises CryptError on a bad header, a block that fails
    authentication (wrong password/salt, or damaged data), or a truncated file. `dst` may
    hold partial output after an error: write to a temporary file and rename on success.
    `expected_size` (the stored object's size) also catches a cut at a block boundary.
    """
    if expected_size is not None:
        plain_size(expected_size)   # raises on sizes no crypt file can have
    header = read_full(src, HEADER_SIZE)
    if len(header) < HEADER_SIZE:
        if header and not MAGIC.startswith(header[:len(MAGIC)]):
            raise CryptError("not an rclone crypt file (bad magic)")
        raise CryptError(f"too short for an rclone crypt file ({len(header)} bytes, the header is {HEADER_SIZE})")
    if header[:len(MAGIC)] != MAGIC:
        raise CryptError("not an rclone crypt file (bad magic)")
    nonce = header[len(MAGIC):]
    consumed, written, index = HEADER_SIZE, 0, 0
    while True:
        block = read_full(src, BLOCK_SIZE)
        if not block:
            break
        consumed += len(block)
        if len(block) <= BLOCK_OVERHEAD:
            raise CryptError(f"truncated: the last block has only {len(block)} bytes")
        try:
            plain = crypto_secretbox_open(block, _nonce_add(nonce, index), keys.data_key)
        except _NaclCryptoError:
            if index == 0:
                raise CryptError("wrong password or salt (or the file is damaged): "
                                 "the first block failed authentication") from None
            if len(block) < BLOCK_SIZE:
                raise CryptError(f"truncated or damaged: block {index} (the last) failed authentication") from None
            raise CryptError(f"damaged: block {index} failed authentication") from None
        dst.write(plain)
        written += len(plain)
        index += 1
        if len(block) < BLOCK_SIZE:
            if read_full(src, 1):
                raise CryptError("damaged: a short block in the middle of the file")
            break
    if expected_size is not None and consumed != expected_size:
        raise CryptError(f"truncated: read {consumed} of {expected_size} bytes")
    return written


def decrypt_bytes(data: bytes, keys: CryptKeys) -> bytes:
    """Whole-buffer convenience for tests and small data."""
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(data), out, keys, expected_size=len(data))
    return out.getvalue()


def decrypt_file(source: Path, target: Path, keys: CryptKeys) -> int:
    """Decrypt a local file into `target` atomically: a temporary file renamed on success.

    Never replaces an existing `target` (FileExistsError); nothing is left behind on error.
    """
    size = source.stat().st_size
    with open(source, "rb") as src:
        return write_atomically(target, lambda dst: decrypt_stream(src, dst, keys, expected_size=size))


def write_atomically(target: Path, produce) -> int:
    """Run produce(file) into a hidden temporary file next to `target`, then link it in place.

    link+unlink rather than rename, because rename silently replaces an existing file.
    """
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"{target} already exists")
    temp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.part")
    try:
        with open(temp, "xb") as dst:
            result = produce(dst)
            dst.flush()
            os.fsync(dst.fileno())
        os.link(temp, target)
    finally:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
    return result
