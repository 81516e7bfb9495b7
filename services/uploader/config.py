"""Uploader settings: where the bucket is, how to upload, and when local copies may go.

Same rules as the recorder: every problem is collected and reported at once, one line per
key, and the daemon exits 78. AWS keys are registered with `redact` as soon as they are read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.common.alerts import AlertSettings, read_alert_settings
from services.common.config import CommonConfig, EnvReader, read_common
from services.common.redact import mask_url, register_secret
from services.crypt.config import read_encryption
from services.crypt.keys import CryptKeys

MB = 1024 * 1024
STORAGE_CLASSES = ("STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR",
                   "GLACIER", "DEEP_ARCHIVE", "REDUCED_REDUNDANCY", "EXPRESS_ONEZONE")
SSE_MODES = ("aes256", "aws:kms", "none")
CHECKSUM_MODES = ("crc32", "off")
OBJECT_LOCK_MODES = ("governance", "compliance")
OBJECT_LOCK_MAX_DAYS = 36500
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
_CAMERA_NAME = re.compile(r"^CAMERA_(?P<id>\d+)_NAME$")
_PREFIX_BAD = re.compile(r"(^|/)\.\.?(/|$)|//|[\x00-\x1f\\]")


@dataclass(frozen=True)
class UploaderConfig:
    common: CommonConfig
    bucket: str
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None
    endpoint_url: str | None
    prefix: str
    storage_class: str
    sse: str | None               # "AES256", "aws:kms" or None
    sse_kms_key_id: str | None
    checksum: str                 # "crc32" or "off" (servers that reject flexible checksums)
    retention_hours: float
    min_free_bytes: int
    delete_unuploaded_when_full: bool
    concurrency: int
    multipart_threshold: int
    part_size: int
    rescan_interval: float
    retry_max_seconds: float
    config_error_retry_seconds: float
    stop_timeout: float
    alerts: AlertSettings = AlertSettings(None, 300.0, 900.0, 0.0)
    metrics_port: int = 0
    camera_names: tuple[tuple[int, str], ...] = ()
    object_lock_days: int = 0           # 0 = off; else every object is retained this many days
    object_lock_mode: str = "GOVERNANCE"  # "GOVERNANCE" or "COMPLIANCE"
    crypt: CryptKeys | None = None      # rclone-crypt keys when ENCRYPTION_PASSWORD is set

    def camera_name(self, camera_id: int) -> str | None:
        """`CAMERA_<id>_NAME` when the .env has one (the recorder's settings share the file)."""
        return dict(self.camera_names).get(camera_id)

    @property
    def safe_endpoint(self) -> str:
        return mask_url(self.endpoint_url or "AWS")


def _normalise_prefix(env: EnvReader) -> str:
    prefix = env.string("S3_PREFIX", "").lstrip("/")
    if prefix and _PREFIX_BAD.search(prefix):
        env.error("S3_PREFIX", f"must be a plain key prefix like 'site-a/cameras/', got {prefix!r}")
        return ""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return prefix


def _endpoint(env: EnvReader) -> str | None:
    url = env.raw("S3_ENDPOINT_URL")
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        env.error("S3_ENDPOINT_URL", f"must be an http:// or https:// URL with a host, got {mask_url(url)!r}")
        return None
    if parts.password:
        register_secret(parts.password)
    return url.rstrip("/")


def _credentials(env: EnvReader) -> tuple[str | None, str | None, str | None]:
    key_id, secret, token = env.raw("AWS_ACCESS_KEY_ID"), env.raw("AWS_SECRET_ACCESS_KEY"), env.raw("AWS_SESSION_TOKEN")
    for value in (key_id, secret, token):
        register_secret(value)
    if bool(key_id) != bool(secret):
        missing = "AWS_SECRET_ACCESS_KEY" if key_id else "AWS_ACCESS_KEY_ID"
        env.error(missing, "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither "
                           "(then boto3's credential chain is used)")
    return key_id, secret, token


def _encryption(env: EnvReader, endpoint: str | None) -> tuple[str | None, str | None]:
    # AES256 is free and universal on AWS; S3-compatible servers often reject the header.
    default = "none" if endpoint else "aes256"
    mode = env.choice("S3_SSE", default, SSE_MODES)
    kms_key = env.raw("S3_SSE_KMS_KEY_ID")
    if kms_key and mode != "aws:kms":
        env.error("S3_SSE_KMS_KEY_ID", "only used with S3_SSE=aws:kms")
    return {"aes256": "AES256", "aws:kms": "aws:kms", "none": None}[mode], kms_key


def _object_lock(env: EnvReader, checksum: str) -> tuple[int, str]:
    """S3_OBJECT_LOCK_DAYS / S3_OBJECT_LOCK_MODE: per-object retention (write once, read many)."""
    days = env.integer("S3_OBJECT_LOCK_DAYS", 0, minimum=0, maximum=OBJECT_LOCK_MAX_DAYS)
    mode = env.choice("S3_OBJECT_LOCK_MODE", "governance", OBJECT_LOCK_MODES).upper()
    if days and checksum == "off":
        # S3 refuses an object-lock PUT without Content-MD5 or a checksum header.
        env.error("S3_OBJECT_LOCK_DAYS", "object lock needs S3_CHECKSUM=crc32: S3 rejects uploads with a "
                                         "retention date that carry no checksum (S3_CHECKSUM=off sends none)")
    return days, mode


def _camera_names(env: EnvReader) -> tuple[tuple[int, str], ...]:
    names = []
    for key, value in env.values.items():
        match = _CAMERA_NAME.match(key)
        if match and value.strip():
            names.append((int(match["id"]), value.strip()))
    return tuple(sorted(names))


def read_uploader_config(env: EnvReader) -> UploaderConfig:
    """Validate every uploader setting; raise ConfigError listing all problems."""
    common = read_common(env)
    bucket = env.string("S3_BUCKET_NAME")
    if not bucket:
        env.error("S3_BUCKET_NAME", "required: the bucket the uploader writes to")
    elif not _BUCKET.match(bucket) or ".." in bucket:
        env.error("S3_BUCKET_NAME", f"not a valid bucket name (3-63 lowercase letters, digits, '.', '-'): {bucket!r}")
    region = env.string("AWS_REGION", "us-east-1")
    if not _REGION.match(region):
        env.error("AWS_REGION", f"not a region name like 'eu-west-1': {region!r}")
    key_id, secret, token = _credentials(env)
    endpoint = _endpoint(env)
    sse, kms_key = _encryption(env, endpoint)
    part_size = env.integer("MULTIPART_PART_SIZE_MB", 16, minimum=5, maximum=5120) * MB
    checksum = env.choice("S3_CHECKSUM", "crc32", CHECKSUM_MODES)
    lock_days, lock_mode = _object_lock(env, checksum)
    config = UploaderConfig(
        common=common,
        bucket=bucket,
        region=region,
        access_key_id=key_id,
        secret_access_key=secret,
        session_token=token,
        endpoint_url=endpoint,
        prefix=_normalise_prefix(env),
        storage_class=env.choice("S3_STORAGE_CLASS", "standard", [c.lower() for c in STORAGE_CLASSES]).upper(),
        sse=sse,
        sse_kms_key_id=kms_key,
        checksum=checksum,
        retention_hours=env.decimal("LOCAL_RETENTION_HOURS", 24.0, minimum=0.0, maximum=24.0 * 3650),
        min_free_bytes=env.integer("MIN_FREE_DISK_MB", 2048, minimum=0) * MB,
        delete_unuploaded_when_full=env.boolean("DELETE_UNUPLOADED_WHEN_FULL", False),
        concurrency=env.integer("UPLOAD_CONCURRENCY", 4, minimum=1, maximum=32),
        multipart_threshold=env.integer("MULTIPART_THRESHOLD_MB", 200, minimum=5, maximum=5120) * MB,
        part_size=part_size,
        rescan_interval=env.decimal("RESCAN_INTERVAL", 60.0, minimum=0.5, maximum=300.0),
        retry_max_seconds=env.decimal("UPLOAD_RETRY_MAX_SECONDS", 300.0, minimum=0.5, maximum=3600.0),
        config_error_retry_seconds=env.decimal("CONFIG_ERROR_RETRY_SECONDS", 60.0, minimum=0.5, maximum=3600.0),
        stop_timeout=env.decimal("UPLOAD_STOP_TIMEOUT", 30.0, minimum=0.0, maximum=3600.0),
        alerts=read_alert_settings(env),
        metrics_port=env.integer("UPLOADER_METRICS_PORT", 0, minimum=0, maximum=65535),
        camera_names=_camera_names(env),
        object_lock_days=lock_days,
        object_lock_mode=lock_mode,
        crypt=read_encryption(env),
    )
    env.check()
    return config
