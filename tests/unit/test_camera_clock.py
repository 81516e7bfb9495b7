"""A camera's clock against the host's: prft boxes, the host-time test, and what status/doctor say."""
import os
import struct
from datetime import datetime, timezone

from services.commands.doctor import check_camera_clocks
from services.commands.status import Thresholds, build_report
from services.common.data_layout import DataLayout
from services.common.state_file import publish_snapshot
from services.recorder.camera_clock import (
    NTP_TO_UNIX,
    FragmentTimes,
    ProducerTime,
    describe,
    parse_prft,
    reading,
    track_timescale,
    warning,
)
from services.recorder.config import CameraConfig, RecorderConfig
from services.recorder.report import STATE_FILE, CameraReport, RecorderSnapshot
from services.recorder.states import CameraState


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def prft(unix: float, media: int, version: int = 1) -> bytes:
    seconds = int(unix)
    ntp = struct.pack(">II", seconds + NTP_TO_UNIX, round((unix - seconds) * 2**32))
    media_field = struct.pack(">Q" if version else ">I", media)
    return box(b"prft", bytes([version, 0, 0, 24]) + struct.pack(">I", 1) + ntp + media_field)


def moov(timescale: int, version: int = 0) -> bytes:
    times = b"\0" * (16 if version else 8)
    mdhd = box(b"mdhd", bytes([version, 0, 0, 0]) + times + struct.pack(">I", timescale) + b"\0" * 8)
    return box(b"moov", box(b"mvhd", b"\0" * 100) + box(b"trak", box(b"tkhd", b"\0" * 84) + box(b"mdia", mdhd)))


def fragment(unix: float, media: int) -> bytes:
    return prft(unix, media) + box(b"moof", b"\0" * 40) + box(b"mdat", b"\1" * 5000)


def test_prft_box_is_read_in_both_versions():
    assert parse_prft(prft(1_800_000_000.25, 90_000)[8:]) == ProducerTime(1_800_000_000.25, 90_000)
    assert parse_prft(prft(1_800_000_000.5, 7, version=0)[8:]) == ProducerTime(1_800_000_000.5, 7)
    assert parse_prft(b"\1\0\0\0") is None


def test_timescale_of_the_first_track():
    assert track_timescale(moov(10_240)[8:]) == 10_240
    assert track_timescale(moov(90_000, version=1)[8:]) == 90_000
    assert track_timescale(box(b"mvhd", b"\0" * 100)) is None


def test_fragment_times_follow_a_growing_file_without_reading_media():
    first = box(b"ftyp", b"isom\0\0\2\0") + moov(10_240) + fragment(100.0, 0)
    data = first + fragment(101.0, 10_240)
    whole = data + fragment(102.0, 20_480)
    reads = []

    def reader(upto):
        def read(offset, length):
            reads.append(length)
            return whole[offset:min(offset + length, upto)]
        return read

    times = FragmentTimes()
    times.update(reader(len(first) + 10))   # the second fragment's box is not on disk whole yet
    assert times.latest(segment_start=30.0) is None   # one fragment: no successor to test against
    times.update(reader(len(data) - 10))   # its box is: FFmpeg writes a fragment once the next one began
    assert times.latest(segment_start=30.0) == (100.0, 30.0, 31.0)
    times.update(reader(len(data)))
    assert times.latest(segment_start=30.0) == (100.0, 30.0, 31.0)
    times.update(reader(len(whole)))
    assert times.latest(segment_start=30.0) == (101.0, 31.0, 32.0)
    assert max(reads) < 5000, "media data are skipped, not read"


def test_a_box_at_the_next_fragments_mux_time_is_the_hosts_not_the_cameras():
    # No sender report: FFmpeg stamps the fragment when it writes it, as the next one is muxed.
    assert reading(wall=1001.02, arrived=1000.0, next_muxed=1001.0) is None
    assert reading(wall=1001.6, arrived=1000.0, next_muxed=1001.0) is None    # a slow write
    # A sender report: the camera's time of the fragment's first frame.
    assert round(reading(wall=999.9, arrived=1000.0, next_muxed=1001.0).offset, 3) == -0.1
    ahead = reading(wall=1120.1, arrived=1000.0, next_muxed=1001.0)
    assert round(ahead.offset, 3) == 120.1 and ahead.at == 1000.0


def test_words_for_status_and_doctor():
    assert describe(None) == "unknown" and describe(0.04) == "+0.0 s" and describe(-3.25) == "-3.2 s"
    assert warning(None, 10) is None and warning(9.9, 10) is None
    assert warning(120.4, 10) == "camera clock 120 s ahead of the host; set the camera's NTP server"
    assert warning(-12.5, 10) == "camera clock 12 s behind the host; set the camera's NTP server"
    assert warning(-2.5, 1) == "camera clock 2.5 s behind the host; set the camera's NTP server"


def _recorder_state(tmp_path, offsets):
    layout = DataLayout(tmp_path / "data")
    layout.state.mkdir(parents=True)
    cameras = {str(i): CameraReport(name=f"camera_{i}", url="rtsp://x", state=CameraState.RECORDING,
                                    camera_clock_offset=offset) for i, offset in offsets.items()}
    publish_snapshot(layout.state / STATE_FILE, RecorderSnapshot(pid=os.getpid(), updated_at=datetime.now(timezone.utc),
                                                                 cameras=cameras))
    return layout


def test_status_shows_each_cameras_clock_and_warns_past_the_threshold(tmp_path):
    layout = _recorder_state(tmp_path, {1: 120.3, 2: None, 3: -0.2})
    report = build_report(layout, [1, 2, 3], Thresholds(min_free_bytes=0, camera_clock_warn=10))
    table = "\n".join(report.lines)
    assert "+120.3 s" in table and "unknown" in table and "-0.2 s" in table
    assert report.warnings == ["camera 1: camera clock 120 s ahead of the host; set the camera's NTP server"]
    assert "WARNINGS:" in table and not any("clock" in p for p in report.problems)
    assert report.data["cameras"]["2"]["camera_clock_offset"] is None   # unknown, not 0
    quiet = build_report(layout, [1, 2, 3], Thresholds(min_free_bytes=0, camera_clock_warn=200))
    assert quiet.warnings == []


def test_doctor_reads_the_recorders_measurement(tmp_path):
    layout = _recorder_state(tmp_path, {1: -45.0, 2: None})
    cameras = tuple(CameraConfig(id=i, url="rtsp://x", name=f"camera_{i}", audio="auto") for i in (1, 2, 3))
    config = RecorderConfig.__new__(RecorderConfig)
    object.__setattr__(config, "cameras", cameras)
    checks = check_camera_clocks(layout, config, limit=10)
    assert [c.level for c in checks] == ["warn", "ok", "ok"]
    assert "45 s behind the host" in checks[0].detail
    assert "no RTCP sender reports" in checks[1].detail and "has not recorded" in checks[2].detail


def test_one_odd_reading_is_not_shown_three_that_agree_are():
    from services.recorder.camera_clock import ClockReading, SteadyClock
    clock = SteadyClock()
    assert clock.add(ClockReading(0.1, 1.0)) is None and clock.add(ClockReading(0.1, 1.0)) is None   # same frame
    clock.add(ClockReading(0.2, 2.0))
    assert clock.add(ClockReading(0.1, 3.0)).offset == 0.1
    assert clock.add(ClockReading(-15.0, 4.0)).offset == 0.1          # a sender report that jumped
    clock.add(ClockReading(-15.1, 5.0))
    assert clock.add(ClockReading(-15.0, 6.0)).offset == -15.0        # it stayed: shown
