"""Uploader settings: where the bucket is, how to upload, and when local copies may go.

Same rules as the recorder: every problem is collected and reported at once, one line per
key, and the daemon exits 78. AWS keys are registered with `redact` as soon as they are read.
"""
from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from services.common.alerts import AlertSettings, read_alert_settings
from services.common.config import CommonConfig, EnvReader, read_common
from services.common.metrics import read_metrics_bind
from services.common.redact import mask_url, register_secret
from services.common.settings import (
    AWS_ACCESS_KEY_ID,
    AWS_CA_BUNDLE,
    AWS_REGION,
    AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN,
    CONFIG_ERROR_RETRY_SECONDS,
    DELETE_UNUPLOADED_WHEN_FULL,
    HOST_ID,
    LOCAL_RETENTION_HOURS,
    MIN_FREE_DISK_MB,
    MULTIPART_ABORT_AFTER_HOURS,
    MULTIPART_PART_SIZE_MB,
    MULTIPART_THRESHOLD_MB,
    RESCAN_INTERVAL,
    S3_BUCKET_NAME,
    S3_CA_BUNDLE,
    S3_CHECKSUM,
    S3_ENDPOINT_URL,
    S3_OBJECT_LOCK_DAYS,
    S3_OBJECT_LOCK_MODE,
    S3_PREFIX,
    S3_SSE,
    S3_SSE_DEFAULT_WITH_ENDPOINT,
    S3_SSE_KMS_KEY_ID,
    S3_STORAGE_CLASS,
    UPLOAD_CONCURRENCY,
    UPLOAD_RETRY_MAX_SECONDS,
    UPLOAD_STOP_TIMEOUT,
    UPLOADER_METRICS_PORT,
)
from services.crypt.config import read_encryption
from services.crypt.keys import CryptKeys
from services.uploader.bandwidth import BandwidthSchedule
from services.uploader.source_config import SourceSettings, read_bandwidth, read_sources

MB = 1024 * 1024
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
BAD_BUCKET_NAME = "not a valid bucket name (3-63 lowercase letters, digits, '.', '-'): {bucket!r}"
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
_CAMERA_NAME = re.compile(r"^CAMERA_(?P<id>\d+)_NAME$")
_PREFIX_BAD = re.compile(r"(^|/)\.\.?(/|$)|//|[\x00-\x1f\\]")
_HOST_ID = re.compile(r"^[A-Za-z0-9._-]{1,63}$")


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
    metrics_bind: str = "127.0.0.1"
    camera_names: tuple[tuple[int, str], ...] = ()
    object_lock_days: int = 0           # 0 = off; else every object is retained this many days
    object_lock_mode: str = "GOVERNANCE"  # "GOVERNANCE" or "COMPLIANCE"
    crypt: CryptKeys | None = None      # rclone-crypt keys when ENCRYPTION_PASSWORD is set
    host_id: str = "localhost"          # who wrote an object (metadata), for clash reports
    multipart_abort_after: float = 86400.0   # seconds before another host's unfinished upload is stale
    ca_bundle: str | None = None        # PEM file of the CAs an https:// endpoint is checked against
    sources: SourceSettings | None = None       # SOURCE_DIRS: another recorder's folders instead of completed/
    bandwidth: BandwidthSchedule | None = None  # UPLOAD_BWLIMIT; None: unlimited

    def camera_name(self, camera_id: int) -> str | None:
        """`CAMERA_<id>_NAME` when the .env has one (the recorder's settings share the file)."""
        return dict(self.camera_names).get(camera_id)

    @property
    def safe_endpoint(self) -> str:
        return mask_url(self.endpoint_url or "AWS")


def valid_bucket_name(name: str) -> bool:
    return bool(_BUCKET.match(name)) and ".." not in name


def _normalise_prefix(env: EnvReader) -> str:
    prefix = env.get(S3_PREFIX).lstrip("/")
    if prefix and _PREFIX_BAD.search(prefix):
        env.error(S3_PREFIX.name, f"must be a plain key prefix like 'site-a/cameras/', got {prefix!r}")
        return ""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return prefix


def _endpoint(env: EnvReader) -> str | None:
    url = env.get(S3_ENDPOINT_URL)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        env.error(S3_ENDPOINT_URL.name, f"must be an http:// or https:// URL with a host, got {mask_url(url)!r}")
        return None
    if parts.password:
        register_secret(parts.password)
    return url.rstrip("/")


def _ca_bundle(env: EnvReader) -> str | None:
    """S3_CA_BUNDLE (or AWS_CA_BUNDLE): a PEM file of CA certificates that load, checked now so a
    typo is exit 78 at start rather than a TLS failure at every upload. S3_CA_BUNDLE wins: it is
    this store's, while AWS_CA_BUNDLE may be a machine-wide one from the environment. Never a way
    to turn verification off: the certificate is always checked, against these CAs."""
    ours, botocores = env.get(S3_CA_BUNDLE), env.get(AWS_CA_BUNDLE)
    value = ours or botocores
    if value is None:
        return None
    key = S3_CA_BUNDLE.name if ours else AWS_CA_BUNDLE.name
    path = Path(value).expanduser()
    if not path.is_file():
        env.error(key, f"{value!r} is not a file: give the PEM file of the CA that signed the server's certificate")
        return None
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError) as exc:
        env.error(key, f"{value!r} holds no PEM certificate that loads ({getattr(exc, 'reason', None) or exc})")
        return None
    return str(path.resolve())


def _credentials(env: EnvReader) -> tuple[str | None, str | None, str | None]:
    key_id, secret, token = env.get(AWS_ACCESS_KEY_ID), env.get(AWS_SECRET_ACCESS_KEY), env.get(AWS_SESSION_TOKEN)
    for value in (key_id, secret, token):
        register_secret(value)
    if bool(key_id) != bool(secret):
        missing = (AWS_SECRET_ACCESS_KEY if key_id else AWS_ACCESS_KEY_ID).name
        env.error(missing, "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither "
                           "(then boto3's credential chain is used)")
    return key_id, secret, token


def _encryption(env: EnvReader, endpoint: str | None) -> tuple[str | None, str | None]:
    # AES256 is free and universal on AWS; S3-compatible servers often reject the header.
    mode = env.get(S3_SSE.with_default(S3_SSE_DEFAULT_WITH_ENDPOINT) if endpoint else S3_SSE)
    kms_key = env.get(S3_SSE_KMS_KEY_ID)
    if kms_key and mode != "aws:kms":
        env.error(S3_SSE_KMS_KEY_ID.name, "only used with S3_SSE=aws:kms")
    return {"aes256": "AES256", "aws:kms": "aws:kms", "none": None}[mode], kms_key


def _object_lock(env: EnvReader, checksum: str) -> tuple[int, str]:
    """S3_OBJECT_LOCK_DAYS / S3_OBJECT_LOCK_MODE: per-object retention (write once, read many)."""
    days = env.get(S3_OBJECT_LOCK_DAYS)
    mode = env.get(S3_OBJECT_LOCK_MODE).upper()
    if days and checksum == "off":
        # S3 refuses an object-lock PUT without Content-MD5 or a checksum header.
        env.error(S3_OBJECT_LOCK_DAYS.name, "object lock needs S3_CHECKSUM=crc32: S3 rejects uploads with a "
                                         "retention date that carry no checksum (S3_CHECKSUM=off sends none)")
    return days, mode


def _camera_names(env: EnvReader) -> tuple[tuple[int, str], ...]:
    names = []
    for key, value in env.values.items():
        match = _CAMERA_NAME.match(key)
        if match and value.strip():
            names.append((int(match["id"]), value.strip()))
    return tuple(sorted(names))


def read_host_id(env: EnvReader) -> str:
    """HOST_ID, or the hostname: printable ASCII, as it travels in an HTTP header."""
    host = env.get(HOST_ID) or socket.gethostname() or "localhost"
    if not _HOST_ID.match(host):
        env.error(HOST_ID.name, f"use letters, digits, '.', '-' and '_' (at most 63), got {host!r}")
    return host


def read_uploader_config(env: EnvReader) -> UploaderConfig:
    """Validate every uploader setting; raise ConfigError listing all problems."""
    common = read_common(env)
    bucket = env.get(S3_BUCKET_NAME)
    if not bucket:
        env.error(S3_BUCKET_NAME.name, "required: the bucket the uploader writes to")
    elif not valid_bucket_name(bucket):
        env.error(S3_BUCKET_NAME.name, BAD_BUCKET_NAME.format(bucket=bucket))
    region = env.get(AWS_REGION)
    if not _REGION.match(region):
        env.error(AWS_REGION.name, f"not a region name like 'eu-west-1': {region!r}")
    key_id, secret, token = _credentials(env)
    endpoint = _endpoint(env)
    sse, kms_key = _encryption(env, endpoint)
    part_size = env.get(MULTIPART_PART_SIZE_MB) * MB
    checksum = env.get(S3_CHECKSUM)
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
        storage_class=env.get(S3_STORAGE_CLASS).upper(),
        sse=sse,
        sse_kms_key_id=kms_key,
        checksum=checksum,
        retention_hours=env.get(LOCAL_RETENTION_HOURS),
        min_free_bytes=env.get(MIN_FREE_DISK_MB) * MB,
        delete_unuploaded_when_full=env.get(DELETE_UNUPLOADED_WHEN_FULL),
        concurrency=env.get(UPLOAD_CONCURRENCY),
        multipart_threshold=env.get(MULTIPART_THRESHOLD_MB) * MB,
        part_size=part_size,
        rescan_interval=env.get(RESCAN_INTERVAL),
        retry_max_seconds=env.get(UPLOAD_RETRY_MAX_SECONDS),
        config_error_retry_seconds=env.get(CONFIG_ERROR_RETRY_SECONDS),
        stop_timeout=env.get(UPLOAD_STOP_TIMEOUT),
        alerts=read_alert_settings(env),
        metrics_port=env.get(UPLOADER_METRICS_PORT),
        metrics_bind=read_metrics_bind(env),
        camera_names=_camera_names(env),
        object_lock_days=lock_days,
        object_lock_mode=lock_mode,
        crypt=read_encryption(env),
        host_id=read_host_id(env),
        multipart_abort_after=env.get(MULTIPART_ABORT_AFTER_HOURS) * 3600,
        ca_bundle=_ca_bundle(env),
        sources=read_sources(env, common.data_dir),
        bandwidth=read_bandwidth(env),
    )
    env.check()
    return config
