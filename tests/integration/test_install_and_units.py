"""systemd/install-services.sh into a temporary root, and the unit files themselves.

The script only ever runs with --root here: no users, apt packages, /etc or /opt of this
machine are touched, and --no-pip keeps it offline (requirements are not installed).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.settings import FFMPEG_STOP_TIMEOUT, UPLOAD_STOP_TIMEOUT

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "systemd" / "install-services.sh"
UNITS = sorted((REPO / "systemd").glob("*.service"))
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
SYSTEMCTL = shutil.which("systemctl")
MAX_EXPOSURE = 2.0
# Seconds each daemon may spend stopping cleanly before systemd's TimeoutStopSec must not
# yet have fired: the longest FFMPEG_STOP_TIMEOUT and UPLOAD_STOP_TIMEOUT the settings allow.
STOP_GRACE = {"video-recorder.service": FFMPEG_STOP_TIMEOUT.maximum, "s3-uploader.service": UPLOAD_STOP_TIMEOUT.maximum}
DEFAULT_STOP_GRACE = 10
DROPIN = "data-dir.conf"
VIEWER_UNIT = "video-viewer.service"   # installed disabled unless --with-viewer


def run_script(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ROOT"}
    env["PYTHON"] = sys.executable
    return subprocess.run(["bash", str(SCRIPT), "--root", str(root), "--no-pip", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Mode and content hash (or link target) of everything under root."""
    result = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            content = "-> " + os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            content = "dir"
        result[str(path.relative_to(root))] = (stat.S_IMODE(st.st_mode), content)
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    done = run_script(root)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


# ------------------------------------------------------------------ install script

def test_layout_and_modes(installed: Path) -> None:
    app = installed / "opt/video-recorder"
    assert (app / "services/__main__.py").is_file()
    assert (app / "requirements.txt").is_file()
    assert (app / "docs/architecture.md").is_file()
    assert os.access(app / ".venv/bin/python", os.X_OK)
    assert not list(app.rglob("__pycache__")), "byte code copied from the checkout"
    # Code and venv: nobody but the owner (root on a real install) may write.
    for path in [app, *app.rglob("*")]:
        if not path.is_symlink():
            assert mode(path) & 0o022 == 0, f"{path} is group/other-writable"

    etc = installed / "etc/video-recorder"
    assert mode(etc) == 0o750 and not (etc / ".env").exists()
    for env_file in (etc / "recorder.env", etc / "uploader.env"):
        assert mode(env_file) == 0o600
        lines = env_file.read_text().splitlines()
        assert "DATA_DIR=/var/lib/video-recorder" in lines
        assert not any(line.startswith("DATA_DIR=./") for line in lines)
    assert "AWS_SECRET_ACCESS_KEY" not in (etc / "recorder.env").read_text()
    assert "CAMERA_1_URL" not in (etc / "uploader.env").read_text()

    data = installed / "var/lib/video-recorder"
    assert mode(data) == 0o2750
    for unit in UNITS:
        target = installed / "etc/systemd/system" / unit.name
        assert target.read_bytes() == unit.read_bytes()
        assert mode(target) == 0o644
        if SYSTEMCTL:  # enabled offline through `systemctl --root`; the viewer only when asked
            wanted = installed / "etc/systemd/system/multi-user.target.wants" / unit.name
            assert wanted.is_symlink() == (unit.name != VIEWER_UNIT), unit.name


@pytest.mark.skipif(SYSTEMCTL is None, reason="systemctl not installed")
def test_the_viewer_is_enabled_only_when_asked(tmp_path: Path) -> None:
    done = run_script(tmp_path, "--with-viewer")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "etc/systemd/system/multi-user.target.wants" / VIEWER_UNIT).is_symlink()
    assert "not enabled" not in done.stdout


def test_second_run_changes_nothing_and_keeps_env_edits(installed: Path) -> None:
    env_file = installed / "etc/video-recorder/recorder.env"
    edited = env_file.read_text() + "CAMERA_7_URL=rtsp://user:pw@10.0.0.7/stream\n"
    env_file.write_text(edited)
    # Byte code left by running the commands as root is not a code change.
    cache = installed / "opt/video-recorder/services/__pycache__"
    cache.mkdir()
    (cache / "config.cpython-311.pyc").write_bytes(b"\0")
    before = snapshot(installed)

    done = run_script(installed)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "unchanged" in done.stdout and "keeping existing" in done.stdout
    assert snapshot(installed) == before
    assert env_file.read_text() == edited


def test_world_readable_env_is_tightened(tmp_path: Path) -> None:
    env_file = tmp_path / "etc/video-recorder/recorder.env"
    env_file.parent.mkdir(parents=True)
    env_file.write_text("DATA_DIR=/srv/elsewhere\nCAMERA_1_URL=rtsp://a:b@h/s\n")
    env_file.chmod(0o644)
    (tmp_path / "etc/video-recorder/uploader.env").write_text("DATA_DIR=/srv/elsewhere\n")

    done = run_script(tmp_path)

    assert done.returncode == 0, done.stderr
    assert mode(env_file) == 0o600
    assert env_file.read_text().startswith("DATA_DIR=/srv/elsewhere")  # content untouched
    assert "readable by other users" in done.stdout
    # Not warned about any more: a drop-in makes it writable (test_data_dir_elsewhere_gets_a_drop_in).
    assert (tmp_path / "etc/systemd/system/video-recorder.service.d" / DROPIN).is_file()


def test_uninstall_keeps_data_and_env(tmp_path: Path) -> None:
    assert run_script(tmp_path).returncode == 0
    recording = tmp_path / "var/lib/video-recorder/videos/completed/camera_1_2026-01-24_14-30-00.mp4"
    recording.parent.mkdir(parents=True, exist_ok=True)   # the script made it
    recording.write_bytes(b"footage")
    env_file = tmp_path / "etc/video-recorder/uploader.env"
    env_text = env_file.read_text()

    done = run_script(tmp_path, "--uninstall")

    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "opt/video-recorder").exists()
    for unit in UNITS:
        assert not (tmp_path / "etc/systemd/system" / unit.name).exists()
        assert not (tmp_path / "etc/systemd/system/multi-user.target.wants" / unit.name).is_symlink()
    assert recording.read_bytes() == b"footage"
    assert env_file.read_text() == env_text and mode(env_file) == 0o600
    assert str(env_file.parent) in done.stdout and str(tmp_path / "var/lib/video-recorder") in done.stdout
    assert "video-recorder, s3-uploader and group video-footage" in done.stdout
    # Uninstalling twice is harmless.
    assert run_script(tmp_path, "--uninstall").returncode == 0


# ------------------------------------------------------------------ two users, two settings files

def test_data_dir_is_laid_out_for_two_users(installed: Path) -> None:
    """completed/ is the hand-off: group-writable and setgid for both, never sticky (the uploader
    moves the recorder's files out); state/ and logs/ are shared but sticky (no daemon removes
    the other's files). Owners are only set on a real install (not in a fake root)."""
    videos = installed / "var/lib/video-recorder/videos"
    for name in ("recordings", "completed", "uploaded"):
        assert mode(videos / name) == 0o2770, name
    for name in ("logs", "state"):
        assert mode(videos.parent / name) == 0o3770, name


def test_a_single_env_is_split_and_kept_as_a_backup(tmp_path: Path) -> None:
    old = ("DATA_DIR=/var/lib/video-recorder\nCAMERA_1_URL=rtsp://a:pw@h/s\nS3_BUCKET_NAME=cams\n"
           "AWS_SECRET_ACCESS_KEY=s3cr3t\nENCRYPTION_PASSWORD=hunter2\nAWS_SECRET_ACESS_KEY=typo\n")
    write_env(tmp_path, old).chmod(0o640)

    done = run_script(tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    etc = tmp_path / "etc/video-recorder"
    recorder, uploader = (etc / "recorder.env").read_text(), (etc / "uploader.env").read_text()
    assert "rtsp://a:pw@h/s" in recorder and "s3cr3t" not in recorder and "hunter2" not in recorder
    assert "s3cr3t" in uploader and "hunter2" in uploader and "rtsp://" not in uploader
    assert "typo" not in recorder + uploader and "AWS_SECRET_ACESS_KEY" in done.stdout
    backup = etc / ".env.before-split"
    assert backup.read_text() == old and mode(backup) == 0o600 and not (etc / ".env").exists()
    assert mode(etc / "recorder.env") == mode(etc / "uploader.env") == 0o600
    before = snapshot(tmp_path)
    assert run_script(tmp_path).returncode == 0 and snapshot(tmp_path) == before   # idempotent


def test_units_run_the_daemons_as_two_users_with_their_own_settings() -> None:
    expected = {"video-recorder.service": ("video-recorder", "recorder.env"),
                "s3-uploader.service": ("s3-uploader", "uploader.env"),
                # The viewer plays from the bucket: it needs the uploader's keys, never FFmpeg's user.
                "video-viewer.service": ("s3-uploader", "uploader.env")}
    for name, (user, env) in expected.items():
        service = service_section(REPO / "systemd" / name)
        assert service["User"] == [user] and service["Group"] == ["video-footage"], name
        assert f"--env-file /etc/video-recorder/{env}" in service["ExecStart"][0], name


@pytest.mark.parametrize("args, code, message", [
    (["--bogus"], 2, "unknown option '--bogus'"),
    (["--start", "--uninstall"], 1, "exclude each other"),
])
def test_bad_arguments_give_one_line(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    done = run_script(tmp_path, *args)
    assert done.returncode == code
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "opt").exists()


def test_root_option_needs_a_value() -> None:
    done = subprocess.run(["bash", str(SCRIPT), "--root"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "--root needs a directory" in done.stderr


def test_help() -> None:
    done = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "--uninstall" in done.stdout and "--root" in done.stdout


def write_env(root: Path, text: str) -> Path:
    """A single .env, as installs before the split had (the script splits it)."""
    env_file = root / "etc/video-recorder/.env"
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text(text)
    return env_file


def dropins(root: Path) -> dict[str, str]:
    return {p.parent.name: p.read_text() for p in (root / "etc/systemd/system").glob(f"*.service.d/{DROPIN}")}


def test_data_dir_elsewhere_gets_a_drop_in(tmp_path: Path) -> None:
    """A USB disk: the sandbox may write there, and the units wait for its mount."""
    write_env(tmp_path, 'DATA_DIR="/media/usb-cams/footage/"  # the USB disk\n')

    done = run_script(tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    found = dropins(tmp_path)
    assert set(found) == {f"{unit.name}.d" for unit in UNITS}
    for text in found.values():
        lines = text.splitlines()
        assert "RequiresMountsFor=/media/usb-cams/footage" in lines and "ReadWritePaths=/media/usb-cams/footage" in lines
        assert lines.index("[Unit]") < lines.index("RequiresMountsFor=/media/usb-cams/footage") < lines.index("[Service]")
    before = snapshot(tmp_path)
    assert run_script(tmp_path).returncode == 0 and snapshot(tmp_path) == before   # idempotent

    env_file = tmp_path / "etc/video-recorder/recorder.env"   # the split file names DATA_DIR now
    env_file.write_text("DATA_DIR=/var/lib/video-recorder\n")   # back to the default: drop-ins go
    assert run_script(tmp_path).returncode == 0 and dropins(tmp_path) == {}
    env_file.write_text("DATA_DIR=/srv/cams\n")
    assert run_script(tmp_path).returncode == 0 and len(dropins(tmp_path)) == len(UNITS)
    assert run_script(tmp_path, "--uninstall").returncode == 0 and dropins(tmp_path) == {}
    assert not list((tmp_path / "etc/systemd/system").glob("*.service.d"))


@pytest.mark.parametrize("data_dir, why", [
    ("./data", "relative"), ("/home/pi/cams", "ProtectHome"), ("/tmp/cams", "PrivateTmp"),
    ('"/media/usb disk"', "white space"),
])
def test_data_dir_the_sandbox_cannot_reach_is_a_warning(tmp_path: Path, data_dir: str, why: str) -> None:
    write_env(tmp_path, f"DATA_DIR={data_dir}\n")
    done = run_script(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning: DATA_DIR" in done.stdout and why in done.stdout and dropins(tmp_path) == {}


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")
def test_drop_in_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    write_env(tmp_path / "root", "DATA_DIR=/srv/cams\n")
    assert run_script(tmp_path / "root").returncode == 0
    unit = REPO / "systemd/video-recorder.service"
    copy = verifiable_copy(unit, tmp_path)
    (tmp_path / f"{unit.name}.d").mkdir()
    (tmp_path / f"{unit.name}.d" / DROPIN).write_text(dropins(tmp_path / "root")[f"{unit.name}.d"])
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", str(copy)], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, SYSTEMD_UNIT_PATH=f"{tmp_path}:"))
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if unit.name in line or DROPIN in line]
    assert done.returncode == 0 and not complaints, done.stdout + done.stderr


# ------------------------------------------------------------------ unit files

def service_section(unit: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = None
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Service" and "=" in line and not line.startswith(("#", ";")):
            key, value = line.split("=", 1)
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def seconds(value: str) -> float:
    """systemd time span: '45', '45s', '1min 30s', '2m'."""
    factors = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value)
    assert parts and all(unit in factors for _, unit in parts), f"cannot parse time span {value!r}"
    return sum(float(n) * factors[unit] for n, unit in parts)


def test_units_found() -> None:
    names = {unit.name for unit in UNITS}
    assert "video-recorder.service" in names


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_supervision_settings(unit: Path) -> None:
    service = service_section(unit)
    assert service.get("Type") == ["notify"]
    assert service.get("Restart") == ["always"]
    assert "78" in " ".join(service.get("RestartPreventExitStatus", [])).split()
    assert "WatchdogSec" in service and seconds(service["WatchdogSec"][-1]) > 0
    grace = STOP_GRACE.get(unit.name, DEFAULT_STOP_GRACE)
    assert "TimeoutStopSec" in service
    assert seconds(service["TimeoutStopSec"][-1]) > grace, "systemd would SIGKILL before the clean stop"
    assert service.get("SyslogIdentifier") == [unit.stem], "journal lines would be tagged 'python'"
    assert service.get("ExecReload") == ["/bin/kill -HUP $MAINPID"], "systemctl reload must send SIGHUP"


def test_recorder_starts_after_time_synchronisation() -> None:
    """Segment names come from the wall clock; a Pi without a clock battery boots in the past."""
    lines = (REPO / "systemd/video-recorder.service").read_text().splitlines()
    ordering = " ".join(line.split("=", 1)[1] for line in lines if line.startswith("After=")).split()
    wanted = " ".join(line.split("=", 1)[1] for line in lines if line.startswith("Wants=")).split()
    assert "time-sync.target" in ordering and "time-sync.target" in wanted


def verifiable_copy(unit: Path, directory: Path) -> Path:
    """The unit with paths that exist on this machine (the installed ones need not)."""
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={sys.executable}", unit.read_text(), flags=re.M)
    text = re.sub(r"^WorkingDirectory=.*$", f"WorkingDirectory={REPO}", text, flags=re.M)
    copy = directory / unit.name
    copy.write_text(text)
    return copy


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_passes_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    copy = verifiable_copy(unit, tmp_path)
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", str(copy)],
                          capture_output=True, text=True, timeout=60)
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if unit.name in line]
    assert done.returncode == 0 and not complaints, done.stdout + done.stderr


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_security_exposure(unit: Path) -> None:
    done = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=yes", "--no-pager", str(unit)],
                          capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", done.stdout)
    if found is None and "--offline" in done.stderr:
        pytest.skip(f"this systemd-analyze has no --offline: {done.stderr.strip()}")
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, done.stdout
