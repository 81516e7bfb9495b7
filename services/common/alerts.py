"""Alerts: one message when an incident has lasted long enough, one when it is over, never a flood.

`AlertTracker` decides (pure, driven by a monotonic clock); `WebhookSender` delivers from a
thread of its own, so a slow or dead destination never delays recording or uploading. The
destinations are a Slack-compatible webhook (JSON `{"text": ...}`, no dependency) and, when the
optional `apprise` package is installed, any apprise URL: ntfy, Telegram, e-mail, Home Assistant...
"""
from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
import urllib.request
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol
from urllib.parse import unquote

from loguru import logger

from services.common.config import EnvReader
from services.common.redact import mask_url, redact, register_secret
from services.common.settings import (ALERT_APPRISE_URLS, ALERT_CAMERA_DOWN_MINUTES, ALERT_DISK_LOW_MINUTES,
                                      ALERT_UPLOAD_FAILING_MINUTES, ALERT_WEBHOOK_URL)

# Between URLs: spaces or commas followed by the next scheme, so `mailto://...?to=a@x,b@y` stays whole.
_URL_SEPARATOR = re.compile(r"[\s,]+(?=[A-Za-z][A-Za-z0-9+.-]*://)")
_URL_TOKENS = re.compile(r"[/:@?&=,]+")
INSTALL_APPRISE = ("install the optional apprise package into the daemons' Python, "
                   "e.g. `sudo /opt/video-recorder/.venv/bin/pip install apprise`")


@dataclass(frozen=True)
class AlertSettings:
    webhook_url: str | None
    camera_down_after: float      # seconds
    upload_failing_after: float   # seconds
    disk_low_after: float         # seconds
    apprise_urls: tuple[str, ...] = ()


def read_alert_settings(env: EnvReader) -> AlertSettings:
    url = env.get(ALERT_WEBHOOK_URL)
    if url is not None and not url.startswith(("http://", "https://")):
        env.error(ALERT_WEBHOOK_URL.name, f"must be an http(s) URL, got {mask_url(url)!r}")
        url = None
    register_secret(url)  # a Slack webhook URL is a credential
    return AlertSettings(url, env.get(ALERT_CAMERA_DOWN_MINUTES) * 60,
                         env.get(ALERT_UPLOAD_FAILING_MINUTES) * 60, env.get(ALERT_DISK_LOW_MINUTES) * 60,
                         _apprise_urls(env))


def _apprise_urls(env: EnvReader) -> tuple[str, ...]:
    """ALERT_APPRISE_URLS, each registered as a secret; apprise must be installed and understand them."""
    urls = tuple(u for u in _URL_SEPARATOR.split((env.get(ALERT_APPRISE_URLS) or "").strip(" ,")) if u)
    for url in urls:
        register_secret(url)
    if not urls:
        return ()
    try:
        apprise = import_apprise()
    except ImportError:
        env.error(ALERT_APPRISE_URLS.name, f"needs apprise, which is not installed: {INSTALL_APPRISE}")
        return ()
    for number, url in enumerate(urls, 1):
        if not _register_apprise_secrets(apprise, url):
            env.error(ALERT_APPRISE_URLS.name, f"URL {number} ({url.partition(':')[0]}://...) is not one apprise "
                                               "understands (see https://github.com/caronc/apprise/wiki)")
    return urls


class _AppriseLog(logging.Handler):
    """apprise's warnings and errors, masked, into our log; its debug output spells out tokens: dropped."""

    def emit(self, record: logging.LogRecord) -> None:
        level = "ERROR" if record.levelno in (logging.ERROR, logging.CRITICAL) else "WARNING"
        logger.log(level, "apprise: {}", redact(record.getMessage()))


def import_apprise() -> ModuleType:
    """The apprise module (ImportError when not installed), its logging routed through `redact`."""
    log = logging.getLogger("apprise")
    if not any(isinstance(handler, _AppriseLog) for handler in log.handlers):
        log.addHandler(_AppriseLog(logging.WARNING))
        log.propagate = False
    import apprise
    return apprise


def _register_apprise_secrets(apprise: ModuleType, url: str) -> bool:
    """Register the parts of `url` that apprise's privacy form hides (tokens, passwords); False if invalid."""
    services = apprise.Apprise()
    if not services.add(url):
        return False
    for service in services:
        full, private = service.url(), service.url(privacy=True)
        hidden = set(_URL_TOKENS.split(private)) | set(_URL_TOKENS.split(unquote(private)))
        for token in set(_URL_TOKENS.split(full)) | set(_URL_TOKENS.split(unquote(full))):
            if token not in hidden:
                register_secret(token)
    return True


@dataclass
class _Incident:
    since: float
    text: str
    notified: bool = False


class AlertTracker:
    """Per incident key: ALERT after it has been bad for `delay` seconds, RESOLVED once it is fine."""

    def __init__(self) -> None:
        self._open: dict[str, _Incident] = {}

    def update(self, key: str, bad: bool, text: str, delay: float, now: float) -> str | None:
        incident = self._open.get(key)
        if bad:
            if incident is None:
                incident = self._open[key] = _Incident(now, text)
            incident.text = text
            if not incident.notified and now - incident.since >= delay:
                incident.notified = True
                return f"ALERT: {text}"
            return None
        if incident is None:
            return None
        del self._open[key]
        if incident.notified:
            return f"RESOLVED after {_duration(now - incident.since)}: {incident.text}"
        return None


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


class _Destination(Protocol):
    name: str

    def send(self, text: str) -> None:
        """Deliver `text`; raise OSError when it did not arrive."""


class _Webhook:
    name = "the webhook"

    def __init__(self, url: str):
        self.url = url

    def send(self, text: str) -> None:
        request = urllib.request.Request(self.url, data=json.dumps({"text": text}).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


class _AppriseUrl:
    def __init__(self, url: str, number: int):
        self.name = f"apprise URL {number} ({url.partition(':')[0]}://...)"
        self.services = import_apprise().Apprise()
        self.services.add(url)

    def send(self, text: str) -> None:
        # The title is the headline ("[s3-uploader] ALERT"): an e-mail's subject, a push title.
        if not self.services.notify(body=text, title=text.partition(":")[0]):
            raise OSError("apprise could not deliver it (its warning says why)")


class WebhookSender:
    """Sends each message to the webhook and every apprise URL; each destination is tried a few
    times, then the message is logged as dropped there."""

    def __init__(self, url: str | None, source: str, attempts: int = 5, apprise_urls: tuple[str, ...] = ()):
        self.source, self.attempts = source, attempts
        self.destinations: list[_Destination] = [_Webhook(url)] if url else []
        self.destinations += [_AppriseUrl(u, n) for n, u in enumerate(apprise_urls, 1)]
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        if self.destinations:
            self._thread.start()

    @classmethod
    def for_settings(cls, settings: AlertSettings, source: str) -> "WebhookSender":
        return cls(settings.webhook_url, source, apprise_urls=settings.apprise_urls)

    def send(self, text: str) -> None:
        logger.warning("{}", text)
        if self.destinations:
            self._queue.put(f"[{self.source}] {redact(text)}")

    def close(self, timeout: float = 5.0) -> None:
        if self.destinations:
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while (text := self._queue.get()) is not None:
            for destination in self.destinations:
                self._deliver(destination, text)

    def _deliver(self, destination: _Destination, text: str) -> None:
        for attempt in range(self.attempts):
            try:
                destination.send(text)
                return
            except Exception as exc:  # noqa: BLE001 - a garbled reply must not end the sender thread
                if attempt == self.attempts - 1:
                    logger.error("alert to {} failed, message dropped: {}", destination.name, redact(str(exc)))
                    return
                time.sleep(min(30, 2 ** attempt))
