"""File systems in image files, mounted through loop devices (root only)."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest


def run(*argv: str) -> str:
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def require(*programs: str) -> None:
    """Skip the test, saying why, when it cannot mount images here."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root")


def make_ext4(image: Path, size: str = "256M") -> None:
    run("truncate", "-s", size, str(image))
    run("mkfs.ext4", "-q", "-F", str(image))


@contextlib.contextmanager
def mounted(image: Path, mount: Path) -> Iterator[str]:
    """`image` mounted at `mount` through a fresh loop device (yielded); unmounted and detached after."""
    mount.mkdir(exist_ok=True)
    loop = run("losetup", "--find", "--show", str(image))
    try:
        run("mount", loop, str(mount))
        try:
            yield loop
        finally:
            if subprocess.run(["umount", str(mount)], check=False, capture_output=True, timeout=60).returncode:
                subprocess.run(["umount", "--lazy", str(mount)], check=False, capture_output=True, timeout=60)
    finally:
        subprocess.run(["losetup", "--detach", loop], check=False, capture_output=True, timeout=60)
