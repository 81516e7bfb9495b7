from datetime import datetime, timedelta, timezone
from pathlib import Path

from services.common.clip_plan import clip_command, concat_list, plan_clip
from services.common.spans import Span

T0 = datetime(2026, 1, 24, 14, 0, tzinfo=timezone.utc)


def at(minutes, seconds=0):
    return T0 + timedelta(minutes=minutes, seconds=seconds)


SEGMENTS = {f"s{m}": Span(at(m), at(m + 10)) for m in (0, 10, 30)}


def test_cut_points_in_first_and_last():
    plan = plan_clip(SEGMENTS, at(5), at(12, 30))
    assert [(p.name, p.inpoint, p.outpoint) for p in plan.pieces] == [("s0", 300.0, None), ("s10", None, 150.0)]
    assert plan.gaps == ()


def test_gap_inside_range_is_reported():
    plan = plan_clip(SEGMENTS, at(15), at(35))
    assert [p.name for p in plan.pieces] == ["s10", "s30"]
    assert plan.gaps == (Span(at(20), at(30)),)


def test_nothing_recorded():
    plan = plan_clip(SEGMENTS, at(45), at(50))
    assert plan.pieces == () and plan.gaps == (Span(at(45), at(50)),)


def test_concat_list_and_command():
    plan = plan_clip(SEGMENTS, at(5), at(8))
    text = concat_list(plan.pieces, {"s0": Path("/tmp/it's.mp4")})
    assert text.splitlines() == ["ffconcat version 1.0", "file '/tmp/it'\\''s.mp4'", "inpoint 300.000",
                                 "outpoint 480.000"]
    argv = clip_command("ffmpeg", Path("/l.txt"), Path("/o.mp4"))
    assert argv[argv.index("-c") + 1] == "copy" and argv[-1] == "/o.mp4"


def test_overlapping_segments_do_not_repeat():
    segments = {"a": Span(at(0), at(0, 4)), "b": Span(at(0, 2), at(0, 6))}
    plan = plan_clip(segments, at(0, 1), at(0, 5))
    assert [(p.name, p.inpoint, p.outpoint) for p in plan.pieces] == [("a", 1.0, None), ("b", 2.0, 3.0)]
