"""Client-side encryption settings: rclone crypt's `password` and `password2`, plain or obscured."""
from __future__ import annotations

from services.common.config import EnvReader
from services.common.redact import register_secret
from services.common.settings import ENCRYPTION_PASSWORD, ENCRYPTION_SALT
from services.crypt.keys import CryptError, CryptKeys, derive_keys, password_from_setting


def read_encryption(env: EnvReader) -> CryptKeys | None:
    """The crypt keys when ENCRYPTION_PASSWORD is set, else None; problems become config errors."""
    raw_password, raw_salt = env.get(ENCRYPTION_PASSWORD), env.get(ENCRYPTION_SALT)
    for value in (raw_password, raw_salt):
        register_secret(value)
    if raw_password is None:
        if raw_salt is not None:
            env.error(ENCRYPTION_SALT.name, "set only together with ENCRYPTION_PASSWORD")
        return None
    password = _revealed(env, ENCRYPTION_PASSWORD.name, raw_password)
    salt = _revealed(env, ENCRYPTION_SALT.name, raw_salt) if raw_salt is not None else None
    if password is None or (raw_salt is not None and salt is None):
        return None
    try:
        return derive_keys(password, salt)
    except CryptError as exc:
        env.error(ENCRYPTION_PASSWORD.name, str(exc))
        return None


def _revealed(env: EnvReader, key: str, raw: str) -> str | None:
    """The plain value of a plain-or-obscured setting (registered as a secret), or None."""
    try:
        value = password_from_setting(raw)
    except CryptError as exc:
        env.error(key, str(exc))
        return None
    register_secret(value)
    return value
