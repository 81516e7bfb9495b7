"""`doctor`'s checks of the host itself: a clock segments can be named by, and who can read
FFmpeg's command line (camera passwords).

FFmpeg takes RTSP credentials only in the URL: its RTSP demuxer (4.4 and 5.1) has no user or
password option and sends what the URL's user:password part holds, so the URL, password
included, is in FFmpeg's argv, which /proc/PID/cmdline shows to every local user unless /proc
is mounted with hidepid. The units' ProtectProc=invisible only changes what the services see.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from services.commands.checks import Check
from services.common.clock import ClockEvidence, unsynchronised
from services.recorder.config import RecorderConfig

MOUNTINFO = Path("/proc/self/mountinfo")
# hidepid values that keep other users out of /proc/PID/cmdline (numeric and named forms).
HIDING = frozenset({"1", "2", "4", "noaccess", "invisible", "ptraceable"})
FSTAB_LINE = "proc /proc proc defaults,hidepid=invisible 0 0"


def proc_hidepid(mountinfo: str) -> str | None:
    """The hidepid option of the /proc mount in `mountinfo` (/proc/self/mountinfo's text), or None.

    A line: `id parent dev root mountpoint options [optional...] - fstype source superoptions`;
    the last /proc mount listed is the one on top.
    """
    found: str | None = None
    for line in mountinfo.splitlines():
        mount, sep, fs = line.partition(" - ")
        fields, fs_fields = mount.split(), fs.split()
        if not sep or len(fields) < 5 or len(fs_fields) < 3 or fields[4] != "/proc" or fs_fields[0] != "proc":
            continue
        options = dict(opt.partition("=")[::2] for opt in fs_fields[2].split(","))
        found = options.get("hidepid")
    return found


def check_proc_privacy(mountinfo: str, config: RecorderConfig | None) -> Check:
    hidepid = proc_hidepid(mountinfo)
    if hidepid in HIDING:
        return Check("ok", "process privacy", f"/proc is mounted hidepid={hidepid}: other users cannot read "
                     "FFmpeg's command line")
    with_password = [c.id for c in (config.cameras if config else ()) if urlsplit(c.url).password]
    if config is not None and not with_password:
        return Check("ok", "process privacy", "no camera URL holds a password")
    return Check("warn", "process privacy",
                 "/proc is mounted without hidepid: every local user can read the camera passwords in FFmpeg's "
                 "command line (/proc/PID/cmdline); FFmpeg takes RTSP credentials only in the URL",
                 f"add '{FSTAB_LINE}' to /etc/fstab and run 'sudo mount -o remount,hidepid=invisible /proc' "
                 "(docs/security.md)")


def read_mountinfo(path: Path = MOUNTINFO) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def check_clock(evidence: ClockEvidence) -> Check:
    problem = unsynchronised(evidence)
    if problem:
        return Check("warn", "clock", f"not synchronised: {problem}; the recorder waits for it (CLOCK_SYNC_TIMEOUT) "
                     "and segment names may be wrong", "enable NTP: 'sudo timedatectl set-ntp true' (systemd-timesyncd)"
                     " or install chrony")
    if evidence.timesyncd_synced:
        basis = "systemd-timesyncd has synchronised it"
    elif evidence.kernel_synced:
        basis = "the kernel reports NTP synchronisation"
    else:
        basis = "no synchronisation status available; not behind the newest recording"
    return Check("ok", "clock", basis)
