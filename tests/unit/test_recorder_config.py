import pytest

from services.common.config import ConfigError, EnvReader, load_env
from services.common.redact import redact
from services.recorder.config import read_recorder_config


def read(values, tmp_path):
    base = {"DATA_DIR": str(tmp_path / "data"), "CAMERA_1_URL": "rtsp://cam/stream"}
    base.update(values)
    return read_recorder_config(EnvReader({k: v for k, v in base.items() if v is not None}))


def problems(values, tmp_path):
    with pytest.raises(ConfigError) as info:
        read(values, tmp_path)
    return [str(issue) for issue in info.value.issues]


def test_defaults(tmp_path):
    config = read({}, tmp_path)
    assert config.segment_duration == 600
    assert config.video_codec == "copy"
    assert config.stall_timeout == 10
    assert config.common.log_level == "INFO"
    assert [c.id for c in config.cameras] == [1]
    assert config.cameras[0].name == "camera_1"
    assert not (tmp_path / "data").exists()   # reading settings creates nothing; run_daemon does


def test_non_contiguous_ids_and_names(tmp_path):
    config = read({"CAMERA_7_URL": "rtsps://h/x", "CAMERA_7_NAME": "Barn", "CAMERA_7_AUDIO": "none"}, tmp_path)
    assert [(c.id, c.name, c.audio) for c in config.cameras] == [(1, "camera_1", "auto"), (7, "Barn", "none")]


@pytest.mark.parametrize("values, key, fragment", [
    ({"CAMERA_1_URL": "http://cam/x"}, "CAMERA_1_URL", "rtsp://"),
    ({"CAMERA_1_URL": "rtsp://"}, "CAMERA_1_URL", "with a host"),
    ({"CAMERA_1_URL": None, "CAMERA_1_NAME": "x"}, "CAMERA_1_URL", "missing camera URL"),
    ({"CAMERA_1_URL": None}, "CAMERA_1_URL", "no camera configured"),
    ({"CAMERA_X_URL": "rtsp://h/x"}, "CAMERA_X_URL", "whole number"),
    ({"CAMERA_01_URL": "rtsp://h/y"}, "CAMERA_1_URL", "duplicate camera id 1"),
    ({"SEGMENT_DURATION": "ten"}, "SEGMENT_DURATION", "whole number"),
    ({"SEGMENT_DURATION": "1"}, "SEGMENT_DURATION", "between 2 and 3600"),
    ({"SEGMENT_DURATION": "99999"}, "SEGMENT_DURATION", "between"),
    ({"STALL_TIMEOUT": "-3"}, "STALL_TIMEOUT", "between"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL", "one of"),
    ({"VIDEO_CODEC": "x264; rm -rf"}, "VIDEO_CODEC", "encoder name"),
    ({"CAMERA_1_AUDIO": "mp3"}, "CAMERA_1_AUDIO", "one of"),
    ({"FFMPEG_PATH": "/nonexistent/ffmpeg"}, "FFMPEG_PATH", "not found"),
])
def test_each_bad_value_names_its_key(values, key, fragment, tmp_path):
    found = problems(values, tmp_path)
    assert any(line.startswith(f"{key}:") and fragment in line for line in found), found


def test_all_problems_reported_at_once(tmp_path):
    found = problems({"SEGMENT_DURATION": "x", "STALL_TIMEOUT": "y", "CAMERA_1_URL": "ftp://h"}, tmp_path)
    assert len(found) == 3


def test_unwritable_data_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    found = problems({"DATA_DIR": str(blocker / "sub")}, tmp_path)
    assert any(line.startswith("DATA_DIR:") for line in found)


def test_url_password_never_in_errors(tmp_path):
    found = problems({"CAMERA_1_URL": "http://admin:hunter22@cam/x"}, tmp_path)
    assert "hunter22" not in " ".join(found)
    read({"CAMERA_2_URL": "rtsp://admin:s3cr%40t@cam/x"}, tmp_path)
    assert "s3cr%40t" not in redact("password is s3cr%40t") and "s3cr@t" not in redact("pw s3cr@t")


def test_env_file_precedence(tmp_path, monkeypatch):
    env_file = tmp_path / "custom.env"
    env_file.write_text("SEGMENT_DURATION=5\nLOG_LEVEL=debug\n")
    reader = load_env(str(env_file), environ={"LOG_LEVEL": "warning"})
    assert reader.values["SEGMENT_DURATION"] == "5"
    assert reader.values["LOG_LEVEL"] == "warning"  # the real environment wins
    via_var = load_env(None, environ={"ENV_FILE": str(env_file)})
    assert via_var.values["SEGMENT_DURATION"] == "5"
    with pytest.raises(ConfigError, match="ENV_FILE"):
        load_env(str(tmp_path / "missing.env"), environ={})
    monkeypatch.chdir(tmp_path)
    assert "SEGMENT_DURATION" not in load_env(None, environ={}).values  # no ./.env: fine


def test_backoff_tuning(tmp_path):
    config = read({"RECORDER_BACKOFF_MAX": "2", "RECORDER_STABLE_AFTER": "5"}, tmp_path)
    assert (config.backoff_max, config.stable_after) == (2.0, 5.0)
    assert any(line.startswith("RECORDER_BACKOFF_MAX:") for line in problems({"RECORDER_BACKOFF_MAX": "soon"}, tmp_path))
