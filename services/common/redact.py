"""Masking secrets before anything is logged, written or raised."""
from __future__ import annotations

import re
import threading

# The password runs to the LAST "@" of the word: cameras accept unencoded "@" and "/" in
# passwords, and masking too much (a later "@" in the same word) is the safe mistake.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/\s]*):(?P<password>\S*)@")
_secrets: set[str] = set()
_lock = threading.Lock()


def mask_url(url: str) -> str:
    """rtsp://admin:pw@host/x -> rtsp://admin:***@host/x (also rtsp://admin:p@ss@host/x)"""
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)


def register_secret(value: str | None) -> None:
    """Remember a secret (AWS key, password) so that `redact` hides it wherever it appears."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    text = mask_url(text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text
