"""rclone crypt keys: derived from `password` and `password2` (the salt), plain or obscured.

Keys: scrypt(password, password2 or rclone's fixed salt, N=16384, r=8, p=1) -> 80 bytes =
32-byte data key, 32-byte name key, 16-byte name tweak (the name parts are unused here:
names only get the ".bin" suffix). Every error is a CryptError with a one-line message that
never contains a password or key.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field

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
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")


class CryptError(Exception):
    """Bad password, bad file or bad setting; str() is one line without any secret."""


@dataclass(frozen=True)
class CryptKeys:
    """The keys rclone derives from password + password2. repr() never shows them."""

    data_key: bytes = field(repr=False)
    name_key: bytes = field(repr=False)
    name_tweak: bytes = field(repr=False)


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
