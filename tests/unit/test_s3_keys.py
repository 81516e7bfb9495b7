from datetime import datetime, timezone

from services.bucket.keys import distinct_filename, distinct_key, object_key
from services.common.segment_names import parse_name


def test_key_layout_uses_utc_date_and_camera_folder():
    segment = parse_name("camera_3_2026-01-24_23-59-59.mp4")
    assert object_key("", segment) == "2026/01/24/camera_3/camera_3_2026-01-24_23-59-59.mp4"
    assert object_key("site-a/", segment) == "site-a/2026/01/24/camera_3/camera_3_2026-01-24_23-59-59.mp4"


def test_duplicate_suffix_is_kept():
    segment = parse_name("camera_1_2026-12-31_00-00-00_2.mp4")
    assert object_key("p/", segment) == "p/2026/12/31/camera_1/camera_1_2026-12-31_00-00-00_2.mp4"
    assert segment.start == datetime(2026, 12, 31, tzinfo=timezone.utc)


def test_distinct_key_is_deterministic_and_keeps_extension():
    key = "p/2026/01/24/camera_1/camera_1_2026-01-24_14-30-00.mp4"
    other = distinct_key(key, "0123456789abcdef")
    assert other == "p/2026/01/24/camera_1/camera_1_2026-01-24_14-30-00.conflict-0123456789ab.mp4"
    assert distinct_key(key, "0123456789abcdef") == other
    assert distinct_key(key, "ffffffffffff0000") != other
    assert distinct_filename("x.bin", "abc") == "x.bin.conflict-abc"
