"""A reload (SIGHUP, `systemctl reload`): re-read `.env`, and which settings wait for a restart.

Like `nginx -t` before a reload, a `.env` that no longer validates changes nothing: the daemon
keeps its old settings and says why. A valid one is applied by each daemon, except the settings
only a restart can change (the data folder its lock and logs live in, the metrics socket...):
those keep their old value and are named in the log as needing a restart.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Mapping, TypeVar

from loguru import logger

from services.common.config import CommonConfig, ConfigError, EnvReader, load_env, unknown_key_line
from services.common.redact import redact
from services.common.sd_notify import notify
from services.common.settings import DATA_DIR, LOG_LEVEL, Setting

C = TypeVar("C")
P = TypeVar("P")
# CommonConfig fields a running daemon cannot change: the lock, logs and state live in DATA_DIR.
COMMON_RESTART_ONLY: Mapping[str, Setting] = {"data_dir": DATA_DIR, "log_level": LOG_LEVEL}


def reread(env_file: str | None, read: Callable[[EnvReader], C]) -> C:
    """The settings as a fresh start would read them; raises ConfigError (nothing is applied)."""
    return read(load_env(env_file))


def changed(old: object, new: object, fields: Mapping[str, Setting]) -> tuple[str, ...]:
    """The setting names of `fields` (attribute -> setting) whose value differs."""
    return tuple(setting.name for attr, setting in fields.items() if getattr(old, attr) != getattr(new, attr))


def keep(old: C, new: C, fields: Mapping[str, Setting]) -> C:
    """`new` with the attributes of `fields` taken from `old` (settings that wait for a restart)."""
    return dataclasses.replace(new, **{attr: getattr(old, attr) for attr in fields})  # type: ignore[type-var]


def keep_common(old: CommonConfig, new: CommonConfig) -> tuple[CommonConfig, tuple[str, ...]]:
    """The CommonConfig to run with after a reload, and the names of settings needing a restart."""
    return keep(old, new, COMMON_RESTART_ONLY), changed(old, new, COMMON_RESTART_ONLY)


def log_restart_needed(service: str, names: tuple[str, ...]) -> None:
    for name in names:
        logger.warning("{} changed in .env: needs a restart (systemctl restart {}); the old value stays "
                       "in use until then", name, service)


def log_rejected(error: ConfigError) -> str:
    """Log a `.env` that failed validation on reload; returns the one-line reason for the status."""
    for line in error.lines():
        logger.error(line)
    reason = redact("; ".join(str(issue) for issue in error.issues))   # it goes into state files and STATUS
    logger.error(".env rejected on reload: still running on the previous settings (fix it and reload again)")
    return reason


def log_unknown_keys(common: CommonConfig) -> None:
    for key in common.unknown_keys:
        logger.warning(unknown_key_line(key))


def notify_reloading() -> None:
    """systemd's reload protocol: RELOADING=1 with the monotonic time, READY=1 when done."""
    notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")


def notify_reloaded() -> None:
    notify("READY=1")


def reload_with(plan: Callable[[], P], apply: Callable[[P], None]) -> str | None:
    """SIGHUP, as both daemons take it: plan from the new .env and apply it, or change nothing and
    return the reason (for the state file and `status`). The caller publishes its status, then
    calls `notify_reloaded`."""
    logger.info("SIGHUP received: re-reading .env")
    notify_reloading()
    try:
        planned = plan()
    except ConfigError as exc:
        return log_rejected(exc)
    apply(planned)
    return None
