"""This host's status for the page's second tab: the `status` command's figures, read from the same
state files the recorder and the uploader publish in DATA_DIR/state/, the folders and the disk.

The viewer may not import the recorder, the uploader or the commands (tests/unit/test_package_boundaries),
so the snapshots are read as the plain JSON `services.common.state_file` writes, field by field, and a
missing or odd field reads as unknown. Nothing secret is passed on: no camera URL, no bucket endpoint,
and every message goes through `redact`.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from services.common.data_layout import DataLayout
from services.common.redact import redact
from services.common.state_file import parse_utc, pid_alive, read_json

RECORDER_FILE, UPLOADER_FILE = "recorder.json", "uploader.json"   # the daemons' STATE_FILE names
STALE_AFTER = 30.0                  # as `status`: seconds without an update before a daemon counts as down
BACKLOG_MAX_AGE = 3600.0            # `status`'s defaults (STATUS_BACKLOG_MAX_MINUTES, MIN_FREE_DISK_MB)
MIN_FREE_BYTES = 2 * 1024**3
CAMERA_FIELDS = ("name", "state", "reason", "fps", "bitrate", "restarts", "video_codec", "audio", "segments",
                 "last_segment", "camera_clock_offset")


def _age(now: float, text: object) -> float | None:
    moment = parse_utc(text)
    return None if moment is None else round(now - moment.timestamp(), 1)


def _text(value: object) -> str:
    return redact(str(value)) if value not in (None, "") else ""


def service(snapshot: object, now: float) -> dict:
    """Is the daemon that wrote `snapshot` running, and is its snapshot fresh? (`status`'s test)"""
    if not isinstance(snapshot, dict):
        return {"running": False, "text": "no state file (never started?)"}
    age = _age(now, snapshot.get("updated_at"))
    pid = snapshot.get("pid")
    if age is None or not pid_alive(pid):
        return {"running": False, "text": f"not running (last update {age:.0f} s ago)" if age is not None
                else "not running", "updated_age": age}
    if age > STALE_AFTER:
        return {"running": False, "text": f"pid {pid} alive but its state is stale ({age:.0f} s old)",
                "updated_age": age}
    return {"running": True, "text": f"running, pid {pid}", "updated_age": age}


def folder_backlog(folder: Path, now: float) -> dict:
    stats = [p.stat() for p in folder.glob("camera_*.mp4") if p.is_file()]
    oldest = min((s.st_mtime for s in stats), default=None)
    return {"files": len(stats), "bytes": sum(s.st_size for s in stats),
            "oldest_age": None if oldest is None else round(now - oldest, 1)}


def cameras(recorder: dict | None, running: bool, now: float, names: dict[int, str]) -> dict[str, dict]:
    """Every camera of the recorder's snapshot and of the viewer's settings, by id."""
    reported = recorder.get("cameras") if isinstance(recorder, dict) else None
    reported = reported if isinstance(reported, dict) else {}
    ids = sorted({str(i) for i in names} | set(reported),
                 key=lambda i: (not i.isdigit(), int(i) if i.isdigit() else 0, i))
    found = {}
    for camera_id in ids:
        entry = reported.get(camera_id) if isinstance(reported.get(camera_id), dict) else {}
        shown = {name: (_text(entry[name]) if isinstance(entry.get(name), str) else entry.get(name))
                 for name in CAMERA_FIELDS if name in entry}
        shown.setdefault("name", names.get(int(camera_id), "") if camera_id.isdigit() else "")
        shown["state"] = (shown.get("state") or "unknown") if running else "down"
        shown["last_segment_age"] = _age(now, entry.get("last_segment_at"))
        found[camera_id] = shown
    return found


def host_status(layout: DataLayout, names: dict[int, str], now: float | None = None) -> dict:
    """What the status tab shows; `problems` as `status` lists them (with its default thresholds)."""
    now = time.time() if now is None else now
    recorder, uploader = read_json(layout.state / RECORDER_FILE), read_json(layout.state / UPLOADER_FILE)
    recorder_state, uploader_state = service(recorder, now), service(uploader, now)
    problems = [f"{label} {state['text']}" for label, state in
                (("video-recorder", recorder_state), ("s3-uploader", uploader_state)) if not state["running"]]
    camera_table = cameras(recorder, recorder_state["running"], now, names)
    for camera_id, camera in camera_table.items():
        if camera["state"] != "recording":
            reason = camera.get("reason") or ""
            problems.append(f"camera {camera_id} is {camera['state']}" + (f" ({reason})" if reason else ""))
    if recorder_state["running"] and isinstance(recorder, dict):
        for name, label in (("clock_wait", "video-recorder "), ("config_error", "video-recorder rejected .env: ")):
            if recorder.get(name):
                problems.append(label + _text(recorder[name]))
    uploader = uploader if isinstance(uploader, dict) else {}
    last_success = uploader.get("last_success") if isinstance(uploader.get("last_success"), dict) else {}
    last_error = uploader.get("last_error") if isinstance(uploader.get("last_error"), dict) else {}
    if uploader_state["running"] and uploader.get("config_error"):
        problems.append("uploads blocked: " + _text(uploader["config_error"]))
    queue = folder_backlog(layout.completed, now)
    if queue["oldest_age"] is not None and queue["oldest_age"] > BACKLOG_MAX_AGE:
        problems.append(f"upload backlog: oldest segment waiting {queue['oldest_age'] / 60:.0f} min")
    disk = shutil.disk_usage(layout.existing_root())
    if disk.free < MIN_FREE_BYTES:
        problems.append(f"disk low: {disk.free / 1024**3:.1f} GB free")
    return {"recorder": recorder_state, "uploader": uploader_state, "cameras": camera_table,
            "backlog": queue, "kept": folder_backlog(layout.uploaded, now),
            "last_upload": {"file": _text(last_success.get("file")), "age": _age(now, last_success.get("at"))}
            if last_success else None,
            "last_error": {"message": _text(last_error.get("message")), "age": _age(now, last_error.get("at"))}
            if last_error else None,
            "files_uploaded": uploader.get("files_uploaded"),
            "disk": {"free": disk.free, "total": disk.total}, "problems": problems, "at": round(now, 3)}
