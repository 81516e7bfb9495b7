"""The footage viewer (`web`) with real segments in a real S3 server (rclone serve s3), looked at
and clicked in Debian's headless Chromium over its DevTools protocol."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from services.bucket.keys import object_key, stored_key
from services.bucket.metadata import DURATION as DURATION_METADATA
from services.common.data_layout import DataLayout
from services.common.mp4_fragments import append_stamp, video_duration
from services.common.segment_names import SegmentName
from services.crypt.format import encrypt_bytes
from services.crypt.keys import derive_keys
from tests.support.browser import Browser, NetworkBrowser, chromium, drag, get
from tests.support.media import decode_errors, make_segment, probe, video_packets, video_stream_duration
from tests.support.processes import run_module, stop_pid, wait_for, write_env
from tests.support.s3_server import S3Server, free_port

pytestmark = pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (make system-deps)")

STATE = "window.viewerState && window.viewerState()"


def playing(browser: Browser, condition: str, timeout: float = 30.0) -> dict:
    """The page's player state once `condition` (JavaScript about `s`, that state) holds."""
    return browser.wait_for(f"(s => ({condition}) && s)(window.viewerState ? window.viewerState() : {{}})",
                            timeout, show=STATE)


BUCKET, PREFIX = "footage", "site/"
DAY = datetime(2026, 1, 25, tzinfo=timezone.utc)
NOON = DAY + timedelta(hours=12)
# Camera 1 (plain objects): 4-s segments at 12:00:00, :04, :08, a gap 12:00:12-12:00:20, then :20, :24.
# Camera 2 (rclone-crypt `.bin` objects, written by another host): 12:00:00 and 12:00:04.
PLAIN_OFFSETS, SEALED_OFFSETS = (0, 4, 8, 20, 24), (0, 4)
PASSWORD, SALT = "viewer-test-password", "viewer-test-salt"
TOKEN = "a-long-enough-viewer-token"


def segment_name(camera: int, offset: int) -> str:
    return SegmentName(NOON + timedelta(seconds=offset), camera).filename


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The bucket of a site with two cameras, and a `web` viewer serving it on a free port."""
    root = tmp_path_factory.mktemp("viewer")
    template = make_segment(root / "t.mp4", 4.0, size="640x480")   # > 64 KiB: two crypt blocks
    metadata = {"Metadata": {DURATION_METADATA: f"{video_duration(template):.3f}"}}
    server = S3Server(root / "s3").start()
    server.create_bucket(BUCKET)
    client = server.client()
    for offset in PLAIN_OFFSETS:
        client.upload_file(str(template), BUCKET, object_key(PREFIX, SegmentName(NOON + timedelta(seconds=offset), 1)),
                           ExtraArgs=metadata)
    sealed = encrypt_bytes(template.read_bytes(), derive_keys(PASSWORD, SALT))
    for offset in SEALED_OFFSETS:
        key = stored_key(PREFIX, SegmentName(NOON + timedelta(seconds=offset), 2), encrypted=True)
        client.put_object(Bucket=BUCKET, Key=key, Body=sealed, **metadata)
    port = free_port()
    env = write_env(root / ".env", {"DATA_DIR": root / "data", "S3_PREFIX": PREFIX, "SEGMENT_DURATION": 4,
                                    "ENCRYPTION_PASSWORD": PASSWORD, "ENCRYPTION_SALT": SALT,
                                    "VIEWER_PORT": port, **server.env(BUCKET)})
    (root / "data").mkdir()
    log = open(root / "web.log", "w")
    web = subprocess.Popen([sys.executable, "-m", "services", "web", "--env-file", str(env)], stdout=log,
                           stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2])
    url = f"http://127.0.0.1:{port}/"
    wait_for(lambda: "serving" in (root / "web.log").read_text(), 30, "the viewer to listen")
    yield {"url": url, "env": env, "root": root, "template": template, "client": client}
    stop_pid(web)
    log.close()
    server.stop()


@pytest.fixture(scope="module")
def browser(site):
    chrome = Browser(site["url"] + "?date=2026-01-25", environment={**os.environ, "TZ": "Europe/Berlin"})
    yield chrome
    chrome.close()


def coverage_json(env: Path, camera: int) -> dict:
    code, out = run_module("services", "coverage", "--camera", str(camera), "--date", "2026-01-25", "--json",
                           env_file=env)
    assert code == 0, out
    return json.loads(out)[0]


def test_timeline_shows_the_coverage_commands_figures(site, browser):
    browser.wait_for("window.viewerState && window.viewerState().loaded")
    shown = browser.evaluate("""[...document.querySelectorAll('.camera')].map(box => ({
        camera: Number(box.dataset.camera), percent: box.dataset.percent,
        title: box.querySelector('.title').textContent,
        pieces: [...box.querySelectorAll('.piece')].map(p => p.dataset.name),
        gaps: [...box.querySelectorAll('.gap')].map(g => [Number(g.dataset.start), Number(g.dataset.end)])}))""")
    assert [box["camera"] for box in shown] == [1, 2]   # camera 2 is not in this host's .env: all of the site
    for box in shown:
        expected = coverage_json(site["env"], box["camera"])
        assert box["percent"] == f"{expected['percent']:.2f}"
        assert f"{expected['percent']:.2f}% covered" in box["title"]
        assert box["gaps"] == [[datetime.fromisoformat(g["start"]).timestamp(), datetime.fromisoformat(g["end"]).timestamp()]
                               for g in expected["gaps"]]
    assert shown[0]["pieces"] == [segment_name(1, offset) for offset in PLAIN_OFFSETS]
    # 12:00:12 - 12:00:20 is one of camera 1's gaps, and the page says how long it is.
    gap = [(NOON + timedelta(seconds=12)).timestamp(), (NOON + timedelta(seconds=20)).timestamp()]
    assert gap in shown[0]["gaps"]
    assert "12:00:12 - 12:00:20 UTC (13:00:12 - 13:00:20 local): 8.0 s" in browser.evaluate(
        "[...document.querySelectorAll('.camera[data-camera=\"1\"] .gaps li')].map(li => li.textContent).join('|')")
    # Both clocks on the axis: noon UTC is 13:00 in Berlin (CET) that day.
    labels = browser.evaluate("[...document.querySelectorAll('.axis .local')].map(s => s.textContent)")
    assert labels[0] == "01:00 CET" and "13:00" in labels


def test_a_click_plays_that_moment_and_playback_crosses_segments(site, browser):
    browser.wait_for("window.viewerState && window.viewerState().loaded")
    # Click camera 1's timeline where 12:00:05 is.
    x, y = browser.evaluate(f"""(() => {{
        const bar = document.querySelector('.camera[data-camera="1"] .bar').getBoundingClientRect();
        const day = {DAY.timestamp()}, t = {(NOON + timedelta(seconds=5)).timestamp()};
        return [bar.left + bar.width * (t - day) / 86400, bar.top + bar.height / 2]; }})()""")
    browser.click(x, y)
    state = playing(browser, "s.segment && !s.paused && s.currentTime > 0.5")
    assert state["segment"] == segment_name(1, 4)
    start = state["time"]
    assert abs(start - (NOON + timedelta(seconds=5)).timestamp()) < 3   # the pixel is ~100 s wide at 1280 px
    # Keep watching: playback moves into the next segment by itself, without a click.
    later = playing(browser, f"s.segment === '{segment_name(1, 8)}' && s.currentTime > 0.5", timeout=20)
    assert later["time"] > start and not later["paused"]
    shown = browser.evaluate("[...document.querySelectorAll('video')].filter(v => !v.hidden).length")
    assert shown == 1


def psnr(shown: Path, reference: Path) -> float:
    """FFmpeg's PSNR (dB, average over R, G, B) of two pictures, the first scaled to the second's size."""
    out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", str(shown), "-i", str(reference), "-lavfi",
                          "[0:v][1:v]scale2ref[a][b];[a]format=rgb24[a1];[b]format=rgb24[b1];[a1][b1]psnr",
                          "-f", "null", "-"], capture_output=True, text=True, timeout=60).stderr
    found = [line for line in out.splitlines() if "PSNR" in line and "average:" in line]
    assert found, out[-2000:]
    value = found[-1].split("average:")[1].split()[0]
    return float("inf") if value == "inf" else float(value)


def frame_at(segment: Path, offset: float, output: Path) -> Path:
    """The frame `ffmpeg -ss <offset> -i <segment> -frames:v 1` extracts: the first presented at or after it."""
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-ss", f"{offset:.3f}", "-i", str(segment),
                    "-frames:v", "1", "-y", str(output)], check=True, timeout=60)
    return output


SHOW_FRAME = """(async () => {{
    const v = [...document.querySelectorAll('video')].find(v => !v.hidden);
    const within = (promise, name, ms) => Promise.race([promise.then(() => name),
        new Promise(r => setTimeout(() => r(name + ' timed out'), ms))]);
    v.pause();
    v.controls = false;   // the picture alone, at its own size
    v.style.cssText += ';width:' + v.videoWidth + 'px;height:' + v.videoHeight + 'px;max-width:none;max-height:none';
    v.scrollIntoView();
    const seeked = new Promise(r => v.addEventListener('seeked', r, {{once: true}}));
    v.currentTime = {offset};
    const log = [await within(seeked, 'seeked', 5000),
                 await within(new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))), 'painted', 5000)];
    await within(new Promise(r => v.requestVideoFrameCallback(r)), 'frame', 1000);   // not always called when paused
    const b = v.getBoundingClientRect();
    return {{x: b.left + window.scrollX, y: b.top + window.scrollY, width: b.width, height: b.height,
            currentTime: v.currentTime, log}};
}})()"""


def test_the_frame_shown_is_the_one_ffmpeg_extracts(site, browser, tmp_path):
    # Play camera 1 from 12:00:09.5 (the segment of 12:00:08, 1.5 s in), as a click there does.
    browser.navigate(site["url"] + f"?date=2026-01-25&camera=1&t={(NOON + timedelta(seconds=9.5)).timestamp()}")
    state = playing(browser, f"s.ready && s.segment === '{segment_name(1, 8)}' && s.currentTime > 1.4")
    assert abs(state["time"] - (NOON + timedelta(seconds=8 + state["currentTime"])).timestamp()) < 0.01
    # Pause on 1.5 s: half a frame (10 fps) past the frame that starts there, so that neither side rounds
    # to a neighbour. `ffmpeg -ss` extracts the first frame presented at or after its offset.
    box = browser.evaluate(SHOW_FRAME.format(offset=1.55))
    assert box["log"] == ["seeked", "painted"] and box["currentTime"] == 1.55, box
    shot = tmp_path / "shown.png"
    shot.write_bytes(base64.b64decode(browser.send("Page.captureScreenshot", format="png", clip={
        "x": box["x"], "y": box["y"], "width": box["width"], "height": box["height"], "scale": 1})["data"]))
    code, body, _ = get(site["url"] + f"media/1/{segment_name(1, 8)}")   # the object the page played
    assert code == 200
    segment = tmp_path / segment_name(1, 8)
    segment.write_bytes(body)
    match = {at: psnr(shot, frame_at(segment, at, tmp_path / f"ffmpeg-{at}.png")) for at in (1.4, 1.5, 1.6, 3.5)}
    # On this machine: 51.9 dB for the same frame, 33.8 for the frames 0.1 s either side, 11.4 for 2 s later.
    assert match[1.5] > 40, match
    assert match[1.5] > max(match[1.4], match[1.6]) + 10 and match[3.5] < 25, match


def test_deep_link_keys_and_an_encrypted_camera(site, browser, tmp_path):
    t = (NOON + timedelta(seconds=9)).timestamp()
    browser.navigate(site["url"] + f"?date=2026-01-25&camera=1&t={t}")
    state = playing(browser, "s.segment && s.currentTime > 1.2")
    assert state["segment"] == segment_name(1, 8)
    browser.key("n")   # the next gap: plays from where recording resumed, 12:00:20
    playing(browser, f"s.segment === '{segment_name(1, 20)}' && s.currentTime > 0.3")
    browser.key("ArrowLeft", key_code=37)   # 10 s back from 12:00:20.x: 12:00:10.x, in the segment of 12:00:08
    state = playing(browser, f"s.ready && s.segment === '{segment_name(1, 8)}'")
    assert (NOON + timedelta(seconds=10)).timestamp() <= state["time"] < (NOON + timedelta(seconds=12)).timestamp()
    # Camera 2's objects are rclone-crypt: decrypted as they stream, with byte ranges for seeking.
    browser.navigate(site["url"] + f"?date=2026-01-25&camera=2&t={(NOON + timedelta(seconds=2)).timestamp()}")
    state = playing(browser, "s.segment && s.currentTime > 2.5")
    assert state["segment"] == segment_name(2, 0) and "/media/2/" in state["src"]
    playing(browser, f"s.segment === '{segment_name(2, 4)}'", timeout=20)
    shot = browser.screenshot(Path(os.environ.get("VIEWER_SCREENSHOT", tmp_path / "viewer.png")))
    assert shot.stat().st_size > 10_000


def test_media_ranges_clips_and_presigned_redirects(site):
    url = site["url"]
    template = site["template"].read_bytes()
    assert len(template) > 70_001
    # A range across the boundary of the first two crypt blocks (64 KiB), then the start.
    code, body, headers = get(url + f"media/2/{segment_name(2, 0)}", {"Range": "bytes=60000-70000"})
    assert code == 206 and body == template[60000:70001]
    assert headers["Content-Range"] == f"bytes 60000-70000/{len(template)}"
    code, body, _ = get(url + f"media/2/{segment_name(2, 0)}", {"Range": "bytes=0-99"})
    assert code == 206 and body == template[:100]
    request = urllib.request.Request(url + f"media/1/{segment_name(1, 0)}")
    opener = urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,),
                                              {"redirect_request": lambda *a, **k: None}))
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(request, timeout=30)
    assert redirect.value.code == 302 and "Signature" in redirect.value.headers["Location"]
    start, end = (quote((NOON + timedelta(seconds=s)).isoformat()) for s in (2, 15))
    code, body, headers = get(url + f"clip?camera=1&start={start}&end={end}")
    assert code == 200 and "attachment" in headers["Content-Disposition"]
    clip = site["root"] / "clip.mp4"
    clip.write_bytes(body)
    assert decode_errors(clip) == "" and 8.5 <= video_stream_duration(clip) <= 11.5   # 12:00:02-12:00:12
    code, body, _ = get(url + "clip?camera=1&start=2026-01-20T00:00:00Z&end=2026-01-20T00:01:00Z")
    assert code == 404 and b"not recorded" in body


def test_token_is_asked_for_and_never_logged(site, tmp_path):
    port = free_port()
    lines = [line for line in site["env"].read_text().splitlines() if not line.startswith("VIEWER_PORT")]
    env = tmp_path / ".env"
    env.write_text("\n".join(lines + [f"VIEWER_PORT={port}", "VIEWER_BIND=0.0.0.0"]) + "\n")
    code, out = run_module("services", "web", env_file=env, timeout=30)
    assert code == 78 and "VIEWER_TOKEN" in out and "not a loopback address" in out
    env.write_text(env.read_text() + f"VIEWER_TOKEN={TOKEN}\n")
    log = tmp_path / "web.log"
    with open(log, "w") as sink:
        web = subprocess.Popen([sys.executable, "-m", "services", "web", "--env-file", str(env)], stdout=sink,
                               stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "serving" in log.read_text(), 30, "the viewer to listen")
            base = f"http://127.0.0.1:{port}/"
            assert get(base)[0] == 401
            assert get(base + "api/day?date=2026-01-25")[0] == 401
            basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
            code, body, _ = get(base + "api/day?date=2026-01-25", {"Authorization": f"Basic {basic}"})
            assert code == 200 and [c["camera"] for c in json.loads(body)["cameras"]] == [1, 2]
            assert get(base, {"Authorization": "Basic " + base64.b64encode(b"x:wrong").decode()})[0] == 401
        finally:
            stop_pid(web)
    text = log.read_text()
    assert "password required" in text and TOKEN not in text and PASSWORD not in text


# The next day, camera 1: 12:00:00 only on this host (DATA_DIR/videos/uploaded), 12:00:04 only in the
# bucket, 12:00:08 in both (this host's copy in completed/). This host's copies are 320x240, the
# bucket's 640x480: the picture's size tells which one the page plays.
LOCAL_DAY = DAY + timedelta(days=1)
LOCAL_NOON = LOCAL_DAY + timedelta(hours=12)


def local_day_name(offset: int) -> str:
    return SegmentName(LOCAL_NOON + timedelta(seconds=offset), 1).filename


@pytest.fixture(scope="module")
def local_day(site):
    layout = DataLayout(site["root"] / "data")
    small = make_segment(site["root"] / "small.mp4", 4.0, size="320x240")
    metadata = {"Metadata": {DURATION_METADATA: f"{video_duration(site['template']):.3f}"}}
    for offset, folder in ((0, layout.uploaded), (8, layout.completed)):
        folder.mkdir(parents=True, exist_ok=True)
        copy = folder / local_day_name(offset)
        copy.write_bytes(small.read_bytes())
        append_stamp(copy, LOCAL_NOON + timedelta(seconds=offset))   # as the hand-off leaves it
    for offset in (4, 8):
        site["client"].upload_file(str(site["template"]), BUCKET,
                                   object_key(PREFIX, SegmentName(LOCAL_NOON + timedelta(seconds=offset), 1)),
                                   ExtraArgs=metadata)
    return LOCAL_DAY


def shown_width(browser: Browser) -> int:
    return browser.evaluate("[...document.querySelectorAll('video')].find(v => !v.hidden).videoWidth")


def test_this_hosts_copy_plays_from_the_host_not_the_bucket(site, local_day):
    chrome = NetworkBrowser(site["url"] + f"?date={local_day:%Y-%m-%d}", environment={**os.environ, "TZ": "UTC"})
    try:
        chrome.wait_for("window.viewerState && window.viewerState().loaded")
        pieces = chrome.evaluate("""[...document.querySelectorAll('.camera[data-camera="1"] .piece')]
            .map(p => [p.dataset.name, p.classList.contains('local') ? 'local' : 'bucket'])""")
        assert pieces == [[local_day_name(0), "local"], [local_day_name(4), "bucket"], [local_day_name(8), "bucket"]]
        # Click camera 1's timeline at 12:00:01: the segment only this host has.
        x, y = chrome.evaluate(f"""(() => {{
            const bar = document.querySelector('.camera[data-camera="1"] .bar').getBoundingClientRect();
            const day = {local_day.timestamp()}, t = {(LOCAL_NOON + timedelta(seconds=1)).timestamp()};
            return [bar.left + bar.width * (t - day) / 86400, bar.top + bar.height / 2]; }})()""")
        chrome.click(x, y)
        state = playing(chrome, f"s.segment === '{local_day_name(0)}' && !s.paused && s.currentTime > 0.5")
        assert state["src"].endswith(f"/media/1/{local_day_name(0)}") and shown_width(chrome) == 320
        assert "this host's copy" in chrome.evaluate("document.getElementById('now-playing').textContent")
        # Playback goes on into the bucket's segment, then into the one stored in both places.
        playing(chrome, f"s.segment === '{local_day_name(4)}' && s.currentTime > 0.5", timeout=20)
        assert shown_width(chrome) == 640
        later = playing(chrome, f"s.segment === '{local_day_name(8)}' && s.currentTime > 0.5", timeout=20)
        assert shown_width(chrome) == 320
        assert 8.5 <= later["time"] - LOCAL_NOON.timestamp() < 12
        # Where the media requests went: the bucket's segment to a presigned URL, the others served by
        # the viewer from this host's files (no redirect).
        bucket = chrome.responses(f"/media/1/{local_day_name(4)}")
        assert bucket and all(status == 302 and "Signature" in location for status, location in bucket), bucket
        for offset in (0, 8):
            here = chrome.responses(f"/media/1/{local_day_name(offset)}")
            assert here and all(status in (200, 206) and location is None for status, location in here), here
    finally:
        chrome.close()


# Two days on, camera 1 recorded 12:00 - 12:20 in 60-s segments: long enough to drag across (a pixel
# of a 1280-px timeline is ~70 s of the day).
DRAG_DAY = DAY + timedelta(days=2)
DRAG_NOON = DRAG_DAY + timedelta(hours=12)


@pytest.fixture(scope="module")
def drag_day(site):
    minute = make_segment(site["root"] / "minute.mp4", 60.0)
    metadata = {"Metadata": {DURATION_METADATA: f"{video_duration(minute):.3f}"}}
    for index in range(20):
        site["client"].upload_file(str(minute), BUCKET,
                                   object_key(PREFIX, SegmentName(DRAG_NOON + timedelta(minutes=index), 1)),
                                   ExtraArgs=metadata)
    return DRAG_DAY


def test_a_drag_on_the_timeline_downloads_that_range_as_a_clip(site, browser, drag_day, tmp_path):
    browser.navigate(site["url"] + f"?date={drag_day:%Y-%m-%d}")
    browser.wait_for("window.viewerState && window.viewerState().loaded && "
                     "document.querySelectorAll('.camera[data-camera=\"1\"] .piece').length === 20")
    start, end = (DRAG_NOON + timedelta(minutes=3, seconds=30)), (DRAG_NOON + timedelta(minutes=14, seconds=30))
    bar = browser.evaluate("""(() => { const b = document.querySelector('.camera[data-camera="1"] .bar')
        .getBoundingClientRect(); return {left: b.left, width: b.width, y: b.top + b.height / 2}; })()""")
    x = {t: bar["left"] + bar["width"] * (t - drag_day).total_seconds() / 86400 for t in (start, end)}
    drag(browser, (x[start], bar["y"]), (x[end], bar["y"]))
    link = browser.wait_for("!document.getElementById('clip').hidden && document.getElementById('clip-link').href")
    assert browser.evaluate("document.querySelectorAll('.camera[data-camera=\"1\"] .bar .selection').length") == 1
    address = urlsplit(link)
    query = dict(parse_qsl(address.query))
    assert address.path == "/clip" and query["camera"] == "1"
    chosen = (int(query["start"]), int(query["end"]))
    assert abs(chosen[0] - start.timestamp()) <= 1 and abs(chosen[1] - end.timestamp()) <= 1, (chosen, start, end)
    code, body, headers = get(link)
    assert code == 200 and "attachment" in headers["Content-Disposition"]
    clip = tmp_path / "dragged.mp4"
    clip.write_bytes(body)
    # Cut without re-encoding (`-copyts`: the frames before the in-point hidden): exactly the range's
    # frames (10 fps). Its duration is longer by 0.2 s a join (11 here): these test segments' video
    # starts 0.2 s after their audio, and the concat demuxer places each file after the longer stream.
    assert decode_errors(clip) == ""
    video = next(s for s in probe(clip)["streams"] if s["codec_type"] == "video")
    seconds = chosen[1] - chosen[0]
    assert abs(len(video_packets(clip)) / 10 - seconds) <= 1, video
    assert seconds - 1 <= float(video["duration"]) <= seconds + 1 + 11 * 0.2, video
