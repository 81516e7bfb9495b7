"""Benchmark 9b: does the viewer slow recording or upload with the page open?

C synthetic cameras (default 4: one mount each of the snow test server, 640x360, 10 fps,
1 Mbit/s), the recorder and the uploader against a local `rclone serve s3` with 10-s segments,
and `python -m services web` on the same .env. Then 2R windows in rotating order (idle, loaded,
loaded, idle, ...):
  idle   = the viewer runs, nobody asks it anything;
  loaded = a client thread does what an open page does: every 2 s `/api/day` for today (as the
           page polls; the viewer caches today for 5 s), and, all along, plays `/media` of the
           newest segment in uploaded/ with Range requests of 512 KiB, paced at --speed times
           real time (a <video> buffering ahead), starting again on the newest one at the end of
           each (302s to presigned URLs followed, as the browser does).
Per window: CPU seconds of the recorder (it and its FFmpeg children), the uploader, the viewer,
the S3 server and the camera server; the segments closed in the window and the footage gaps of
each camera between them (tests/support/media.footage_gaps on the segment files); the time to
safety of those segments as bench_time_to_safety measures it (the file's mtime, FFmpeg's last
write, to its first sighting in uploaded/, where the uploader moves it only after its HEAD check;
folders polled every 0.1 s). Ratios loaded/idle of recorder CPU, uploader CPU and the median
time to safety.

    python -m tests.bench.bench_viewer_load [--cameras 4] [--window 75] [--rounds 2] [--speed 4]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from services.common.data_layout import DataLayout
from services.common.segment_names import parse_name
from tests.bench.bench_recorder import all_recording
from tests.bench.bench_viewer import timed_get
from tests.bench.common import (
    BenchCameraServer,
    cpu_seconds,
    descendants,
    percentile,
    quick,
    remove,
    save,
    table,
    workspace,
)
from tests.support.media import footage_gaps
from tests.support.processes import REPO, Daemon, wait_for, write_env
from tests.support.s3_server import S3Server, accepts, free_port

BUCKET = "bench-viewer-load"
SEGMENT = 10
CHUNK = 512 * 1024


class Poller(threading.Thread):
    """First sighting of each segment in completed/ and uploaded/, and its mtime (every 0.1 s)."""

    def __init__(self, layout: DataLayout):
        super().__init__(daemon=True)
        self.layout = layout
        self.completed: dict[str, float] = {}
        self.uploaded: dict[str, float] = {}
        self.mtimes: dict[str, float] = {}
        self.paths: dict[str, Path] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            now = time.time()
            for folder, seen in ((self.layout.completed, self.completed), (self.layout.uploaded, self.uploaded)):
                for entry in os.scandir(folder) if folder.exists() else ():
                    if entry.name.endswith(".mp4") and entry.name not in seen:
                        seen[entry.name] = now
                        try:
                            self.mtimes.setdefault(entry.name, entry.stat().st_mtime)
                        except OSError:
                            pass
            time.sleep(0.1)

    def newest_uploaded(self) -> Path | None:
        names = [n for n in self.uploaded if n in self.mtimes]
        if not names:
            return None
        name = max(names, key=lambda n: self.mtimes[n])
        return self.layout.uploaded / name


class PageLoad:
    """What an open page asks of the viewer, in two threads, until stop()."""

    def __init__(self, base: str, poller: Poller, speed: float):
        self.base, self.poller, self.speed = base, poller, speed
        self.stopping = threading.Event()
        self.day_ms: list[float] = []
        self.day_status: dict[str, int] = {}
        self.day_problems: set[str] = set()
        self.media_requests = 0
        self.media_bytes = 0
        self.media_status: dict[str, int] = {}
        self.segments_played = 0
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._days, daemon=True),
                        threading.Thread(target=self._media, daemon=True)]

    def start(self) -> "PageLoad":
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)

    def _days(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            today = datetime.now(timezone.utc).date().isoformat()
            try:
                status, _, seconds, body, _ = timed_get(f"{self.base}api/day?date={today}&in=utc&tz=UTC")
                self.day_ms.append(1000 * seconds)
                self.day_status[str(status)] = self.day_status.get(str(status), 0) + 1
                if status == 200 and json.loads(body).get("problem"):
                    self.day_problems.add(str(json.loads(body)["problem"]))
            except (OSError, ValueError, http.client.HTTPException) as exc:
                self.errors.append(f"day: {exc!r}")
            self.stopping.wait(max(0.0, 2.0 - (time.monotonic() - started)))

    def _count(self, status: int) -> None:
        self.media_status[str(status)] = self.media_status.get(str(status), 0) + 1

    def _media(self) -> None:
        while not self.stopping.is_set():
            path = self.poller.newest_uploaded()
            if path is None:
                self.stopping.wait(0.5)
                continue
            name = parse_name(path.name)
            url = f"{self.base}media/{name.camera_id}/{path.name}"
            size = path.stat().st_size if path.exists() else 0
            rate = size / SEGMENT * self.speed if self.speed > 0 else 0   # bytes per second of playback
            started, offset = time.monotonic(), 0
            while offset < size and not self.stopping.is_set():
                wanted = {"Range": f"bytes={offset}-{min(offset + CHUNK, size) - 1}"}
                try:
                    status, _, _, body, headers = timed_get(url, wanted)
                    self.media_requests += 1
                    self._count(status)
                    if status == 302:   # a plain object in the bucket: the presigned URL, with the same range
                        status, _, _, body, _ = timed_get(headers["Location"], wanted)
                        self._count(status)
                except (OSError, http.client.HTTPException) as exc:
                    self.errors.append(f"media: {exc!r}")
                    break
                if status not in (200, 206) or not body:
                    self.errors.append(f"media {path.name}: HTTP {status}")
                    break
                offset += len(body)
                self.media_bytes += len(body)
                if rate:
                    self.stopping.wait(max(0.0, started + offset / rate - time.monotonic()))
            self.segments_played += 1

    def result(self) -> dict:
        return {"day_requests": len(self.day_ms), "day_status": self.day_status,
                "day_ms_median": round(statistics.median(self.day_ms), 2) if self.day_ms else None,
                "day_ms_max": round(max(self.day_ms), 2) if self.day_ms else None,
                "day_problems": sorted(self.day_problems),
                "media_requests": self.media_requests, "media_status": self.media_status,
                "media_mb": round(self.media_bytes / 1e6, 2), "segments_played": self.segments_played,
                "errors": self.errors[:10], "error_count": len(self.errors)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--window", type=float, default=40 if quick() else 75)
    parser.add_argument("--rounds", type=int, default=1 if quick() else 2)
    parser.add_argument("--warmup", type=float, default=25)
    parser.add_argument("--speed", type=float, default=4.0,
                        help="playback fetch rate, times real time (0: as fast as the viewer serves)")
    args = parser.parse_args(argv)
    work = workspace("viewer-load")
    layout = DataLayout(work / "data")
    # One mount per camera: clients starting together on a shared mount can abort the test server
    # (tests/support/rtsp_camera_server.py, gst_rtsp_media_get_rates).
    server = BenchCameraServer(mounts=args.cameras, fps=10, size="640x360", kbps=1000).start()
    s3 = S3Server(work / "s3", log=work / "s3.log").start()
    poller = Poller(layout)
    recorder = uploader = viewer = None
    load: PageLoad | None = None
    windows: list[dict] = []
    order = [("idle", "loaded") if r % 2 == 0 else ("loaded", "idle") for r in range(args.rounds)]
    order = [kind for pair in order for kind in pair]
    try:
        s3.create_bucket(BUCKET)
        port = free_port()
        env = write_env(work / ".env", {
            "DATA_DIR": layout.root, "SEGMENT_DURATION": SEGMENT, "STALL_TIMEOUT": 30, "MIN_FREE_DISK_MB": 0,
            "VIEWER_PORT": port,
            **{f"CAMERA_{i + 1}_URL": server.camera_url(i) for i in range(args.cameras)}, **s3.env(BUCKET)})
        recorder = Daemon("services.video_recorder", env, work / "recorder.log").start()
        uploader = Daemon("services.s3_uploader", env, work / "uploader.log").start()
        viewer = _start_web(Daemon("services", env, work / "web.log"))
        base = f"http://127.0.0.1:{port}/"
        wait_for(lambda: all_recording(layout, args.cameras), 90, "cameras recording")
        wait_for(lambda: accepts(port), 60, "the viewer to listen")
        poller.start()
        print(f"{args.cameras} cameras, {SEGMENT}-s segments; warm-up {args.warmup:.0f} s, then "
              f"{len(order)} windows of {args.window:.0f} s: {', '.join(order)}", flush=True)
        time.sleep(args.warmup)
        trees = {"recorder": recorder.proc.pid, "uploader": uploader.proc.pid, "viewer": viewer.proc.pid,
                 "s3_server": s3.proc.pid, "camera_server": server.proc.pid}
        for index, kind in enumerate(order):
            if kind == "loaded":
                load = PageLoad(base, poller, args.speed).start()
            cpu0 = {name: cpu_seconds(descendants(pid)) for name, pid in trees.items()}
            t0, wall0 = time.monotonic(), time.time()
            time.sleep(args.window)
            cpu1 = {name: cpu_seconds(descendants(pid)) for name, pid in trees.items()}
            wall = time.monotonic() - t0
            window = {"index": index + 1, "kind": kind, "start": wall0, "end": wall0 + wall, "wall_s": round(wall, 2),
                      "cpu_percent_of_one_core": {name: round(100 * (cpu1[name] - cpu0[name]) / wall, 2)
                                                  for name in trees},
                      "loadavg_at_end": os.getloadavg()}
            if load:
                if index == len(order) - 1:
                    time.sleep(2 * SEGMENT)   # the last segments' uploads, under the same load
                load.stop()
                window["page"] = load.result()
                load = None
            elif index == len(order) - 1:
                time.sleep(2 * SEGMENT)
            windows.append(window)
            print(f"window {index + 1} ({kind}): " + ", ".join(
                f"{k} {v:.1f} %" for k, v in window["cpu_percent_of_one_core"].items()), flush=True)
        poller.stopping.set()
        poller.join(5)
        results = _results(args, windows, poller, layout, server)
        results["logs_with_errors"] = {name: _errors(work / f"{name}.log") for name in ("recorder", "uploader", "web")}
    finally:
        if load:
            load.stop()
        poller.stopping.set()
        for daemon, timeout in ((viewer, 15), (recorder, 60), (uploader, 30)):
            if daemon and daemon.proc:
                daemon.stop(timeout=timeout)
        s3.stop()
        server.stop()
        remove(work)
    print(f"results: {save('viewer_load', results)}")
    return 0 if results["summary"]["all_windows_measured"] else 1


def _start_web(daemon: Daemon) -> Daemon:
    """`python -m services web --env-file F` as a Daemon (stopped by its PID like the others)."""
    daemon._out = open(daemon.log, "ab")
    environment = {**os.environ, "PYTHONPATH": str(REPO), "CLOCK_SYNC_TIMEOUT": "0"}
    daemon.proc = subprocess.Popen([sys.executable, "-m", "services", "web", "--env-file", str(daemon.env_file)],
                                   cwd=REPO, env=environment, stdout=daemon._out, stderr=subprocess.STDOUT)
    return daemon


def _errors(path: Path) -> list[str]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if " ERROR " in line or "Traceback" in line][:10]


def _results(args, windows: list[dict], poller: Poller, layout: DataLayout, server: BenchCameraServer) -> dict:
    def where(name: str) -> Path | None:
        for folder in (layout.uploaded, layout.completed):
            if (folder / name).exists():
                return folder / name
        return None

    for window in windows:
        names = [n for n, m in poller.mtimes.items() if window["start"] <= m < window["end"]]
        verified = [poller.uploaded[n] - poller.mtimes[n] for n in names if n in poller.uploaded]
        per_camera: dict[int, list[Path]] = {}
        for n in names:
            path = where(n)
            if path is not None:
                per_camera.setdefault(parse_name(n).camera_id, []).append(path)
        gaps = {str(camera): [round(g, 1) for g in footage_gaps(paths, SEGMENT)]
                for camera, paths in sorted(per_camera.items())}
        window.update({
            "segments_closed": len(names),
            "segments_per_camera": {str(c): len(p) for c, p in sorted(per_camera.items())},
            "gaps_s_per_camera": gaps,
            "safety_s": {"n": len(verified), "not_verified": len(names) - len(verified),
                         "p50": round(statistics.median(verified), 3) if verified else None,
                         "p99": round(percentile(verified, 99), 3) if verified else None,
                         "max": round(max(verified), 3) if verified else None},
        })
        window["start"] = datetime.fromtimestamp(window["start"], timezone.utc).strftime("%H:%M:%S")
        window["end"] = datetime.fromtimestamp(window["end"], timezone.utc).strftime("%H:%M:%S")
    # The whole run, camera by camera: a gap at a window's edge falls between two windows above.
    run_gaps = {}
    for camera in range(1, args.cameras + 1):
        paths = [p for p in (where(n) for n in poller.mtimes if parse_name(n).camera_id == camera) if p]
        run_gaps[str(camera)] = [round(g, 1) for g in footage_gaps(paths, SEGMENT)] if paths else None

    def mean(kind: str, get) -> float | None:
        values = [get(w) for w in windows if w["kind"] == kind and get(w) is not None]
        return round(statistics.mean(values), 3) if values else None

    def ratio(get) -> float | None:
        idle, loaded = mean("idle", get), mean("loaded", get)
        return round(loaded / idle, 3) if idle and loaded is not None else None

    summary = {}
    for name in ("recorder", "uploader", "viewer", "s3_server", "camera_server"):
        summary[f"{name}_cpu_percent"] = {kind: mean(kind, lambda w, n=name: w["cpu_percent_of_one_core"][n])
                                          for kind in ("idle", "loaded")}
    summary["safety_p50_s"] = {kind: mean(kind, lambda w: w["safety_s"]["p50"]) for kind in ("idle", "loaded")}
    summary["ratio_loaded_over_idle"] = {
        "recorder_cpu": ratio(lambda w: w["cpu_percent_of_one_core"]["recorder"]),
        "uploader_cpu": ratio(lambda w: w["cpu_percent_of_one_core"]["uploader"]),
        "safety_p50": ratio(lambda w: w["safety_s"]["p50"])}
    summary["gaps_in_windows"] = sum(len(g) for w in windows for g in w["gaps_s_per_camera"].values())
    summary["all_windows_measured"] = all(w["safety_s"]["n"] for w in windows)
    rows = [[w["index"], w["kind"], *(w["cpu_percent_of_one_core"][n] for n in ("recorder", "uploader", "viewer")),
             w["segments_closed"], sum(len(g) for g in w["gaps_s_per_camera"].values()), w["safety_s"]["p50"],
             w["safety_s"]["max"]] for w in windows]
    print(table(["window", "kind", "recorder %", "uploader %", "viewer %", "segments", "gaps", "safety p50 s",
                 "safety max s"], rows))
    print(json.dumps(summary, indent=1), flush=True)
    return {"cameras": args.cameras, "segment_duration": SEGMENT, "window_s": args.window, "rounds": args.rounds,
            "warmup_s": args.warmup, "order": [w["kind"] for w in windows], "playback_speed": args.speed,
            "range_chunk_bytes": CHUNK, "camera_server": server.describe(),
            "s3_server": "rclone serve s3 (local folder)", "poll_interval_s": 0.1,
            "summary": summary, "gaps_s_whole_run_per_camera": run_gaps, "windows": windows}


if __name__ == "__main__":
    sys.exit(main())
