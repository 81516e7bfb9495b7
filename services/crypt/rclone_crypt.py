"""rclone `crypt` file format (filename encryption off), so rclone users can read our footage.

Format, as in rclone's backend/crypt/cipher.go:

    "RCLONE\\x00\\x00"  (8 bytes magic)
    nonce             (24 random bytes)
    block 0 .. N-1    each = secretbox(up to 64 KiB of plaintext, nonce + i, data key)
                      = 16-byte Poly1305 tag + ciphertext of the same length as the plaintext

`nonce + i` is the nonce read as a little-endian 192-bit integer. An empty file is the
32-byte header alone. Keys: scrypt(password, password2 or rclone's fixed salt, N=16384,
r=8, p=1) -> 80 bytes = 32-byte data key, 32-byte name key, 16-byte name tweak (the name
parts are unused here: names only get the ".bin" suffix).

PyNaCl supplies XSalsa20-Poly1305 (secretbox), hashlib supplies scrypt; this module is only
the framing. Every error is a CryptError with a one-line message that never contains a
password or key.

Note the format has no end marker: a file cut exactly at a block boundary still decrypts
(to a shorter plaintext). Callers that know the stored size pass `expected_size` so that
such a cut is detected too.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Union

from nacl.bindings import crypto_secretbox, crypto_secretbox_open
from nacl.exceptions import CryptoError as _NaclCryptoError

MAGIC = b"RCLONE\x00\x00"
NONCE_SIZE = 24
HEADER_SIZE = len(MAGIC) + NONCE_SIZE          # 32
BLOCK_DATA_SIZE = 64 * 1024                    # plaintext per block
BLOCK_OVERHEAD = 16                            # Poly1305 tag per block
BLOCK_SIZE = BLOCK_DATA_SIZE + BLOCK_OVERHEAD  # ciphertext per full block
SUFFIX = ".bin"
OBSCURED_PREFIX = "obscured:"

# rclone's salt when password2 is empty (backend/crypt/cipher.go, defaultSalt).
DEFAULT_SALT = bytes([0xA8, 0x0D, 0xF4, 0x3A, 0x8F, 0xBD, 0x03, 0x08,
                      0xA7, 0xCA, 0xB8, 0x3E, 0x58, 0x1F, 0x86, 0xB1])
# rclone's fixed AES-256 key for "obscured" config values (fs/config/obscure/obscure.go).
# Obscuring only keeps a password from being read over a shoulder; it is not encryption.
_OBSCURE_KEY = bytes([0x9C, 0x93, 0x5B, 0x48, 0x73, 0x0A, 0x55, 0x4D,
                      0x6B, 0xFD, 0x7C, 0x63, 0xC8, 0x86, 0xA9, 0x2B,
                      0xD3, 0x90, 0x19, 0x8E, 0xB8, 0x12, 0x8A, 0xFB,
                      0xF4, 0xDE, 0x16, 0x2B, 0x8B, 0x95, 0xF6, 0x38])
_NONCE_MODULUS = 1 << (8 * NONCE_SIZE)
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")

PathOrFile = Union[str, os.PathLike, BinaryIO, IO[bytes]]


class CryptError(Exception):
    """Bad password, bad file or bad setting; str() is one line without any secret."""


@dataclass(frozen=True)
class CryptKeys:
    """The keys rclone derives from password + password2. repr() never shows them."""

    data_key: bytes = field(repr=False)
    name_key: bytes = field(repr=False)
    name_tweak: bytes = field(repr=False)


# --- keys and passwords ------------------------------------------------------------------

def derive_keys(password: str, salt: str | None = None) -> CryptKeys:
    """rclone's Cipher.Key: scrypt(N=16384, r=8, p=1) to 80 bytes; no salt -> rclone's default.

    An empty password is refused: rclone would silently use all-zero keys.
    """
    if not password:
        raise CryptError("the encryption password is empty")
    salt_bytes = salt.encode("utf-8") if salt else DEFAULT_SALT
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt_bytes, n=16384, r=8, p=1,
                         maxmem=64 * 1024 * 1024, dklen=80)
    return CryptKeys(key[:32], key[32:64], key[64:80])


def reveal(obscured: str) -> str:
    """Undo `rclone obscure`: base64url (no padding) of a 16-byte IV + AES-256-CTR ciphertext.

    Needs the `cryptography` package (imported here only, so the uploader runs without it
    as long as passwords are given in plain text).
    """
    text = obscured.strip()
    if not _BASE64URL.match(text) or len(text) % 4 == 1:
        raise CryptError("not an obscured value (expected the base64url text `rclone obscure` prints)")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(raw) < 16:
        raise CryptError("not an obscured value (too short)")
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:
        raise CryptError("obscured values need the 'cryptography' package "
                         "(pip install cryptography), or give the password in plain text") from None
    decryptor = Cipher(algorithms.AES(_OBSCURE_KEY), modes.CTR(raw[:16])).decryptor()
    plain = decryptor.update(raw[16:]) + decryptor.finalize()
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise CryptError("not an obscured value (does not reveal to text)") from None


def password_from_setting(value: str) -> str:
    """A setting is plain text, or `obscured:<what rclone.conf holds>`.

    The prefix is required because any base64url text "reveals" to something (AES-CTR has
    no integrity check), so the two forms cannot be told apart by looking at them. A plain
    password that itself begins with "obscured:" must be given in the obscured form.
    """
    if value.startswith(OBSCURED_PREFIX):
        return reveal(value[len(OBSCURED_PREFIX):])
    return value


def content_fingerprint(keys: CryptKeys, plain_sha256_hex: str) -> str:
    """Keyed fingerprint of the plaintext, for object metadata.

    A re-encrypted file gets a new nonce, so ciphertexts cannot be compared; this value
    is the same for the same plaintext under the same keys, differs when the password
    changes, and (unlike a bare hash) tells nobody without the key what the plaintext is.
    """
    message = b"camera-recorder/content-fingerprint/v2\x00" + plain_sha256_hex.lower().encode("ascii")
    return hmac.new(keys.data_key, message, hashlib.sha256).hexdigest()[:32]


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


def _nonce_add(nonce: bytes, count: int) -> bytes:
    """rclone's nonce.add: little-endian, carries through all 24 bytes, wraps around."""
    value = (int.from_bytes(nonce, "little") + count) % _NONCE_MODULUS
    return value.to_bytes(NONCE_SIZE, "little")


def _read_full(handle: IO[bytes], size: int) -> bytes:
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


# --- encryption ---------------------------------------------------------------------------

class EncryptingReader(io.RawIOBase):
    """A read-only file object yielding the rclone crypt ciphertext of a file, block by block.

    Memory: one 64 KiB plaintext block and its sealed form, plus what the caller asks for.
    With a seekable source (a path, or a seekable file object) the size is known up front
    (`.size`, seek to the end; no __len__, which botocore would misread) and any position can be read again: the ciphertext
    depends only on keys, nonce and plaintext, so re-reading block i re-encrypts it with
    nonce + i and yields the same bytes. That is what boto3 needs to compute checksums and
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
        if nonce is None:
            nonce = os.urandom(NONCE_SIZE)
        if len(nonce) != NONCE_SIZE:
            raise CryptError(f"the nonce must be {NONCE_SIZE} bytes")
        self.nonce = bytes(nonce)
        self._key = keys.data_key
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

    def digest(self):
        """upload_verify.LocalDigest of the ciphertext; only valid once it was read to the end."""
        from services.bucket.verify import LocalDigest, crc32_base64

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
        plain = _read_full(self._src, length)
        self._src_pos += len(plain)
        if self.plain_size is not None and len(plain) != length:
            raise CryptError("the file got shorter while it was being encrypted")
        if not plain:   # unknown size: the end of the stream
            self._eof_block = index
            self._plain_before_eof = start
            self._block_index, self._block = index, b""
            return b""
        self._block = crypto_secretbox(plain, _nonce_add(self.nonce, index), self._key)
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


def encrypt_bytes(data: bytes, keys: CryptKeys, nonce: bytes | None = None) -> bytes:
    """Whole-buffer convenience for tests and small data."""
    with EncryptingReader(io.BytesIO(data), keys, nonce) as reader:
        return reader.read()


# --- decryption ---------------------------------------------------------------------------

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
    header = _read_full(src, HEADER_SIZE)
    if len(header) < HEADER_SIZE:
        if header and not MAGIC.startswith(header[:len(MAGIC)]):
            raise CryptError("not an rclone crypt file (bad magic)")
        raise CryptError(f"too short for an rclone crypt file ({len(header)} bytes, the header is {HEADER_SIZE})")
    if header[:len(MAGIC)] != MAGIC:
        raise CryptError("not an rclone crypt file (bad magic)")
    nonce = header[len(MAGIC):]
    consumed, written, index = HEADER_SIZE, 0, 0
    while True:
        block = _read_full(src, BLOCK_SIZE)
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
            if _read_full(src, 1):
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
