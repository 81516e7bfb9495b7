#!/usr/bin/python3
"""Synthetic RTSP cameras for tests and the demo (GStreamer gst-rtsp-server).

Run with the system interpreter, which has python3-gi:

    /usr/bin/python3 tests/support/rtsp_camera_server.py --port 0 \
        --mount /cam1=h264:pcma --mount /cam2=h265:none [--auth user:pass]

Each mount is ``/path=VIDEO:AUDIO`` with VIDEO in h264|h265 and AUDIO in
aac|pcma|pcmu|none. Media are shared, so every client of a mount reads one
live encoder. Clients that start on one mount at the same instant can abort the server
(gst-rtsp-server 1.22, an assertion in gst_rtsp_media_get_rates; 8 ffmpeg clients started
together on two mounts, in rounds, hit it within 15 rounds 3 times out of 3): a test that
starts several recorders at once gives each its own mount. Prints ``READY <port>`` once it listens; SIGTERM stops it.

``--fps`` may be a fraction and ``--gop`` is in seconds, for the slow cameras that set
the lower bound of the stall timeout: ``--fps 1`` (night mode) or ``--fps 1/6 --gop 6``
(a smart codec that sends only a key frame every 6 s in a still scene).

Every mount sends RTCP sender reports (the camera's clock, NTP time against RTP time) unless
``--no-rtcp``; run the server under ``faketime`` to give that clock a known error.
"""
import argparse
import signal
import sys
from fractions import Fraction

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

VIDEO = {
    "h264": "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={kbps} "
    "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1",
    "h265": "x265enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={kbps} "
    "! rtph265pay name=pay0 pt=96 config-interval=1",
}
AUDIO = {
    "none": "",
    "aac": "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample "
    "! audio/x-raw,rate=16000,channels=1 ! avenc_aac ! rtpmp4gpay name=pay1 pt=97",
    "pcma": "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample "
    "! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8",
    "pcmu": "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample "
    "! audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay name=pay1 pt=0",
}


def launch_line(video: str, audio: str, fps: Fraction, width: int, height: int, kbps: int,
                pattern: str = "ball", gop_seconds: float = 1.0) -> str:
    src = (
        f"videotestsrc is-live=true pattern={pattern} ! video/x-raw,width={width},height={height},"
        f"framerate={fps.numerator}/{fps.denominator} ! timeoverlay ! videoconvert ! "
    )
    gop = max(1, round(fps * Fraction(gop_seconds)))
    return "( " + src + VIDEO[video].format(gop=gop, kbps=kbps) + " " + AUDIO[audio] + " )"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mount", action="append", required=True, help="/path=VIDEO:AUDIO")
    parser.add_argument("--auth", help="user:password required from every client")
    parser.add_argument("--fps", type=Fraction, default=Fraction(10), help="frames per second, e.g. 10 or 1/6")
    parser.add_argument("--gop", type=float, default=1.0, help="seconds between key frames")
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--kbps", type=int, default=300)
    parser.add_argument("--pattern", default="ball", help="videotestsrc pattern; 'snow' for a high bitrate")
    parser.add_argument("--no-rtcp", action="store_true", help="no RTCP: a camera that sends no sender reports")
    args = parser.parse_args()
    Gst.init(None)
    width, height = (int(v) for v in args.size.split("x"))

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    if args.auth:
        user, password = args.auth.split(":", 1)
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)
    for spec in args.mount:
        path, kinds = spec.split("=", 1)
        video, audio = kinds.split(":", 1)
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch_line(video, audio, args.fps, width, height, args.kbps, args.pattern, args.gop))
        factory.set_shared(True)
        factory.set_enable_rtcp(not args.no_rtcp)
        if args.auth:
            permissions = GstRtspServer.RTSPPermissions()
            permissions.add_role_from_structure(
                Gst.Structure.from_string(
                    "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
                )[0]
            )
            factory.set_permissions(permissions)
        mounts.add_factory(path, factory)
    return serve(server, args.port)


def serve(server: GstRtspServer.RTSPServer, port: int) -> int:
    """Listen, print `READY <port>` for the test driver, run until SIGTERM/SIGINT."""
    if server.attach(None) == 0:
        print(f"cannot listen on port {port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
