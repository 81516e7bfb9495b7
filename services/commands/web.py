"""`web`: the footage viewer, a read-only page of every camera's day, played from here or the bucket."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

from services.bucket.client import make_client
from services.bucket.stream import BucketSource
from services.common.config import EnvReader, read_common
from services.common.redact import register_secret
from services.common.settings import (FFMPEG_PATH, S3_BUCKET_NAME, SEGMENT_DURATION, VIEWER_BIND,
                                      VIEWER_PORT, VIEWER_TOKEN)
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
                            host=host, port=env.get(VIEWER_PORT), token=token)
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
