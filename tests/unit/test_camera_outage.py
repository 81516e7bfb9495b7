"""A camera that stays down: one warning, reminders at a growing interval, one notice when back;
and a reload's new settings for one camera. The supervisor's fake clock and fake OS layer."""
import re

import pytest
from loguru import logger

from services.recorder.config import CameraConfig
from services.recorder.outage import REMINDER_FIRST, REMINDER_MAX, Notice, Outage
from services.recorder.states import CameraState as S
from services.recorder.supervisor import CameraSupervisor
from tests.unit.test_camera_supervisor import SETTINGS, Clock, FakeLauncher, recording


@pytest.fixture
def logged():
    lines: list[tuple[str, str]] = []
    sink = logger.add(lambda m: lines.append((m.record["level"].name, m.record["message"])), level="DEBUG")
    yield lines
    logger.remove(sink)


@pytest.fixture
def rig():
    clock, launcher = Clock(), FakeLauncher()
    supervisor = CameraSupervisor(CameraConfig(1, "rtsp://h/x", "cam"), launcher, SETTINGS, clock)
    return supervisor, launcher, clock


def fail_probes(rig, seconds):
    """The camera refuses every connection for `seconds` of the fake clock."""
    supervisor, launcher, clock = rig
    end = clock() + seconds
    while clock() < end:
        if supervisor.state == S.PROBING:
            launcher.children[-1].code = 1
        supervisor.tick()
        clock.advance(1)


def warnings(lines):
    return [text for level, text in lines if level == "WARNING"]


def test_a_day_down_is_a_few_dozen_warnings_not_one_per_retry(rig, logged):
    supervisor, _, _ = rig
    supervisor.start()
    fail_probes(rig, 24 * 3600)
    tries = supervisor.failures
    assert tries > 1000   # retried every 60 s at most, all day
    found = warnings(logged)
    assert found[0] == "camera 1 (cam): probing -> backoff (probe failed: Connection refused)"
    reminders = [w for w in found if "still down" in w]
    assert len(found) == 1 + len(reminders) and 20 <= len(found) <= 40
    counts = [int(re.search(r"and (\d+) failed tries", r)[1]) for r in reminders]
    assert counts == sorted(counts) and 1000 < counts[-1] <= tries
    assert sum(level == "DEBUG" for level, _ in logged) > 1000


def test_back_is_one_notice_with_how_long_and_how_many_tries(rig, logged):
    supervisor, launcher, clock = rig
    supervisor.start()
    fail_probes(rig, 300)
    tries = supervisor.failures
    logged.clear()
    while supervisor.state != S.PROBING:
        supervisor.tick()
        clock.advance(1)
    launcher.children[-1].code = 0
    supervisor.tick()
    launcher.children[-1].last_progress = clock()
    supervisor.tick()
    assert supervisor.state == S.RECORDING
    back = [text for level, text in logged if level == "INFO" and "back after" in text]
    assert len(back) == 1 and f"and {tries} failed tries" in back[0]
    assert not warnings(logged)


def test_a_stall_that_reconnects_at_once_is_one_warning_and_one_notice(rig, logged):
    supervisor, launcher, clock = rig
    child = recording(rig)
    logged.clear()
    clock.advance(31)
    supervisor.tick()   # stalled: killed, restarted at once
    child.code = -9
    supervisor.tick()
    launcher.children[-1].last_progress = clock()
    supervisor.tick()
    assert supervisor.state == S.RECORDING
    assert len(warnings(logged)) == 1 and "stalled" in warnings(logged)[0]
    assert any("back after" in text and "0 failed tries" in text for _, text in logged)


def test_reminders_grow_to_an_hour():
    outage, now = Outage(), 0.0
    assert outage.failed(now) is Notice.DOWN
    reminders = []
    while now < 6 * 3600:
        now += 10
        if outage.failed(now) is Notice.REMINDER:
            reminders.append(now)
    gaps = [b - a for a, b in zip(reminders, reminders[1:])]
    assert reminders[0] == pytest.approx(REMINDER_FIRST, abs=10)
    assert gaps == sorted(gaps) and max(gaps) == pytest.approx(REMINDER_MAX, abs=10)
    assert outage.recovered(now) == (now, 1 + 6 * 360)   # (seconds down, failed tries)
    assert outage.recovered(now) is None


def test_reload_restarts_a_recording_camera_with_its_new_url(rig):
    supervisor, launcher, _ = rig
    child = recording(rig)
    moved = CameraConfig(1, "rtsp://h/y", "cam")
    supervisor.reconfigure(moved)
    assert supervisor.state == S.STOPPING and child.signals == ["TERM"]   # graceful: the segment is closed
    child.code = 0
    supervisor.tick()
    assert supervisor.state == S.PROBING and supervisor.camera == moved   # a new URL is probed again


def test_reload_retries_a_camera_in_backoff_at_once(rig):
    supervisor, launcher, _ = rig
    supervisor.start()
    launcher.children[-1].code = 1
    supervisor.tick()
    assert supervisor.state == S.BACKOFF
    supervisor.reconfigure(CameraConfig(1, "rtsp://h/fixed", "cam"))
    assert supervisor.state == S.PROBING and supervisor.failures == 0
