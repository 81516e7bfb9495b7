"""The bucket catalog: what `coverage`, `clip` and the viewer read of a camera's day, on moto."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
from moto import mock_aws

from services.bucket.catalog import list_segments, measure_stored, stored_spans
from services.bucket.keys import object_key
from services.bucket.metadata import DURATION
from services.common.segment_names import SegmentName
from services.common.spans import Span, segment_spans

BUCKET, PREFIX = "footage", "site/"
MIDNIGHT = datetime(2026, 1, 25, tzinfo=timezone.utc)


def test_of_the_day_before_only_what_may_run_past_midnight_is_read():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        for minutes in range(-180, 60, 10):   # 10-min segments from 21:00 the day before to 00:50
            key = object_key(PREFIX, SegmentName(MIDNIGHT + timedelta(minutes=minutes), 1))
            client.put_object(Bucket=BUCKET, Key=key, Body=b"x", Metadata={DURATION: "600.0"})
        day = Span(MIDNIGHT, MIDNIGHT + timedelta(days=1))
        listed = list_segments(client, BUCKET, PREFIX, 1, day)
        assert [s.name.start for s in listed] == [MIDNIGHT + timedelta(minutes=m) for m in range(-120, 60, 10)]

        heads = []
        client.meta.events.register("before-call.s3.HeadObject", lambda **kw: heads.append(1))
        spans = stored_spans(client, BUCKET, PREFIX, 1, day, 600)
        assert len(heads) == 18   # 22:00 to 23:50 and the day's six, not 21:00 to 21:50
        last_before = next(span for segment, span in spans if segment.start == MIDNIGHT - timedelta(minutes=10))
        assert last_before.end == MIDNIGHT   # 23:50 + 600 s: it reaches midnight


def test_a_conflict_copy_or_a_longer_file_from_before_midnight_still_covers_the_day():
    """Two objects start at 23:30: the original (20 min) and a conflict copy of another length (an
    hour, as a file changed after its upload goes up again next to the first): the hour reaches
    00:30, and coverage of the new day must see it."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        start = MIDNIGHT - timedelta(minutes=30)
        key = object_key(PREFIX, SegmentName(start, 1))
        client.put_object(Bucket=BUCKET, Key=key, Body=b"x", Metadata={DURATION: "1200.0"})
        client.put_object(Bucket=BUCKET, Key=key.replace(".mp4", ".conflict-0123456789ab.mp4"), Body=b"xy",
                          Metadata={DURATION: "3600.0"})
        window = Span(MIDNIGHT, MIDNIGHT + timedelta(hours=1))
        covered = measure_stored(stored_spans(client, BUCKET, PREFIX, 1, window, 600), window)
        assert covered.covered_seconds == 1800


def test_segments_that_start_together_keep_their_own_spans():
    """Zipped back onto their segments in the order given: the 20-min original and the hour-long
    conflict copy each keep their own length, and an unknown duration beside a known one works."""
    start = MIDNIGHT - timedelta(minutes=30)
    spans = segment_spans([(start, 3600.0), (start, 1200.0), (start, None)], 600)
    assert [s.end - start for s in spans] == [timedelta(hours=1), timedelta(minutes=20), timedelta(minutes=10)]
