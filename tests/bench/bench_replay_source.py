"""The replay camera source: that it loops like a real camera, and what it costs per client.

Check: one mount per video x audio kind; FFmpeg records each over more than two loops of the
clip (`ffmpeg -rtsp_transport tcp -i URL -c copy`), then per stream every packet's dts must
be above the last (the timestamps never rewind at a loop boundary), decoding the file must print
no error, and its duration must match the wall time of the recording.
Cost: C clients (`ffmpeg -c copy -f null`) spread over M mounts; the server process's CPU over
a fixed window, as % of one core, in total and per client.

    python -m tests.bench.bench_replay_source [--clients 1 16 64 150] [--seconds 30] [--mounts 8]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from tests.bench.common import cpu_seconds, quick, remove, save, table, workspace
from tests.support.processes import stop_pid, wait_for
from tests.support.replay_camera_server import CLIP_SECONDS, ReplayCameraServer

KINDS = ["h264:none", "h264:aac", "h264:pcma", "h264:pcmu", "h265:none", "h265:aac", "h265:pcma", "h265:pcmu"]


def packets(path: Path) -> dict[str, list[float]]:
    """dts of every packet, per stream index."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "packet=stream_index,dts_time", "-of", "csv=p=0",
                          str(path)], capture_output=True, text=True, check=True).stdout
    found: dict[str, list[float]] = {}
    for line in out.splitlines():
        index, _, dts = line.partition(",")
        if dts and dts != "N/A":
            found.setdefault(index, []).append(float(dts))
    return found


def check_loops(seconds: float, kbps: int, work: Path) -> list[dict]:
    mounts = {f"k{i}": kind for i, kind in enumerate(KINDS)}
    server = ReplayCameraServer(mounts, kbps=kbps).start()
    results = []
    try:
        procs = {}
        for path, kind in mounts.items():
            out = work / f"{path}.{'mov' if 'pcm' in kind else 'mp4'}"   # mp4 takes no G.711; mov does
            procs[path] = (out, time.monotonic(), subprocess.Popen(
                ["ffmpeg", "-v", "error", "-nostdin", "-rtsp_transport", "tcp", "-i", server.url(path), "-c", "copy",
                 "-y", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        time.sleep(seconds)
        for path, (out, started, proc) in procs.items():
            proc.send_signal(2)
            _, recorder_errors = proc.communicate(timeout=30)
            wall = time.monotonic() - started
            streams = packets(out)
            rewinds = sum(1 for dts in streams.values() for a, b in zip(dts, dts[1:]) if b <= a)
            decode = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"],
                                    capture_output=True, text=True).stderr.strip()
            duration = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                                             "csv=p=0", str(out)], capture_output=True, text=True).stdout or 0)
            results.append({"mount": mounts[path], "streams": len(streams), "packets": sum(map(len, streams.values())),
                            "timestamps_going_back": rewinds, "decode_errors": decode[:300],
                            "recording_errors": recorder_errors.strip()[:300], "duration_s": round(duration, 2),
                            "wall_s": round(wall, 2), "loops": round(duration / CLIP_SECONDS, 1),
                            "ok": (rewinds == 0 and not decode and len(streams) == expected_streams(mounts[path])
                                   and abs(duration - wall) < 2.0 and duration > 2 * CLIP_SECONDS)})
    finally:
        server.stop()
    return results


def expected_streams(kind: str) -> int:
    return 1 if kind.endswith(":none") else 2


def client_cost(clients: int, mounts: int, seconds: float, kbps: int) -> dict:
    server = ReplayCameraServer({f"m{i}": "h264:none" for i in range(mounts)}, kbps=kbps).start()
    procs: list[subprocess.Popen] = []
    try:
        for i in range(clients):
            procs.append(subprocess.Popen(
                ["ffmpeg", "-v", "error", "-nostdin", "-rtsp_transport", "tcp", "-i", server.url(f"m{i % mounts}"),
                 "-c", "copy", "-f", "null", "-"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(lambda: _established(server.port) >= clients, 120, f"{clients} RTSP clients connected")
        time.sleep(3)
        before, started = cpu_seconds([server.proc.pid], include_reaped=False), time.monotonic()
        time.sleep(seconds)
        cpu = cpu_seconds([server.proc.pid], include_reaped=False) - before
        wall = time.monotonic() - started
        alive = sum(1 for p in procs if p.poll() is None)
        return {"clients": clients, "mounts": min(mounts, clients), "kbps": kbps, "wall_s": round(wall, 1),
                "server_cpu_percent_of_one_core": round(100 * cpu / wall, 2),
                "per_client_percent": round(100 * cpu / wall / clients, 3), "clients_alive_at_end": alive}
    finally:
        for proc in procs:
            stop_pid(proc, timeout=10)
        server.stop()


def _established(port: int) -> int:
    """Server-side TCP connections in ESTABLISHED state on `port` (from /proc/net/tcp)."""
    local = f":{port:04X}"
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(local) and fields[3] == "01":
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="*", default=[1, 16] if quick() else [1, 16, 64, 150])
    parser.add_argument("--mounts", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15 if quick() else 30)
    parser.add_argument("--loop-seconds", type=float, default=2.5 * CLIP_SECONDS)
    parser.add_argument("--kbps", type=int, nargs="*", default=[2000, 4000])
    args = parser.parse_args(argv)
    work = workspace("replay-source")
    try:
        print(f"loop check: {len(KINDS)} mounts recorded for {args.loop_seconds:.0f} s ...", flush=True)
        loops = check_loops(args.loop_seconds, args.kbps[0], work)
    finally:
        remove(work)
    print(table(["mount", "streams", "packets", "dts going back", "duration s", "wall s", "loops", "ok"],
                [[r["mount"], r["streams"], r["packets"], r["timestamps_going_back"], r["duration_s"], r["wall_s"],
                  r["loops"], r["ok"]] for r in loops]), flush=True)
    costs = []
    for kbps in args.kbps:
        for clients in args.clients:
            print(f"cost: {clients} clients at {kbps} kbit/s, {args.seconds:.0f} s ...", flush=True)
            costs.append(client_cost(clients, args.mounts, args.seconds, kbps))
    print(table(["clients", "mounts", "kbit/s", "server CPU % of one core", "per client %", "alive"],
                [[c["clients"], c["mounts"], c["kbps"], c["server_cpu_percent_of_one_core"], c["per_client_percent"],
                  c["clients_alive_at_end"]] for c in costs]), flush=True)
    ok = all(r["ok"] for r in loops) and all(c["clients_alive_at_end"] == c["clients"] for c in costs)
    print(f"results: {save('replay-source', {'loops': loops, 'cost': costs, 'ok': ok})}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
