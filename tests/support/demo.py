"""`make demo`: the whole system on built-in defaults, end to end, in about a minute.

Three synthetic RTSP cameras (H.264 + G.711, H.264 + AAC, H.265 without audio), a local
S3-compatible server (rclone serve s3), the recorder and the uploader with 10-second
segments. At the end it shows what was recorded and what is in the bucket, verified.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from services.bucket.keys import object_key
from services.common.data_layout import DataLayout
from services.common.segment_names import parse_name
from tests.support.media import codecs, decode_errors, video_stream_duration
from tests.support.processes import REPO, CameraServer, Daemon, wait_for, write_env
from tests.support.s3_server import S3Server, list_keys

BUCKET = "demo-footage"
CAMERAS = {1: ("front-door", "h264:pcma"), 2: ("yard", "h264:aac"), 3: ("garage", "h265:none")}


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def status(env: Path) -> None:
    subprocess.run([sys.executable, "-m", "services", "status", "--env-file", str(env)], cwd=REPO,
                   env=dict(os.environ, PYTHONPATH=str(REPO)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("DEMO_SECONDS", "60")))
    parser.add_argument("--segment", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="video-demo-"))
    say(f"workspace {work}")
    cameras = CameraServer({f"cam{n}": kinds for n, (_, kinds) in CAMERAS.items()}).start()
    s3 = S3Server(work / "s3", log=work / "s3.log").start()
    s3.create_bucket(BUCKET)
    values: dict[str, object] = {"DATA_DIR": work / "data", "SEGMENT_DURATION": args.segment,
                                 "STALL_TIMEOUT": 10, "S3_PREFIX": "demo/", **s3.env(BUCKET)}
    for n, (name, kinds) in CAMERAS.items():
        values[f"CAMERA_{n}_URL"] = cameras.url(f"cam{n}")
        values[f"CAMERA_{n}_NAME"] = name
        print(f"camera {n} ({name}): {kinds.replace(':', ' video, audio ')} at {cameras.url(f'cam{n}')}")
    env = write_env(work / ".env", values)
    env.chmod(0o600)
    print(f"S3 server: {s3.endpoint}, bucket {BUCKET}")
    layout = DataLayout(work / "data")
    recorder = Daemon("services.video_recorder", env, work / "recorder.log").start()
    uploader = Daemon("services.s3_uploader", env, work / "uploader.log").start()
    try:
        say(f"recording for {args.seconds} s ({args.segment}-second segments)")
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            time.sleep(min(10, max(0, deadline - time.monotonic())))
            print(f"  {len(list(layout.uploaded.glob('*.mp4')))} segments uploaded, "
                  f"{len(list(layout.completed.glob('*.mp4')))} waiting", flush=True)
        say("status")
        status(env)
        say("stopping the recorder (it closes the open segments), then letting the uploader drain")
        recorder.stop()
        wait_for(lambda: not list(layout.completed.glob("*.mp4")), 60, "the upload queue to drain")
    finally:
        recorder.stop()
        uploader.stop()
        cameras.stop()
    ok = report(layout, s3)
    s3.stop()
    say(f"logs and files are in {work}")
    return 0 if ok else 1


def report(layout: DataLayout, s3: S3Server) -> bool:
    say("recorded segments and the bucket")
    objects = list_keys(s3.client(), BUCKET)
    ok = True
    print(f"{'segment':<40} {'codecs':<16} {'seconds':>7} {'bytes':>9}  bucket")
    for path in sorted(layout.uploaded.glob("*.mp4")):
        name = parse_name(path.name)
        key = object_key("demo/", name)
        found = codecs(path)
        kinds = "+".join(v[0] for v in (found.get("video"), found.get("audio")) if v)
        in_bucket = objects.get(key) == path.stat().st_size
        playable = decode_errors(path) == ""
        ok = ok and in_bucket and playable
        verdict = ("ok, same size" if in_bucket else "MISSING OR DIFFERENT") + ("" if playable else ", NOT PLAYABLE")
        print(f"{path.name:<40} {kinds:<16} {video_stream_duration(path):7.1f} {path.stat().st_size:9}  {verdict}")
    print(f"\n{len(objects)} objects in s3://{BUCKET}/demo/, {len(list(layout.uploaded.glob('*.mp4')))} local "
          f"segments verified there: {'ALL OK' if ok else 'PROBLEMS FOUND'}")
    return ok and bool(objects)


if __name__ == "__main__":
    sys.exit(main())
