"""The viewer's per-day catalog cache, against moto's S3 with every listing counted: a finished day
is listed once for minutes, today again after a few seconds, the cache holds a bounded number of
days, and a failed listing is not kept."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import boto3
import pytest
from moto import mock_aws

from services.bucket.keys import object_key
from services.bucket.metadata import DURATION
from services.bucket.stream import BucketSource
from services.common.segment_names import SegmentName
from services.viewer.day import parse_zone
from services.viewer.footage import CachePolicy, Footage, ViewerSettings

UTC = parse_zone("UTC")
BUCKET, PREFIX = "footage", "site/"
YESTERDAY, TODAY = date(2026, 1, 24), date(2026, 1, 25)
NOW = datetime(2026, 1, 25, 13, 0, tzinfo=timezone.utc)


class Clocks:
    """The wall clock the day is cut at, and the monotonic clock the cache expires by."""

    def __init__(self):
        self.wall, self.mono = NOW, 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


@pytest.fixture
def bucket(tmp_path):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        calls = {"list": 0, "head": 0}
        client.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: calls.__setitem__("list", calls["list"] + 1))
        client.meta.events.register("before-call.s3.HeadObject", lambda **_: calls.__setitem__("head", calls["head"] + 1))
        yield client, calls


def put(client, camera: int, start: datetime) -> str:
    name = SegmentName(start, camera)
    client.put_object(Bucket=BUCKET, Key=object_key(PREFIX, name), Body=b"x" * 100,
                      Metadata={DURATION: "600.000"})
    return name.filename


def footage(client, tmp_path, clocks: Clocks, policy: CachePolicy = CachePolicy()) -> Footage:
    settings = ViewerSettings(tmp_path / "data", BucketSource(client, BUCKET, None), PREFIX, 600, "ffmpeg", {},
                              "127.0.0.1", 0, None)
    return Footage(settings, now=lambda: clocks.wall, cache=policy, clock=lambda: clocks.mono)


def names(page: dict, camera: int) -> list[str]:
    return [p["name"] for c in page["cameras"] if c["camera"] == camera for p in c["pieces"]]


def test_a_finished_day_is_listed_once(bucket, tmp_path):
    client, calls = bucket
    clocks = Clocks()
    first = put(client, 1, datetime(2026, 1, 24, 10, 0, tzinfo=timezone.utc))
    put(client, 2, datetime(2026, 1, 24, 11, 0, tzinfo=timezone.utc))
    viewer = footage(client, tmp_path, clocks)
    page = viewer.day(YESTERDAY, UTC, UTC)
    assert [c["camera"] for c in page["cameras"]] == [1, 2] and names(page, 1) == [first]
    listed = calls["list"]
    assert listed > 0 and calls["head"] == 2
    clocks.advance(120)
    late = put(client, 1, datetime(2026, 1, 24, 12, 0, tzinfo=timezone.utc))   # a backlog arriving late
    assert viewer.day(YESTERDAY, UTC, UTC) == page
    assert calls["list"] == listed and calls["head"] == 2   # no listing, no metadata read
    clocks.advance(CachePolicy().past_seconds)   # minutes later it is listed again, and the late one shows
    assert names(viewer.day(YESTERDAY, UTC, UTC), 1) == [first, late]
    assert calls["list"] > listed


def test_today_is_listed_again_after_a_few_seconds(bucket, tmp_path):
    client, calls = bucket
    clocks = Clocks()
    first = put(client, 1, datetime(2026, 1, 25, 12, 0, tzinfo=timezone.utc))
    viewer = footage(client, tmp_path, clocks)
    assert names(viewer.day(TODAY, UTC, UTC), 1) == [first]
    listed = calls["list"]
    newer = put(client, 1, datetime(2026, 1, 25, 12, 10, tzinfo=timezone.utc))
    clocks.advance(1)
    assert names(viewer.day(TODAY, UTC, UTC), 1) == [first]   # within its few seconds: from the cache
    assert calls["list"] == listed
    clocks.advance(CachePolicy().today_seconds)
    assert names(viewer.day(TODAY, UTC, UTC), 1) == [first, newer]
    assert calls["list"] > listed


def test_a_day_just_ended_counts_as_today_until_it_settles(bucket, tmp_path):
    client, calls = bucket
    clocks = Clocks()
    clocks.wall = datetime(2026, 1, 25, 0, 5, tzinfo=timezone.utc)   # 5 min after yesterday ended: uploads pending
    viewer = footage(client, tmp_path, clocks)
    viewer.day(YESTERDAY, UTC, UTC)
    listed = calls["list"]
    clocks.advance(CachePolicy().today_seconds + 1)
    viewer.day(YESTERDAY, UTC, UTC)
    assert calls["list"] > listed


def test_the_cache_keeps_a_bounded_number_of_days(bucket, tmp_path):
    client, calls = bucket
    clocks = Clocks()
    viewer = footage(client, tmp_path, clocks, CachePolicy(days=2))
    days = [date(2026, 1, d) for d in (20, 21, 22)]
    for day in days:
        viewer.day(day, UTC, UTC)
    listed = calls["list"]
    viewer.day(days[2], UTC, UTC)
    viewer.day(days[1], UTC, UTC)
    assert calls["list"] == listed
    viewer.day(days[0], UTC, UTC)   # the least recently used, pushed out by the third day
    assert calls["list"] > listed
    # A day in another zone is another day.
    listed = calls["list"]
    viewer.day(days[0], parse_zone("Europe/Berlin"), UTC)
    assert calls["list"] > listed


def test_a_failed_listing_is_not_kept(bucket, tmp_path):
    client, calls = bucket
    clocks = Clocks()
    first = put(client, 1, datetime(2026, 1, 24, 10, 0, tzinfo=timezone.utc))
    broken = ViewerSettings(tmp_path / "data", BucketSource(client, "no-such-bucket", None), PREFIX, 600, "ffmpeg",
                            {}, "127.0.0.1", 0, None)
    viewer = Footage(broken, now=lambda: clocks.wall, clock=lambda: clocks.mono)
    assert viewer.day(YESTERDAY, UTC, UTC)["problem"]
    viewer.settings = ViewerSettings(tmp_path / "data", BucketSource(client, BUCKET, None), PREFIX, 600, "ffmpeg",
                                     {}, "127.0.0.1", 0, None)
    page = viewer.day(YESTERDAY, UTC, UTC)
    assert page["problem"] is None and names(page, 1) == [first]


def test_a_day_past_its_time_is_let_go(bucket, tmp_path):
    client, calls = bucket
    clocks = Clocks()
    viewer = footage(client, tmp_path, clocks)
    viewer.day(date(2026, 1, 20), UTC, UTC)
    viewer.day(date(2026, 1, 21), UTC, UTC)
    clocks.advance(CachePolicy().past_seconds + 1)
    viewer.day(date(2026, 1, 22), UTC, UTC)
    assert len(viewer._days) == 1   # the two expired days hold no memory any more
