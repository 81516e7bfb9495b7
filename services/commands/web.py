"""`web`: the footage viewer, a read-only page of every camera's day, played from here or the bucket."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from services.bucket.client import make_client
from services.bucket.stream import BucketSource
from services.commands.status import build_report, read_thresholds, unconfigured_camera_ids
from services.common.config import EnvReader, read_common
from services.common.data_layout import DataLayout
from services.common.redact import register_secret
from services.common.settings import (
    CAMERA_NAME,
    CAMERA_URL,
    FFMPEG_PATH,
    S3_BUCKET_NAME,
    SEGMENT_DURATION,
    SOURCE_DIRS,
    VIEWER_BIND,
    VIEWER_PORT,
    VIEWER_TOKEN,
    Setting,
)
from services.uploader.config import UploaderConfig, read_uploader_config
from services.viewer.auth import bind_problem
from services.viewer.footage import ViewerSettings
from services.viewer.server import Supervised, make_server

NAME = "web"
HELP = "serve the footage viewer: each camera's day as a timeline, played in the browser"
EXIT_CODES = {0: "stopped (Ctrl-C or SIGTERM)",
              1: "the address is in use or cannot be bound"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (f"Listens on VIEWER_BIND:VIEWER_PORT (default 127.0.0.1:{VIEWER_PORT.default}); any address other "
                     "than loopback needs VIEWER_TOKEN.\n\n" + (parser.epilog or ""))


@dataclass(frozen=True)
class Settings:
    viewer: ViewerSettings
    uploader: UploaderConfig | None


def camera_ids(env: EnvReader, setting: Setting) -> tuple[int, ...]:
    """The N of every CAMERA_<N>_... key of `setting` the .env sets."""
    return tuple(sorted({int(key.split("_")[1]) for key in env.values
                         if setting.matches(key) and key.split("_")[1].isdigit() and env.raw(key)}))


def status_reader(env: EnvReader, data_dir: Path) -> Callable[[], dict]:
    """The page's status tab: `status --json`'s data, computed afresh at each call, with the .env's
    thresholds. Its cameras are `status`'s: the CAMERA_<N>_URL ones, none with SOURCE_DIRS (another
    recorder writes); from the uploader's .env, which has no camera URL, the CAMERA_<N>_NAME ones and
    those the recorder's state file lists."""
    layout, thresholds, source_mode = DataLayout(data_dir), read_thresholds(env), bool(env.get(SOURCE_DIRS))
    configured, named = camera_ids(env, CAMERA_URL), camera_ids(env, CAMERA_NAME)

    def status_data() -> dict:
        cameras = [] if source_mode else list(configured) or unconfigured_camera_ids(layout, named)
        return build_report(layout, cameras, thresholds, source_mode=source_mode).data
    return status_data


def read_settings(env: EnvReader) -> Settings:
    """The bucket only when S3_BUCKET_NAME is set (else this host's copies); a bind address open
    to the network without VIEWER_TOKEN is a configuration error (78), never a page open by accident."""
    uploader = read_uploader_config(env) if env.get(S3_BUCKET_NAME) else None
    common = uploader.common if uploader else read_common(env)
    host, token = env.get(VIEWER_BIND), env.get(VIEWER_TOKEN)
    register_secret(token)
    problem = bind_problem(host, token)
    if problem:
        env.error(VIEWER_TOKEN.name, problem)
    viewer = ViewerSettings(data_dir=common.data_dir, source=None,
                            prefix=uploader.prefix if uploader else "",
                            segment_duration=env.get(SEGMENT_DURATION), ffmpeg=env.get(FFMPEG_PATH),
                            camera_names=dict(uploader.camera_names) if uploader else {},
                            host=host, port=env.get(VIEWER_PORT), token=token,
                            status_data=status_reader(env, common.data_dir))
    env.check()
    return Settings(viewer, uploader)


def run(args: argparse.Namespace, settings: Settings) -> int:
    viewer = settings.viewer
    if settings.uploader is not None:
        uploader = settings.uploader
        viewer = replace(viewer, source=BucketSource(make_client(uploader), uploader.bucket, uploader.crypt))
    try:
        server = make_server(viewer)
    except OSError as exc:
        print(f"web: cannot listen on {viewer.host}:{viewer.port}: {exc.strerror or exc}")
        return 1
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"web: serving the footage viewer on http://{shown}:{port}/ "
          f"({'password required' if viewer.token else 'this machine only'}); Ctrl-C stops it", flush=True)
    try:
        Supervised(server).serve()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
