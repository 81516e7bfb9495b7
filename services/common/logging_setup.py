"""loguru set-up shared by the daemons: journald-friendly stdout, and a rotated file when wanted.

Under systemd (JOURNAL_STREAM set) EVERY stdout line starts with its record's `<N>` syslog
priority, the lines of a traceback included, so `journalctl -p warning` shows a crash whole;
the file is then only written when LOG_FILE asks for it. Every record, and every exception
of its chain, passes through `redact` first; uncaught exceptions (main and other threads)
are logged like any error instead of going to stderr without a priority.
"""
from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

from loguru import logger

from services.common.log_output import (SYSLOG_PRIORITY, LogFile, journal_lines, masked_traceback,
                                        under_journald)
from services.common.redact import redact

_FILE_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {message}\n{extra[traceback]}"
_JOURNAL_FORMAT = "{level}: {message}\n{extra[traceback]}"   # journald adds time and unit


def _patch(record: dict) -> None:
    record["message"] = redact(record["message"])
    exception = record["exception"]
    record["extra"]["traceback"] = masked_traceback(*exception) if exception else ""
    record["extra"]["priority"] = SYSLOG_PRIORITY.get(record["level"].name, 6)


def _template(text: str) -> Callable[[Any], str]:
    # A callable format: loguru then appends no traceback of its own (the masked one is in extra).
    return lambda record: text


def _write_journal(message: Any) -> None:
    sys.stdout.write(journal_lines(str(message), message.record["extra"]["priority"]))
    sys.stdout.flush()  # stdout is a pipe under systemd: no buffering, no lost lines


def _write_terminal(message: Any) -> None:
    sys.stdout.write(str(message))
    sys.stdout.flush()


def _log_uncaught(exc_type: type[BaseException], exc_value: BaseException, tb: TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc_value, tb)
        return
    logger.opt(exception=(exc_type, exc_value, tb)).critical("uncaught exception, exiting")


def _log_thread_crash(args: threading.ExceptHookArgs) -> None:
    name = args.thread.name if args.thread else "?"
    logger.opt(exception=(args.exc_type, args.exc_value, args.exc_traceback)).error(
        "uncaught exception in thread {}", name)


def setup_logging(service: str, level: str, log_dir: Path | None, log_file: LogFile = LogFile()) -> None:
    """Configure loguru for `service`; call once at start. `log_dir` is the default file's folder."""
    logger.remove()
    logger.configure(patcher=_patch)
    journal = under_journald()
    logger.add(_write_journal if journal else _write_terminal, level=level,
               format=_template(_JOURNAL_FORMAT if journal else _FILE_FORMAT),
               colorize=False, backtrace=False, diagnose=False)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_crash
    directory = log_file.directory_for(log_dir)
    if directory is not None:
        logger.add(directory / f"{service}.log", level=level, format=_template(_FILE_FORMAT),
                   rotation="10 MB", retention=5, compression=None, enqueue=False,
                   backtrace=False, diagnose=False)
