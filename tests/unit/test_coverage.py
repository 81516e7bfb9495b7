from datetime import datetime, timedelta, timezone

from services.common.spans import Span, day_window, measure, next_boundary, segment_spans

T0 = datetime(2026, 1, 24, 0, 0, tzinfo=timezone.utc)


def at(minutes, seconds=0):
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def test_next_boundary():
    assert next_boundary(at(14, 3), 600) == at(20)
    assert next_boundary(at(20), 600) == at(30)
    assert next_boundary(T0 + timedelta(hours=23, minutes=55), 600) == T0 + timedelta(days=1)


def test_full_hour_without_gaps():
    spans = segment_spans([(at(m), None) for m in range(0, 60, 10)], 600)
    result = measure(spans, Span(at(0), at(60)))
    assert result.percent == 100 and result.gaps == () and result.segments == 6


def test_gap_from_known_durations():
    spans = segment_spans([(at(0), 600.0), (at(10), 200.0), (at(15), 300.0)], 600)
    result = measure(spans, Span(at(0), at(20)))
    assert result.gaps == (Span(at(13, 20), at(15)),)
    assert round(result.covered_seconds) == 1100


def test_estimated_end_stops_at_next_start_and_boundary():
    spans = segment_spans([(at(0, 5), None), (at(7), None)], 600)
    assert spans[0].end == at(7) and spans[1].end == at(10)


def test_missing_segment_and_tail_are_gaps():
    spans = segment_spans([(at(0), 600.0), (at(20), 600.0)], 600)
    result = measure(spans, Span(at(0), at(40)))
    assert result.gaps == (Span(at(10), at(20)), Span(at(30), at(40)))
    assert result.percent == 50


def test_segment_across_midnight_counts_for_both_days():
    spans = segment_spans([(T0 - timedelta(minutes=5), 600.0)], 600)
    assert measure(spans, day_window(T0)).covered_seconds == 300
    assert measure(spans, day_window(T0 - timedelta(days=1))).covered_seconds == 300


def test_small_jitter_is_not_a_gap():
    spans = [Span(at(0), at(9, 59.5)), Span(at(10), at(20))]
    assert measure(spans, Span(at(0), at(20))).gaps == ()


def test_today_is_cut_at_now():
    window = day_window(T0, now=at(90))
    assert window.end == at(90)
