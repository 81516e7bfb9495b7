"""The camera state machine with a fake clock and a fake OS layer: one transition per test."""
import pytest

from services.recorder.config import CameraConfig
from services.recorder.ffmpeg_command import StreamInfo
from services.recorder.states import CameraState as S
from services.recorder.supervisor import CameraSupervisor, SupervisorSettings, backoff_delay

SETTINGS = SupervisorSettings(stall_timeout=30, stop_timeout=10, probe_timeout=20,
                              backoff_initial=1, backoff_max=60, stable_after=60)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class FakeChild:
    def __init__(self, kind, pid):
        self.kind, self.pid = kind, pid
        self.code = None
        self.last_progress = None
        self.signals = []

    def poll(self):
        return self.code

    def terminate(self):
        self.signals.append("TERM")

    def kill(self):
        self.signals.append("KILL")
        self.code = -9

    def last_words(self):
        return "Connection refused" if self.code else ""


class FakeLauncher:
    def __init__(self):
        self.children = []
        self.finished = []
        self.stream = StreamInfo("h264", "aac")

    def probe(self, camera):
        return self._spawn("probe")

    def record(self, camera, stream):
        return self._spawn("record")

    def _spawn(self, kind):
        child = FakeChild(kind, 100 + len(self.children))
        self.children.append(child)
        return child

    def stream_info(self, child):
        return self.stream

    def run_finished(self, child):
        self.finished.append(child)


@pytest.fixture
def rig():
    clock, launcher = Clock(), FakeLauncher()
    supervisor = CameraSupervisor(CameraConfig(1, "rtsp://h/x", "cam"), launcher, SETTINGS, clock)
    return supervisor, launcher, clock


def recording(rig):
    supervisor, launcher, clock = rig
    supervisor.start()
    launcher.children[-1].code = 0
    supervisor.tick()
    launcher.children[-1].last_progress = clock()
    supervisor.tick()
    assert supervisor.state == S.RECORDING
    return launcher.children[-1]


def test_start_probes_first(rig):
    supervisor, launcher, _ = rig
    supervisor.start()
    assert supervisor.state == S.PROBING and launcher.children[0].kind == "probe"


def test_probe_success_starts_ffmpeg(rig):
    supervisor, launcher, _ = rig
    supervisor.start()
    launcher.children[0].code = 0
    supervisor.tick()
    assert supervisor.state == S.STARTING and launcher.children[1].kind == "record"


def test_probe_failure_backs_off(rig):
    supervisor, launcher, clock = rig
    supervisor.start()
    launcher.children[0].code = 1
    supervisor.tick()
    assert supervisor.state == S.BACKOFF and "Connection refused" in supervisor.reason
    assert supervisor.retry_at == clock() + 1


def test_probe_without_video_backs_off(rig):
    supervisor, launcher, _ = rig
    launcher.stream = StreamInfo(None, "aac")
    supervisor.start()
    launcher.children[0].code = 0
    supervisor.tick()
    assert supervisor.state == S.BACKOFF


def test_probe_timeout_kills_and_backs_off(rig):
    supervisor, launcher, clock = rig
    supervisor.start()
    clock.advance(21)
    supervisor.tick()
    assert launcher.children[0].signals == ["KILL"] and supervisor.state == S.BACKOFF


def test_media_progress_means_recording(rig):
    recording(rig)


def test_exit_while_recording_backs_off_and_hands_off(rig):
    supervisor, launcher, _ = rig
    child = recording(rig)
    child.code = 1
    supervisor.tick()
    assert supervisor.state == S.BACKOFF and launcher.finished == [child]


def test_stall_stops_ffmpeg(rig):
    supervisor, _, clock = rig
    child = recording(rig)
    clock.advance(30)
    supervisor.tick()
    assert supervisor.state == S.STOPPING and child.signals == ["TERM"]
    assert "stalled" in supervisor.reason


def test_no_first_media_counts_as_stall(rig):
    supervisor, launcher, clock = rig
    supervisor.start()
    launcher.children[0].code = 0
    supervisor.tick()
    clock.advance(31)
    supervisor.tick()
    assert supervisor.state == S.STOPPING


def test_progress_keeps_it_recording(rig):
    supervisor, _, clock = rig
    child = recording(rig)
    for _ in range(10):
        clock.advance(20)
        child.last_progress = clock()
        supervisor.tick()
    assert supervisor.state == S.RECORDING


def test_stop_deadline_kills(rig):
    supervisor, _, clock = rig
    child = recording(rig)
    supervisor.request_stop()
    clock.advance(10)
    supervisor.tick()
    assert child.signals == ["TERM", "KILL"]
    supervisor.tick()
    assert supervisor.state == S.STOPPED


def test_graceful_stop_sends_one_signal_and_hands_off(rig):
    supervisor, launcher, _ = rig
    child = recording(rig)
    supervisor.request_stop()
    child.code = 255
    supervisor.tick()
    assert child.signals == ["TERM"] and supervisor.done and launcher.finished == [child]


def test_stop_during_backoff_is_immediate(rig):
    supervisor, launcher, _ = rig
    supervisor.start()
    launcher.children[0].code = 1
    supervisor.tick()
    supervisor.request_stop()
    assert supervisor.done


def test_stalled_run_backs_off_after_exit(rig):
    supervisor, _, clock = rig
    child = recording(rig)
    clock.advance(30)
    supervisor.tick()
    child.code = 255
    supervisor.tick()
    assert supervisor.state == S.BACKOFF


def test_backoff_over_retries_without_probe_when_stream_known(rig):
    supervisor, launcher, clock = rig
    child = recording(rig)
    child.code = 1
    supervisor.tick()
    clock.advance(1)
    supervisor.tick()
    assert supervisor.state == S.STARTING and launcher.children[-1].kind == "record"


def test_backoff_over_probes_when_never_recorded(rig):
    supervisor, launcher, clock = rig
    supervisor.start()
    launcher.children[0].code = 1
    supervisor.tick()
    clock.advance(1)
    supervisor.tick()
    assert supervisor.state == S.PROBING and len(launcher.children) == 2


def test_backoff_grows_and_caps():
    assert [backoff_delay(n, SETTINGS) for n in (1, 2, 3, 4, 7, 8, 20)] == [1, 2, 4, 8, 60, 60, 60]


def test_consecutive_failures_double_the_wait(rig):
    supervisor, launcher, clock = rig
    supervisor.start()
    waits = []
    for _ in range(4):
        launcher.children[-1].code = 1
        supervisor.tick()
        waits.append(supervisor.retry_at - clock())
        clock.advance(waits[-1])
        supervisor.tick()
    assert waits == [1, 2, 4, 8]


def test_stable_run_resets_backoff(rig):
    supervisor, launcher, clock = rig
    supervisor.failures = 5
    child = recording(rig)
    clock.advance(61)
    child.last_progress = clock()
    supervisor.tick()
    child.code = 1
    supervisor.tick()
    assert supervisor.failures == 1 and supervisor.retry_at - clock() == 1


def test_restart_request_starts_new_run_at_once(rig):
    supervisor, launcher, _ = rig
    child = recording(rig)
    supervisor.request_restart("clock stepped back")
    assert supervisor.state == S.STOPPING
    child.code = 255
    supervisor.tick()
    assert supervisor.state == S.STARTING and launcher.finished == [child]


def test_spawn_failure_backs_off(rig):
    supervisor, launcher, _ = rig

    def broken(camera):
        raise FileNotFoundError("ffprobe")
    launcher.probe = broken
    supervisor.start()
    assert supervisor.state == S.BACKOFF


def test_snapshot(rig):
    supervisor, _, _ = rig
    child = recording(rig)
    snap = supervisor.snapshot()
    assert snap["state"] == "recording" and snap["pid"] == child.pid and snap["restarts"] == 0


def test_backward_clock_step_detection():
    from services.recorder.daemon import backward_step
    assert backward_step(1000.0, 1000.3) == 0.0       # forward or jitter: nothing
    assert backward_step(1000.0, 999.0) == 0.0         # within the tolerance
    assert backward_step(1000.0, 992.0) == 8.0
    assert backward_step(1000.0, 1000.0 - 3600) == 3600.0
