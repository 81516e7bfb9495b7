"""Splitting one `.env` into the recorder's and the uploader's files by `used_by`."""
from __future__ import annotations

from pathlib import Path

from services.common.env_split import destinations, main, split_env
from services.common.settings import ALL, RECORDER, UPLOADER

REPO = Path(__file__).resolve().parents[2]
SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "ENCRYPTION_PASSWORD", "ENCRYPTION_SALT")


def keys(text: str) -> set[str]:
    return {line.split("=", 1)[0].lstrip("#").strip() for line in text.splitlines()
            if "=" in line and not line.startswith("# ")}


def test_every_setting_goes_where_it_is_used() -> None:
    for setting in ALL:
        key = setting.at(3).name if setting.is_pattern else setting.name
        to_recorder, to_uploader = destinations(key)
        assert to_recorder == bool(setting.used_by & RECORDER), key
        # The viewer reads the uploader's file: keys only the commands use go there.
        assert to_uploader == (bool(setting.used_by & UPLOADER) or not setting.used_by & RECORDER), key


def test_secrets_never_reach_the_recorder_and_camera_urls_never_the_uploader() -> None:
    text = ("DATA_DIR=/var/lib/video-recorder\nCAMERA_1_URL=rtsp://a:pw@h/s\nCAMERA_1_NAME=door\n"
            "# the bucket's key\nAWS_SECRET_ACCESS_KEY=\"s3cr3t\"\n#ENCRYPTION_PASSWORD=old-one\n"
            "ENCRYPTION_PASSWORD=new-one\nVIEWER_PORT=8000\nAWS_SECRET_ACESS_KEY=typo\n")
    split = split_env(text)
    assert "s3cr3t" not in split.recorder and "one" not in split.recorder and "typo" not in split.recorder
    assert "the bucket's key" not in split.recorder     # comments travel with their key
    assert "rtsp://" not in split.uploader
    assert keys(split.recorder) == {"DATA_DIR", "CAMERA_1_URL", "CAMERA_1_NAME"}
    assert keys(split.uploader) == {"DATA_DIR", "CAMERA_1_NAME", "AWS_SECRET_ACCESS_KEY", "ENCRYPTION_PASSWORD",
                                    "VIEWER_PORT"}
    assert 'AWS_SECRET_ACCESS_KEY="s3cr3t"' in split.uploader.splitlines()   # values verbatim
    assert split.dropped == ("AWS_SECRET_ACESS_KEY",)


def test_the_example_splits_without_secrets_in_the_recorder_file() -> None:
    split = split_env((REPO / ".env.example").read_text())
    assert not any(secret in split.recorder for secret in SECRETS)
    assert "CAMERA_1_URL" in split.recorder and "S3_BUCKET_NAME" in split.uploader
    assert split.dropped == ()


def test_the_command_writes_into_existing_files(tmp_path: Path, capsys) -> None:
    source, recorder, uploader = tmp_path / ".env", tmp_path / "recorder.env", tmp_path / "uploader.env"
    source.write_text("CAMERA_1_URL=rtsp://h/s\nAWS_ACCESS_KEY_ID=AKIA\nNOT_A_SETTING=1\n")
    recorder.write_text("old content that is longer than the new one " * 10)
    uploader.touch()
    recorder.chmod(0o600)
    assert main([str(source), str(recorder), str(uploader)]) == 0
    assert "AKIA" not in recorder.read_text() and "AKIA" in uploader.read_text()
    assert "old content" not in recorder.read_text() and recorder.stat().st_mode & 0o777 == 0o600
    assert capsys.readouterr().out.split() == ["NOT_A_SETTING"]
