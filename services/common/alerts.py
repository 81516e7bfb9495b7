"""Webhook alerts (Slack-compatible JSON): one message when an incident has lasted long enough,
one when it is over, never a flood.

`AlertTracker` decides (pure, driven by a monotonic clock); `WebhookSender` delivers from a
thread of its own, so a slow or dead webhook never delays recording or uploading.
"""
from __future__ import annotations

import json
import queue
import threading
import time
import urllib.request
from dataclasses import dataclass

from loguru import logger

from services.common.config import EnvReader
from services.common.redact import mask_url, redact, register_secret
from services.common.settings import (ALERT_CAMERA_DOWN_MINUTES, ALERT_DISK_LOW_MINUTES,
                                      ALERT_UPLOAD_FAILING_MINUTES, ALERT_WEBHOOK_URL)


@dataclass(frozen=True)
class AlertSettings:
    webhook_url: str | None
    camera_down_after: float      # seconds
    upload_failing_after: float   # seconds
    disk_low_after: float         # seconds


def read_alert_settings(env: EnvReader) -> AlertSettings:
    url = env.get(ALERT_WEBHOOK_URL)
    if url is not None and not url.startswith(("http://", "https://")):
        env.error(ALERT_WEBHOOK_URL.name, f"must be an http(s) URL, got {mask_url(url)!r}")
        url = None
    register_secret(url)  # a Slack webhook URL is a credential
    return AlertSettings(url, env.get(ALERT_CAMERA_DOWN_MINUTES) * 60,
                         env.get(ALERT_UPLOAD_FAILING_MINUTES) * 60, env.get(ALERT_DISK_LOW_MINUTES) * 60)


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


class WebhookSender:
    """POSTs {"text": ...} to the webhook; retries a few times, then logs and drops the message."""

    def __init__(self, url: str | None, source: str, attempts: int = 5):
        self.url, self.source, self.attempts = url, source, attempts
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        if url:
            self._thread.start()

    def send(self, text: str) -> None:
        logger.warning("{}", text)
        if self.url:
            self._queue.put(f"[{self.source}] {redact(text)}")

    def close(self, timeout: float = 5.0) -> None:
        if self.url:
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while (text := self._queue.get()) is not None:
            body = json.dumps({"text": text}).encode()
            for attempt in range(self.attempts):
                try:
                    request = urllib.request.Request(self.url, data=body, method="POST",
                                                     headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(request, timeout=10) as response:
                        response.read()
                    break
                except OSError as exc:
                    if attempt == self.attempts - 1:
                        logger.error("alert webhook failed, message dropped: {}", redact(str(exc)))
                    time.sleep(min(30, 2 ** attempt))
