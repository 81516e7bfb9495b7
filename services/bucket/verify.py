"""Does the object in the bucket hold exactly the local file? Decided from facts, no I/O to S3.

Strongest check the server allows, in order:
1. `crc32`: the full-object CRC32 the server stores and returns with ChecksumMode=ENABLED (AWS,
   moto). S3 validated it on upload, so equality means the bytes arrived intact.
   `composite-crc32`: for a multipart upload without a full-object checksum, the CRC32 of the
   parts' CRC32s, compared with the same computed over the parts as they were sent.
2. `md5-etag`: the ETag is the MD5 of the content for single-part uploads without SSE-KMS/SSE-C,
   and for servers that store a plain MD5 (rclone). Multipart ETags (`...-N`) are not MD5s.
3. `metadata-crc32`: the CRC32 we put in the object's metadata; proves the object is our upload
   of this file (an upload becomes visible only when complete), not that S3 re-checked bytes.
4. `size`: nothing else is available.
The size must match in every case.

A single PUT's answer carries the ETag and (where the server keeps one) the CRC32 of what it
stored: `verify_put` takes only those two, the checks that prove content, from it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Mapping

from services.bucket.metadata import CRC32
from services.common.digest import LocalDigest

_PLAIN_MD5 = re.compile(r"^[0-9a-f]{32}$")
# The checks a PUT's answer can make by itself: it carries no metadata, and its size is ours.
_PROVING = ("crc32", "md5-etag")


@dataclass(frozen=True)
class RemoteObject:
    size: int
    etag: str = ""
    crc32: str | None = None
    sse: str | None = None
    sse_customer: bool = False
    metadata: Mapping[str, str] | None = None
    composite_crc32: str | None = None    # a multipart upload's CRC32 of its parts' CRC32s
    lock_mode: str | None = None          # object lock: GOVERNANCE or COMPLIANCE
    retain_until: datetime | None = None
    version_id: str | None = None


@dataclass(frozen=True)
class Verification:
    ok: bool
    method: str
    detail: str = ""


def remote_from_head(head: Mapping[str, Any]) -> RemoteObject:
    """The facts verification needs from a head_object response."""
    metadata = {str(k).lower(): str(v) for k, v in (head.get("Metadata") or {}).items()}
    etag = str(head.get("ETag", "")).strip('"').lower()
    crc = head.get("ChecksumCRC32") or None
    kind = head.get("ChecksumType")
    # A multipart upload without a full-object checksum gets a COMPOSITE one (a CRC of the
    # parts' CRCs): not comparable with the file's CRC32, only with the same parts' CRCs.
    composite = None
    if crc and not (kind == "FULL_OBJECT" or (kind is None and "-" not in etag and "-" not in crc)):
        crc, composite = None, crc
    return RemoteObject(
        size=int(head.get("ContentLength", -1)),
        etag=etag,
        crc32=crc,
        composite_crc32=composite,
        sse=head.get("ServerSideEncryption") or None,
        sse_customer=bool(head.get("SSECustomerAlgorithm")),
        metadata=metadata,
        lock_mode=head.get("ObjectLockMode") or None,
        retain_until=head.get("ObjectLockRetainUntilDate") or None,
        version_id=head.get("VersionId") or None,
    )


def remote_from_put(answer: Mapping[str, Any], size: int) -> RemoteObject:
    """What a PutObject answer says of the object it stored; `size` is the Content-Length sent."""
    return replace(remote_from_head(answer), size=size, metadata={})


def etag_is_md5(remote: RemoteObject) -> bool:
    if remote.sse_customer or (remote.sse or "").startswith("aws:kms"):
        return False
    return bool(_PLAIN_MD5.match(remote.etag))


def _composite_with_parts(remote: RemoteObject) -> str | None:
    """`<value>-<parts>`: AWS writes the part count after the value, moto only in the ETag."""
    value, _, parts = (remote.composite_crc32 or "").partition("-")
    if not parts and "-" in remote.etag:
        parts = remote.etag.rpartition("-")[2]
    return f"{value}-{parts}" if value and parts.isdigit() else None


def verify(local: LocalDigest, remote: RemoteObject) -> Verification:
    """Compare with the strongest check available; `method` names the check that was made."""
    if remote.size != local.size:
        return Verification(False, "size", f"size {remote.size} in bucket, {local.size} local")
    if remote.crc32 and local.crc32:
        if remote.crc32 == local.crc32:
            return Verification(True, "crc32")
        return Verification(False, "crc32", f"CRC32 {remote.crc32} in bucket, {local.crc32} local")
    composite = _composite_with_parts(remote)
    if composite and local.composite_crc32:
        if composite == local.composite_crc32:
            return Verification(True, "composite-crc32")
        return Verification(False, "composite-crc32", f"parts' CRC32 {composite} in bucket, "
                            f"{local.composite_crc32} local")
    if etag_is_md5(remote):
        if remote.etag == local.md5:
            return Verification(True, "md5-etag")
        return Verification(False, "md5-etag", f"MD5 ETag {remote.etag} in bucket, {local.md5} local")
    tagged = (remote.metadata or {}).get(CRC32)
    if tagged:
        if tagged == local.crc32:
            return Verification(True, "metadata-crc32")
        return Verification(False, "metadata-crc32", f"metadata CRC32 {tagged}, {local.crc32} local")
    return Verification(True, "size", "server offers no checksum; size only")


def verify_put(local: LocalDigest, answer: RemoteObject) -> Verification | None:
    """The check of a single PUT's answer (`remote_from_put`), or None when the answer cannot prove
    the content (no CRC32, an ETag that is no MD5: SSE-KMS, SSE-C): then only a HEAD can.
    A mismatch is proof enough that the upload failed."""
    check = verify(local, answer)
    return check if check.method in _PROVING or not check.ok else None
