"""The recorder daemon with its default timings, for the drills about stalls and slow cameras.

Only the segment length is set: short segments close quickly and show the footage.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from services.common.data_layout import DataLayout
from services.common.settings import STALL_TIMEOUT
from tests.support.processes import Daemon, read_status, wait_for, write_env

DEFAULT_STALL_TIMEOUT = STALL_TIMEOUT.default


@dataclass
class RecorderUnderTest:
    daemon: Daemon
    layout: DataLayout

    def camera(self, camera_id: int) -> dict:
        return read_status(self.layout.state / "recorder.json").get("cameras", {}).get(str(camera_id), {})

    def segments(self, camera_id: int) -> list[Path]:
        return sorted(self.layout.completed.glob(f"camera_{camera_id}_*.mp4"))

    def watch_recording(self, camera_ids: list[int], seconds: float) -> dict[int, set[str]]:
        """Wait until every camera records, then sample them for `seconds`: the states other
        than recording each was seen in (none for a camera that was never restarted)."""
        wait_for(lambda: all(self.camera(n).get("state") == "recording" for n in camera_ids), 90,
                 "every camera recording")
        seen: dict[int, set[str]] = {n: set() for n in camera_ids}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for n in camera_ids:
                state = self.camera(n).get("state")
                if state and state != "recording":
                    seen[n].add(state)
            time.sleep(0.5)
        return seen


def start_recorder(tmp_path: Path, urls: dict[int, str], segment_duration: int) -> RecorderUnderTest:
    layout = DataLayout(tmp_path / "data")
    values: dict[str, object] = {"DATA_DIR": layout.root, "SEGMENT_DURATION": segment_duration}
    values.update({f"CAMERA_{n}_URL": url for n, url in urls.items()})
    env = write_env(tmp_path / ".env", values)
    return RecorderUnderTest(Daemon("services.video_recorder", env, tmp_path / "recorder.log").start(), layout)
