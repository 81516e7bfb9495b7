"""`python -m services.s3_uploader`: settings, start-up, then the scheduler's loop until stopped."""
from __future__ import annotations

import argparse
import ctypes

from services.common.reloading import reread
from services.common.startup import add_env_file_argument, load_config_or_exit, run_daemon
from services.uploader.config import read_uploader_config
from services.uploader.scheduler import Uploader

_M_ARENA_MAX = -8   # mallopt parameter, glibc's malloc.h


def limit_malloc_arenas(count: int = 2) -> None:
    """Cap glibc's per-thread heaps before the upload threads start.

    Each upload thread frees its part buffers (16 MB) into a heap of its own, where no other
    thread reuses them: with 4 parallel encrypted multipart uploads the peak RSS measured
    435-560 MB with glibc's default and 253-308 MB with two heaps (docs/performance.md, 2b).
    The same as MALLOC_ARENA_MAX=2; a no-op without glibc.
    """
    try:
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, count)
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.s3_uploader",
                                     description="Upload finished segments to S3, verify them, prune local copies.")
    add_env_file_argument(parser)
    parser.add_argument("--once", action="store_true",
                        help="upload everything waiting in completed/, then exit (0: all done, 1: some left)")
    args = parser.parse_args(argv)
    config = load_config_or_exit(args.env_file, read_uploader_config)
    limit_malloc_arenas()
    reread_config = lambda: reread(args.env_file, read_uploader_config)  # noqa: E731
    return run_daemon("s3-uploader", "uploader", config.common,
                      lambda: Uploader(config, once=args.once, reread=reread_config).run())




