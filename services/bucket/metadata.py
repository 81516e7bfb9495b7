"""The names of the user metadata every segment object carries (x-amz-meta-*): the object contract.

Readers (`coverage`, `clip`, `sync --verify`, the uploader's own checks) and the writer share these.
"""
from __future__ import annotations

from datetime import datetime, timezone

CAMERA_ID = "camera-id"
CAMERA_NAME = "camera-name"            # %-encoded: headers are ASCII
SEGMENT_START = "segment-start"        # UTC, second resolution, as in the file name
DURATION = "segment-duration"          # seconds of video, from the MP4's boxes
FIRST_FRAME = "segment-first-frame"    # host time its first frame was seen, UTC ISO with ms (stamped files)
END = "segment-end"                    # first frame + duration, UTC ISO with ms (stamped files)
CRC32 = "content-crc32"                # plain objects: base64 CRC32 of the file
PLAIN_SIZE = "crypt-plain-size"        # encrypted objects: size of the plaintext
FINGERPRINT = "crypt-fingerprint"      # encrypted objects: keyed SHA-256 of the plaintext
HOST_ID = "host-id"                    # which uploader wrote the object (HOST_ID or the hostname)


def iso_ms(moment: datetime) -> str:
    """`2026-01-24T14:05:03.215Z`: the form FIRST_FRAME and END are written in."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso_ms(text: str) -> datetime:
    """The inverse of `iso_ms` (ValueError for anything else)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"no time zone in {text!r}")
    return moment.astimezone(timezone.utc)
