"""`doctor`'s checks of the host itself: a clock segments can be named by, who can read
FFmpeg's command line (camera passwords), and whether the installed recorder is kept apart from
the uploader's secrets (two users, two settings files; docs/security.md).

FFmpeg takes RTSP credentials only in the URL: its RTSP demuxer (4.4 and 5.1) has no user or
password option and sends what the URL's user:password part holds, so the URL, password
included, is in FFmpeg's argv, which /proc/PID/cmdline shows to every local user unless /proc
is mounted with hidepid. The units' ProtectProc=invisible only changes what the services see.
"""
from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path
from typing import Callable
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


# ----- secrets kept apart -------------------------------------------------------------------------
RECORDER_USER, UPLOADER_USER, SHARED_GROUP = "video-recorder", "s3-uploader", "video-footage"
ETC_DIR = Path("/etc/video-recorder")
# What FFmpeg's user must never read: the bucket's keys and the encryption password.
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "ENCRYPTION_PASSWORD",
               "ENCRYPTION_SALT")
FIX = "sudo systemd/install-services.sh (splits the settings and sets the users; docs/security.md)"
Account = Callable[[str], "tuple[int, frozenset[int]] | None"]   # user -> (uid, gids), None if absent


def account(user: str) -> tuple[int, frozenset[int]] | None:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    return entry.pw_uid, frozenset(os.getgrouplist(user, entry.pw_gid))


def group_id(name: str) -> int | None:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def readable_by(st: os.stat_result, uid: int, gids: frozenset[int]) -> bool:
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IRUSR)
    if st.st_gid in gids:
        return bool(st.st_mode & stat.S_IRGRP)
    return bool(st.st_mode & stat.S_IROTH)


def unit_setting(unit: Path, key: str) -> str | None:
    """The last `key=` of a unit file's lines (what systemd uses), or None."""
    values = [line.split("=", 1)[1].strip() for line in unit.read_text().splitlines()
              if line.strip().startswith(f"{key}=")]
    return values[-1] if values else None


def env_keys(path: Path) -> set[str]:
    return {line.split("=", 1)[0].strip().removeprefix("export ").strip()
            for line in path.read_text().splitlines() if "=" in line and not line.lstrip().startswith("#")}


def check_secrets_apart(unit_dir: Path, data_dir: Path | None, etc_dir: Path = ETC_DIR,
                        lookup: Account = account, gid_of: Callable[[str], int | None] = group_id) -> list[Check]:
    """The installed units run the daemons as two users, each reading only its own settings, and
    completed/ is the shared group's; nothing when the units are not installed (daemons run by hand)."""
    units = {role: unit_dir / name for role, name in (("recorder", "video-recorder.service"),
                                                       ("uploader", "s3-uploader.service"))}
    if not all(unit.is_file() for unit in units.values()):
        return []
    problems = []
    users = {role: unit_setting(unit, "User") for role, unit in units.items()}
    if users["recorder"] == users["uploader"]:
        problems.append(f"both daemons run as {users['recorder']}: FFmpeg's user can read the bucket keys")
    files = {"recorder": (etc_dir / "recorder.env", UPLOADER_USER), "uploader": (etc_dir / "uploader.env", RECORDER_USER)}
    for role, (path, other) in files.items():
        try:
            st = path.stat()
            keys = env_keys(path)
        except OSError as exc:
            problems.append(f"cannot read {path} ({exc.strerror})")
            continue
        who = lookup(other)
        if who is not None and readable_by(st, *who):
            problems.append(f"{path} is readable by {other}")
        if role == "recorder" and (secrets := sorted(keys & set(SECRET_KEYS))):
            problems.append(f"{path} holds {', '.join(secrets)}, which FFmpeg's user must not read")
    if data_dir is not None:
        problems += completed_problems(data_dir / "videos" / "completed", gid_of(SHARED_GROUP))
    if problems:
        return [Check("warn", "secrets apart", "; ".join(problems), FIX)]
    return [Check("ok", "secrets apart", f"recorder as {users['recorder']}, uploader as {users['uploader']}, "
                  "each reading only its own settings")]


def completed_problems(completed: Path, shared_gid: int | None) -> list[str]:
    """The hand-off folder: the shared group's, group-writable, setgid (new files keep the group),
    not sticky (the uploader moves and deletes the recorder's files)."""
    try:
        st = completed.stat()
    except OSError:
        return []   # not made yet: the recorder makes it
    found = []
    if shared_gid is not None and st.st_gid != shared_gid:
        found.append(f"{completed} is not in group {SHARED_GROUP}")
    if st.st_mode & 0o2070 != 0o2070:
        found.append(f"{completed} is mode {stat.S_IMODE(st.st_mode):o}, not group-writable with setgid (2770)")
    if st.st_mode & stat.S_ISVTX:
        found.append(f"{completed} has the sticky bit: the uploader could not move the recorder's segments")
    return found
