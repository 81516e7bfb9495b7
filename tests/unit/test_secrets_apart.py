"""`doctor`'s check that the recorder (FFmpeg) cannot read the uploader's secrets."""
from __future__ import annotations

import os
from pathlib import Path

from services.commands.doctor_host import check_secrets_apart

REPO = Path(__file__).resolve().parents[2]
ME = os.getuid()
OTHER = ME + 4242   # a uid no file here belongs to
SHARED = os.getgid()


def install(tmp_path: Path, recorder_user: str = "video-recorder", recorder_env: str = "CAMERA_1_URL=rtsp://h/s\n",
            completed_mode: int = 0o2770) -> tuple[Path, Path, Path]:
    units, etc, data = tmp_path / "units", tmp_path / "etc", tmp_path / "data"
    units.mkdir(parents=True)
    for name in ("video-recorder.service", "s3-uploader.service"):
        text = (REPO / "systemd" / name).read_text()
        if name == "video-recorder.service":
            text = text.replace("User=video-recorder", f"User={recorder_user}")
        (units / name).write_text(text)
    etc.mkdir()
    (etc / "recorder.env").write_text(recorder_env)
    (etc / "uploader.env").write_text("AWS_SECRET_ACCESS_KEY=s3cr3t\n")
    for env in etc.iterdir():
        env.chmod(0o600)
    completed = data / "videos" / "completed"
    completed.mkdir(parents=True)
    completed.chmod(completed_mode)
    return units, etc, data


def check(units: Path, etc: Path, data: Path | None, owner_is: str | None = None):
    """Each file belongs to this process's user; `owner_is` names the other side's user as us."""
    lookup = lambda user: (ME if user == owner_is else OTHER, frozenset({OTHER}))  # noqa: E731
    return check_secrets_apart(units, data, etc, lookup=lookup, gid_of=lambda name: SHARED)


def test_the_installed_layout_is_ok(tmp_path: Path) -> None:
    [found] = check(*install(tmp_path))
    assert found.level == "ok" and "video-recorder" in found.detail and "s3-uploader" in found.detail


def test_nothing_to_say_without_installed_units(tmp_path: Path) -> None:
    """Daemons run by hand with one .env: the check is not for them."""
    assert check(tmp_path / "none", tmp_path, None) == []


def test_one_user_for_both_is_a_warning_with_the_fix(tmp_path: Path) -> None:
    [found] = check(*install(tmp_path, recorder_user="s3-uploader"))
    assert found.level == "warn" and "both daemons run as s3-uploader" in found.detail
    assert "install-services.sh" in found.hint


def test_secrets_in_the_recorders_file_are_named(tmp_path: Path) -> None:
    [found] = check(*install(tmp_path, recorder_env="CAMERA_1_URL=x\nENCRYPTION_PASSWORD=pw\n#AWS_ACCESS_KEY_ID=old\n"))
    assert found.level == "warn" and "holds ENCRYPTION_PASSWORD," in found.detail
    assert "AWS_ACCESS_KEY_ID" not in found.detail and "pw" not in found.detail.split()


def test_a_file_the_other_user_can_read(tmp_path: Path) -> None:
    units, etc, data = install(tmp_path)
    [found] = check(units, etc, data, owner_is="video-recorder")   # uploader.env readable by the recorder
    assert found.level == "warn" and f"{etc / 'uploader.env'} is readable by video-recorder" in found.detail
    (etc / "recorder.env").chmod(0o604)
    [found] = check(units, etc, data)
    assert f"{etc / 'recorder.env'} is readable by s3-uploader" in found.detail


def test_completed_needs_setgid_group_write_and_no_sticky_bit(tmp_path: Path) -> None:
    [found] = check(*install(tmp_path, completed_mode=0o1770))
    assert found.level == "warn" and "not group-writable with setgid" in found.detail and "sticky" in found.detail
    [found] = check(*install(tmp_path / "b", completed_mode=0o750))
    assert "mode 750" in found.detail
