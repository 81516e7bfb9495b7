import urllib.request

from services.common.metrics import MetricsServer, Sample, render


def test_render_exposition_format():
    text = render([Sample("x_total", 3, "things", "counter", {"camera": "1", "name": 'a"b'}),
                   Sample("x_total", 4, "things", "counter", {"camera": "2", "name": "c"}),
                   Sample("free_bytes", 1.5e9, "free")])
    assert text.splitlines() == [
        "# HELP x_total things", "# TYPE x_total counter",
        'x_total{camera="1",name="a\\"b"} 3', 'x_total{camera="2",name="c"} 4',
        "# HELP free_bytes free", "# TYPE free_bytes gauge", "free_bytes 1.5e+09"]


def test_server_serves_metrics_on_localhost():
    server = MetricsServer("127.0.0.1", 0, lambda: [Sample("up", 1, "alive")]).start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            assert b"up 1" in response.read()
    finally:
        server.stop()
