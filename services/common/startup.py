"""What every command does at start: parse --env-file, load config, exit 78 on problems."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, TypeVar

from services.common.config import (
    EX_CONFIG,
    CommonConfig,
    ConfigError,
    ConfigIssue,
    EnvReader,
    load_env,
    unknown_key_line,
)
from services.common.log_output import LogFile, print_crash, print_error, read_log_file

T = TypeVar("T")
EX_TEMPFAIL = 75  # another daemon of the same kind holds this DATA_DIR
# LOG_FILE, read with the other settings (its problems join theirs) and kept for run_daemon:
# the daemons' config records do not carry it.
_log_file = LogFile()


def add_env_file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", metavar="PATH",
                        help="settings file (default: $ENV_FILE, else ./.env); the real environment wins")


def load_config_or_exit(env_file: str | None, read: Callable[[EnvReader], T]) -> T:
    """Read and validate settings; on any problem print one line per key and exit 78.

    The lines are errors in the journal (`<3>`), as is a crash before logging is set up."""
    global _log_file
    sys.excepthook = print_crash
    try:
        env = load_env(env_file)
        _log_file = read_log_file(env)
        return read(env)
    except ConfigError as exc:
        _report(exc)
        sys.exit(EX_CONFIG)


def _report(error: ConfigError) -> None:
    print_error("\n".join(error.lines()))


def run_daemon(service: str, role: str, common: CommonConfig, run: Callable[[], int],
               segment_seconds: int | None = None) -> int:
    """The folders, logging (and a warning per unknown .env key), then the per-DATA_DIR lock of
    `role`, then `run`; folders that cannot be made are a config error (78), a held lock is one
    line and 75. Given `segment_seconds` (the recorder), a file system whose largest file is
    smaller than a segment of a busy camera is a warning at start: the real bitrate is not known
    yet, and refusing would stop a recorder that has run for years with segments well under the
    limit. Only daemons make the folders: commands that only read leave none behind."""
    from loguru import logger

    from services.common.daemon_lock import AlreadyRunning, DaemonLock
    from services.common.data_layout import DataLayout
    from services.common.logging_setup import setup_logging
    from services.common.settings import DATA_DIR, LOG_FILE

    layout = DataLayout(common.data_dir)
    problem = layout.prepare()
    if problem:
        _report(ConfigError([ConfigIssue(DATA_DIR.name, problem)]))
        return EX_CONFIG
    try:
        setup_logging(service, common.log_level, layout.logs, _log_file)
    except OSError as exc:   # LOG_FILE names a folder this user cannot write
        _report(ConfigError([ConfigIssue(LOG_FILE.name, str(exc))]))
        return EX_CONFIG
    for key in common.unknown_keys:
        logger.warning(unknown_key_line(key))
    if segment_seconds is not None:
        from services.common.filesystem import segment_size_risk

        risk = segment_size_risk(layout.completed, segment_seconds)
        if risk:
            logger.warning("DATA_DIR: {}", risk)
    try:
        with DaemonLock(layout.state / f"{role}.lock"):
            return run()
    except AlreadyRunning as exc:
        print_error(f"{service}: another {role} is running on this DATA_DIR ({exc})")
        return EX_TEMPFAIL
