"""Segment times (docs/architecture.md, "Time"): the run clock, the first-frame stamp, names
by the first frame, and the exact times in metadata and on the timeline."""
from datetime import datetime, timedelta, timezone

from services.bucket.catalog import StoredSegment, from_metadata
from services.bucket.metadata import DURATION, END, FIRST_FRAME, iso_ms, parse_iso_ms
from services.common.mp4_fragments import append_stamp, inspect_file, read_stamp, trim_torn_tail
from services.common.segment_names import parse_name
from services.recorder.handoff import hand_off, timed_name
from services.recorder.timing import RunClock
from tests.unit.test_segment_handoff import put

T0 = 1_800_000_000.0


def test_run_clock_ignores_the_probing_burst_and_takes_the_parser_frame_off():
    clock = RunClock()
    clock.observe(T0 + 3.0, 0)                 # nothing muxed yet
    clock.observe(T0 + 3.2, 2_900_000)         # the burst: 2.9 s of media written at once
    for second in range(1, 6):                 # then live: reports one frame after arrival
        clock.observe(T0 + 3.0 + second + 0.1, 2_900_000 + second * 1_000_000)
    assert abs(clock.offset - (T0 + 0.2)) < 1e-6
    assert abs(clock.first_frame(4.0, 0.1).timestamp() - (T0 + 4.1)) < 1e-6   # one frame earlier
    assert abs(clock.first_frame(0.0, 0.1).timestamp() - T0) < 1e-6   # the run's first: two
    assert RunClock().first_frame(1.0, 0.1) is None


def test_run_clock_is_settled_only_after_a_second_of_live_reports():
    clock = RunClock()
    clock.observe(T0 + 3.0, 100_000)         # a report read while the burst was being muxed
    clock.observe(T0 + 3.4, 150_000)
    clock.observe(T0 + 4.3, 200_000)         # a second of reports, but no live one yet ...
    assert not clock.settled                 # ... would be settled if the burst were over
    clock.observe(T0 + 3.0 + 0.5, 2_900_000)  # the burst's end: the offset drops by 2.75 s
    assert not clock.settled
    for half in range(1, 3):
        clock.observe(T0 + 3.5 + half * 0.5 + 0.01 * half, 2_900_000 + half * 500_000)   # live, jitter
    assert clock.settled and abs(clock.offset - (T0 + 0.6)) < 1e-6


def test_stamp_is_read_back_kept_by_the_torn_tail_trim_and_written_once(data_layout):
    layout = data_layout
    path = put(layout, "camera_1_2026-01-24_14-05-05.mp4")
    moment = datetime(2026, 1, 24, 14, 5, 3, 215000, tzinfo=timezone.utc)
    append_stamp(path, moment)
    size = path.stat().st_size
    append_stamp(path, moment + timedelta(seconds=1))
    assert path.stat().st_size == size and read_stamp(path) == moment
    assert not trim_torn_tail(path).torn and inspect_file(path).playable and read_stamp(path) == moment
    assert read_stamp(put(layout, "camera_1_2026-01-24_14-05-10.mp4")) is None


def test_hand_off_names_a_segment_by_its_first_frame_truncated_and_keeps_no_clobber(data_layout):
    layout = data_layout
    first = datetime(2026, 1, 24, 14, 5, 3, 980000, tzinfo=timezone.utc)
    done = hand_off(put(layout, "camera_1_2026-01-24_14-05-06.mp4"), layout, first)
    assert done.target.name == "camera_1_2026-01-24_14-05-03.mp4" and read_stamp(done.target) == first
    again = hand_off(put(layout, "camera_1_2026-01-24_14-05-07.mp4"), layout, first)
    assert again.target.name == "camera_1_2026-01-24_14-05-03_1.mp4"
    untimed = hand_off(put(layout, "camera_1_2026-01-24_14-06-00.mp4"), layout)
    assert untimed.target.name == "camera_1_2026-01-24_14-06-00.mp4"
    assert timed_name(parse_name("camera_2_2026-01-24_14-06-00.mp4"), None).filename.endswith("14-06-00.mp4")


def test_metadata_times_round_trip_and_place_the_segment():
    first = datetime(2026, 1, 24, 14, 5, 3, 215000, tzinfo=timezone.utc)
    assert iso_ms(first) == "2026-01-24T14:05:03.215Z" and parse_iso_ms(iso_ms(first)) == first
    name = parse_name("camera_1_2026-01-24_14-05-03.mp4")
    segment = from_metadata(StoredSegment("k", name, 10),
                            {"Segment-First-Frame": iso_ms(first), END: iso_ms(first + timedelta(seconds=3.9)),
                             DURATION: "3.900"})
    assert segment.start == first and segment.seconds == 3.9
    plain = from_metadata(StoredSegment("k", name, 10), {DURATION: "3.900", FIRST_FRAME: "soon"})
    assert plain.start == name.start and plain.seconds == 3.9 and plain.first_frame is None
