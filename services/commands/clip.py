"""`clip`: cut a time range of one camera out of its segments, local copies first, else the bucket."""
from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from services.bucket.catalog import StoredSegment, stored_spans
from services.bucket.client import S3Problem, make_client
from services.bucket.objects import presigned_url
from services.bucket.stream import BucketSource, piece_files
from services.common.clip_plan import ClipPlan, plan_clip
from services.common.config import CommonConfig, EnvReader, read_common
from services.common.data_layout import DataLayout
from services.common.footage import local_segments, write_clip
from services.common.settings import FFMPEG_PATH, S3_BUCKET_NAME, SEGMENT_DURATION
from services.common.spans import Span
from services.crypt.keys import CryptError
from services.uploader.config import UploaderConfig, read_uploader_config


def parse_time(text: str) -> datetime:
    """ISO time; UTC unless it carries an offset."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time like 2026-01-24T14:30:00Z: {text!r}") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


NAME = "clip"
HELP = "cut a time range of one camera into one MP4 (no re-encoding)"
EXIT_CODES = {0: "the clip was written (--presign: the URLs were printed)",
              1: "nothing was recorded in the range, or a download or FFmpeg failed"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--camera", type=int, required=True, metavar="N")
    parser.add_argument("--start", type=parse_time, required=True, metavar="TIME",
                        help="e.g. 2026-01-24T14:30:00Z (UTC if no offset)")
    parser.add_argument("--end", type=parse_time, required=True, metavar="TIME")
    parser.add_argument("-o", "--output", default="clip.mp4", help="output file (default clip.mp4)")
    parser.add_argument("--presign", action="store_true", help="print time-limited download URLs instead")
    parser.add_argument("--expires", type=int, default=3600, help="URL lifetime in seconds (default 3600)")
    parser.add_argument("--json", action="store_true", help="with --presign: the URLs, pieces and gaps as JSON")


@dataclass(frozen=True)
class Settings:
    """Local folders always; the bucket only when S3_BUCKET_NAME is set."""
    uploader: UploaderConfig | None
    common: CommonConfig
    segment_duration: int
    ffmpeg: str


def read_settings(env: EnvReader) -> Settings:
    uploader = read_uploader_config(env) if env.get(S3_BUCKET_NAME) else None
    common = uploader.common if uploader else read_common(env)
    settings = Settings(uploader, common, env.get(SEGMENT_DURATION), env.get(FFMPEG_PATH))
    env.check()
    return settings


def remote_segments(settings: Settings, client, camera_id: int, window: Span) -> dict[str, tuple[StoredSegment, Span]]:
    config = settings.uploader
    return {s.name.filename: (s, span) for s, span in
            stored_spans(client, config.bucket, config.prefix, camera_id, window, settings.segment_duration)}


def _describe_gaps(plan: ClipPlan) -> list[str]:
    return [f"gap in range: {g.start:%Y-%m-%d %H:%M:%S} - {g.end:%H:%M:%S} UTC ({g.seconds:.0f} s not recorded)"
            for g in plan.gaps]


def run(args: argparse.Namespace, settings: Settings) -> int:
    window = Span(args.start, args.end)
    if window.seconds <= 0:
        print("clip: --end must be after --start")
        return 2
    if args.json and not args.presign:
        print("clip: --json goes with --presign")
        return 2
    layout = DataLayout(settings.common.data_dir)
    local = local_segments(layout, args.camera, window)
    remote: dict[str, tuple[StoredSegment, Span]] = {}
    client = None
    if settings.uploader is not None:
        client = make_client(settings.uploader)
        try:
            remote = remote_segments(settings, client, args.camera, window)
        except S3Problem as problem:
            print(f"clip: warning: bucket not available ({problem}); using local copies only")
    spans = {name: span for name, (_, span) in remote.items()}
    spans.update({name: span for name, (_, span) in local.items()})
    plan = plan_clip(spans, window.start, window.end)
    if args.presign:
        return presign(args, settings, client, plan, remote)
    for line in _describe_gaps(plan):
        print(f"clip: {line}")
    if not plan.pieces:
        print("clip: nothing was recorded in that range")
        return 1
    output = Path(args.output)
    source = BucketSource(client, settings.uploader.bucket, settings.uploader.crypt) if client else None
    keys = {name: segment.key for name, (segment, _) in remote.items()}
    with tempfile.TemporaryDirectory(prefix="clip-") as work:
        try:
            paths = piece_files(plan.pieces, {name: path for name, (path, _) in local.items()}, keys,
                                source, Path(work))
        except (CryptError, S3Problem, FileNotFoundError) as exc:
            print(f"clip: {exc}")
            return 1
        failure = write_clip(settings.ffmpeg, plan.pieces, paths, Path(work), output)
        if failure is not None:
            print(f"clip: FFmpeg failed: {failure}")
            return 1
    sources = sum(1 for p in plan.pieces if p.name in local)
    print(f"clip: wrote {output} from {len(plan.pieces)} segments ({sources} local, "
          f"{len(plan.pieces) - sources} from the bucket)")
    return 0


def presign(args: argparse.Namespace, settings: Settings, client, plan: ClipPlan,
            remote: dict[str, tuple[StoredSegment, Span]]) -> int:
    """`--presign`: a time-limited URL per piece in the bucket; pieces only on this host are named."""
    if client is None:
        print("clip: --presign needs S3_BUCKET_NAME")
        return 2
    urls = {piece.name: presigned_url(client, settings.uploader.bucket, remote[piece.name][0].key, args.expires)
            for piece in plan.pieces if piece.name in remote}
    local_only = [piece.name for piece in plan.pieces if piece.name not in remote]
    if args.json:
        print(json.dumps({"urls": [{"segment": name, "key": remote[name][0].key, "url": url}
                                   for name, url in urls.items()],
                          "local_only": local_only, "expires_seconds": args.expires,
                          "gaps": [{"start": g.start.isoformat(), "end": g.end.isoformat(), "seconds": g.seconds}
                                   for g in plan.gaps]}, indent=2))
        return 0 if plan.pieces else 1
    for line in _describe_gaps(plan):
        print(f"clip: {line}")
    if not plan.pieces:
        print("clip: nothing was recorded in that range")
        return 1
    for piece in plan.pieces:
        if piece.name in urls:
            print(urls[piece.name])
        else:
            print(f"clip: {piece.name} is only on this host, not in the bucket yet")
    return 0
