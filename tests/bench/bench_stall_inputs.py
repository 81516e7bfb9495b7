"""Stall-timeout inputs: how long FFmpeg legitimately goes without media, per kind of camera.

For each camera kind, one synthetic camera (tests/support/rtsp_camera_server.py with its
--fps/--gop) and one FFmpeg started exactly as the recorder starts it (`build_record_command`
with the default settings: copy, 600-s segments, the socket timeout from STALL_TIMEOUT), whose
`-progress` reports are read with the time each arrives. Measured per camera, from the spawn:
  first media      = the first report with out_time > 0 (the recorder's STARTING -> RECORDING);
  1st -> 2nd media = from that report to the next one whose media time advanced (until then
                     the recorder's stall limit is the cap, 3 x STALL_TIMEOUT);
  media gap        = the longest time between two reports that advanced the media time, after
                     the second one (what the stall limit is compared with);
  report gap       = the longest time between any two reports after the first media;
  frame interval   = the longest media seconds per frame between reports (as the recorder
                     computes it), and the stall limit `stall_limit` gives it with the defaults.
Each camera runs for --seconds after its first media (the start allowance, 60 s, at most before).
Then, that FFmpeg still running, so the camera's encoder too:
  joining          = first media of a second FFmpeg joining the running camera, as a restarted
                     FFmpeg does (the first one's client started the test camera's encoder);
  ffprobe          = how long the recorder's probe (`build_probe_command`) takes, 1 s later.
All five cameras: about 5 minutes.

    python -m tests.bench.bench_stall_inputs [--seconds 30] [--only normal gop6 fps1 fps1gop6 keyframes6]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from services.common.settings import SEGMENT_DURATION, STALL_TIMEOUT, VIDEO_CODEC
from services.recorder.config import CameraConfig
from services.recorder.ffmpeg_command import (
    FFMPEG_ENV_TZ,
    StreamInfo,
    build_probe_command,
    build_record_command,
    parse_probe_output,
)
from services.recorder.ffmpeg_process import seconds_per_frame
from services.recorder.runs import ffmpeg_version
from services.recorder.supervisor import SupervisorSettings, longest_silence, stall_limit
from tests.bench.common import remove, save, table, workspace
from tests.support.processes import CameraServer

# name -> (description, --fps, --gop in seconds)
CAMERAS = {
    "normal": ("10 fps, 1-s GOP (the test camera)", "10", "1"),
    "gop6": ("10 fps, 6-s GOP", "10", "6"),
    "fps1": ("1 fps (every frame a key frame; night mode)", "1", "1"),
    "fps1gop6": ("1 fps, 6-s GOP", "1", "6"),
    "keyframes6": ("only a key frame every 6 s (1/6 fps; smart codec, still scene)", "1/6", "6"),
}
START_ALLOWANCE = SupervisorSettings().start_timeout


@dataclass
class Reports:
    """(monotonic time read, out_time_us, frame) of every `-progress` block."""
    spawned: float
    rows: list[tuple[float, int, int]] = field(default_factory=list)

    def read(self, stream) -> None:
        block: dict[str, str] = {}
        for line in stream:
            key, _, value = line.strip().partition("=")
            block[key] = value
            if key == "progress":
                self.rows.append((time.monotonic(), _integer(block.get("out_time_us")), _integer(block.get("frame"))))
                block = {}

    def first_media(self) -> float | None:
        return next((t for t, out_us, _ in self.rows if out_us > 0), None)


def _integer(text: str | None) -> int:
    try:
        return int(text or "0")
    except ValueError:
        return 0


def analyse(reports: Reports, until: float) -> dict:
    rows = [row for row in list(reports.rows) if row[0] <= until]
    media = []   # reports whose media time advanced, as ManagedProcess counts them
    out_us = frames = 0
    intervals = []
    for t, out_time, frame in rows:
        if out_time > out_us:
            interval = seconds_per_frame((out_us, frames), (out_time, frame))
            if interval is not None:
                intervals.append(interval)
            media.append(t)
            out_us = out_time
        frames = max(frames, frame)
    if not media:
        return {"first_media_s": None, "reports": len(rows)}
    after_first = [t for t, _, _ in rows if t >= media[0]]
    report_gaps = [b - a for a, b in zip(after_first, after_first[1:])]
    media_gaps = [b - a for a, b in zip(media[1:], media[2:])]
    longest_interval = max(intervals) if intervals else None
    limit = stall_limit(SupervisorSettings(stall_timeout=STALL_TIMEOUT.default), longest_interval)
    longest_media_gap = max(media_gaps) if media_gaps else None
    return {
        "first_media_s": round(media[0] - reports.spawned, 2),
        "first_to_second_media_s": round(media[1] - media[0], 2) if len(media) > 1 else None,
        "longest_media_gap_s": round(longest_media_gap, 2) if longest_media_gap is not None else None,
        "longest_report_gap_s": round(max(report_gaps), 2) if report_gaps else None,
        "longest_frame_interval_s": round(longest_interval, 3) if longest_interval is not None else None,
        "stall_limit_s": limit,
        "covered": longest_media_gap is not None and longest_media_gap < limit
        and (len(media) < 2 or media[1] - media[0] < longest_silence(STALL_TIMEOUT.default)),
        "reports": len(rows), "media_reports": len(media),
    }


def spawn(camera: CameraConfig, run_dir: Path) -> tuple[subprocess.Popen, Reports]:
    """FFmpeg as the recorder runs it (services/recorder/runs.py), its reports read in a thread."""
    run_dir.mkdir(parents=True, exist_ok=True)
    plan = build_record_command(
        "ffmpeg", camera, StreamInfo(video_codec="h264", audio_codec=None), run_dir,
        version=ffmpeg_version("ffmpeg"), segment_duration=SEGMENT_DURATION.default,
        video_codec=VIDEO_CODEC.default,
        socket_timeout_s=int(longest_silence(STALL_TIMEOUT.default)) + 5,
    )
    with open(run_dir / "ffmpeg.log", "w") as stderr:
        reports = Reports(time.monotonic())
        proc = subprocess.Popen(plan.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                env=dict(os.environ, TZ=FFMPEG_ENV_TZ), text=True, errors="replace")
    threading.Thread(target=reports.read, args=(proc.stdout,), daemon=True).start()
    return proc, reports


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(name: str, fps: str, gop: str, seconds: float) -> dict:
    """One camera: FFmpeg from the camera's start for `seconds` after its first media; then,
    that FFmpeg still running, a second one joining the running camera (as after a restart)
    and, a second later, the recorder's ffprobe. A client joining the test server's shared
    mount can delay the others' next frame (seconds at 1/6 fps): the gaps are measured before."""
    work = workspace(f"stall-{name}")
    server = CameraServer({"cam": "h264:none"}, None, fps, "--gop", gop)
    procs: list[subprocess.Popen] = []
    load_before = os.getloadavg()
    try:
        server.start()
        camera = CameraConfig(id=1, url=server.url("cam"), name=name, audio="auto")
        proc, reports = spawn(camera, work / "first")
        procs.append(proc)
        deadline = reports.spawned + START_ALLOWANCE
        while time.monotonic() < deadline and proc.poll() is None:
            first = reports.first_media()
            if first is not None:
                deadline = first + seconds
            time.sleep(0.2)
        result = analyse(reports, until=time.monotonic())
        result["ffmpeg_exit"] = proc.poll()
        load_window = os.getloadavg()
        join_proc, joiner = spawn(camera, work / "join")
        procs.append(join_proc)
        time.sleep(1.0)   # clients starting on one mount at the same instant can abort the server
        probe_argv = build_probe_command("ffprobe", camera, ffmpeg_version("ffmpeg"), STALL_TIMEOUT.default)
        probe_started = time.monotonic()
        probe = subprocess.Popen(probe_argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        procs.append(probe)
        try:
            probe_output, _ = probe.communicate(timeout=SupervisorSettings().probe_timeout)
            probe_s = time.monotonic() - probe_started
        except subprocess.TimeoutExpired:
            probe_output, probe_s = "", None
        wait_until = joiner.spawned + START_ALLOWANCE
        while joiner.first_media() is None and time.monotonic() < wait_until and join_proc.poll() is None:
            time.sleep(0.2)
        joined = joiner.first_media()
        result["first_media_joining_s"] = round(joined - joiner.spawned, 2) if joined else None
        result["ffprobe_s"] = round(probe_s, 2) if probe_s is not None else None
        result["ffprobe_video"] = parse_probe_output(probe_output).video_codec
        return {"camera": name, "fps": fps, "gop_s": gop, "seconds_after_first_media": seconds, **result,
                "loadavg_before": load_before, "loadavg_window_end": load_window, "loadavg_after": os.getloadavg()}
    finally:
        for proc in procs:
            stop(proc)
        server.stop()
        remove(work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds to watch after the first media")
    parser.add_argument("--only", nargs="*", choices=list(CAMERAS), default=list(CAMERAS))
    args = parser.parse_args(argv)
    results = []
    for name in args.only:
        description, fps, gop = CAMERAS[name]
        print(f"{name}: {description} ...", flush=True)
        results.append(measure(name, fps, gop, args.seconds))
    path = save("stall_inputs", {"stall_timeout_default_s": STALL_TIMEOUT.default,
                                 "start_timeout_s": START_ALLOWANCE, "cameras": results})
    print(table(["camera", "first media", "joining", "ffprobe", "1st->2nd media", "media gap", "report gap", "frame interval",
                 "stall limit", "covered", "load 1m"],
                [[r["camera"], r.get("first_media_s"), r.get("first_media_joining_s"), r.get("ffprobe_s"),
                  r.get("first_to_second_media_s"), r.get("longest_media_gap_s"),
                  r.get("longest_report_gap_s"), r.get("longest_frame_interval_s"), r.get("stall_limit_s"),
                  r.get("covered"), f"{r['loadavg_before'][0]:.2f}-{r['loadavg_window_end'][0]:.2f}"] for r in results]))
    print(f"results: {path}")
    return 0 if all(r.get("covered") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
