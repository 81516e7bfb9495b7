"""What a reload changes for the recorder: a pure diff of the running and the new settings.

Only the cameras whose settings changed are touched: an unchanged camera keeps its FFmpeg
(same pid, no gap, no extra segment boundary). Settings in every FFmpeg command line change
every camera; settings read only by the supervisors or the alerts apply without a restart.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from services.common.reloading import changed, keep, keep_common
from services.common.settings import (
    FFMPEG_PATH,
    FFPROBE_PATH,
    METRICS_BIND,
    RECORDER_METRICS_PORT,
    SEGMENT_DURATION,
    STALL_TIMEOUT,
    VIDEO_CODEC,
)
from services.recorder.config import CameraConfig, RecorderConfig

# In every FFmpeg/ffprobe command line (STALL_TIMEOUT sets FFmpeg's socket timeout).
COMMAND_FIELDS = {"segment_duration": SEGMENT_DURATION, "video_codec": VIDEO_CODEC, "ffmpeg": FFMPEG_PATH,
                  "ffprobe": FFPROBE_PATH, "stall_timeout": STALL_TIMEOUT}
# The metrics socket is bound once.
RESTART_ONLY = {"metrics_port": RECORDER_METRICS_PORT, "metrics_bind": METRICS_BIND}


@dataclass(frozen=True)
class CameraChanges:
    added: tuple[CameraConfig, ...] = ()
    removed: tuple[int, ...] = ()
    changed: tuple[CameraConfig, ...] = ()   # the new settings of each
    unchanged: tuple[int, ...] = ()

    def summary(self) -> str:
        return (f"{len(self.added)} camera(s) added, {len(self.removed)} removed, {len(self.changed)} changed, "
                f"{len(self.unchanged)} unchanged")


@dataclass(frozen=True)
class ReloadPlan:
    config: RecorderConfig              # what runs from now on: restart-only settings keep their old value
    cameras: CameraChanges
    needs_restart: tuple[str, ...]      # names of settings whose new value waits for a restart
    command_changed: tuple[str, ...]    # names of settings that restart every camera


def diff_cameras(old: Sequence[CameraConfig], new: Sequence[CameraConfig],
                 restart_all: bool = False) -> CameraChanges:
    """Cameras by id: added, removed, changed (any field, or every camera when `restart_all`)."""
    before = {c.id: c for c in old}
    after = {c.id: c for c in new}
    kept = [c for c in new if c.id in before]
    return CameraChanges(
        added=tuple(c for c in new if c.id not in before),
        removed=tuple(i for i in before if i not in after),
        changed=tuple(c for c in kept if restart_all or c != before[c.id]),
        unchanged=tuple(c.id for c in kept if not restart_all and c == before[c.id]),
    )


def plan_reload(old: RecorderConfig, new: RecorderConfig) -> ReloadPlan:
    common, common_restart = keep_common(old.common, new.common)
    command_changed = changed(old, new, COMMAND_FIELDS)
    return ReloadPlan(
        config=replace(keep(old, new, RESTART_ONLY), common=common),
        cameras=diff_cameras(old.cameras, new.cameras, restart_all=bool(command_changed)),
        needs_restart=common_restart + changed(old, new, RESTART_ONLY),
        command_changed=command_changed,
    )
