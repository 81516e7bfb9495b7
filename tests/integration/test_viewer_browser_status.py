"""The footage viewer's H.265 marking and its status tab, in Debian's headless Chromium (which plays
no H.265) against a real S3 server (rclone serve s3), with a token set as on a shared network."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.bucket.keys import object_key, stored_key
from services.bucket.metadata import DURATION as DURATION_METADATA
from services.common.data_layout import DataLayout
from services.common.mp4_fragments import video_duration
from services.common.segment_names import SegmentName
from services.common.state_file import utc_iso, write_json_atomic
from services.crypt.format import encrypt_bytes
from services.crypt.keys import derive_keys
from services.viewer.codec import describe, read_head, video_sample_entry
from services.viewer.footage import Local
from tests.support.browser import Browser, chromium, get
from tests.support.media import codecs, make_segment
from tests.support.processes import run_module, stop_pid, wait_for, write_env
from tests.support.s3_server import S3Server, free_port

pytestmark = pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (make system-deps)")

BUCKET, PREFIX = "footage", "site/"
NOON = datetime(2026, 1, 25, 12, tzinfo=timezone.utc)
OFFSETS = (0, 4)
# Camera 1: H.264, plain objects. Camera 3: H.265 (as a `h265:none` camera records it), plain.
# Camera 4: H.265 in rclone-crypt `.bin` objects.
H264, HEVC, SEALED_HEVC = 1, 3, 4
PASSWORD, SALT = "viewer-test-password", "viewer-test-salt"
TOKEN = "a-long-enough-viewer-token"
CAMERA_PASSWORD = "Door-Camera-Pw-81"   # in the recorder state's URL, as a careless writer would leave it
BACKLOG_MINUTES = 5                     # STATUS_BACKLOG_MAX_MINUTES: the .env's, not status's default hour
AUTH = "Basic " + base64.b64encode(f"viewer:{TOKEN}".encode()).decode()


def name(camera: int, offset: int) -> str:
    return SegmentName(NOON + timedelta(seconds=offset), camera).filename


def make_hevc_segment(path: Path, seconds: float = 4.0) -> Path:
    """What the recorder writes for an H.265 camera without audio: hvc1-tagged, fragmented."""
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-t", str(seconds),
                    "-c:v", "libx265", "-x265-params", "log-level=error", "-tag:v", "hvc1", "-g", "10", "-an",
                    "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-y", str(path)], check=True)
    return path


def write_state(data: Path, cameras: dict[str, dict]) -> None:
    """A recorder's state file as a running recorder publishes it (this test's pid: alive); no uploader's."""
    state = data / "state"
    state.mkdir(parents=True, exist_ok=True)
    write_json_atomic(state / "recorder.json", {
        "pid": os.getpid(), "updated_at": utc_iso(datetime.now(timezone.utc)), "segment_duration": 4,
        "cameras": cameras})


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("viewer-hevc")
    h264 = make_segment(root / "h264.mp4", 4.0, size="320x240")
    hevc = make_hevc_segment(root / "hevc.mp4")
    assert codecs(hevc)["video"] == ("hevc", "hvc1") and codecs(h264)["video"][0] == "h264"
    server = S3Server(root / "s3").start()
    server.create_bucket(BUCKET)
    client = server.client()
    sealed = encrypt_bytes(hevc.read_bytes(), derive_keys(PASSWORD, SALT))
    for offset in OFFSETS:
        for camera, template in ((H264, h264), (HEVC, hevc)):
            client.upload_file(str(template), BUCKET, object_key(PREFIX, SegmentName(NOON + timedelta(seconds=offset),
                                                                                      camera)),
                               ExtraArgs={"Metadata": {DURATION_METADATA: f"{video_duration(template):.3f}"}})
        client.put_object(Bucket=BUCKET, Body=sealed,
                          Key=stored_key(PREFIX, SegmentName(NOON + timedelta(seconds=offset), SEALED_HEVC), True),
                          Metadata={DURATION_METADATA: f"{video_duration(hevc):.3f}"})
    data = root / "data"
    completed = DataLayout(data).completed
    completed.mkdir(parents=True)
    (completed / name(H264, 3600)).write_bytes(b"\0" * 1000)   # one segment waiting for upload
    port = free_port()
    env = write_env(root / ".env", {"DATA_DIR": data, "S3_PREFIX": PREFIX, "SEGMENT_DURATION": 4,
                                    "ENCRYPTION_PASSWORD": PASSWORD, "ENCRYPTION_SALT": SALT,
                                    "STATUS_BACKLOG_MAX_MINUTES": BACKLOG_MINUTES,
                                    "VIEWER_PORT": port, "VIEWER_TOKEN": TOKEN, **server.env(BUCKET)})
    # `status` as run on the recorder's side of the same host: its cameras' URLs, the same thresholds.
    status_env = write_env(root / "status.env", {"DATA_DIR": data, "STATUS_BACKLOG_MAX_MINUTES": BACKLOG_MINUTES,
                                                 "CAMERA_1_URL": "rtsp://127.0.0.1:9/door",
                                                 "CAMERA_3_URL": "rtsp://127.0.0.1:9/yard"})
    log_path = root / "web.log"
    log = open(log_path, "w")
    web = subprocess.Popen([sys.executable, "-m", "services", "web", "--env-file", str(env)], stdout=log,
                           stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2])
    wait_for(lambda: "serving" in log_path.read_text(), 30, "the viewer to listen")
    yield {"url": f"http://127.0.0.1:{port}/", "data": data, "hevc": hevc, "h264": h264, "log": log_path,
           "status_env": status_env}
    stop_pid(web)
    log.close()
    server.stop()


@pytest.fixture(scope="module")
def browser(site):
    chrome = Browser("about:blank", environment={**os.environ, "TZ": "UTC"})
    chrome.send("Network.enable")
    chrome.send("Network.setExtraHTTPHeaders", headers={"Authorization": AUTH})
    yield chrome
    chrome.close()


def open_page(browser: Browser, url: str) -> None:
    browser.navigate(url)
    browser.wait_for("window.viewerState && window.viewerState().loaded")


def test_the_codec_is_read_from_the_segments_first_bytes(site):
    def file_codec(path):
        return describe(video_sample_entry(read_head(Local(path), None)))
    assert file_codec(site["hevc"]) == {"codec": "hevc", "entry": "hvc1"}
    assert file_codec(site["h264"]) == {"codec": "h264", "entry": "avc1"}
    for camera, expected in ((H264, ("h264", "avc1")), (HEVC, ("hevc", "hvc1")), (SEALED_HEVC, ("hevc", "hvc1"))):
        code, body, _ = get(site["url"] + f"api/codec/{camera}/{name(camera, 4)}", {"Authorization": AUTH})
        assert code == 200, body
        assert (json.loads(body)["codec"], json.loads(body)["entry"]) == expected
    assert get(site["url"] + f"api/codec/{HEVC}/{name(HEVC, 4)}")[0] == 401


def test_an_h265_camera_is_marked_and_offers_a_download_instead_of_the_player(site, browser):
    open_page(browser, site["url"] + "?date=2026-01-25")
    assert browser.evaluate("window.viewerState().hevcPlayable") is False   # Debian's Chromium: no H.265
    marks = browser.wait_for("""(() => {
        const boxes = [...document.querySelectorAll('.camera')];
        return boxes.every(b => b.dataset.codec) && Object.fromEntries(boxes.map(b => [b.dataset.camera,
            [b.dataset.codec, (b.querySelector('.title .codec') || {}).textContent || '']]));
    })()""")
    assert marks[str(H264)] == ["h264", ""]
    for camera in (HEVC, SEALED_HEVC):
        assert marks[str(camera)][0] == "hevc" and "not playable in this browser" in marks[str(camera)][1]
    # A click on the H.265 timeline: no player, a link to the segment (and one to it as a clip).
    x, y = browser.evaluate(f"""(() => {{
        const bar = document.querySelector('.camera[data-camera="{HEVC}"] .bar').getBoundingClientRect();
        const day = {(NOON - timedelta(hours=12)).timestamp()}, t = {(NOON + timedelta(seconds=5)).timestamp()};
        return [bar.left + bar.width * (t - day) / 86400, bar.top + bar.height / 2]; }})()""")
    browser.click(x, y)
    state = browser.wait_for("(s => s.download && s)(window.viewerState())")
    assert state["download"] == f"/media/{HEVC}/{name(HEVC, 4)}?download=1" and state["segment"] is None
    hidden, why = browser.evaluate("[document.getElementById('player').hidden, "
                                   "document.getElementById('download-why').textContent]")
    assert hidden and f"segment {name(HEVC, 4)}" in why and "H.265 ('hvc1')" in why
    piece = browser.evaluate(f"document.querySelector('.piece[data-name=\"{name(HEVC, 4)}\"]').className")
    assert "hevc" in piece and "unplayable" in piece
    # The link gives the segment's own bytes, as an attachment, for plain and encrypted objects alike.
    for camera in (HEVC, SEALED_HEVC):
        code, body, headers = get(site["url"] + f"media/{camera}/{name(camera, 4)}?download=1", {"Authorization": AUTH})
        assert code == 200 and body == site["hevc"].read_bytes()
        assert headers["Content-Disposition"] == f'attachment; filename="{name(camera, 4)}"'
    # The H.264 camera of the same page still plays in the player.
    browser.evaluate(f"playAt({H264}, {(NOON + timedelta(seconds=1)).timestamp()})")
    state = browser.wait_for("(s => s.segment && s.currentTime > 0.5 && s)(window.viewerState())", 30)
    assert state["segment"] == name(H264, 0) and state["download"] is None


def keys_of(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(keys_of(v) for v in value.values()))
    return set().union(*(keys_of(v) for v in value)) if isinstance(value, list) else set()


def test_the_status_tab_shows_what_status_shows_and_needs_the_token(site, browser):
    write_state(site["data"], {
        str(H264): {"name": "door", "url": f"rtsp://admin:{CAMERA_PASSWORD}@10.0.0.5/stream", "state": "recording",
                    "video_codec": "h264", "fps": "10", "bitrate": "812.4kbits/s", "restarts": 2,
                    "last_segment_at": utc_iso(datetime.now(timezone.utc) - timedelta(seconds=30)),
                    "camera_clock_offset": 42.0, "handoff_waiting": 2, "handoff_waiting_seconds": 5000.0},
        str(HEVC): {"name": "yard", "url": "rtsp://admin:***@10.0.0.6/stream", "state": "backoff",
                    "reason": "connection refused", "video_codec": "hevc", "restarts": 7}})
    waiting = next(DataLayout(site["data"]).completed.glob("camera_*.mp4"))
    os.utime(waiting, (time.time() - 600, time.time() - 600))   # older than BACKLOG_MINUTES
    assert get(site["url"] + "api/status")[0] == 401
    code, out = run_module("services", "status", "--json", env_file=site["status_env"])
    assert code == 1, out   # its PROBLEMS: the tab must show the same ones
    expected = json.loads(out)
    code, body, _ = get(site["url"] + "api/status", {"Authorization": AUTH})
    assert code == 200
    for secret in (b"rtsp://", CAMERA_PASSWORD.encode(), TOKEN.encode(), PASSWORD.encode()):
        assert secret not in body
    data = json.loads(body)
    assert "url" not in keys_of(data) and "endpoint" not in keys_of(data)
    assert data["problems"] == expected["problems"] and data["warnings"] == expected["warnings"]
    assert f"camera {H264}: 2 closed segment(s) not in completed/ for 5000s" in data["problems"]
    assert "upload backlog: oldest segment waiting 10m ago" in data["problems"]
    assert [(s["name"], s["running"]) for s in data["services"]] == [
        ("video-recorder", expected["recorder_running"]), ("s3-uploader", expected["uploader_running"])]
    assert [c["id"] for c in data["cameras"]] == list(expected["cameras"]) == [str(H264), str(HEVC)]
    assert data["backlog"]["files"] == expected["backlog"]["files"] == 1 and data["backlog"]["bytes"] == 1000
    open_page(browser, site["url"] + "?date=2026-01-25")
    assert browser.evaluate("document.getElementById('status').hidden") is True
    browser.evaluate("document.getElementById('tab-status').click()")
    rows = browser.wait_for("""(() => {
        const rows = [...document.querySelectorAll('#status-cameras tbody tr')];
        return rows.length && rows.map(r => [r.dataset.camera, ...[...r.cells].map(c => c.textContent)]); })()""")
    assert rows[0][:6] == [str(H264), f"{H264} door", "recording", "H.264", "10", "812.4"]
    assert rows[1][:4] == [str(HEVC), f"{HEVC} yard", "backoff (connection refused)", "H.265"]
    problems = browser.evaluate("[...document.querySelectorAll('#status-problems li')].map(li => li.textContent)")
    assert problems == expected["problems"]
    assert f"camera {HEVC} is backoff (connection refused)" in problems
    assert "s3-uploader no state file (never started?)" in problems
    warnings = browser.evaluate("[...document.querySelectorAll('#status-warnings li')].map(li => li.textContent)")
    assert warnings == expected["warnings"] == [f"camera {H264}: camera clock 42 s ahead of the host; "
                                                "set the camera's NTP server"]
    assert browser.evaluate("document.getElementById('status-summary').textContent") == \
        f"{len(problems)} problems, 1 warning"
    assert browser.evaluate("document.querySelector('[data-figure=\"upload backlog\"]').textContent").startswith(
        "1 files, 1000 B, oldest 10 min ago")
    page = browser.evaluate("document.getElementById('status').textContent")
    assert CAMERA_PASSWORD not in page and "rtsp://" not in page
    assert browser.evaluate("[document.getElementById('footage').hidden, location.hash]") == [True, "#status"]
    # A reload keeps the tab; the recorder gone (its state file stale) shows as down.
    write_json_atomic(site["data"] / "state" / "recorder.json",
                      {"pid": os.getpid(), "updated_at": "2026-01-25T12:00:00Z", "cameras": {}})
    browser.navigate(site["url"] + "?date=2026-01-25#status")
    text = browser.wait_for("(t => t.includes('stale') && t)(document.getElementById('status-services').textContent)")
    assert "alive but its state is stale" in text
