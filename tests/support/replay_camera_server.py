#!/usr/bin/python3
"""RTSP cameras that cost almost nothing: clips encoded once, then replayed in a seamless loop.

The live test server (rtsp_camera_server.py) runs an x264 encoder per mount, which on a small
machine costs more than the recorder it is meant to load. Here FFmpeg encodes each kind of
clip once into a cache folder; the server reads the access units into memory and pushes them
through appsrc ! clocksync ! parse ! pay, so serving is copying. Timestamps never rewind: frame
k of the endless stream is frame k mod n of the clip with pts k / fps, as a real camera keeps
counting while its picture repeats. Audio (AAC, G.711 A-law/mu-law) loops on its own period.

Run with the system interpreter, which has python3-gi:

    /usr/bin/python3 tests/support/replay_camera_server.py --port 0 --cache DIR \
        --size 1280x720 --fps 15 --kbps 2000 --mount /cam1=h264:aac --mount /cam2=h265:pcma@4000

Mounts are ``/path=VIDEO:AUDIO[@KBPS]`` with VIDEO h264|h265 and AUDIO aac|pcma|pcmu|none;
each mount is one shared pipeline for all its clients. Prints ``READY <port>``; SIGTERM stops it.
``--encode-only`` fills the cache and exits. ReplayCameraServer (below) drives it from tests;
this module imports gi only when run as the server, so the venv can import that class.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLIP_SECONDS = 10
CLIP_FORMAT = 2   # bump when encode() changes, so that cached clips are made again
AUDIO_RATE = {"aac": 16000, "pcma": 8000, "pcmu": 8000}
G711_FRAME = 160   # bytes = samples = 20 ms at 8 kHz


# --- the clips, encoded once ----------------------------------------------------------------

def clip_path(cache: Path, kind: str, size: str, fps: int, kbps: int, gop_s: float, seconds: int) -> Path:
    """One file per distinct encoding; the name carries every setting, so a cache never goes stale."""
    if kind in AUDIO_RATE:
        return cache / f"{kind}-{AUDIO_RATE[kind]}-{seconds}s.{'adts' if kind == 'aac' else kind}"
    return cache / f"{kind}-{size}-{fps}fps-{kbps}k-gop{gop_s:g}-{seconds}s-v{CLIP_FORMAT}.{kind}"


def encode(path: Path, kind: str, size: str, fps: int, kbps: int, gop_s: float, seconds: int) -> Path:
    """FFmpeg, once: noise on a test pattern makes the encoder spend the whole bit budget (a
    flat pattern compresses to a fraction of it); no B-frames, so pts == dts; an AUD before
    every access unit and the parameter sets before every key frame, so the file splits into
    self-contained units."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.part")   # two servers may encode the same clip at once
    if kind in AUDIO_RATE:
        codec = {"aac": ["-c:a", "aac", "-b:a", "32k", "-f", "adts"], "pcma": ["-c:a", "pcm_alaw", "-f", "alaw"],
                 "pcmu": ["-c:a", "pcm_mulaw", "-f", "mulaw"]}[kind]
        args = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={AUDIO_RATE[kind]}:duration={seconds}",
                "-ac", "1", *codec]
    else:
        gop = max(1, round(fps * gop_s))
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:repeat-headers=1"
        rate = ["-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{kbps}k"]
        if kind == "h264":
            codec = ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "main", *rate,
                     "-x264-params", params + ":sliced-threads=0",
                     "-bsf:v", "h264_metadata=aud=insert", "-f", "h264"]
        else:
            codec = ["-c:v", "libx265", "-preset", "veryfast", "-tune", "zerolatency", *rate, "-x265-params",
                     params + ":log-level=error",
                     "-bsf:v", "hevc_metadata=aud=insert", "-f", "hevc"]
        args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps},noise=alls=24:allf=t",
                "-frames:v", str(fps * seconds), "-pix_fmt", "yuv420p", *codec]
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(tmp)], check=True)
    tmp.rename(path)
    return path


def _nal_starts(data: bytes) -> list[int]:
    """Offsets of the 3-byte start codes (a 4-byte one is a zero byte plus a 3-byte one)."""
    starts, i = [], data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i)
        i = data.find(b"\x00\x00\x01", i + 3)
    return starts


def video_units(data: bytes, kind: str) -> list[tuple[bytes, bool]]:
    """Annex-B stream -> [(access unit, is key frame)], cut at each access unit delimiter."""
    aud, idr = (9, {5}) if kind == "h264" else (35, {16, 17, 18, 19, 20, 21})
    nal_type = (lambda b: b & 0x1F) if kind == "h264" else (lambda b: (b >> 1) & 0x3F)
    units, begin, key = [], None, False
    for start in _nal_starts(data):
        kind_ = nal_type(data[start + 3])
        if kind_ == aud:
            cut = start - 1 if start > 0 and data[start - 1] == 0 else start
            if begin is not None:
                units.append((data[begin:cut], key))
            begin, key = cut, False
        elif kind_ in idr:
            key = True
    if begin is not None:
        units.append((data[begin:], key))
    return units


def adts_frames(data: bytes) -> list[bytes]:
    frames, i = [], 0
    while i + 7 <= len(data):
        length = ((data[i + 3] & 0x03) << 11) | (data[i + 4] << 3) | (data[i + 5] >> 5)
        frames.append(data[i:i + length])
        i += length
    return frames


# --- the server -----------------------------------------------------------------------------

VIDEO_CAPS = {"h264": "video/x-h264,stream-format=byte-stream,alignment=au",
              "h265": "video/x-h265,stream-format=byte-stream,alignment=au"}
AUDIO_CAPS = {"aac": "audio/mpeg,mpegversion=4,stream-format=adts,rate=16000,channels=1",
              "pcma": "audio/x-alaw,rate=8000,channels=1", "pcmu": "audio/x-mulaw,rate=8000,channels=1"}
AUDIO_PAY = {"aac": "aacparse ! rtpmp4gpay name=pay1 pt=97", "pcma": "rtppcmapay name=pay1 pt=8",
             "pcmu": "rtppcmupay name=pay1 pt=0"}


def launch_line(video: str, audio: str, fps: int, mtu: int) -> str:
    """clocksync holds each buffer until its running time: the pace of a live camera, with the
    sinks of gst-rtsp-server (which do not sync) fed no faster than real time. The clips carry
    their parameter sets before every key frame, so the payloader adds none: with
    config-interval=-1 it would put them before every slice of a key frame, and FFmpeg would cut
    the frame in two there."""
    line = (f"( appsrc name=vsrc is-live=true format=time do-timestamp=false caps=\"{VIDEO_CAPS[video]},"
            f"framerate={fps}/1\" ! clocksync ! {video}parse ! rtp{video}pay name=pay0 pt=96 "
            f"config-interval=0 mtu={mtu}")
    if audio != "none":
        line += (f" appsrc name=asrc is-live=true format=time do-timestamp=false caps=\"{AUDIO_CAPS[audio]}\" "
                 f"! clocksync ! {AUDIO_PAY[audio]} mtu={mtu}")
    return line + " )"


class Loop:
    """An endless stream from one clip: unit k is clip[k mod n] at pts offset + k * step (ns)."""

    def __init__(self, units: list[bytes], step_num: int, step_den: int, start: dict,
                 keys: list[bool] | None = None):
        self.units, self.keys, self.start = units, keys, start   # start: shared by the streams of one media
        self.step_num, self.step_den = step_num, step_den   # step = num / den ns, exact over any run
        self.index = 0

    def feed(self, src, Gst) -> None:
        if "t" not in self.start:
            # Begin at the pipeline's running time, so the first frames are not sent in a burst.
            clock = src.get_clock()
            self.start["t"] = max(0, clock.get_time() - src.get_base_time()) if clock else 0
        n = len(self.units)
        pts = self.start["t"] + self.index * self.step_num // self.step_den
        buf = Gst.Buffer.new_wrapped(self.units[self.index % n])
        buf.pts = buf.dts = pts
        buf.duration = (self.index + 1) * self.step_num // self.step_den - self.index * self.step_num // self.step_den
        if self.keys is not None and not self.keys[self.index % n]:
            buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
        self.index += 1
        src.emit("push-buffer", buf)


def load_mount(cache: Path, video: str, audio: str, args: argparse.Namespace, kbps: int) -> dict:
    vpath = encode(clip_path(cache, video, args.size, args.fps, kbps, args.gop, args.clip_seconds), video,
                   args.size, args.fps, kbps, args.gop, args.clip_seconds)
    units = video_units(vpath.read_bytes(), video)
    if not units or not units[0][1]:
        raise SystemExit(f"{vpath}: no access units, or the clip does not start with a key frame")
    clip = {"video": ([u for u, _ in units], [k for _, k in units])}
    if audio != "none":
        apath = encode(clip_path(cache, audio, "", 0, 0, 0, args.clip_seconds), audio, "", 0, 0, 0, args.clip_seconds)
        raw = apath.read_bytes()
        clip["audio"] = adts_frames(raw) if audio == "aac" else [raw[i:i + G711_FRAME] for i in
                                                               range(0, len(raw) - G711_FRAME + 1, G711_FRAME)]
    return clip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mount", action="append", required=True, help="/path=VIDEO:AUDIO[@KBPS]")
    parser.add_argument("--cache", type=Path, default=REPO / "data" / "replay-cache")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--gop", type=float, default=1.0, help="seconds between key frames")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--kbps", type=int, default=2000)
    parser.add_argument("--clip-seconds", type=int, default=CLIP_SECONDS)
    parser.add_argument("--mtu", type=int, default=1400, help="RTP packet size, as a camera sends")
    parser.add_argument("--encode-only", action="store_true")
    args = parser.parse_args()
    specs = []
    for spec in args.mount:
        path, kinds = spec.split("=", 1)
        kinds, _, kbps = kinds.partition("@")
        video, audio = kinds.split(":", 1)
        specs.append((path, video, audio, int(kbps or args.kbps)))
    clips = {(v, a, k): load_mount(args.cache, v, a, args, k) for _, v, a, k in specs}
    if args.encode_only:
        return 0

    import gi
    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import Gst, GstRtspServer
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()

    def configure(_factory, media, clip, fps: int, audio: str) -> None:
        """A new pipeline (the first client of a mount): fresh loops, from its own running time."""
        element = media.get_element()
        frames, keys = clip["video"]
        start: dict = {}
        streams = [("vsrc", Loop(frames, Gst.SECOND, fps, start, keys))]
        if "audio" in clip:
            samples = 1024 if audio == "aac" else G711_FRAME
            streams.append(("asrc", Loop(clip["audio"], Gst.SECOND * samples, AUDIO_RATE[audio], start)))
        for name, loop in streams:
            src = element.get_by_name(name)
            src.set_property("max-buffers", 2)
            src.connect("need-data", lambda s, _size, lp=loop: lp.feed(s, Gst))

    for path, video, audio, kbps in specs:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch_line(video, audio, args.fps, args.mtu))
        factory.set_shared(True)
        factory.connect("media-configure", configure, clips[(video, audio, kbps)], args.fps, audio)
        mounts.add_factory(path, factory)
    from rtsp_camera_server import serve   # run as a script: its folder is on sys.path
    return serve(server, args.port)


# --- driving it from tests (venv interpreter, no gi) -------------------------------------------

class ReplayCameraServer:
    """The replay server in a subprocess: `mounts` maps path -> "VIDEO:AUDIO[@KBPS]"."""

    def __init__(self, mounts: dict[str, str], fps: int = 15, size: str = "1280x720", kbps: int = 2000,
                 cache: Path | None = None, *extra: str):
        self.mounts, self.fps, self.size, self.kbps = mounts, fps, size, kbps
        self.cache = cache or REPO / "data" / "replay-cache"
        self.extra = list(extra)
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        argv = ["/usr/bin/python3", str(Path(__file__).resolve()), "--port", str(self.port), "--fps", str(self.fps),
                "--size", self.size, "--kbps", str(self.kbps), "--cache", str(self.cache), *self.extra]
        for path, kinds in self.mounts.items():
            argv += ["--mount", f"/{path}={kinds}"]
        return argv

    def start(self) -> "ReplayCameraServer":
        """Encoding a missing clip takes seconds to a minute; serving starts at once after that."""
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            self.stop()
            raise RuntimeError(f"replay RTSP server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def url(self, path: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path}"

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None


if __name__ == "__main__":
    sys.exit(main())
