"""Source mode's pure parts: templates, local time to UTC across DST, stability, the index, the bandwidth limit."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from services.uploader.bandwidth import BandwidthSchedule, TokenBucket, parse_rate, parse_schedule
from services.uploader.source_index import FileState, IndexRow, SourceIndex
from services.uploader.source_stable import Verdict, Watched, judge, open_for_writing
from services.uploader.source_template import (
    DEFAULT_TEMPLATE,
    SourceName,
    TemplateError,
    camera_id,
    compile_template,
    describe,
    skipped_name,
    to_utc,
)

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def test_the_documented_template_reads_camera_and_local_time():
    template = compile_template(DEFAULT_TEMPLATE)
    assert template.match("front/2026-01-24_14-30-05.mp4") == ("front", datetime(2026, 1, 24, 14, 30, 5))
    assert template.match("front/2026-01-24_14-30-05.mp4.part") is None
    assert template.match("front/sub/2026-01-24_14-30-05.mp4") is None
    assert template.match("front/2026-13-24_14-30-05.mp4") is None      # no such month


@pytest.mark.parametrize("text", ["%Y-%m-%d.mp4", "{camera}/%Y%m%d_%H.mp4", "{camera}/%j.mp4", "/abs/{camera}"])
def test_a_template_without_camera_and_time_or_with_unknown_codes_is_refused(text):
    with pytest.raises(TemplateError):
        compile_template(text)


def test_names_across_dst_changes_map_to_the_right_utc():
    # Spring forward (2026-03-29, 02:00 -> 03:00 CEST): before and after.
    assert to_utc(datetime(2026, 3, 29, 1, 30), BERLIN) == utc(2026, 3, 29, 0, 30)
    assert to_utc(datetime(2026, 3, 29, 3, 30), BERLIN) == utc(2026, 3, 29, 1, 30)
    # Fall back (2026-10-25, 03:00 CEST -> 02:00 CET): 02:30 happens twice; the file's write decides.
    ambiguous = datetime(2026, 10, 25, 2, 30)
    assert to_utc(ambiguous, BERLIN, written_at=utc(2026, 10, 25, 0, 40)) == utc(2026, 10, 25, 0, 30)
    assert to_utc(ambiguous, BERLIN, written_at=utc(2026, 10, 25, 1, 40)) == utc(2026, 10, 25, 1, 30)
    assert to_utc(ambiguous, BERLIN) == utc(2026, 10, 25, 0, 30)
    assert to_utc(datetime(2026, 7, 1, 12, 0), BERLIN) == utc(2026, 7, 1, 10, 0)


def test_camera_folders_map_to_ids_by_name_number_or_camera_prefix():
    names = {"Front door": 3}
    assert camera_id("Front door", names) == 3
    assert camera_id("7", names) == 7 and camera_id("camera_8", names) == 8 and camera_id("cam9", names) is None
    found = describe("Front door/2026-01-24_15-30-00.mp4", compile_template(DEFAULT_TEMPLATE), BERLIN, names)
    assert isinstance(found, SourceName)
    assert (found.segment.camera_id, found.segment.start) == (3, utc(2026, 1, 24, 14, 30))
    assert "CAMERA_<N>_NAME=yard" in describe("yard/2026-01-24_15-30-00.mp4", compile_template(DEFAULT_TEMPLATE),
                                             BERLIN, names)


@pytest.mark.parametrize("name", [".DS_Store", "a.mp4.tmp", "a.mp4.part", ".hidden.mp4", "Thumbs.db"])
def test_temporary_and_hidden_names_are_skipped(name):
    assert skipped_name(name)
    assert not skipped_name("2026-01-24_14-30-00.mp4")


def test_a_file_is_ready_only_when_quiet_closed_unheld_and_whole():
    watched = Watched(10, 1, changed_at=100.0)
    assert judge(watched, 100.5, 1.0, False, "") is Verdict.WAIT            # not quiet long enough
    assert judge(watched, 102.0, 1.0, True, "") is Verdict.WAIT             # held open for writing
    assert judge(watched, 102.0, 1.0, False, "box cut off") is Verdict.WAIT  # does not parse to the end
    assert judge(watched, 102.0, 1.0, False, "") is Verdict.READY
    watched.open_seen = True                                                 # written, no close seen
    assert judge(watched, 102.0, 1.0, False, "") is Verdict.WAIT
    assert judge(watched, 130.0, 1.0, False, "") is Verdict.ABANDONED       # its writer is gone for good
    assert watched.saw(11, 1, 131.0) and watched.changed_at == 131.0


def test_a_file_open_for_writing_in_a_visible_process_is_seen(tmp_path):
    path = tmp_path / "open.mp4"
    with open(path, "wb"):
        assert str(path) in open_for_writing((str(tmp_path) + os.sep,))
    with open(path, "rb"):
        assert str(path) not in open_for_writing((str(tmp_path) + os.sep,))


def test_the_index_survives_a_reopen_and_counts_by_state(tmp_path):
    index = SourceIndex(tmp_path / "index.sqlite3")
    index.record(IndexRow("/src/a.mp4", 10, 5, "abc", "k/a", FileState.VERIFIED, 1.0))
    index.record(IndexRow("/src/b.mp4", 20, 5, "def", "k/b", FileState.VERIFIED, 1.0))
    index.mark("/src/b.mp4", FileState.PRUNED)
    index.close()
    again = SourceIndex(tmp_path / "index.sqlite3")
    assert again.get("/src/a.mp4").same_file(10, 5) and not again.get("/src/a.mp4").same_file(11, 5)
    assert again.totals() == {FileState.VERIFIED: (1, 10), FileState.PRUNED: (1, 20)}


def test_bandwidth_rates_and_timetables_read_like_rclone():
    assert parse_rate("10M") == 10 * 2**20 and parse_rate("512k") == 512 * 1024 and parse_rate("100") == 102400
    assert parse_rate("off") is None
    day = parse_schedule("08:00,512k 19:00,10M 23:00,off")
    assert day.rate_at(datetime(2026, 1, 1, 9)) == 512 * 1024
    assert day.rate_at(datetime(2026, 1, 1, 20)) == 10 * 2**20
    assert day.rate_at(datetime(2026, 1, 1, 3)) is None        # the 23:00 entry holds past midnight
    for bad in ("fast", "25:00,1M", "19:00,1M 08:00,2M"):
        with pytest.raises(ValueError):
            parse_schedule(bad)


def test_the_token_bucket_holds_parallel_readers_to_one_rate():
    clock, slept = [0.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    bucket = TokenBucket(BandwidthSchedule(((0, 1000.0),)), clock=lambda: clock[0], sleep=sleep,
                         local_now=lambda: datetime(2026, 1, 1))
    for _ in range(10):
        bucket.take(500)
    assert clock[0] == pytest.approx(5.0, abs=0.3)    # 5,000 bytes at 1,000 B/s
