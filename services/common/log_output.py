"""Where log lines go: journald's stream format with a priority on every line, and LOG_FILE.

Kept free of loguru so that what runs before logging is set up (configuration errors, exit
78; a crash while reading the settings) reaches the journal with a priority too: without a
`<N>` prefix journald files a line as info, and `journalctl -p warning` would not show it.
"""
from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import TextIO

from services.common.config import EnvReader
from services.common.redact import redact
from services.common.settings import LOG_FILE

SYSLOG_PRIORITY = {"TRACE": 7, "DEBUG": 7, "INFO": 6, "SUCCESS": 5, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}
PRIORITY_ERROR, PRIORITY_CRITICAL = SYSLOG_PRIORITY["ERROR"], SYSLOG_PRIORITY["CRITICAL"]
_YES, _NO, _AUTO = ("1", "true", "yes", "on"), ("0", "false", "no", "off"), "auto"


def under_journald() -> bool:
    """systemd connected stdout/stderr to the journal (it sets JOURNAL_STREAM then)."""
    return bool(os.environ.get("JOURNAL_STREAM"))


def journal_lines(text: str, priority: int) -> str:
    """`text` with `<priority>` before each of its lines, as journald's stream protocol reads them."""
    return "".join(f"<{priority}>{line}\n" for line in text.splitlines())


def print_error(text: str, priority: int = PRIORITY_ERROR, stream: TextIO | None = None) -> None:
    """Masked text on stderr, each line with `priority` in the journal; plain in a terminal."""
    stream = stream or sys.stderr
    text = redact(text)
    stream.write(journal_lines(text, priority) if under_journald() else text.rstrip("\n") + "\n")
    stream.flush()


def masked_traceback(exc_type: type[BaseException] | None, exc_value: BaseException | None,
                     tb: TracebackType | None) -> str:
    """The whole chain (`raise X from Y`, `__context__`, notes) formatted first, then masked: no
    exception text reaches the journal or a file unmasked, whatever attribute it came from."""
    if exc_type is None:
        return ""
    return redact("".join(traceback.format_exception(exc_type, exc_value, tb)))


def print_crash(exc_type: type[BaseException], exc_value: BaseException, tb: TracebackType | None) -> None:
    """sys.excepthook until logging is set up: the traceback masked, as critical."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc_value, tb)
        return
    print_error(masked_traceback(exc_type, exc_value, tb), PRIORITY_CRITICAL)


class When(Enum):
    AUTO = _AUTO        # only outside systemd: under it the journal keeps and rotates the log
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True)
class LogFile:
    """LOG_FILE: whether a daemon writes `<service>.log`, and where (None: DATA_DIR/logs)."""

    when: When = When.AUTO
    directory: Path | None = None

    def directory_for(self, default: Path | None) -> Path | None:
        if self.when is When.NEVER or (self.when is When.AUTO and under_journald()):
            return None
        return self.directory or default


def read_log_file(env: EnvReader) -> LogFile:
    value = env.get(LOG_FILE)
    word = value.lower()
    if word == _AUTO:
        return LogFile()
    if word in _YES:
        return LogFile(When.ALWAYS)
    if word in _NO:
        return LogFile(When.NEVER)
    directory = Path(value).expanduser().resolve()
    if directory.exists() and not directory.is_dir():
        env.error(LOG_FILE.name, f"{directory} is not a directory (use auto, true, false or a directory)")
    return LogFile(When.ALWAYS, directory)
