"""Power cut: what reached the disk when the power went, with FSYNC_INTERVAL and without.

Each recorder writes to its own ext4 file system in an image file behind a loop device. The
loop device passes the upper file system's writes into the image file, so a copy of the image
holds what the "disk" had received; the page cache of the upper file system (FFmpeg's
fragments not yet written back) is not in it. At the cut every recorder and FFmpeg is frozen
(SIGSTOP, so nothing more is written), both images are copied, each at an instant when the
kernel was not writing to it (loop_disk.snapshot: a copy read during a write-back could pair
the journal of one moment with the data of another), everything is killed. The
copies are mounted read-write (ext4 replays its journal, as after a reboot), torn tails are
trimmed as recovery does, and each camera's footage in the copy is compared with the footage
its files held on the live file system at the cut: the difference is what the power cut cost
beyond a kill -9 (which loses the one fragment FFmpeg had not written yet, as drilled in
test_recorder.py).
"""
import contextlib
import os
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from services.common.data_layout import DataLayout
from services.common.mp4_fragments import trim_torn_tail, video_duration
from services.common.segment_names import parse_name
from tests.support.figures import record
from tests.support.loop_disk import make_ext4, mounted, require, snapshot
from tests.support.media import decode_errors
from tests.support.processes import Daemon, pids_with_argument, read_status, wait_for, write_env

FSYNC_INTERVAL = 2.0
GOP = 1.0            # the test camera's key-frame interval
MARGIN = 2.0         # the 0.5-s main-loop tick, the fsync itself, a loaded 2-core machine
# Shorter than vm.dirty_expire_centisecs (30 s by default): the kernel writes a file back once it
# has been dirty that long, all of it, so a cut at any later moment would find a random part of
# the footage written back. Before it, nothing is: the measured loss without fsync is the whole
# recording, and the one with fsync cannot have been helped by the kernel.
RECORD_SECONDS = 20
SEGMENT = 3600       # one open segment for the whole drill: closed segments are fsynced at hand-off
CAMERAS = (1, 2)


def kernel_writeback() -> dict[str, float]:
    return {name: int(Path(f"/proc/sys/vm/{name}").read_text()) / 100
            for name in ("dirty_expire_centisecs", "dirty_writeback_centisecs")}


def footage(videos: Path) -> dict[int, float]:
    """Seconds of video per camera in every segment under `videos`, torn tails trimmed first."""
    seconds = {n: 0.0 for n in CAMERAS}
    for path in videos.rglob("*.mp4"):
        name = parse_name(path.name)
        if name is not None:
            trim_torn_tail(path)
            seconds[name.camera_id] = seconds.get(name.camera_id, 0.0) + (video_duration(path) or 0.0)
    return seconds


def wait_clear_of_segment_boundary(seconds: float) -> None:
    """No segment may close during the drill: a closed one is fsynced by the hand-off."""
    into = datetime.now(timezone.utc).timestamp() % SEGMENT
    if SEGMENT - into < seconds:
        time.sleep(SEGMENT - into + 1)


@pytest.fixture
def disks(tmp_path):
    """Two ext4 images, each mounted at tmp_path/<name>; yields {name: (image, mount point)}."""
    require("mkfs.ext4", "losetup", "mount")
    images = {name: (tmp_path / f"{name}.img", tmp_path / name) for name in ("fsync", "off")}
    with contextlib.ExitStack() as stack:
        for image, mount in images.values():
            make_ext4(image)
            stack.enter_context(mounted(image, mount))
        yield images


def test_power_cut_loses_at_most_the_fsync_interval(disks, camera_server, tmp_path):
    # One mount per camera and recorder: two clients starting on one shared mount at the same
    # instant can abort gst-rtsp-server 1.22 (see rtsp_camera_server.py).
    server = camera_server({f"{name}{n}": "h264:none" for name in disks for n in CAMERAS})
    wait_clear_of_segment_boundary(RECORD_SECONDS + 35)
    daemons: dict[str, Daemon] = {}
    try:
        for name, interval in (("fsync", FSYNC_INTERVAL), ("off", 0)):
            layout = DataLayout(disks[name][1] / "data")
            env = write_env(tmp_path / f"{name}.env", {
                "DATA_DIR": layout.root, "SEGMENT_DURATION": SEGMENT, "FSYNC_INTERVAL": interval,
                **{f"CAMERA_{n}_URL": server.url(f"{name}{n}") for n in CAMERAS}})
            daemons[name] = Daemon("services.video_recorder", env, tmp_path / f"{name}.log").start()

        def all_recording() -> bool:
            states = [read_status(disks[n][1] / "data/state/recorder.json").get("cameras", {}) for n in disks]
            return all(len(s) == len(CAMERAS) and all(c.get("state") == "recording" for c in s.values())
                       for s in states)

        wait_for(all_recording, 60, "every camera of both recorders recording")
        time.sleep(RECORD_SECONDS)
        synced = read_status(disks["fsync"][1] / "data/state/recorder.json").get("fsync") or {}

        # The cut: nothing writes any more, the images hold what the disks had received.
        writers = [pid for n, d in daemons.items() for pid in [d.proc.pid, *pids_with_argument(str(disks[n][1]))]]
        for pid in writers:
            os.kill(pid, signal.SIGSTOP)
        for name, (image, _) in disks.items():
            snapshot(image, image.with_suffix(".cut"))
        for pid in writers:
            os.kill(pid, signal.SIGKILL)
        at_cut = {name: footage(mount / "data/videos") for name, (_, mount) in disks.items()}
    finally:
        for daemon in daemons.values():
            daemon.stop()

    lost, recovered = {}, {}
    for name, (image, _) in disks.items():
        with mounted(image.with_suffix(".cut"), tmp_path / f"{name}-after"):
            videos = tmp_path / f"{name}-after/data/videos"
            recovered[name] = footage(videos)
            errors = {p.name: decode_errors(p) for p in videos.rglob("*.mp4") if video_duration(p)}
        assert all(e == "" for e in errors.values()), errors
        lost[name] = {n: at_cut[name][n] - recovered[name][n] for n in CAMERAS}

    writeback = kernel_writeback()
    print(f"kernel writeback: {writeback}; fsync report before the cut: {synced}")
    for name in disks:
        for n in CAMERAS:
            print(f"{name}: camera {n}: {at_cut[name][n]:.1f} s recorded at the cut, "
                  f"{recovered[name][n]:.1f} s on the disk, {lost[name][n]:.1f} s lost")
    for n in CAMERAS:
        record("power cut", f"camera {n} footage lost, FSYNC_INTERVAL={FSYNC_INTERVAL:g}", lost["fsync"][n])
        record("power cut", f"camera {n} footage lost, FSYNC_INTERVAL=0 (dirty_expire "
               f"{writeback['dirty_expire_centisecs']:g} s)", lost["off"][n])
    assert all(at_cut[name][n] > RECORD_SECONDS - 5 for name in disks for n in CAMERAS), at_cut
    assert synced.get("rounds", 0) > 0 and synced.get("errors") == 0, synced
    assert all(0 <= lost["fsync"][n] <= FSYNC_INTERVAL + GOP + MARGIN for n in CAMERAS), lost
    if writeback["dirty_expire_centisecs"] > RECORD_SECONDS + 10:
        assert all(lost["off"][n] > lost["fsync"][n] for n in CAMERAS), lost
