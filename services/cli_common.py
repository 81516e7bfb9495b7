"""What every command does at start: parse --env-file, load config, exit 78 on problems."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, TypeVar

from services.config import EX_CONFIG, ConfigError, EnvReader, load_env

T = TypeVar("T")


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
