from datetime import datetime, timedelta, timezone

import pytest

from services.common.segment_names import SegmentName, format_name, parse_name, strftime_pattern


def test_format_uses_utc():
    local = timezone(timedelta(hours=2))
    assert format_name(1, datetime(2026, 1, 24, 16, 30, 0, 900000, tzinfo=local)) == "camera_1_2026-01-24_14-30-00.mp4"


def test_naive_time_rejected():
    with pytest.raises(ValueError):
        format_name(1, datetime(2026, 1, 24))


def test_round_trip_and_duplicates():
    name = parse_name("camera_12_2026-01-24_14-30-07.mp4")
    assert name == SegmentName(datetime(2026, 1, 24, 14, 30, 7, tzinfo=timezone.utc), 12)
    assert name.filename == "camera_12_2026-01-24_14-30-07.mp4"
    assert name.with_duplicate(2).filename == "camera_12_2026-01-24_14-30-07_2.mp4"
    assert parse_name("camera_12_2026-01-24_14-30-07_2.mp4").duplicate == 2


@pytest.mark.parametrize("bad", [
    "camera_1_2026-01-24_14-30-00.mkv", "notes.txt", "camera_a_2026-01-24_14-30-00.mp4",
    "camera_1_2026-13-24_14-30-00.mp4", "camera_1_2026-01-24_25-30-00.mp4", ".camera_1_2026-01-24_14-30-00.mp4",
])
def test_other_names_are_not_segments(bad):
    assert parse_name(bad) is None


def test_strftime_pattern_matches_parser():
    expanded = datetime(2026, 3, 1, 0, 0, 5).strftime(strftime_pattern(3))
    assert parse_name(expanded).camera_id == 3


def test_sorting_is_chronological():
    names = [parse_name(n) for n in ("camera_1_2026-01-02_00-00-00.mp4", "camera_1_2026-01-01_23-59-59.mp4")]
    assert sorted(names)[0].start.day == 1
