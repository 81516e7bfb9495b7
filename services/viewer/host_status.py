"""This host's status for the page's second tab: what the `status` command computes, as it shows it.

The viewer may not import the commands (tests/unit/test_package_boundaries), so `web` hands it a
callable, `ViewerSettings.status_data`, that returns `status --json`'s data (`build_report`), and
`page_status` keeps of it what the page shows. Nothing secret is passed on: no camera URL (the
masked `url` of each camera is dropped), no bucket endpoint, and every text goes through `redact`.

Without that callable (a server made by `make_server` alone, as the unit tests make it)
/api/status answers 404 with {"error": NO_STATUS}, and the tab says the status is not available.
"""
from __future__ import annotations

from services.common.redact import redact
from services.common.state_file import parse_utc

NO_STATUS = "this viewer was started without the status command's data"
SERVICES = (("video-recorder", "recorder"), ("s3-uploader", "uploader"))
CAMERA_FIELDS = ("name", "state", "reason", "video_codec", "fps", "bitrate", "restarts", "last_segment_age")


def _shown(value: object) -> object:
    """Numbers as they are, texts redacted, anything else (a list, a dict) left out."""
    if isinstance(value, str):
        return redact(value)
    return value if value is None or isinstance(value, (bool, int, float)) else None


def _event(event: object, text: str, now: float) -> dict | None:
    """The last upload ({file, age}) or the last error ({message, age}); None: there was none."""
    if not isinstance(event, dict):
        return None
    moment = parse_utc(event.get("at"))
    return {text: _shown(event.get(text)), "age": None if moment is None else round(now - moment.timestamp(), 1)}


def _files(folder: object) -> dict:
    folder = folder if isinstance(folder, dict) else {}
    return {"files": _shown(folder.get("files")), "bytes": _shown(folder.get("bytes"))}


def page_status(data: dict, now: float) -> dict:
    """`status --json`'s `data` as the status tab shows it; ages in seconds before `now`."""
    cameras = data.get("cameras") or {}
    return {
        "services": [{"name": name, "running": bool(data.get(f"{key}_running")),
                      "text": _shown(data.get(f"{key}_status"))} for name, key in SERVICES],
        "cameras": [{"id": redact(str(camera_id)), **{name: _shown(entry.get(name)) for name in CAMERA_FIELDS}}
                    for camera_id, entry in cameras.items() if isinstance(entry, dict)],
        "backlog": {**_files(data.get("backlog")), "oldest_age": _shown(data.get("backlog_oldest_age"))},
        "kept": _files(data.get("kept")),
        "last_upload": _event(data.get("last_upload"), "file", now),
        "last_error": _event(data.get("last_error"), "message", now),
        "disk": {"free": _shown(data.get("disk_free")), "total": _shown(data.get("disk_total"))},
        "problems": [redact(str(text)) for text in data.get("problems") or []],
        "warnings": [redact(str(text)) for text in data.get("warnings") or []],
    }
