"""The viewer's pure parts: the day and its clocks, the timeline JSON, who may look, byte ranges,
ranged reads of rclone-crypt objects, the codec of a segment's first bytes and this host's status."""
from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.bucket.catalog import StoredSegment, measure_stored
from services.bucket.stream import BucketSource, plain_length, plain_range
from services.commands import web
from services.commands.status import Thresholds, build_report
from services.common.config import ConfigError, EnvReader
from services.common.data_layout import DataLayout
from services.common.segment_names import SegmentName
from services.common.spans import Span
from services.common.state_file import utc_iso, write_json_atomic
from services.crypt.format import encrypt_bytes
from services.crypt.keys import CryptError, derive_keys
from services.viewer.auth import authorized, bind_problem, is_loopback
from services.viewer.codec import Codecs, video_sample_entry
from services.viewer.day import BadDay, day_span, hour_ticks, parse_zone, utc_days
from services.viewer.footage import Local
from services.viewer.host_status import NO_STATUS, page_status
from services.viewer.ranges import Unsatisfiable, byte_range
from services.viewer.server import make_server
from services.viewer.timeline import CameraDay, camera_json

UTC = timezone.utc
BERLIN = parse_zone("Europe/Berlin")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- days and time zones ---------------------------------------------------------------------

def test_a_utc_day_is_the_coverage_commands_day_cut_at_now():
    assert day_span(date(2026, 1, 25), parse_zone("UTC")) == Span(at("2026-01-25T00:00"), at("2026-01-26T00:00"))
    now = at("2026-01-25T13:30")
    assert day_span(date(2026, 1, 25), parse_zone(None), now).end == now
    assert day_span(date(2026, 1, 26), parse_zone("UTC"), now).seconds == 0   # the future is no gap


@pytest.mark.parametrize("day, hours", [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25), (date(2026, 7, 1), 24)])
def test_a_local_day_follows_dst(day, hours):
    window = day_span(day, BERLIN)
    assert window.seconds == hours * 3600
    assert window.start.astimezone(BERLIN).hour == 0 and window.end.astimezone(BERLIN).hour == 0


def test_a_local_day_lies_in_two_utc_folders():
    window = day_span(date(2026, 7, 1), BERLIN)   # 2026-06-30 22:00 UTC to 2026-07-01 22:00 UTC
    assert window.start == at("2026-06-30T22:00")
    assert utc_days(window) == [at("2026-06-30T00:00"), at("2026-07-01T00:00")]
    assert utc_days(day_span(date(2026, 7, 1), parse_zone("UTC"))) == [at("2026-07-01T00:00")]


def test_hour_marks_carry_both_clocks_across_the_spring_change():
    ticks = hour_ticks(date(2026, 3, 29), BERLIN, BERLIN)
    assert len(ticks) == 23
    assert [t.local for t in ticks[:4]] == ["00:00 CET", "01:00", "03:00 CEST", "04:00"]   # 02:00 never happens
    assert [t.utc for t in ticks[:3]] == ["23:00", "00:00", "01:00"]
    utc_day = hour_ticks(date(2026, 10, 25), parse_zone("UTC"), BERLIN)
    assert [t.local for t in utc_day[:3]] == ["02:00 CEST", "02:00 CET", "03:00"]   # 02:00 twice in the autumn


def test_bad_input_is_a_bad_request():
    with pytest.raises(BadDay):
        parse_zone("Mars/Olympus")
    with pytest.raises(BadDay):
        parse_zone("../../etc/passwd")


# --- the timeline JSON -----------------------------------------------------------------------

def stored(camera: int, *starts: str, seconds: float = 4.0) -> list[tuple[StoredSegment, Span]]:
    found = []
    for start in starts:
        name = SegmentName(at(start), camera)
        found.append((StoredSegment(f"p/{name.filename}", name, 100, seconds),
                      Span(at(start), at(start) + timedelta(seconds=seconds))))
    return found


def test_the_timeline_has_the_coverage_figures_and_what_can_be_played():
    window = Span(at("2026-01-25T00:00"), at("2026-01-26T00:00"))
    bucket = stored(1, "2026-01-24T23:59:58", "2026-01-25T12:00:00", "2026-01-25T12:00:04", "2026-01-26T00:00:00")
    local = {SegmentName(at("2026-01-25T12:00:20"), 1).filename: Span(at("2026-01-25T12:00:20"),
                                                                        at("2026-01-25T12:00:24"))}
    coverage = measure_stored(bucket, window)
    data = camera_json(CameraDay(1, "door", {s.name.filename: span for s, span in bucket}, local, coverage), window)
    assert data["percent"] == round(100 * 10 / 86400, 3) and data["covered_seconds"] == 10.0
    assert data["segments"] == coverage.segments == 3
    assert [(g["start"], g["seconds"]) for g in data["gaps"]] == [
        (at("2026-01-25T00:00:02").timestamp(), 43198.0), (at("2026-01-25T12:00:08").timestamp(), 43192.0)]
    # The segment running past midnight is playable, the next day's is not; this host's copy is marked.
    assert [(p["name"][9:28], p["where"]) for p in data["pieces"]] == [
        ("2026-01-24_23-59-58", "bucket"), ("2026-01-25_12-00-00", "bucket"), ("2026-01-25_12-00-04", "bucket"),
        ("2026-01-25_12-00-20", "local")]


# --- who may look ----------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_token(host):
    assert is_loopback(host) and bind_problem(host, None) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "viewer.example.org"])
def test_any_other_address_needs_a_token(host):
    assert not is_loopback(host)
    assert "not a loopback address" in bind_problem(host, None)
    assert bind_problem(host, "x" * 16) is None
    assert "at least 16" in bind_problem(host, "short")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_token_is_asked_by_basic_auth_or_bearer():
    token = "a-long-enough-viewer-token"
    assert authorized(None, None)
    assert authorized(basic("anyone", token), token) and authorized(f"Bearer {token}", token)
    assert not authorized(None, token) and not authorized(basic("anyone", "wrong"), token)
    assert not authorized("Basic !!!", token) and not authorized(f"Digest {token}", token)


def test_web_refuses_to_start_open_to_the_network_without_a_token(tmp_path):
    (tmp_path / "videos").mkdir()
    with pytest.raises(ConfigError) as refused:
        web.read_settings(EnvReader({"DATA_DIR": str(tmp_path), "VIEWER_BIND": "0.0.0.0"}))
    assert [issue.key for issue in refused.value.issues] == ["VIEWER_TOKEN"]
    settings = web.read_settings(EnvReader({"DATA_DIR": str(tmp_path), "VIEWER_BIND": "0.0.0.0",
                                            "VIEWER_TOKEN": "a-long-enough-viewer-token"}))
    assert settings.viewer.token and settings.viewer.source is None and settings.viewer.port == 8470
    assert web.read_settings(EnvReader({"DATA_DIR": str(tmp_path)})).viewer.host == "127.0.0.1"


# --- byte ranges -----------------------------------------------------------------------------

def test_byte_ranges_as_a_video_element_asks():
    assert byte_range(None, 100) is None and byte_range("bytes=0-", 100) == (0, 99)
    assert byte_range("bytes=10-19", 100) == (10, 19) and byte_range("bytes=90-500", 100) == (90, 99)
    assert byte_range("bytes=-10", 100) == (90, 99) and byte_range("bytes=0-1,5-6", 100) is None
    with pytest.raises(Unsatisfiable):
        byte_range("bytes=100-", 100)


class RangedClient:
    """get_object with Range over one object in memory, counting the bytes sent."""

    def __init__(self, data: bytes):
        self.data, self.sent = data, 0

    def get_object(self, Bucket: str, Key: str, Range: str) -> dict:  # noqa: N803 - boto3's names
        first, last = (int(n) for n in Range.removeprefix("bytes=").split("-"))
        body = self.data[first:last + 1]
        self.sent += len(body)
        return {"Body": io.BytesIO(body)}


def test_a_range_of_an_encrypted_object_is_decrypted_from_the_blocks_that_hold_it():
    keys = derive_keys("password", "salt")
    plain = bytes(range(256)) * 1100   # 281,600 bytes: 5 blocks of 64 KiB
    client = RangedClient(encrypt_bytes(plain, keys))
    source = BucketSource(client, "b", keys)
    size = len(client.data)
    assert plain_length("k.mp4.bin", size) == len(plain)
    for first, last in [(0, 99), (65530, 65545), (70000, 200000), (len(plain) - 5, len(plain) - 1)]:
        client.sent = 0
        assert b"".join(plain_range(source, "k.mp4.bin", size, first, last)) == plain[first:last + 1]
        assert client.sent <= (last - first + 1) + 2 * 65552 + 32   # only the blocks that hold the range
    with pytest.raises(CryptError, match="ENCRYPTION_PASSWORD"):
        list(plain_range(BucketSource(client, "b", None), "k.mp4.bin", size, 0, 9))
    with pytest.raises(CryptError):
        list(plain_range(BucketSource(client, "b", derive_keys("other", "salt")), "k.mp4.bin", size, 0, 9))


def test_without_a_token_only_a_loopback_host_is_served():
    from services.viewer.auth import host_allowed
    for host in ("127.0.0.1:8470", "localhost:8470", "[::1]:8470", "localhost"):
        assert host_allowed(host, None), host
    for host in ("evil.example:8470", "192.168.1.5:8470", "", None):
        assert not host_allowed(host, None), host
    assert host_allowed("cameras.example:8470", "a-token-of-16-characters")


# --- the codec of a segment's first bytes ------------------------------------------------------

def box(kind: bytes, *children: bytes, payload: bytes = b"") -> bytes:
    body = payload + b"".join(children)
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def head_of(*tracks: tuple[bytes, bytes]) -> bytes:
    """ftyp + moov with one trak per (handler, sample entry), then the start of a fragment."""
    traks = [box(b"trak", box(b"tkhd", payload=bytes(84)),
                 box(b"mdia", box(b"mdhd", payload=bytes(24)), box(b"hdlr", payload=bytes(8) + handler + bytes(13)),
                     box(b"minf", box(b"stbl", box(b"stsd", box(entry, payload=bytes(78)),
                                                   payload=bytes(4) + (1).to_bytes(4, "big"))))))
             for handler, entry in tracks]
    return box(b"ftyp", payload=b"isom") + box(b"moov", box(b"mvhd", payload=bytes(100)), *traks) + b"\0\0\1\0moof"


def test_the_video_tracks_sample_entry_names_the_codec():
    assert video_sample_entry(head_of((b"soun", b"mp4a"), (b"vide", b"hvc1"))) == "hvc1"
    assert video_sample_entry(head_of((b"vide", b"avc1"), (b"soun", b"mp4a"))) == "avc1"
    assert video_sample_entry(head_of((b"soun", b"mp4a"))) is None
    whole = head_of((b"vide", b"hev1"))
    assert video_sample_entry(whole[:len(whole) - 40]) is None       # the moov cut off: unknown, not a guess
    assert video_sample_entry(box(b"ftyp", payload=b"isom") + box(b"mdat", payload=bytes(64))) is None


def test_a_segments_codec_is_read_once():
    reads = []

    def read(where, source):
        reads.append(where)
        return head_of((b"vide", b"hvc1"))
    codecs = Codecs(read)
    where = Local(Path("camera_3_2026-01-25_12-00-00.mp4"))
    assert codecs.of(where.path.name, where, None) == {"codec": "hevc", "entry": "hvc1"}
    assert codecs.of(where.path.name, where, None) == {"codec": "hevc", "entry": "hvc1"}
    assert len(reads) == 1


# --- this host's status ------------------------------------------------------------------------

def keys_of(value: object) -> set[str]:
    """Every key of a JSON value, however deep."""
    if isinstance(value, dict):
        return set(value).union(*(keys_of(v) for v in value.values()))
    return set().union(*(keys_of(v) for v in value)) if isinstance(value, list) else set()


def write_states(layout: DataLayout, now: float) -> None:
    """A running recorder (this pid) with a camera password in a URL, a stale uploader naming its endpoint."""
    layout.state.mkdir(parents=True, exist_ok=True)
    fresh = utc_iso(datetime.fromtimestamp(now - 5, UTC))
    write_json_atomic(layout.state / "recorder.json", {"pid": os.getpid(), "updated_at": fresh, "cameras": {
        "1": {"name": "door", "url": "rtsp://admin:Door-Secret-9@cam/1", "state": "recording", "video_codec": "hevc",
              "camera_clock_offset": 42.0, "handoff_waiting": 2, "handoff_waiting_seconds": 5000.0},
        "2": {"name": "yard", "url": "rtsp://admin:***@cam/2", "state": "backoff", "reason": "timeout"}}})
    write_json_atomic(layout.state / "uploader.json", {"pid": os.getpid(), "updated_at": utc_iso(
        datetime.fromtimestamp(now - 300, UTC)), "endpoint": "https://s3.example", "last_error": {
        "message": "failed rtsp://u:Upload-Secret-7@x/y", "at": fresh}})


def test_the_status_tab_shows_what_status_computes_and_nothing_secret(tmp_path):
    layout = DataLayout(tmp_path)
    now = datetime(2026, 1, 25, 12, tzinfo=UTC).timestamp()
    write_states(layout, now)
    report = build_report(layout, [1, 2, 5], Thresholds(), now)
    shown = page_status(json.loads(json.dumps(report.data, default=str)), now)
    assert shown["problems"] == report.problems and shown["warnings"] == report.warnings
    assert "camera 2 is backoff (timeout)" in shown["problems"] and "camera 5 is unknown" in shown["problems"]
    assert any("closed segment(s) not in completed/" in p for p in shown["problems"])   # a stuck hand-off
    assert shown["warnings"] == ["camera 1: camera clock 42 s ahead of the host; set the camera's NTP server"]
    assert [(s["name"], s["running"]) for s in shown["services"]] == [("video-recorder", True),
                                                                        ("s3-uploader", False)]
    assert "stale" in shown["services"][1]["text"]
    assert [c["id"] for c in shown["cameras"]] == ["1", "2", "5"] and shown["cameras"][2]["state"] == "unknown"
    assert shown["cameras"][0]["video_codec"] == "hevc" and shown["cameras"][0]["name"] == "door"
    assert shown["last_error"] == {"message": "failed rtsp://u:***@x/y", "age": 5.0} and shown["last_upload"] is None
    text = json.dumps(shown)
    assert "url" not in keys_of(shown) and "rtsp://admin" not in text
    assert "Door-Secret-9" not in text and "Upload-Secret-7" not in text and "s3.example" not in text


def test_webs_status_reader_takes_the_env_thresholds_and_the_state_files_cameras(tmp_path):
    layout = DataLayout(tmp_path / "data")
    write_states(layout, time.time())
    layout.completed.mkdir(parents=True)
    waiting = layout.completed / "camera_1_2026-01-25_12-00-00.mp4"
    waiting.write_bytes(b"\0" * 10)
    os.utime(waiting, (time.time() - 600, time.time() - 600))
    env = {"DATA_DIR": str(layout.root), "CAMERA_5_NAME": "garage", "STATUS_BACKLOG_MAX_MINUTES": "5"}
    data = web.read_settings(EnvReader(dict(env))).viewer.status_data()
    assert list(data["cameras"]) == ["1", "2", "5"]   # the uploader's .env: named, and the recorder's
    assert any(p.startswith("upload backlog: oldest segment waiting") for p in data["problems"])
    data = web.read_settings(EnvReader({**env, "CAMERA_2_URL": "rtsp://cam/2"})).viewer.status_data()
    assert list(data["cameras"]) == ["2"]   # a .env with camera URLs: those, as `status` reads them
    data = web.read_settings(EnvReader({**env, "SOURCE_DIRS": str(tmp_path)})).viewer.status_data()
    assert data["cameras"] == {} and not any(p.startswith("video-recorder") for p in data["problems"])


def test_without_the_status_data_the_status_tab_is_not_found(tmp_path):
    settings = replace(web.read_settings(EnvReader({"DATA_DIR": str(tmp_path)})).viewer, port=0)
    for status_data, expected in ((None, 404), (lambda: {"problems": ["disk low: 1 GB free"]}, 200)):
        server = make_server(replace(settings, status_data=status_data))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/api/status"
            try:
                code, body = 200, urllib.request.urlopen(url).read()
            except urllib.error.HTTPError as failed:
                code, body = failed.code, failed.read()
        finally:
            server.shutdown()
            server.server_close()
        assert code == expected
        assert json.loads(body) == ({"error": NO_STATUS} if code == 404 else page_status(status_data(), 0))
