"""Client-side encryption settings: rclone crypt's `password` and `password2`, plain or obscured."""
from __future__ import annotations

from services.common.config import EnvReader
from services.common.redact import register_secret
from services.common.settings import ENCRYPTION_PASSWORD, ENCRYPTION_SALT, Setting
from services.crypt.keys import CryptError, CryptKeys, derive_keys, password_from_setting


def read_encryption(env: EnvReader) -> CryptKeys | None:
    """The crypt keys when ENCRYPTION_PASSWORD is set, else None; problems become config errors."""
    raw_password, raw_salt = env.get(ENCRYPTION_PASSWORD), env.get(ENCRYPTION_SALT)
    for value in (raw_password, raw_salt):
        register_secret(value)
    if _spaces_around(env, ENCRYPTION_PASSWORD) or _spaces_around(env, ENCRYPTION_SALT):
        return None
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


def _spaces_around(env: EnvReader, setting: Setting[str | None]) -> bool:
    """A plain value with spaces around it is refused, not stripped and not kept.

    Earlier versions stripped them, rclone keeps them: either reading could encrypt with a key
    the other side does not have, so the operator decides. A value of spaces only would
    otherwise read as unset and switch encryption off silently.
    """
    value = env.values.get(setting.name) or ""
    if value == value.strip():
        return False
    register_secret(value)
    register_secret(value.strip())
    if not value.strip():
        env.error(setting.name, "is only spaces: remove the line to upload unencrypted, or set the password")
    else:
        env.error(setting.name, "has spaces at its start or end: remove them, or, if they belong to the password, "
                                "give it in the obscured form (obscured:<rclone obscure output>)")
    return True


def _revealed(env: EnvReader, key: str, raw: str) -> str | None:
    """The plain value of a plain-or-obscured setting (registered as a secret), or None."""
    try:
        value = password_from_setting(raw)
    except CryptError as exc:
        env.error(key, str(exc))
        return None
    register_secret(value)
    return value
