"""loguru set-up shared by the daemons: journald-friendly stdout plus a rotating file.

Under systemd each stdout line starts with a `<N>` syslog priority, so `journalctl -p
warning` filters properly. Every record passes through `redact` first.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from loguru import logger

from services.common.redact import redact

_SYSLOG_PRIORITY = {"TRACE": 7, "DEBUG": 7, "INFO": 6, "SUCCESS": 5, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}


def _patch(record: dict) -> None:
    record["message"] = redact(record["message"])
    if record["exception"] is not None:
        # Tracebacks can quote URLs or keys in exception messages.
        exc_type, exc_value, tb = record["exception"]
        if exc_value is not None and exc_value.args:
            exc_value.args = tuple(redact(str(arg)) for arg in exc_value.args)
    record["extra"]["priority"] = _SYSLOG_PRIORITY.get(record["level"].name, 6)


def _write_stdout(text: str) -> None:
    sys.stdout.write(redact(text))
    sys.stdout.flush()  # stdout is a pipe under systemd: no buffering, no lost lines


def setup_logging(service: str, level: str, log_dir: Path | None) -> None:
    """Configure loguru for `service`; call once at start."""
    logger.remove()
    logger.configure(patcher=_patch)
    under_journald = bool(os.environ.get("JOURNAL_STREAM"))
    if under_journald:
        # journald adds its own timestamp and unit name.
        stdout_format = "<{extra[priority]}>{level}: {message}"
    else:
        stdout_format = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {message}"
    # A callable sink sees the whole formatted record, traceback included, so it is masked too.
    logger.add(_write_stdout, level=level, format=stdout_format,
               colorize=False, backtrace=False, diagnose=False)
    if log_dir is not None:
        logger.add(
            log_dir / f"{service}.log",
            level=level,
            format="{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {message}",
            rotation="10 MB",
            retention=5,
            compression=None,
            enqueue=False,
            backtrace=False,
            diagnose=False,
        )
