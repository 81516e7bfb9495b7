import socket

from loguru import logger

from services.common import sd_notify as sd_notify
from services.common.logging_setup import setup_logging
from services.common.redact import register_secret


def test_journald_priorities_and_masking(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    register_secret("AKIASECRETKEY123")
    setup_logging("test", "DEBUG", tmp_path)
    logger.warning("camera rtsp://admin:pw123@h/x key AKIASECRETKEY123")
    logger.info("fine")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("<4>") and out[1].startswith("<6>")
    assert "pw123" not in out[0] and "AKIASECRETKEY123" not in out[0] and "admin:***@h" in out[0]
    assert "pw123" not in (tmp_path / "test.log").read_text()


def test_exception_messages_are_masked(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    setup_logging("test", "INFO", None)
    try:
        raise RuntimeError("cannot open rtsp://u:topsecret@h/x")
    except RuntimeError:
        logger.exception("failed")
    out = capsys.readouterr().out
    assert "failed" in out and "rtsp://u:***@h/x" in out   # the exception was logged, masked
    assert "topsecret" not in out


def test_notify_is_noop_without_socket(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify.notify("READY=1") is False


def test_notify_sends_datagram(tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert sd_notify.notify("READY=1")
    assert server.recv(100) == b"READY=1"
    server.close()


def test_watchdog_interval(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sd_notify.watchdog_interval() == 10
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert sd_notify.watchdog_interval() is None
