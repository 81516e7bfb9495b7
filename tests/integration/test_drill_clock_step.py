"""Drill: FFmpeg's wall clock steps backwards while recording (libfaketime, no change to the host).

FFmpeg names the files it writes from its clock, so a step back repeats its names. Nothing may
be overwritten: every file recorded before the step keeps its bytes, and recording goes on. The
hand-off names each segment by the host-clock time its first frame arrived (recorder/timing.py),
so the names in completed/ keep moving forward whatever FFmpeg's clock says. The clock is moved
for FFmpeg only (through FFMPEG_PATH): CPython's sleeps fail with EINVAL now and then under
libfaketime, which would test the preload, not the recorder. A step of the host's own clock is
detected by the daemon (`backward_step`, unit-tested), and a repeated name in completed/ gets a
`_<n>` suffix (`tests/unit/test_segment_handoff.py`).
"""
import hashlib
import os
import shutil
from pathlib import Path

import pytest

from services.common.data_layout import DataLayout
from tests.support.figures import Stopwatch, record
from tests.support.media import decode_errors
from tests.support.processes import Daemon, wait_for, write_env

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


@pytest.mark.skipif(not LIBFAKETIME.exists(), reason="libfaketime (apt: faketime) not installed")
def test_clock_stepped_back_overwrites_nothing(tmp_path, camera_server):
    server = camera_server({"cam": "h264:aac"})
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    layout = DataLayout(tmp_path / "data")
    wrapper = tmp_path / "ffmpeg-faketime"
    wrapper.write_text(f"#!/bin/sh\nLD_PRELOAD={LIBFAKETIME} FAKETIME_TIMESTAMP_FILE={offset} FAKETIME_NO_CACHE=1 "
                       f"FAKETIME_DONT_FAKE_MONOTONIC=1 exec {shutil.which('ffmpeg')} \"$@\"\n")
    wrapper.chmod(0o755)
    env = write_env(tmp_path / ".env", {"DATA_DIR": layout.root, "SEGMENT_DURATION": 2, "STALL_TIMEOUT": 5,
                                        "CAMERA_1_URL": server.url("cam"), "FFMPEG_PATH": wrapper})
    recorder = Daemon("services.video_recorder", env, tmp_path / "recorder.log").start()
    try:
        files = lambda: sorted(layout.completed.glob("*.mp4"))  # noqa: E731
        wait_for(lambda: len(files()) >= 4, 60, "segments before the step")
        before = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in files()}
        staged = tmp_path / "faketime.new"
        staged.write_text("-8\n")  # the clock jumps 8 s back: the last names come round again
        os.replace(staged, offset)
        clock = Stopwatch()
        wait_for(lambda: len(files()) >= len(before) + 4, 40, "recording to go on")
        record("clock stepped back 8 s", "four more segments handed off after", clock.elapsed())
    finally:
        assert recorder.stop() == 0
    for name, digest in before.items():
        assert hashlib.md5((layout.completed / name).read_bytes()).hexdigest() == digest, f"{name} was overwritten"
    for path in files():
        assert decode_errors(path) == "", path.name
    after = [p.name for p in files() if p.name not in before]
    assert after and min(after) > max(before), "names went back with FFmpeg's clock"
    assert shutil.which("ffmpeg")
