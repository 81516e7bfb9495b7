"""The camera state machine with a fake clock and a fake OS layer: one transition per test."""
import pytest

from services.recorder.config import CameraConfig
from services.recorder.ffmpeg_command import StreamInfo
from services.recorder.ffmpeg_process import seconds_per_frame
from services.recorder.states import CameraState as S
from services.recorder.states import StopReason
from services.recorder.supervisor import (AfterStop, CameraSupervisor, RecentMax, SupervisorSettings, backoff_delay,
                                          stall_limit, stop_policy)

SETTINGS = SupervisorSettings(stall_timeout=10, start_timeout=60, stop_timeout=10, probe_timeout=20,
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
        self.frame_interval = None
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
    launcher.children[-1].frame_interval = 0.1  # 10 fps
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


def starting(rig):
    supervisor, launcher, _ = rig
    supervisor.start()
    launcher.children[0].code = 0
    supervisor.tick()
    assert supervisor.state == S.STARTING
    return launcher.children[-1]


def test_stall_kills_ffmpeg_at_once(rig):
    supervisor, _, clock = rig
    child = recording(rig)
    clock.advance(9.5)
    supervisor.tick()
    assert supervisor.state == S.RECORDING
    clock.advance(0.5)
    supervisor.tick()
    assert supervisor.state == S.STOPPING and child.signals == ["KILL"]
    assert "stalled" in supervisor.reason


def test_stalled_camera_is_reconnected_without_backoff(rig):
    supervisor, launcher, clock = rig
    child = recording(rig)
    clock.advance(10)
    supervisor.tick()
    supervisor.tick()  # the killed FFmpeg is reaped
    assert supervisor.state == S.STARTING and launcher.children[-1] is not child
    assert launcher.finished == [child] and supervisor.failures == 0


def test_failed_reconnection_after_a_stall_backs_off(rig):
    supervisor, launcher, clock = rig
    recording(rig)
    clock.advance(10)
    supervisor.tick()
    supervisor.tick()
    launcher.children[-1].code = 1  # the new connection is refused
    supervisor.tick()
    assert supervisor.state == S.BACKOFF and supervisor.retry_at == clock() + 1


def test_stall_after_a_stable_run_starts_the_ladder_again(rig):
    supervisor, launcher, clock = rig
    supervisor.failures = 5
    child = recording(rig)
    clock.advance(61)
    child.last_progress = clock()
    supervisor.tick()
    clock.advance(10)
    supervisor.tick()
    supervisor.tick()
    launcher.children[-1].code = 1
    supervisor.tick()
    assert supervisor.failures == 1


def test_slow_start_is_not_a_stall(rig):
    """A camera with a long GOP or few frames per second needs more than the stall timeout
    for its first media; only the start allowance ends that wait."""
    supervisor, _, clock = rig
    child = starting(rig)
    clock.advance(59)
    supervisor.tick()
    assert supervisor.state == S.STARTING and child.signals == []


def test_no_first_media_kills_and_backs_off(rig):
    supervisor, _, clock = rig
    supervisor.failures = 2
    child = starting(rig)
    clock.advance(60)
    supervisor.tick()
    assert supervisor.state == S.STOPPING and child.signals == ["KILL"]
    supervisor.tick()
    assert supervisor.state == S.BACKOFF and supervisor.failures == 3  # a long wait is no stable run
    clock.advance(4)
    supervisor.tick()
    assert supervisor.state == S.PROBING  # never recorded: ask the camera what it sends


def test_progress_keeps_it_recording(rig):
    supervisor, _, clock = rig
    child = recording(rig)
    for _ in range(10):
        clock.advance(9)
        child.last_progress = clock()
        supervisor.tick()
    assert supervisor.state == S.RECORDING


def test_stall_limit_follows_a_slow_camera(rig):
    """A camera that sends a frame every 6 s (its media clock says so) gets twice that."""
    supervisor, _, clock = rig
    child = recording(rig)
    child.frame_interval = 6.0
    supervisor.tick()
    clock.advance(11.5)
    supervisor.tick()
    assert supervisor.state == S.RECORDING
    clock.advance(0.5)
    supervisor.tick()
    assert supervisor.state == S.STOPPING


def test_stall_limit_forgets_a_slow_spell(rig):
    supervisor, _, clock = rig
    child = recording(rig)
    child.frame_interval = 6.0
    supervisor.tick()
    child.frame_interval = 0.1
    for _ in range(61):
        clock.advance(10)
        child.last_progress = clock()
        supervisor.tick()
    assert supervisor.stall_limit(clock()) == 10


def test_stall_limit_before_the_frame_interval_is_known(rig):
    """The first report of a run may hold seconds of frames read while FFmpeg learned the
    stream: the next one can be two frame intervals away."""
    supervisor, _, clock = rig
    recording(rig).code = 1
    supervisor.tick()
    clock.advance(1)
    supervisor.tick()  # a new run, which forgets the old one's frame interval
    supervisor.child.last_progress = clock()
    supervisor.tick()
    clock.advance(29.5)
    supervisor.tick()
    assert supervisor.state == S.RECORDING
    clock.advance(0.5)
    supervisor.tick()
    assert supervisor.state == S.STOPPING


def test_stall_limit_bounds():
    assert stall_limit(SETTINGS, None) == 30     # not measured yet: the longest silence
    assert stall_limit(SETTINGS, 1.0) == 10      # 1 fps: the timeout itself
    assert stall_limit(SETTINGS, 8.0) == 16      # a key frame every 8 s
    assert stall_limit(SETTINGS, 3600.0) == 30   # a timestamp jump cannot hide a dead connection


def test_recent_max_keeps_the_largest_within_memory():
    recent = RecentMax(memory=100)
    recent.observe(0, 5.0)
    recent.observe(10, 1.0)
    recent.observe(20, 3.0)
    assert recent.value(50) == 5.0
    assert recent.value(105) == 3.0   # the 5 s interval was seen more than 100 s ago
    assert recent.value(200) is None


def test_seconds_per_frame_uses_the_media_clock():
    assert seconds_per_frame((0, 1), (30_000_000, 6)) == 6.0   # five frames buffered at start-up
    assert seconds_per_frame((1_000_000, 10), (1_500_000, 15)) == 0.1
    assert seconds_per_frame((1_000_000, 10), (1_500_000, 10)) is None  # audio only
    assert seconds_per_frame((0, 0), (33_000, 1)) is None                # no frame before


@pytest.mark.parametrize("reason, graceful, kill_after, then", [
    (StopReason.STALL, False, 0, AfterStop.RESTART),
    (StopReason.NO_MEDIA, False, 0, AfterStop.BACK_OFF),
    (StopReason.SHUTDOWN, True, 10, AfterStop.STAY_STOPPED),
    (StopReason.RELOAD, True, 10, AfterStop.RESTART),
    (StopReason.CLOCK_STEP, True, 10, AfterStop.RESTART),
])
def test_stop_policy_per_reason(reason, graceful, kill_after, then):
    policy = stop_policy(reason, SETTINGS)
    assert (policy.reason, policy.graceful, policy.kill_after, policy.then) == (reason, graceful, kill_after, then)


def test_reload_stops_gracefully_and_restarts_at_once(rig):
    supervisor, launcher, clock = rig
    child = recording(rig)
    supervisor.request_restart(StopReason.RELOAD)
    assert supervisor.state == S.STOPPING and child.signals == ["TERM"]
    clock.advance(9)
    supervisor.tick()
    assert child.signals == ["TERM"]
    child.code = 255
    supervisor.tick()
    assert supervisor.state == S.STARTING and launcher.finished == [child]


def test_shutdown_during_a_stall_kill_stays_stopped(rig):
    supervisor, _, clock = rig
    child = recording(rig)
    clock.advance(10)
    supervisor.tick()
    supervisor.request_stop()
    assert child.signals == ["KILL"]
    supervisor.tick()
    assert supervisor.done


def test_shutdown_stops_gracefully_then_kills_at_the_deadline(rig):
    supervisor, _, clock = rig
    child = recording(rig)
    supervisor.request_stop()
    assert child.signals == ["TERM"]
    clock.advance(9.5)
    supervisor.tick()
    assert child.signals == ["TERM"]
    clock.advance(0.5)
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
    supervisor.request_restart(StopReason.CLOCK_STEP)
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


def test_daemon_settings_cover_the_longest_silence(tmp_path):
    from services.common.config import EnvReader
    from services.recorder.config import read_recorder_config
    from services.recorder.daemon import supervisor_settings

    def settings(stall):
        return supervisor_settings(read_recorder_config(EnvReader({
            "DATA_DIR": str(tmp_path), "CAMERA_1_URL": "rtsp://cam/x", "STALL_TIMEOUT": str(stall)})))
    assert (settings(10).start_timeout, settings(10).probe_timeout) == (60, 60)
    assert settings(40).start_timeout == 120  # never shorter than the longest stall limit
