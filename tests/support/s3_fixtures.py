"""pytest fixtures for uploader tests against a real S3 server; import them into a test module."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from services.common.data_layout import DataLayout
from tests.support.processes import REPO, Daemon, write_env
from tests.support.s3_server import S3Server

BUCKET = "camera-footage"
SEGMENT = "camera_{cam}_2026-01-24_14-{minute:02d}-00.mp4"


@pytest.fixture
def s3_server(tmp_path: Path) -> Iterator[S3Server]:
    """rclone serve s3 on a free 127.0.0.1 port with the bucket created; stopped by PID."""
    server = S3Server(tmp_path / "s3").start()
    server.create_bucket(BUCKET)
    yield server
    server.stop()


@pytest.fixture
def data_layout(tmp_path: Path) -> DataLayout:
    layout = DataLayout(tmp_path / "data")
    layout.prepare()
    return layout


def uploader_env(tmp_path: Path, server: S3Server, layout: DataLayout, **overrides: object) -> Path:
    """Write a .env for the uploader with test-friendly intervals."""
    values: dict[str, object] = {"DATA_DIR": layout.root, **server.env(BUCKET), "S3_PREFIX": "site-a",
                                 "RESCAN_INTERVAL": 1, "UPLOAD_RETRY_MAX_SECONDS": 1,
                                 "CONFIG_ERROR_RETRY_SECONDS": 2, "MIN_FREE_DISK_MB": 0, "LOG_LEVEL": "debug"}
    values.update(overrides)
    return write_env(tmp_path / "uploader.env", {k: v for k, v in values.items() if v is not None})


def drop_segment(layout: DataLayout, name: str, size: int = 4096) -> bytes:
    """Write a segment the way the recorder hands it over: a hidden temp file, then a rename."""
    data = os.urandom(size)
    temp = layout.completed / f".{name}.tmp"
    temp.write_bytes(data)
    os.rename(temp, layout.completed / name)
    return data


@pytest.fixture
def start_uploader(tmp_path: Path) -> Iterator:
    """Factory for uploader daemons; every one started is stopped by PID afterwards."""
    started: list[Daemon] = []

    def start(env_file: Path, name: str = "uploader") -> Daemon:
        daemon = Daemon("services.s3_uploader", env_file, tmp_path / f"{name}.log").start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.stop()


def run_once(env_file: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("JOURNAL_STREAM", None)
    return subprocess.run([sys.executable, "-m", "services.s3_uploader", "--env-file", str(env_file), "--once"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
