"""Commands that tell the truth, piece by piece: unknown keys and their nearest known key,
settings read without creating folders, doctor's verdict and JSON, exit codes in --help,
`cost` without footage, and what `sync` shows while and after the uploader runs."""
from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timezone

import pytest

from services import __version__
from services.__main__ import COMMANDS, build_parser, main
from services.commands import cost, lifecycle
from services.commands.checks import Check, summary_data
from services.commands.doctor import check_config
from services.commands.sync import failure_lines, progress, progress_line
from services.common.config import EnvReader, load_env, read_common, unknown_key_line
from services.common.data_layout import DataLayout
from services.common.settings import nearest
from services.uploader.report import Failure, UploaderSnapshot


@pytest.mark.parametrize("key, meant", [("SEGMENT_DURATON", "SEGMENT_DURATION"), ("CAMERA1_URL", "CAMERA_1_URL"),
                                        ("camera_12_name", "CAMERA_12_NAME"), ("S3_BUCKET", "S3_BUCKET_NAME"),
                                        ("LOGLEVEL", "LOG_LEVEL"), ("ZZZ", None)])
def test_nearest_known_key_patterns_included(key, meant):
    assert nearest(key) == meant


def test_only_the_files_unknown_keys_are_flagged(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"DATA_DIR={tmp_path / 'data'}\nCAMERA_1_URL=rtsp://h/x\nSEGMENT_DURATON=60\n")
    env = load_env(str(env_file), environ={"CAMERA7_URL": "x", "PATH": "/usr/bin", "HOME": "/root"})
    assert env.unknown_keys() == ("SEGMENT_DURATON",)
    assert read_common(env).unknown_keys == ("SEGMENT_DURATON",)
    assert unknown_key_line("SEGMENT_DURATON") == ("unknown key SEGMENT_DURATON (did you mean SEGMENT_DURATION?): "
                                                   "it is ignored")


def test_reading_settings_creates_no_folder_but_finds_what_prepare_would(tmp_path):
    env = EnvReader({"DATA_DIR": str(tmp_path / "a" / "b")})
    assert read_common(env).data_dir == tmp_path / "a" / "b" and env.issues == []
    assert not (tmp_path / "a").exists()
    (tmp_path / "file").write_text("")
    assert "is not a folder" in DataLayout(tmp_path / "file" / "data").problem()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        problem = DataLayout(locked / "data").problem()
        assert problem is None if os.geteuid() == 0 else "not writable" in problem   # root writes anyway
    finally:
        locked.chmod(0o700)
    assert DataLayout(tmp_path / "a" / "b").existing_root() == tmp_path


def test_doctor_does_not_say_all_keys_valid_with_an_unknown_key(tmp_path):
    read = lambda env: env.get  # noqa: E731  any reader that succeeds
    clean = EnvReader({}, file_keys=("DATA_DIR",))
    assert check_config(clean, read)[1] == [Check("ok", "configuration", "all keys valid")]
    typo = EnvReader({}, file_keys=("DATA_DIR", "CAMERA1_URL"))
    checks = check_config(typo, read)[1]
    assert [c.level for c in checks] == ["fail", "ok"]
    assert checks[0].hint == "rename it to CAMERA_1_URL in .env"
    assert "all keys valid" not in "".join(c.detail for c in checks)


def test_doctor_json_counts_and_redacts():
    data = summary_data([Check("ok", "a", "fine"), Check("fail", "b", "broken", "fix it"), Check("warn", "c", "hm")])
    assert (data["failed"], data["warnings"], data["ok"]) == (1, 1, 1)
    assert data["checks"][1] == {"level": "fail", "name": "b", "detail": "broken", "hint": "fix it"}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_lists_its_exit_codes(name):
    parser = build_parser(name)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    text = sub.format_help()
    assert "exit codes:" in text and "  0 " in text and "  78 " in text and "  2 " in text


def test_version_comes_from_the_package(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip().endswith(__version__)


def cost_settings(**env) -> cost.Settings:
    return cost.read_settings(EnvReader({"DATA_DIR": "/nonexistent/data", **env}))


def test_cost_estimates_before_anything_is_recorded(capsys):
    settings = cost_settings(SEGMENT_DURATION="600")
    args = argparse.Namespace(cameras=4, bitrate=2.0, json=True)
    assert cost.run(args, settings) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"] == "given" and len(data["cameras"]) == 4
    assert data["bytes_per_day"] == 4 * 250_000 * 86400   # 2 Mbit/s = 250,000 bytes/s
    assert data["total_usd_per_month"] == pytest.approx(sum(line["usd_per_month"] for line in data["lines"]), abs=0.01)


def test_cost_without_footage_points_at_the_flags(capsys):
    args = argparse.Namespace(cameras=None, bitrate=None, json=False)
    assert cost.run(args, cost_settings()) == 1
    assert "--cameras N --bitrate MBIT" in capsys.readouterr().out
    assert cost.run(argparse.Namespace(cameras=2, bitrate=None, json=False), cost_settings()) == 2


def test_cost_multipart_parts_follow_the_segment_size():
    settings = cost_settings(SEGMENT_DURATION="3600", MULTIPART_THRESHOLD_MB="100", MULTIPART_PART_SIZE_MB="16")
    usage = cost.usage_of(cost.given_bitrates(1, 8.0), settings)   # 1 MB/s: 3.6 GB an hour
    assert usage.segments_per_day == 24 and usage.parts_per_segment == -(-3_600_000_000 // (16 * 1024 * 1024))


def test_lifecycle_json_is_the_rule_in_words_and_as_s3_takes_it():
    from services.bucket.lifecycle import build_rule, read_policy

    rule = build_rule(read_policy(EnvReader({}), "site-a/"))
    data = lifecycle.rule_data(rule, applied=False)
    assert data["applied"] is False and data["rule"] == rule
    assert data["description"][0] == f"rule {rule['ID']} on site-a/:"


def test_sync_progress_counts_only_files_that_left(tmp_path):
    gone, left = tmp_path / "a.mp4", tmp_path / "b.mp4"
    left.write_bytes(b"x" * 300)
    assert progress({gone: 100, left: 300}) == (1, 2, 100, 400)
    assert progress_line(0, 1, 0, 4096).startswith("[" + "-" * 30 + "]")   # a failure is not a full bar
    assert progress_line(0, 0, 0, 0).startswith("[" + "#" * 30 + "]")      # nothing to do is done


def test_sync_failure_says_why():
    now = datetime.now(timezone.utc)
    blocked = UploaderSnapshot(pid=1, updated_at=now, config_error="NoSuchBucket: bucket does not exist")
    assert failure_lines("", blocked, 1) == ["uploads blocked: NoSuchBucket: bucket does not exist"]
    log = ("2026-01-24 14:00:00.000 | INFO    | starting\n"
           "2026-01-24 14:00:01.000 | ERROR   | camera_1_x.mp4: gave up after 5 attempts\n")
    assert failure_lines(log, None, 1) == ["camera_1_x.mp4: gave up after 5 attempts"]
    assert failure_lines("config error (.env): S3_BUCKET_NAME: required\n", None, 78) == [
        "config error (.env): S3_BUCKET_NAME: required"]
    failed = UploaderSnapshot(pid=1, updated_at=now, last_error=Failure("timeout", now))
    assert failure_lines("", failed, 1) == ["last error: timeout"]
    assert failure_lines("", None, 1) == ["the uploader exited with 1 and gave no reason"]
