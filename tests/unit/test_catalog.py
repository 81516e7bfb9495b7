"""The bucket catalog: what `coverage`, `clip` and the viewer read of a camera's day, on moto."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
from moto import mock_aws

from services.bucket.catalog import list_segments, stored_spans
from services.bucket.keys import object_key
from services.bucket.metadata import DURATION
from services.common.segment_names import SegmentName
from services.common.spans import Span

BUCKET, PREFIX = "footage", "site/"
MIDNIGHT = datetime(2026, 1, 25, tzinfo=timezone.utc)


def test_of_the_day_before_only_the_segment_that_may_run_past_midnight_is_read():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        for minutes in range(-60, 60, 10):   # 10-min segments from 23:00 the day before to 00:50
            key = object_key(PREFIX, SegmentName(MIDNIGHT + timedelta(minutes=minutes), 1))
            client.put_object(Bucket=BUCKET, Key=key, Body=b"x", Metadata={DURATION: "600.0"})
        day = Span(MIDNIGHT, MIDNIGHT + timedelta(days=1))
        listed = list_segments(client, BUCKET, PREFIX, 1, day)
        assert [s.name.start for s in listed] == [MIDNIGHT + timedelta(minutes=m) for m in range(-10, 60, 10)]

        heads = []
        client.meta.events.register("before-call.s3.HeadObject", lambda **kw: heads.append(1))
        spans = stored_spans(client, BUCKET, PREFIX, 1, day, 600)
        assert len(heads) == 7   # 23:50 and the day's six, not the day before's five others
        assert spans[0][1].end == MIDNIGHT + timedelta(minutes=0)   # 23:50 + 600 s: it reaches midnight
