"""Benchmark 9: the footage viewer (`web`) on full days of a site, from a local S3 server.

D finished UTC days of C cameras x S segments (10-minute segments: 144 a day) in `rclone serve s3`,
the uploader's metadata on every object; cameras 1..C-1 plain objects, camera C rclone-crypt
(`.bin`, written by another host), so both ways `/media` serves are timed. Per round a fresh
viewer process (`python -m services web`), then over HTTP on 127.0.0.1:
  - `/api/day` cold: the first request, which lists the bucket (cameras, each camera's day and
    the day before, one HEAD per object for its times) and fills the per-day cache;
  - `/api/day` cached: N more requests for the same day (a reload, another open page);
  - `/media` time to first byte: a plain segment (the viewer's 302 to a presigned URL, and the
    first byte from S3 after following it) and an encrypted one (decrypted as it streams);
  - the viewer's RSS and PSS: after start, after the cold day, after all requests, and after
    the other D-1 days were asked for once each (what each further day in the cache holds).
Recording and upload are not running here: bench_viewer_load.py measures them with the page open.

    python -m tests.bench.bench_viewer [--cameras 4] [--segments 144] [--days 3] [--rounds 3] [--requests 20]
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

from services.bucket.keys import object_key, stored_key
from services.bucket.metadata import DURATION
from services.common.segment_names import SegmentName
from services.crypt.format import encrypt_bytes
from services.crypt.keys import derive_keys
from tests.bench.common import memory_kb, percentile, quick, remove, save, table, workspace
from tests.support.media import make_segment
from tests.support.processes import REPO, stop_pid, wait_for, write_env
from tests.support.s3_server import S3Server, free_port

BUCKET, PREFIX = "footage", "site/"
DAY = datetime(2026, 1, 20, tzinfo=timezone.utc)
SEGMENT = 600
PASSWORD, SALT = "bench-viewer-password", "bench-viewer-salt"


def fill_bucket(server: S3Server, cameras: int, segments: int, days: int, template: Path) -> dict:
    """C cameras x S segments of each day from DAY on; the last camera's objects encrypted. What one
    object weighs."""
    client = server.client()
    plain = template.read_bytes()
    sealed = encrypt_bytes(plain, derive_keys(PASSWORD, SALT))
    metadata = {DURATION: f"{SEGMENT:.3f}"}

    def put(item: tuple[int, int, int]) -> None:
        day, camera, index = item
        name = SegmentName(DAY + timedelta(days=day, seconds=SEGMENT * index), camera)
        encrypted = camera == cameras
        key = stored_key(PREFIX, name, encrypted=True) if encrypted else object_key(PREFIX, name)
        client.put_object(Bucket=BUCKET, Key=key, Body=sealed if encrypted else plain, Metadata=metadata)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, [(d, c, i) for d in range(days) for c in range(1, cameras + 1) for i in range(segments)]))
    return {"plain_bytes": len(plain), "encrypted_bytes": len(sealed)}


def timed_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, float, float, bytes, dict]:
    """(status, seconds to the first byte of the body (or of the headers if none), seconds to the
    end, body, headers) of one GET on a new connection."""
    parts = urlsplit(url)
    started = time.perf_counter()
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
        response = connection.getresponse()
        first = response.read(1)
        ttfb = time.perf_counter() - started
        body = first + response.read()
        return response.status, ttfb, time.perf_counter() - started, body, dict(response.getheaders())
    finally:
        connection.close()


def media_ttfb(base: str, camera: int, name: str) -> dict:
    """A segment as the browser asks for it (`Range: bytes=0-`), redirects followed."""
    status, ttfb, total, body, headers = timed_get(f"{base}media/{camera}/{name}", {"Range": "bytes=0-"})
    result = {"viewer_status": status, "viewer_ttfb_ms": round(1000 * ttfb, 2)}
    if status == 302:
        status, s3_ttfb, s3_total, body, _ = timed_get(headers["Location"], {"Range": "bytes=0-"})
        result.update({"s3_status": status, "s3_ttfb_ms": round(1000 * s3_ttfb, 2),
                       "ttfb_ms": round(1000 * (ttfb + s3_ttfb), 2),
                       "total_ms": round(1000 * (total + s3_total), 2)})
    else:
        result.update({"ttfb_ms": round(1000 * ttfb, 2), "total_ms": round(1000 * total, 2)})
    result["bytes"] = len(body)
    return result


def mb(pid: int) -> dict:
    pss, rss = memory_kb([pid])
    return {"rss_mb": round(rss / 1024, 2), "pss_mb": round(pss / 1024, 2)}


def day_url(base: str, day: int) -> str:
    return base + f"api/day?date={(DAY + timedelta(days=day)).date().isoformat()}&in=utc&tz=UTC"   # as the page asks


def one_round(env: Path, port: int, cameras: int, segments: int, days: int, requests: int, work: Path) -> dict:
    log_path = work / "web.log"
    with open(log_path, "w") as log:
        web = subprocess.Popen([sys.executable, "-m", "services", "web", "--env-file", str(env)], stdout=log,
                               stderr=subprocess.STDOUT, cwd=REPO)
    try:
        wait_for(lambda: "serving" in log_path.read_text() or web.poll() is not None, 60, "the viewer to listen")
        assert web.poll() is None, log_path.read_text()[-2000:]
        base = f"http://127.0.0.1:{port}/"
        memory = {"started": mb(web.pid)}
        status, _, cold, body, _ = timed_get(day_url(base, 0))
        assert status == 200, body[:500]
        page = json.loads(body)
        pieces = sum(len(c["pieces"]) for c in page["cameras"])
        assert len(page["cameras"]) == cameras and pieces == cameras * segments and page["problem"] is None, \
            (len(page["cameras"]), pieces, page["problem"])
        memory["after_cold_day"] = mb(web.pid)
        cached = []
        for _ in range(requests):
            status, _, seconds, again, _ = timed_get(day_url(base, 0))
            assert status == 200 and again == body
            cached.append(seconds)
        middle = SegmentName(DAY + timedelta(seconds=SEGMENT * (segments // 2)), 1).filename
        sealed = SegmentName(DAY + timedelta(seconds=SEGMENT * (segments // 2)), cameras).filename
        media = {"plain": media_ttfb(base, 1, middle), "encrypted": media_ttfb(base, cameras, sealed)}
        memory["after_all"] = mb(web.pid)
        others = []
        for day in range(1, days):
            status, _, seconds, _, _ = timed_get(day_url(base, day))
            assert status == 200
            others.append(round(1000 * seconds, 1))
        memory["after_other_days"] = mb(web.pid)
        return {"day_cold_ms": round(1000 * cold, 1), "day_json_bytes": len(body), "other_days_cold_ms": others,
                "day_cached_ms": {"median": round(1000 * statistics.median(cached), 2),
                                  "p95": round(1000 * percentile(cached, 95), 2),
                                  "max": round(1000 * max(cached), 2)},
                "media": media, "memory": memory}
    finally:
        stop_pid(web)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--segments", type=int, default=144)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1 if quick() else 3)
    parser.add_argument("--requests", type=int, default=5 if quick() else 20)
    args = parser.parse_args(argv)
    work = workspace("viewer")
    server = S3Server(work / "s3")
    try:
        server.start()
        server.create_bucket(BUCKET)
        template = make_segment(work / "template.mp4", 2.0, size="640x480")
        started = time.monotonic()
        sizes = fill_bucket(server, args.cameras, args.segments, args.days, template)
        filled = time.monotonic() - started
        port = free_port()
        (work / "data").mkdir()
        env = write_env(work / ".env", {"DATA_DIR": work / "data", "S3_PREFIX": PREFIX, "SEGMENT_DURATION": SEGMENT,
                                        "ENCRYPTION_PASSWORD": PASSWORD, "ENCRYPTION_SALT": SALT,
                                        "VIEWER_PORT": port, "LOG_LEVEL": "WARNING", **server.env(BUCKET)})
        runs = []
        for round_no in range(args.rounds):
            print(f"round {round_no + 1}: {args.cameras} cameras x {args.segments} segments ...", flush=True)
            runs.append(one_round(env, port, args.cameras, args.segments, args.days, args.requests, work))
    finally:
        server.stop()
        remove(work)
    median = lambda get: round(statistics.median(get(r) for r in runs), 2)  # noqa: E731
    summary = {"day_cold_ms": median(lambda r: r["day_cold_ms"]),
               "day_cached_median_ms": median(lambda r: r["day_cached_ms"]["median"]),
               "day_cached_p95_ms": median(lambda r: r["day_cached_ms"]["p95"]),
               "media_plain_ttfb_ms": median(lambda r: r["media"]["plain"]["ttfb_ms"]),
               "media_plain_viewer_ms": median(lambda r: r["media"]["plain"]["viewer_ttfb_ms"]),
               "media_encrypted_ttfb_ms": median(lambda r: r["media"]["encrypted"]["ttfb_ms"]),
               "rss_mb_started": median(lambda r: r["memory"]["started"]["rss_mb"]),
               "rss_mb_after_all": median(lambda r: r["memory"]["after_all"]["rss_mb"]),
               "pss_mb_after_all": median(lambda r: r["memory"]["after_all"]["pss_mb"]),
               "rss_mb_after_other_days": median(lambda r: r["memory"]["after_other_days"]["rss_mb"]),
               "rss_mb_per_further_day": median(lambda r: (r["memory"]["after_other_days"]["rss_mb"] -
                                                          r["memory"]["after_all"]["rss_mb"]) / max(1, args.days - 1))}
    rows = [[i + 1, r["day_cold_ms"], r["day_cached_ms"]["median"], r["day_cached_ms"]["p95"],
             r["media"]["plain"]["viewer_ttfb_ms"], r["media"]["plain"]["ttfb_ms"], r["media"]["encrypted"]["ttfb_ms"],
             r["memory"]["started"]["rss_mb"], r["memory"]["after_cold_day"]["rss_mb"], r["memory"]["after_all"]["rss_mb"],
             r["memory"]["after_other_days"]["rss_mb"]]
            for i, r in enumerate(runs)]
    print(table(["round", "day cold ms", "cached p50 ms", "cached p95 ms", "302 ms", "plain TTFB ms",
                 "crypt TTFB ms", "RSS start MB", "RSS day MB", "RSS end MB", f"RSS {args.days} days MB"], rows),
          flush=True)
    results = {"cameras": args.cameras, "segments_per_camera": args.segments, "days": args.days,
               "segment_duration": SEGMENT,
               "encrypted_cameras": [args.cameras], "day": DAY.date().isoformat(), "requests": args.requests,
               "s3_server": "rclone serve s3 (local folder)", "objects": sizes, "bucket_fill_s": round(filled, 1),
               "summary": summary, "runs": runs}
    print(f"results: {save('viewer', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
