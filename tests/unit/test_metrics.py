import urllib.error
import urllib.request

import pytest
from loguru import logger
from prometheus_client.parser import text_string_to_metric_families

from services.common.config import EnvReader
from services.common.metrics import MetricsServer, Sample, read_metrics_bind


@pytest.fixture
def log():
    lines: list[str] = []
    sink = logger.add(lines.append, format="{level} {message}")
    yield lines
    logger.remove(sink)


def scrape(samples, address="127.0.0.1") -> str:
    server = MetricsServer(address, 0, lambda: samples).start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            return response.read().decode()
    finally:
        server.stop()


def parsed(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_samples_become_metric_families_with_labels_help_and_type():
    text = scrape([Sample("x_total", 3, "things", "counter", {"camera": "1", "name": 'a"b'}),
                   Sample("x_total", 4, "things", "counter", {"camera": "2", "name": "c"}),
                   Sample("free_bytes", 1.5e9, "free"), Sample("up", True, "alive")])
    assert "# HELP x_total things" in text and "# TYPE x_total counter" in text
    assert "# TYPE free_bytes gauge" in text
    assert parsed(text) == {("x_total", (("camera", "1"), ("name", 'a"b'))): 3,
                            ("x_total", (("camera", "2"), ("name", "c"))): 4,
                            ("free_bytes", ()): 1.5e9, ("up", ()): 1}


def test_byte_counters_are_exact():
    """%g printed 8.33744e+10 for both: six digits, not a byte count."""
    text = scrape([Sample("bytes_total", 83_374_400_000, "bytes", "counter", {"camera": "1"}),
                   Sample("bytes_total", 83_374_400_123, "bytes", "counter", {"camera": "2"})])
    assert parsed(text) == {("bytes_total", (("camera", "1"),)): 83_374_400_000,
                            ("bytes_total", (("camera", "2"),)): 83_374_400_123}


def test_a_failing_collection_is_a_500_and_logged_and_the_server_lives_on(log):
    calls = []

    def collect():
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("boom")
        return [Sample("up", 1, "alive")]

    server = MetricsServer("127.0.0.1", 0, collect).start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(url, timeout=5)
        assert failed.value.code == 500
        assert any("metrics collection failed" in line for line in log)
        with urllib.request.urlopen(url, timeout=5) as response:
            assert parsed(response.read().decode()) == {("up", ()): 1}
    finally:
        server.stop()


def test_localhost_is_quiet_and_another_bind_warns_that_the_network_can_read(log):
    scrape([Sample("up", 1, "alive")], "127.0.0.1")
    assert not [line for line in log if line.startswith("WARNING")]
    scrape([Sample("up", 1, "alive")], "0.0.0.0")
    assert [line for line in log if line.startswith("WARNING") and "anyone on the network" in line]


@pytest.mark.parametrize("value, expected", [(None, "127.0.0.1"), ("0.0.0.0", "0.0.0.0"), ("::", "::"),
                                             ("localhost", "localhost"), ("192.168.1.5", "192.168.1.5")])
def test_metrics_bind(value, expected):
    env = EnvReader({} if value is None else {"METRICS_BIND": value})
    assert read_metrics_bind(env) == expected and env.issues == []


def test_metrics_bind_must_be_an_address():
    env = EnvReader({"METRICS_BIND": "my host"})
    assert read_metrics_bind(env) == "127.0.0.1"
    assert [issue.key for issue in env.issues] == ["METRICS_BIND"]
