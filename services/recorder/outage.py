"""How a camera that stays down is told in the log: one warning, then reminders, then one notice.

A camera retried every minute for a day would otherwise be about 1,440 warnings. The first
failure is a warning; later ones are quiet (debug) except a reminder at a growing interval,
with the count of failed tries; recording again is one notice with how long it was down.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

REMINDER_FIRST = 60.0     # seconds from going down to the first reminder
REMINDER_FACTOR = 2.0     # each reminder waits this much longer than the one before
REMINDER_MAX = 3600.0     # ... up to an hour


class Notice(enum.Enum):
    DOWN = "down"            # the first failure: a warning
    REMINDER = "reminder"    # still down: a warning with the count of failed tries
    QUIET = "quiet"          # still down, no reminder due: debug


@dataclass
class Outage:
    """One camera's current outage, if any, driven by the supervisor's monotonic clock."""

    since: float | None = None   # when the camera went down (None: it is up)
    tries: int = 0               # failed tries since
    interval: float = REMINDER_FIRST
    next_reminder: float = 0.0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, now: float, counts: bool = True) -> Notice:
        """A failure at `now`; `counts` is False for a step that is not a try of its own (a stop
        that a backoff will follow)."""
        self.tries += counts
        if self.since is None:
            self.since, self.interval = now, REMINDER_FIRST
            self.next_reminder = now + self.interval
            return Notice.DOWN
        if now >= self.next_reminder:
            self.interval = min(self.interval * REMINDER_FACTOR, REMINDER_MAX)
            self.next_reminder = now + self.interval
            return Notice.REMINDER
        return Notice.QUIET

    def recovered(self, now: float) -> tuple[float, int] | None:
        """(seconds down, failed tries) when this ends an outage, else None; the outage is over."""
        if self.since is None:
            return None
        ended = (now - self.since, self.tries)
        self.since, self.tries = None, 0
        return ended

    def transition(self, now: float, line: str, failing: bool, counts: bool, recording: bool) -> tuple[str, str]:
        """The log level and text of a state change `line` ("camera 1 (x): a -> b (why)")."""
        if failing:
            notice = self.failed(now, counts)
            if notice is Notice.DOWN:
                return "WARNING", line
            if notice is Notice.REMINDER:
                return "WARNING", (f"{line}; still down after {now - (self.since or now):.0f}s and {self.tries} "
                                   f"failed tries (next reminder in {self.interval:.0f}s)")
            return "DEBUG", line
        if recording:
            ended = self.recovered(now)
            if ended is not None:
                return "INFO", f"{line}; back after {ended[0]:.0f}s down and {ended[1]} failed tries"
        return ("DEBUG" if self.down else "INFO"), line
