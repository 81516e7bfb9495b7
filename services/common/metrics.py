"""An optional Prometheus endpoint on localhost: text exposition rendered from a snapshot.

Each daemon passes a function that returns its samples; the HTTP thread calls it per scrape,
so nothing is kept twice and a scrape never blocks the daemon's main loop.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable

from loguru import logger


@dataclass(frozen=True)
class Sample:
    name: str
    value: float
    help: str
    kind: str = "gauge"  # gauge | counter
    labels: dict[str, str] = field(default_factory=dict)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(samples: Iterable[Sample]) -> str:
    lines: list[str] = []
    described: set[str] = set()
    for sample in samples:
        if sample.name not in described:
            described.add(sample.name)
            lines += [f"# HELP {sample.name} {sample.help}", f"# TYPE {sample.name} {sample.kind}"]
        labels = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(sample.labels.items()))
        lines.append(f"{sample.name}{{{labels}}} {float(sample.value):g}" if labels
                     else f"{sample.name} {float(sample.value):g}")
    return "\n".join(lines) + "\n"


class MetricsServer:
    def __init__(self, address: str, port: int, collect: Callable[[], Iterable[Sample]]):
        def handler_factory(*args):
            return _Handler(collect, *args)
        self.server = ThreadingHTTPServer((address, port), handler_factory)
        self.thread = threading.Thread(target=self.server.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> "MetricsServer":
        self.thread.start()
        logger.info("metrics on http://{}:{}/metrics", *self.server.server_address[:2])
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def __init__(self, collect: Callable[[], Iterable[Sample]], *args: object):
        self.collect = collect
        super().__init__(*args)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404)
            return
        try:
            body = render(self.collect()).encode()
        except Exception:  # noqa: BLE001 - a scrape must never take the daemon down
            logger.exception("metrics collection failed")
            self.send_error(500)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass
