"""What every command does at start: parse --env-file, load config, exit 78 on problems."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, TypeVar

from services.common.config import EX_CONFIG, CommonConfig, ConfigError, EnvReader, load_env

T = TypeVar("T")
EX_TEMPFAIL = 75  # another daemon of the same kind holds this DATA_DIR


def add_env_file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", metavar="PATH",
                        help="settings file (default: $ENV_FILE, else ./.env); the real environment wins")


def load_config_or_exit(env_file: str | None, read: Callable[[EnvReader], T]) -> T:
    """Read and validate settings; on any problem print one line per key and exit 78."""
    try:
        return read(load_env(env_file))
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        sys.exit(EX_CONFIG)


def run_daemon(service: str, role: str, common: CommonConfig, run: Callable[[], int]) -> int:
    """Logging, then the per-DATA_DIR lock of `role`, then `run`; a held lock is one line and 75."""
    from services.common.daemon_lock import AlreadyRunning, DaemonLock
    from services.common.data_layout import DataLayout
    from services.common.logging_setup import setup_logging

    layout = DataLayout(common.data_dir)
    setup_logging(service, common.log_level, layout.logs)
    try:
        with DaemonLock(layout.state / f"{role}.lock"):
            return run()
    except AlreadyRunning as exc:
        print(f"{service}: another {role} is running on this DATA_DIR ({exc})", file=sys.stderr)
        return EX_TEMPFAIL
