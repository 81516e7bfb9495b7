"""A daemon's report for this tick, sent where people look: the state file, systemd, alerts.

Both daemons derive the STATUS line and the alert conditions from their own snapshot type;
what happens to them afterwards is the same.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable

from services.common.alerts import AlertTracker, WebhookSender
from services.common.sd_notify import notify
from services.common.state_file import publish_snapshot

Condition = tuple[str, bool, str, float]   # incident key, bad now, message, how long it must last


def publish_report(path: Path, snapshot: Any, line: str, conditions: Iterable[Condition], tracker: AlertTracker,
                   sender: WebhookSender, alerting: bool = True) -> None:
    """Write the snapshot, tell systemd the line, and raise or resolve alerts (unless not `alerting`:
    stopping, or a one-shot run)."""
    publish_snapshot(path, snapshot)
    notify(f"STATUS={line}")
    if not alerting:
        return
    now = time.monotonic()
    for key, bad, text, delay in conditions:
        message = tracker.update(key, bad, text, delay, now)
        if message:
            sender.send(message)
