"""Camera states and their groups; imports nothing else from the project."""
from __future__ import annotations

import enum


class CameraState(str, enum.Enum):
    STOPPED = "stopped"      # not running and not going to (daemon shutting down)
    PROBING = "probing"      # ffprobe is asking the camera what it sends
    STARTING = "starting"    # FFmpeg runs, no media has arrived yet
    RECORDING = "recording"  # FFmpeg runs and media time advances
    BACKOFF = "backoff"      # waiting before the next attempt
    STOPPING = "stopping"    # asked FFmpeg to finish its segment; killed at the deadline


# A child process exists in these states.
PROCESS_STATES = frozenset({CameraState.PROBING, CameraState.STARTING, CameraState.RECORDING,
                            CameraState.STOPPING})
# The camera is being recorded.
UP_STATES = frozenset({CameraState.RECORDING})


class StopReason(str, enum.Enum):
    """Why a running FFmpeg is stopped; each reason has its own stop policy (`stop_policy`)."""

    SHUTDOWN = "shutdown"                  # the daemon stops
    RELOAD = "reload"                      # new settings: a new run with them
    CLOCK_STEP = "clock stepped back"      # a new run directory, so no name repeats
    STALL = "stalled"                      # media stopped while recording
    NO_MEDIA = "no media since start"      # connected, but never recorded
