"""Object keys in the bucket: `[S3_PREFIX]<YYYY>/<MM>/<DD>/camera_<id>/<file name>` (UTC date).

Pure functions, so the layout is decided in one place and tested without S3.
"""
from __future__ import annotations

from services.common.segment_names import SUFFIX, SegmentName
from services.crypt.format import SUFFIX as ENCRYPTED_SUFFIX


def stored_key(prefix: str, segment: SegmentName, encrypted: bool) -> str:
    """The key the uploader writes: `object_key`, plus `.bin` when the content is encrypted."""
    return object_key(prefix, segment) + (ENCRYPTED_SUFFIX if encrypted else "")


def object_key(prefix: str, segment: SegmentName) -> str:
    """The key for `segment`; `prefix` is already normalised ('' or ending in '/')."""
    day = segment.start.strftime("%Y/%m/%d")
    return f"{prefix}{day}/camera_{segment.camera_id}/{segment.filename}"


def distinct_key(key: str, content_hash: str) -> str:
    """A key next to `key` for other content that collided with an existing object.

    The short content hash keeps it deterministic: a retry after a crash finds its own
    earlier upload there instead of creating yet another copy.
    """
    marker = f".conflict-{content_hash[:12]}"
    for tail in (SUFFIX + ENCRYPTED_SUFFIX, SUFFIX):  # rclone crypt needs `.bin` to stay last
        if key.endswith(tail):
            return key[: -len(tail)] + marker + tail
    return key + marker


def distinct_filename(filename: str, content_hash: str) -> str:
    """The same rule for a local file name (a clash in uploaded/)."""
    return distinct_key(filename, content_hash)


def probe_key(prefix: str, host_id: str) -> str:
    """Where a host's start-up probe of conditional writes writes (outside every day folder)."""
    return f"{prefix}.uploader-probe/{host_id}"
