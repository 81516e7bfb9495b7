"""File systems in image files, mounted through loop devices (root only)."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator, Sequence

import pytest

from tests.support.processes import pids_with_argument


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
def mounted(image: Path, mount: Path, driver: Sequence[str] = ("mount",)) -> Iterator[str]:
    """`image` mounted at `mount` through a fresh loop device (yielded); unmounted and detached after.

    `driver` mounts it, given the loop device and the mount point last: `mount` (the kernel's
    driver), `mount -t <type>`, or a FUSE driver (mount.exfat-fuse, fusefat, ntfs-3g), whose
    process is waited for after the unmount and killed if it lingers. As root FUSE drivers mount
    block devices as fuseblk, so every way goes through a loop device."""
    mount.mkdir(exist_ok=True)
    loop = run("losetup", "--find", "--show", str(image))
    try:
        run(*driver, loop, str(mount))
        try:
            yield loop
        finally:
            if subprocess.run(["umount", str(mount)], check=False, capture_output=True, timeout=60).returncode:
                subprocess.run(["umount", "--lazy", str(mount)], check=False, capture_output=True, timeout=60)
            if driver[0] != "mount":
                end_fuse_driver(mount)
    finally:
        subprocess.run(["losetup", "--detach", loop], check=False, capture_output=True, timeout=60)


def end_fuse_driver(mount: Path) -> None:
    """A FUSE driver ends by itself once its mount is gone; one that does not is killed."""
    deadline = time.monotonic() + 5
    while pids_with_argument(str(mount)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids_with_argument(str(mount)):
        os.kill(pid, signal.SIGKILL)


def snapshot(image: Path, copy: Path, quiet: float = 0.2, attempts: int = 50) -> None:
    """Copy `image` as it was at one instant, as a power cut leaves a disk. Stopping the writers
    does not stop the kernel: its flusher and the file system's journal commits still write
    through the loop device, and a copy read while they do could take the journal from one
    moment and the data it covers from another (a state no power cut produces). So the copy is
    made once the image has been quiet for `quiet` seconds and kept only if the image's mtime
    (which every loop write moves) did not change while it was read."""
    for _ in range(attempts):
        before = image.stat().st_mtime_ns
        if time.time_ns() - before < quiet * 1e9:
            time.sleep(quiet)
            continue
        shutil.copyfile(image, copy)
        if image.stat().st_mtime_ns == before:
            return
    raise AssertionError(f"{image} kept changing; no consistent copy after {attempts} tries")
