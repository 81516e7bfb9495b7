"""Logging: a `<N>` priority on every journald line (tracebacks, crashes and exit 78 included),
masking of every exception in a chain, LOG_FILE; and the sd_notify protocol."""
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from loguru import logger

from services.common import sd_notify as sd_notify
from services.common.config import ConfigError, ConfigIssue, EnvReader
from services.common.log_output import LogFile, When, print_crash, read_log_file
from services.common.logging_setup import setup_logging
from services.common.redact import mask_url, register_secret
from services.common.startup import load_config_or_exit

REPO = Path(__file__).resolve().parents[2]
PRIORITY_LINE = re.compile(r"<[0-7]>")


@pytest.fixture(autouse=True)
def restore_excepthooks(monkeypatch):
    """setup_logging and load_config_or_exit install hooks: pytest's own must come back."""
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)


def test_journald_priorities_and_masking(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    register_secret("AKIASECRETKEY123")
    setup_logging("test", "DEBUG", tmp_path, LogFile(When.ALWAYS))
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


def test_a_receiver_that_stops_reading_never_blocks_the_daemon(tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    started = time.monotonic()
    sent = [sd_notify.notify(f"STATUS={n} cameras recording") for n in range(200)]
    assert time.monotonic() - started < 1.0
    assert sent[0] and not all(sent)          # the queue filled up: the rest were dropped, not waited for
    started = time.monotonic()
    monkeypatch.setattr(sd_notify, "_WAIT_SECONDS", 0.5)
    assert not sd_notify.notify("WATCHDOG=1")  # anything but STATUS waits a moment for room, then gives up
    assert 0.4 < time.monotonic() - started < 3.0
    assert server.recv(100) == b"STATUS=0 cameras recording"
    server.close()


def test_watchdog_interval(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sd_notify.watchdog_interval() == 10
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert sd_notify.watchdog_interval() is None


def priorities(lines: list[str]) -> set[str]:
    """The `<N>` of every line; fails on a line without one (journald would file it as info)."""
    assert lines and all(PRIORITY_LINE.match(line) for line in lines), lines
    return {line[:3] for line in lines}


def chained_failure() -> None:
    """`raise X from Y` over an OSError whose secret is in its filename, not in its args."""
    try:
        try:
            raise FileNotFoundError(2, "No such file", "rtsp://cam:inner-pw@h/x")
        except OSError as inner:
            raise ValueError("while opening with key AKIACHAINSECRET9") from inner
    except ValueError as middle:
        raise RuntimeError("camera rtsp://cam:p@ss-outer@h/x failed") from middle


def test_every_line_of_a_traceback_keeps_its_priority_and_the_chain_is_masked(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    register_secret("AKIACHAINSECRET9")
    setup_logging("test", "DEBUG", tmp_path, LogFile(When.ALWAYS))
    logger.warning("first line\nsecond line")
    try:
        chained_failure()
    except RuntimeError:
        logger.exception("camera loop crashed")
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[:2] == ["<4>WARNING: first line", "<4>second line"]
    assert priorities(lines[2:]) == {"<3>"} and len(lines) > 10   # the traceback, every line
    file_text = (tmp_path / "test.log").read_text()
    for text in (out, file_text):
        assert "direct cause" in text and "FileNotFoundError" in text   # the whole chain is there...
        for secret in ("inner-pw", "AKIACHAINSECRET9", "p@ss-outer", "ss-outer"):
            assert secret not in text, secret                           # ...and masked
    assert "rtsp://cam:***@h/x" in file_text


def test_mask_url_hides_a_password_containing_at_signs():
    assert mask_url("rtsp://admin:p@ss@host/x") == "rtsp://admin:***@host/x"
    assert mask_url("a rtsp://admin:p@s/s@host:554/x b") == "a rtsp://admin:***@host:554/x b"
    assert mask_url("rtsp://host:554/stream and mail@example.com") == "rtsp://host:554/stream and mail@example.com"


@pytest.mark.parametrize("journal, value, writes", [
    (True, None, False), (False, None, True),      # auto: the journal, or the file outside systemd
    (True, "true", True), (False, "false", False), (True, "auto", False),
])
def test_log_file_setting(tmp_path, monkeypatch, journal, value, writes):
    if journal:
        monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    else:
        monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    env = EnvReader({} if value is None else {"LOG_FILE": value})
    setup_logging("svc", "INFO", tmp_path, read_log_file(env))
    logger.info("hello")
    assert env.issues == [] and (tmp_path / "svc.log").exists() is writes


def test_log_file_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    folder = tmp_path / "logs-elsewhere"
    setup_logging("svc", "INFO", tmp_path / "default", read_log_file(EnvReader({"LOG_FILE": str(folder)})))
    logger.info("hello")
    assert "hello" in (folder / "svc.log").read_text() and not (tmp_path / "default").exists()
    (tmp_path / "a-file").write_text("")
    env = EnvReader({"LOG_FILE": str(tmp_path / "a-file")})
    read_log_file(env)
    assert [issue.key for issue in env.issues] == ["LOG_FILE"]


def test_config_errors_before_logging_are_errors_in_the_journal(monkeypatch, capsys):
    def bad(env: EnvReader):
        raise ConfigError([ConfigIssue("SEGMENT_DURATION", "must be a whole number"),
                           ConfigIssue("CAMERA_1_URL", "bad rtsp://a:secret@h/x")])

    for journal, expected in ((True, {"<3>"}), (False, None)):
        if journal:
            monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
        else:
            monkeypatch.delenv("JOURNAL_STREAM", raising=False)
        with pytest.raises(SystemExit) as exit_info:
            load_config_or_exit(None, bad)
        err = capsys.readouterr().err.splitlines()
        assert exit_info.value.code == 78 and len(err) == 2 and "secret" not in "".join(err)
        if expected:
            assert priorities(err) == expected
        else:
            assert err[0].startswith("config error") and not PRIORITY_LINE.match(err[1])


def test_a_crash_before_logging_is_critical_on_every_line(monkeypatch, capsys):
    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    try:
        chained_failure()
    except RuntimeError as exc:
        print_crash(type(exc), exc, exc.__traceback__)
    err = capsys.readouterr().err.splitlines()
    assert priorities(err) == {"<2>"} and "inner-pw" not in "".join(err)


CRASHING_DAEMON = """
import threading
from services.common.logging_setup import setup_logging
setup_logging("crash", "INFO", None)
thread = threading.Thread(target=lambda: 1 / 0, name="worker")
thread.start(); thread.join()
raise RuntimeError("fatal rtsp://cam:pw-in-crash@h/x")
"""


def test_an_uncaught_exception_is_logged_with_priorities(tmp_path):
    done = subprocess.run([sys.executable, "-c", CRASHING_DAEMON], cwd=REPO, capture_output=True, text=True,
                          env={"JOURNAL_STREAM": "8:1234", "PYTHONPATH": str(REPO)}, timeout=60)
    lines = done.stdout.splitlines()
    assert done.returncode == 1 and done.stderr == ""   # nothing left for journald to file as info
    assert "<3>ERROR: uncaught exception in thread worker" in lines and "<3>ZeroDivisionError: division by zero" in lines
    assert "<2>CRITICAL: uncaught exception, exiting" in lines
    assert priorities(lines) == {"<3>", "<2>"} and "pw-in-crash" not in done.stdout
