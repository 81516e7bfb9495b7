"""An optional Prometheus endpoint, served by `prometheus_client` from the daemon's samples.

Each daemon passes a function that returns its samples; a collector turns them into metric
families per scrape, so nothing is kept twice and a scrape never blocks the daemon's main loop.
`prometheus_client` does the exposition (escaping, exact numbers, content negotiation) and the
HTTP server; only the mapping from `Sample` records is ours.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from loguru import logger
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.common.config import EnvReader
from services.common.settings import METRICS_BIND


@dataclass(frozen=True)
class Sample:
    """One value; samples sharing a name form one metric and carry the same label names.
    A counter's name ends in `_total`."""
    name: str
    value: float
    help: str
    kind: str = "gauge"  # gauge | counter
    labels: dict[str, str] = field(default_factory=dict)


def read_metrics_bind(env: EnvReader) -> str:
    """METRICS_BIND: the address the daemons' metrics endpoints listen on."""
    address = env.get(METRICS_BIND)
    if address != "localhost":
        try:
            ipaddress.ip_address(address)
        except ValueError:
            env.error(METRICS_BIND.name, f"must be an IP address such as 127.0.0.1, 0.0.0.0 or ::, got {address!r}")
            return METRICS_BIND.default
    return address


def is_loopback(address: str) -> bool:
    try:
        return address == "localhost" or ipaddress.ip_address(address).is_loopback
    except ValueError:   # a host name: assume it is reachable from elsewhere
        return False


class _SampleCollector(Collector):
    def __init__(self, samples: Callable[[], Iterable[Sample]]):
        self.samples = samples

    def collect(self) -> Iterator[Metric]:
        try:
            samples = list(self.samples())
        except Exception:  # noqa: BLE001 - a scrape must never take the daemon down
            logger.exception("metrics collection failed")
            raise RuntimeError("metrics collection failed (see the daemon's log)") from None
        families: dict[str, tuple[Metric, list[str]]] = {}
        for sample in samples:
            if sample.name not in families:
                kind = CounterMetricFamily if sample.kind == "counter" else GaugeMetricFamily
                names = sorted(sample.labels)
                families[sample.name] = kind(sample.name, sample.help, labels=names), names
            family, names = families[sample.name]
            family.add_metric([str(sample.labels[name]) for name in names], float(sample.value))
        yield from (family for family, _ in families.values())


class MetricsServer:
    """`/metrics` on `address:port` (port 0: any free port) with a registry of our samples alone."""

    def __init__(self, address: str, port: int, collect: Callable[[], Iterable[Sample]]):
        self.address, self.requested_port = address, port
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_SampleCollector(collect))
        self.server = None

    @property
    def port(self) -> int:
        return self.server.server_address[1] if self.server else self.requested_port

    def start(self) -> "MetricsServer":
        self.server, _thread = start_http_server(self.requested_port, self.address, registry=self.registry)
        logger.info("metrics on http://{}:{}/metrics", self.address, self.port)
        if not is_loopback(self.address):
            logger.warning("metrics listen on {}: anyone on the network who can reach port {} can read them "
                           "(set METRICS_BIND=127.0.0.1 to keep them on this host)", self.address, self.port)
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
