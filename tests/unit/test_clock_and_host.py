"""Is the clock trustworthy (the recorder's wait, doctor's check), and is /proc hiding argv?"""
from pathlib import Path

import pytest

from services.commands.doctor_host import check_clock, check_proc_privacy, proc_hidepid
from services.common.clock import ClockEvidence, Verdict, unsynchronised, verdict
from services.common.config import EnvReader
from services.recorder.clock_wait import ClockWait
from services.recorder.config import read_recorder_config

NOW = 1_760_000_000.0


@pytest.mark.parametrize("evidence, trusted", [
    (ClockEvidence(NOW, kernel_synced=True), True),
    (ClockEvidence(NOW, timesyncd_synced=True), True),
    (ClockEvidence(NOW, kernel_synced=None), True),                  # nothing says otherwise (sandboxed)
    (ClockEvidence(NOW, kernel_synced=False), False),
    (ClockEvidence(NOW, kernel_synced=False, timesyncd_synced=True), True),
    (ClockEvidence(NOW, floor=NOW + 86400, floor_source="recorder.json", kernel_synced=True), False),
    (ClockEvidence(NOW, floor=NOW + 30, kernel_synced=None), True),   # within the slack
])
def test_when_the_clock_is_trusted(evidence, trusted):
    assert (unsynchronised(evidence) is None) is trusted


def test_a_clock_behind_the_newest_recording_says_which_file():
    problem = unsynchronised(ClockEvidence(NOW, floor=NOW + 86400, floor_source="/data/state/recorder.json"))
    assert "earlier than /data/state/recorder.json" in problem


@pytest.mark.parametrize("problem, waited, expected", [
    (None, 0, Verdict.SYNCED), ("unsynced", 10, Verdict.WAIT), ("unsynced", 120, Verdict.GIVE_UP),
    ("unsynced", 0, Verdict.WAIT),
])
def test_verdict(problem, waited, expected):
    assert verdict(problem, waited, timeout=120) is expected


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_clock_wait_waits_then_records_once_synchronised():
    clock, synced = Clock(), {"kernel": False}
    wait = ClockWait(120, [], lambda: ClockEvidence(NOW, kernel_synced=synced["kernel"]), clock)
    assert not wait.ready() and "waiting for time synchronisation (0s of 120s)" in wait.status()
    clock.now = 30
    assert not wait.ready()
    synced["kernel"] = True
    assert wait.ready() and wait.status() is None
    synced["kernel"] = False
    assert wait.ready()   # once open it stays open


def test_clock_wait_gives_up_at_the_timeout_and_zero_does_not_wait():
    clock = Clock()
    wait = ClockWait(120, [], lambda: ClockEvidence(NOW, kernel_synced=False), clock)
    assert not wait.ready()
    clock.now = 120
    assert wait.ready()
    assert ClockWait(0, [], lambda: ClockEvidence(NOW, kernel_synced=False), clock).ready()


def test_clock_wait_reads_its_floor_once(tmp_path):
    newest = tmp_path / "recorder.json"
    newest.write_text("{}")
    wait = ClockWait(120, [newest], None, Clock())
    floor = newest.stat().st_mtime
    assert wait.evidence().floor >= floor


def test_doctor_clock_check():
    assert check_clock(ClockEvidence(NOW, kernel_synced=False)).level == "warn"
    assert "timesyncd" in check_clock(ClockEvidence(NOW, timesyncd_synced=True)).detail
    assert check_clock(ClockEvidence(NOW, kernel_synced=True)).level == "ok"


HOST = """\
22 28 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=1927000k,mode=755
23 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw{options}
28 1 179:2 / / rw,noatime shared:1 - ext4 /dev/mmcblk0p2 rw
"""


@pytest.mark.parametrize("options, found", [
    ("", None), (",hidepid=invisible", "invisible"), (",hidepid=2,gid=4", "2"), (",hidepid=0", "0"),
    (",subset=pid,hidepid=ptraceable", "ptraceable"),
])
def test_proc_hidepid_is_parsed(options, found):
    assert proc_hidepid(HOST.format(options=options)) == found


def test_the_mount_on_top_wins_and_other_proc_mounts_do_not_count():
    text = HOST.format(options="") + "40 23 0:40 / /proc rw,relatime - proc proc rw,hidepid=invisible\n" \
        + "41 28 0:41 / /var/lib/x/proc rw - proc proc rw\n"
    assert proc_hidepid(text) == "invisible"
    assert proc_hidepid("garbage\n\n1 2 3\n") is None


def config(tmp_path, url):
    return read_recorder_config(EnvReader({"DATA_DIR": str(tmp_path), "CAMERA_1_URL": url}))


def test_doctor_warns_of_passwords_readable_in_ffmpeg_argv(tmp_path):
    with_password = config(tmp_path, "rtsp://admin:pw@cam/stream")
    check = check_proc_privacy(HOST.format(options=""), with_password)
    assert check.level == "warn" and "/proc/PID/cmdline" in check.detail and "hidepid=invisible" in check.hint
    assert check_proc_privacy(HOST.format(options=",hidepid=invisible"), with_password).level == "ok"
    assert check_proc_privacy(HOST.format(options=""), config(tmp_path, "rtsp://cam/stream")).level == "ok"
    assert check_proc_privacy("", None).level == "warn"   # no readable settings: say it anyway


def test_this_hosts_mountinfo_parses():
    text = Path("/proc/self/mountinfo").read_text()
    assert proc_hidepid(text) in (None, "0", "off", "1", "2", "4", "noaccess", "invisible", "ptraceable")
