"""What a store does of the S3 features the uploader relies on, as probed at start (`ObjectStore.probe_*`).

S3-compatible servers differ exactly where the uploader leans on S3: some reject the CRC32
trailer boto3 sends by default (rclone serve s3 over HTTPS answers 411), some take the SSE
header and ignore it. Plain records without boto3: `status` reads them from the state file.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Support(str, Enum):
    YES = "yes"                # done, and the answer shows it (an echoed checksum or SSE mode)
    ACCEPTED = "accepted"      # taken without complaint, but nothing shows it was honoured
    IGNORED = "ignored"        # not honoured (a second conditional PUT stored, or the header refused)
    REJECTED = "rejected"      # refused: using it would fail every upload
    NOT_ENABLED = "not enabled"  # a bucket setting that is off (object lock)
    NOT_PROBED = "not probed"  # the settings do not use it, so it was not asked

    @property
    def usable(self) -> bool:
        return self in (Support.YES, Support.ACCEPTED)


@dataclass(frozen=True)
class StoreAbilities:
    """One start's answers, kept in the uploader's snapshot and shown by `doctor`."""

    conditional_writes: Support = Support.NOT_PROBED
    crc32: Support = Support.NOT_PROBED          # a CRC32 checksum (a trailer over HTTPS) with each part
    sse: Support = Support.NOT_PROBED            # the S3_SSE header on new objects
    object_lock: Support = Support.NOT_PROBED    # the bucket's object lock (only asked when used)
    checksums_sent: bool = True                  # False: no checksums this run (S3_CHECKSUM=off or rejected)
    crc32_answer: str = ""                       # the server's refusal, when REJECTED
    sse_answer: str = ""

    def summary(self) -> str:
        crc = self.crc32.value + ("" if self.checksums_sent else ", none sent")
        return (f"conditional writes {self.conditional_writes.value}; CRC32 checksums {crc}; "
                f"SSE {self.sse.value}; object lock {self.object_lock.value}")
