"""The viewer's HTTP server: the standard library's ThreadingHTTPServer, GET only.

/                       the page (static/index.html; its CSS and JS under /static/, no CDN)
/api/day?date=D&tz=Z&in=utc|local   the timeline JSON of a day (timeline.py)
/media/<camera>/<file>  one segment: the local copy, a redirect to a presigned URL for a plain
                        object, or an rclone-crypt object decrypted as it streams; byte ranges
                        are served, which is what lets <video> seek. With ?download=1 it is
                        always streamed from here, as an attachment (what a browser that cannot
                        play H.265 offers instead of the player)
/api/codec/<camera>/<file>          the segment's video codec, read from its first bytes (codec.py)
/api/status             this host's recorder, uploader, backlog and disk: `status`'s own figures, from
                        the callable `web` gives (host_status.py; 404 without one)
/clip?camera=N&start=T&end=T        the range as one MP4, cut like `clip` (attachment)

Every response but a 401 needs VIEWER_TOKEN when one is set. The log names paths, never
headers (the token travels in Authorization) nor presigned URLs.
"""
from __future__ import annotations

import json
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from services.bucket.client import S3Problem
from services.bucket.objects import presigned_url
from services.bucket.stream import is_encrypted, plain_length, plain_range
from services.common.redact import redact
from services.common.sd_notify import notify, watchdog_interval
from services.common.spans import Span
from services.crypt.keys import CryptError
from services.viewer.auth import authorized, host_allowed
from services.viewer.codec import Codecs
from services.viewer.day import BadDay, parse_date, parse_zone
from services.viewer.footage import Footage, Local, NothingRecorded, ViewerSettings
from services.viewer.host_status import NO_STATUS, page_status
from services.viewer.ranges import Unsatisfiable, byte_range

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
CHUNK = 256 * 1024
MAX_CLIP_SECONDS = 6 * 3600


def parse_moment(text: str) -> datetime:
    """ISO time (UTC unless it carries an offset) or Unix seconds."""
    try:
        return datetime.fromtimestamp(float(text), timezone.utc)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadDay(f"not a time: {text!r}") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def security_headers(media_origin: str | None) -> dict[str, str]:
    """Only our own files run; media may also come from the bucket's endpoint (presigned redirects)."""
    media = "'self'" + (f" {media_origin}" if media_origin else "")
    return {"Content-Security-Policy": f"default-src 'self'; media-src {media}; img-src 'self' data:; "
                                       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


class Handler(BaseHTTPRequestHandler):
    server_version = "camera-viewer"
    footage: Footage
    codecs: Codecs
    headers_extra: dict[str, str]
    media_origin: str | None

    # --- plumbing ----------------------------------------------------------------------------
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        sys.stderr.write(redact(f"{stamp} web: {self.address_string()} {format % args}") + "\n")

    def _start(self, status: int, content_type: str | None = None, length: int | None = None,
               extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {**self.headers_extra, **(extra or {})}.items():
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self._start(status, content_type, len(body), extra)
        self.wfile.write(body)

    def _json(self, data: object, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode(), "application/json", {"Cache-Control": "no-store"})

    def _fail(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    # --- routes ------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        if not host_allowed(self.headers.get("Host"), self.footage.settings.token):
            self._send(HTTPStatus.MISDIRECTED_REQUEST, b"only http://127.0.0.1 or http://localhost\n", "text/plain")
            return
        if not authorized(self.headers.get("Authorization"), self.footage.settings.token):
            self._send(HTTPStatus.UNAUTHORIZED, b"password required\n", "text/plain",
                       {"WWW-Authenticate": 'Basic realm="camera viewer", charset="UTF-8"'})
            return
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.split("/") if p]
        try:
            if not parts:
                self._static("index.html")
            elif parts[0] == "static" and len(parts) == 2:
                self._static(parts[1])
            elif parts == ["api", "day"]:
                self._day(query)
            elif parts[0] == "media" and len(parts) == 3 and parts[1].isdigit():
                self._media(int(parts[1]), parts[2], query.get("download") == "1")
            elif parts[:2] == ["api", "codec"] and len(parts) == 4 and parts[2].isdigit():
                self._codec(int(parts[2]), parts[3])
            elif parts == ["api", "status"]:
                self._status()
            elif parts == ["clip"]:
                self._clip(query)
            else:
                self._fail(HTTPStatus.NOT_FOUND, "no such page")
        except (BadDay, Unsatisfiable, ValueError) as exc:
            self._fail(HTTPStatus.BAD_REQUEST if not isinstance(exc, Unsatisfiable)
                       else HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, str(exc))
        except NothingRecorded as exc:
            self._fail(HTTPStatus.NOT_FOUND, f"not recorded: {exc}")
        except (S3Problem, CryptError) as exc:
            self.log_message("%s", exc)
            self._fail(HTTPStatus.BAD_GATEWAY, redact(str(exc)))
        except (BrokenPipeError, ConnectionResetError):
            pass   # the browser moved on (a seek drops the running request)
        except FileNotFoundError as exc:   # a local copy moved or deleted (upload, retention) meanwhile
            self._fail(HTTPStatus.NOT_FOUND, f"gone meanwhile: {Path(exc.filename or '').name}; reload the day")
        except OSError as exc:
            self.log_message("%s", redact(str(exc)))
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, exc.strerror or exc.__class__.__name__)

    def _static(self, name: str) -> None:
        files = {p.name: p for p in STATIC.iterdir() if p.is_file()}
        if name not in files or files[name].suffix not in TYPES:
            self._fail(HTTPStatus.NOT_FOUND, "no such file")
            return
        self._send(200, files[name].read_bytes(), TYPES[files[name].suffix], {"Cache-Control": "no-cache"})

    def _status(self) -> None:
        status_data = self.footage.settings.status_data
        if status_data is None:
            self._fail(HTTPStatus.NOT_FOUND, NO_STATUS)
            return
        self._json(page_status(status_data(), time.time()))

    def _day(self, query: dict[str, str]) -> None:
        day = parse_date(query.get("date", ""))
        local_zone = parse_zone(query.get("tz"))
        day_zone = local_zone if query.get("in") == "local" else parse_zone("UTC")
        self._json(self.footage.day(day, day_zone, local_zone))

    def _codec(self, camera: int, filename: str) -> None:
        where = self.footage.locate(camera, filename)
        self._json({"name": filename, **self.codecs.of(filename, where, self.footage.settings.source)})

    def _media(self, camera: int, filename: str, download: bool = False) -> None:
        where = self.footage.locate(camera, filename)
        attachment = {"Content-Disposition": f'attachment; filename="{filename}"'} if download else {}
        if isinstance(where, Local):
            size = where.path.stat().st_size
            with open(where.path, "rb") as handle:
                self._ranged(size, lambda first, last: _file_range(handle, first, last), attachment)
            return
        source = self.footage.settings.source
        if not is_encrypted(where.key) and not download:
            url = presigned_url(source.client, source.bucket, where.key, self.footage.settings.presign_seconds)
            self._start(HTTPStatus.FOUND, extra={"Location": url, "Cache-Control": "no-store", "Content-Length": "0"})
            return
        self._ranged(plain_length(where.key, where.size),
                     lambda first, last: plain_range(source, where.key, where.size, first, last), attachment)

    def _ranged(self, size: int, read, headers: dict[str, str] | None = None) -> None:
        wanted = byte_range(self.headers.get("Range"), size)
        first, last = wanted if wanted else (0, size - 1)
        extra = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600", **(headers or {})}
        if wanted:
            extra["Content-Range"] = f"bytes {first}-{last}/{size}"
        chunks = read(first, last) if size else iter(())
        first_chunk = next(chunks, b"")   # a wrong password or missing object fails before any header
        self._start(HTTPStatus.PARTIAL_CONTENT if wanted else HTTPStatus.OK, "video/mp4",
                    last - first + 1 if size else 0, extra)
        try:
            self.wfile.write(first_chunk)
            for chunk in chunks:
                self.wfile.write(chunk)
        except (S3Problem, CryptError) as exc:
            self.log_message("stopped streaming %s: %s", self.path, exc)
            self.close_connection = True
        finally:
            if hasattr(chunks, "close"):
                chunks.close()

    def _clip(self, query: dict[str, str]) -> None:
        camera = int(query.get("camera", ""))
        window = Span(parse_moment(query.get("start", "")), parse_moment(query.get("end", "")))
        if not 0 < window.seconds <= MAX_CLIP_SECONDS:
            raise BadDay(f"the end must be after the start, at most {MAX_CLIP_SECONDS // 3600} h later")
        with tempfile.TemporaryDirectory(prefix="viewer-clip-") as work:
            output = self.footage.clip(camera, window, Path(work))
            name = f"camera_{camera}_{window.start:%Y-%m-%d_%H-%M-%S}_{window.end:%H-%M-%S}.mp4"
            self._start(200, "video/mp4", output.stat().st_size,
                        {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
            with open(output, "rb") as handle:
                shutil.copyfileobj(handle, self.wfile, CHUNK)


def _file_range(handle, first: int, last: int) -> Iterator[bytes]:
    handle.seek(first)
    left = last - first + 1
    while left > 0:
        data = handle.read(min(CHUNK, left))
        if not data:
            break
        left -= len(data)
        yield data


def media_origin(settings: ViewerSettings) -> str | None:
    """The origin presigned URLs point at (signed locally, no request), for the page's CSP."""
    if settings.source is None:
        return None
    parts = urlsplit(presigned_url(settings.source.client, settings.source.bucket, "probe", 60))
    return f"{parts.scheme}://{parts.netloc}"


class Supervised:
    """systemd's side of the server: READY once listening, a watchdog ping from the serving loop
    (a wedged loop is restarted), SIGTERM a clean stop, SIGHUP (`systemctl reload`) only a note."""

    def __init__(self, server: ThreadingHTTPServer):
        self.server, self.interval, self.last = server, watchdog_interval(), 0.0

    def ping(self) -> None:
        if self.interval and time.monotonic() - self.last >= self.interval:
            notify("WATCHDOG=1")
            self.last = time.monotonic()

    def serve(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=self.server.shutdown).start())
        signal.signal(signal.SIGHUP, lambda *_: print("web: nothing to reload; restart to read .env again",
                                                       file=sys.stderr, flush=True))
        self.server.service_actions = self.ping   # called by serve_forever every poll (0.5 s)
        notify("READY=1\nSTATUS=serving the footage viewer")
        self.server.serve_forever()


def make_server(settings: ViewerSettings, footage: Footage | None = None) -> ThreadingHTTPServer:
    footage = footage or Footage(settings)
    handler = type("ViewerHandler", (Handler,), {"footage": footage, "codecs": Codecs(),
                                                 "headers_extra": security_headers(media_origin(settings))})
    server_class = type("ViewerServer", (ThreadingHTTPServer,),
                        {"address_family": socket.AF_INET6 if ":" in settings.host else socket.AF_INET,
                         "daemon_threads": True})
    return server_class((settings.host.strip("[]"), settings.port), handler)
