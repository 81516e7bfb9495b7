"""Every `.env` key, declared once: its kind, default, bounds or choices, help and users.

Readers never spell a default or a bound: they ask `EnvReader.get(SETTING)`, which validates
against the declaration here. The README's tables are checked against `ALL` by a unit test.
Per-camera keys are patterns (`CAMERA_<N>_URL`); `Setting.at(n)` names one camera's key.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from enum import Enum, Flag, auto
from typing import Generic, TypeVar

T = TypeVar("T")


class Kind(Enum):
    TEXT = "text"                # the stripped value, or the default when unset or blank
    INTEGER = "a whole number"
    DECIMAL = "a number"
    CHOICE = "choice"            # one of `choices`, case-insensitive, read as lower case
    BOOLEAN = "true or false"
    EXECUTABLE = "executable"    # a program name or path, resolved on PATH


class Component(Flag):
    RECORDER = auto()
    UPLOADER = auto()
    COMMANDS = auto()


RECORDER, UPLOADER, COMMANDS = Component.RECORDER, Component.UPLOADER, Component.COMMANDS
_PLACEHOLDER = re.compile(r"<[A-Z]+>")


@dataclass(frozen=True)
class Setting(Generic[T]):
    name: str                    # the key, or a pattern such as CAMERA_<N>_URL
    kind: Kind
    default: T
    help: str
    used_by: Component
    minimum: int | float | None = None
    maximum: int | float | None = None
    choices: tuple[str, ...] = ()
    shown_default: str | None = None   # the README's words when the default is not one value

    @property
    def is_pattern(self) -> bool:
        return bool(_PLACEHOLDER.search(self.name))

    def matches(self, key: str) -> bool:
        if not self.is_pattern:
            return key == self.name
        parts = _PLACEHOLDER.split(self.name)
        return re.fullmatch("[^_]+".join(re.escape(p) for p in parts), key) is not None

    def at(self, number: int) -> Setting[T]:
        """One camera's key of a `<N>` pattern (its default too: camera_<N> -> camera_3)."""
        fill = lambda text: text.replace("<N>", str(number))  # noqa: E731
        default = fill(self.default) if isinstance(self.default, str) else self.default
        return replace(self, name=fill(self.name), default=default)

    def with_default(self, default: T) -> Setting[T]:
        """The same key with a default that depends on another setting (S3_SSE with an endpoint)."""
        return replace(self, default=default)

    @property
    def documented_default(self) -> str:
        """The default as the README writes it ("" for none)."""
        if self.shown_default is not None:
            return self.shown_default
        if self.default is None or self.default == "":
            return ""
        if isinstance(self.default, bool):
            return str(self.default).lower()
        if isinstance(self.default, float) and self.default.is_integer():
            return str(int(self.default))
        return str(self.default)


_ALL: list[Setting] = []


def _declare(setting: Setting[T]) -> Setting[T]:
    if any(s.name == setting.name for s in _ALL):
        raise ValueError(f"{setting.name} is declared twice")
    _ALL.append(setting)
    return setting


def text(name: str, default: str, help: str, used_by: Component, shown: str | None = None) -> Setting[str]:
    return _declare(Setting(name, Kind.TEXT, default, help, used_by, shown_default=shown))


def optional(name: str, help: str, used_by: Component, shown: str | None = None) -> Setting[str | None]:
    """Text without a default: None when unset (credentials, URLs)."""
    return _declare(Setting(name, Kind.TEXT, None, help, used_by, shown_default=shown))


def integer(name: str, default: int, help: str, used_by: Component,
            minimum: int | None = None, maximum: int | None = None) -> Setting[int]:
    return _declare(Setting(name, Kind.INTEGER, default, help, used_by, minimum, maximum))


def decimal(name: str, default: float, help: str, used_by: Component,
            minimum: float | None = None, maximum: float | None = None, shown: str | None = None) -> Setting[float]:
    as_float = lambda bound: None if bound is None else float(bound)  # noqa: E731
    return _declare(Setting(name, Kind.DECIMAL, float(default), help, used_by, as_float(minimum),
                            as_float(maximum), shown_default=shown))


def choice(name: str, default: str, choices: tuple[str, ...], help: str, used_by: Component,
           shown: str | None = None) -> Setting[str]:
    allowed = tuple(c.lower() for c in choices)
    assert default in allowed, name
    return _declare(Setting(name, Kind.CHOICE, default, help, used_by, choices=allowed, shown_default=shown))


def boolean(name: str, default: bool, help: str, used_by: Component) -> Setting[bool]:
    return _declare(Setting(name, Kind.BOOLEAN, default, help, used_by))


def executable(name: str, default: str, help: str, used_by: Component) -> Setting[str]:
    return _declare(Setting(name, Kind.EXECUTABLE, default, help, used_by))


LOG_LEVELS = ("trace", "debug", "info", "success", "warning", "error", "critical")
AUDIO_MODES = ("auto", "copy", "aac", "none")
STORAGE_CLASSES = ("STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR",
                   "GLACIER", "DEEP_ARCHIVE", "REDUCED_REDUNDANCY", "EXPRESS_ONEZONE")
TRANSITION_CLASSES = ("STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
SSE_MODES = ("aes256", "aws:kms", "none")
CHECKSUM_MODES = ("crc32", "off")
OBJECT_LOCK_MODES = ("governance", "compliance")
OBJECT_LOCK_MAX_DAYS = 36500
WEEK_MINUTES = 7 * 24 * 60
EVERYONE = RECORDER | UPLOADER | COMMANDS

# ----- shared -----------------------------------------------------------------------------------
DATA_DIR = text("DATA_DIR", "./data", "root of videos/, logs/ and state/", EVERYONE)
LOG_LEVEL = choice("LOG_LEVEL", "info", LOG_LEVELS, "log verbosity", EVERYONE)
LOG_FILE = text("LOG_FILE", "auto", "rotated <service>.log: auto (only outside systemd), true, false or a directory",
                RECORDER | UPLOADER)

# ----- recorder ---------------------------------------------------------------------------------
CAMERA_URL = optional("CAMERA_<N>_URL", "rtsp:// or rtsps:// URL of camera N (N: the id in file names)",
                      RECORDER)
CAMERA_NAME = text("CAMERA_<N>_NAME", "camera_<N>", "display name, stored in the object metadata",
                   RECORDER | UPLOADER)
CAMERA_AUDIO = choice("CAMERA_<N>_AUDIO", "auto", AUDIO_MODES, "keep, transcode to AAC or drop the audio",
                      RECORDER)
SEGMENT_DURATION = integer("SEGMENT_DURATION", 600, "seconds per segment, aligned to the UTC clock",
                           RECORDER | COMMANDS, minimum=2, maximum=3600)
VIDEO_CODEC = text("VIDEO_CODEC", "copy", "copy, or an FFmpeg encoder to re-encode with", RECORDER)
STALL_TIMEOUT = integer("STALL_TIMEOUT", 10, "seconds without new media before a recording camera is reconnected",
                        RECORDER, minimum=5, maximum=3600)
FFMPEG_STOP_TIMEOUT = integer("FFMPEG_STOP_TIMEOUT", 10, "seconds FFmpeg gets to close its segment on stop",
                              RECORDER, minimum=1, maximum=60)
FFMPEG_PATH = executable("FFMPEG_PATH", "ffmpeg", "the ffmpeg program", RECORDER | COMMANDS)
FFPROBE_PATH = executable("FFPROBE_PATH", "ffprobe", "the ffprobe program", RECORDER)
CLOCK_SYNC_TIMEOUT = decimal("CLOCK_SYNC_TIMEOUT", 120, "seconds to wait at start for a synchronised clock, "
                             "then record anyway (0: do not wait)", RECORDER, minimum=0, maximum=3600)
RECORDER_BACKOFF_MAX = decimal("RECORDER_BACKOFF_MAX", 60, "longest wait between restarts of a failing camera",
                               RECORDER, minimum=1, maximum=3600)
RECORDER_STABLE_AFTER = decimal("RECORDER_STABLE_AFTER", 60, "seconds of recording before the backoff resets",
                                RECORDER, minimum=1, maximum=86400)
FSYNC_INTERVAL = decimal("FSYNC_INTERVAL", 2, "seconds between fsyncs of every camera's open segment (0: off)",
                         RECORDER, minimum=0, maximum=600)
RECORDER_METRICS_PORT = integer("RECORDER_METRICS_PORT", 0, "Prometheus /metrics port on METRICS_BIND (0: off)",
                                RECORDER, minimum=0, maximum=65535)

# ----- uploader ---------------------------------------------------------------------------------
S3_BUCKET_NAME = text("S3_BUCKET_NAME", "", "bucket for the segments", UPLOADER | COMMANDS)
AWS_REGION = text("AWS_REGION", "us-east-1", "region of the bucket", UPLOADER)
AWS_ACCESS_KEY_ID = optional("AWS_ACCESS_KEY_ID", "access key (with the secret, or neither)", UPLOADER)
AWS_SECRET_ACCESS_KEY = optional("AWS_SECRET_ACCESS_KEY", "secret key (with the access key, or neither)", UPLOADER)
AWS_SESSION_TOKEN = optional("AWS_SESSION_TOKEN", "session token of temporary keys", UPLOADER)
S3_ENDPOINT_URL = optional("S3_ENDPOINT_URL", "URL of an S3-compatible server", UPLOADER)
S3_CA_BUNDLE = optional("S3_CA_BUNDLE", "PEM file of the CA that signed an https:// endpoint's certificate",
                        UPLOADER | COMMANDS)
AWS_CA_BUNDLE = optional("AWS_CA_BUNDLE", "botocore's name for S3_CA_BUNDLE, also read from .env", UPLOADER | COMMANDS)
S3_PREFIX = text("S3_PREFIX", "", "key prefix, e.g. site-a/", UPLOADER | COMMANDS)
S3_STORAGE_CLASS = choice("S3_STORAGE_CLASS", "standard", STORAGE_CLASSES, "storage class of new objects", UPLOADER)
S3_SSE = choice("S3_SSE", "aes256", SSE_MODES, "server-side encryption", UPLOADER,
                shown="`aes256` on AWS, `none` with an endpoint")
S3_SSE_DEFAULT_WITH_ENDPOINT = "none"   # S3-compatible servers often reject the AES256 header
S3_SSE_KMS_KEY_ID = optional("S3_SSE_KMS_KEY_ID", "KMS key for S3_SSE=aws:kms", UPLOADER | COMMANDS)
S3_CHECKSUM = choice("S3_CHECKSUM", "crc32", CHECKSUM_MODES, "full-object CRC32 checked by S3, or off",
                     UPLOADER | COMMANDS)
S3_OBJECT_LOCK_DAYS = integer("S3_OBJECT_LOCK_DAYS", 0, "days every object is retained (0: off)",
                              UPLOADER | COMMANDS, minimum=0, maximum=OBJECT_LOCK_MAX_DAYS)
S3_OBJECT_LOCK_MODE = choice("S3_OBJECT_LOCK_MODE", "governance", OBJECT_LOCK_MODES, "object lock retention mode",
                             UPLOADER | COMMANDS)
HOST_ID = text("HOST_ID", "", "this host's name in each object's metadata and in clash reports",
               UPLOADER | COMMANDS, shown="the hostname")
MULTIPART_ABORT_AFTER_HOURS = decimal("MULTIPART_ABORT_AFTER_HOURS", 24,
                                      "start-up aborts other hosts' unfinished multipart uploads only this old",
                                      UPLOADER, minimum=1, maximum=24 * 365)
ENCRYPTION_PASSWORD = optional("ENCRYPTION_PASSWORD", "rclone crypt password (plain or obscured:)",
                               UPLOADER | COMMANDS)
ENCRYPTION_SALT = optional("ENCRYPTION_SALT", "rclone crypt password2 (plain or obscured:)",
                           UPLOADER | COMMANDS)
LOCAL_RETENTION_HOURS = decimal("LOCAL_RETENTION_HOURS", 24, "hours a verified copy stays in uploaded/",
                                UPLOADER, minimum=0, maximum=24 * 3650)
MIN_FREE_DISK_MB = integer("MIN_FREE_DISK_MB", 2048, "below this, the oldest uploaded copies go early",
                           UPLOADER | COMMANDS, minimum=0)
DELETE_UNUPLOADED_WHEN_FULL = boolean("DELETE_UNUPLOADED_WHEN_FULL", False,
                                      "also delete not-yet-uploaded footage when the disk stays full", UPLOADER)
UPLOAD_CONCURRENCY = integer("UPLOAD_CONCURRENCY", 4, "files uploaded in parallel", UPLOADER, minimum=1, maximum=32)
MULTIPART_THRESHOLD_MB = integer("MULTIPART_THRESHOLD_MB", 200, "one PUT below this size, multipart above",
                                 UPLOADER, minimum=5, maximum=5120)
MULTIPART_PART_SIZE_MB = integer("MULTIPART_PART_SIZE_MB", 16, "multipart part size", UPLOADER,
                                 minimum=5, maximum=5120)
RESCAN_INTERVAL = decimal("RESCAN_INTERVAL", 60, "seconds between safety rescans of completed/", UPLOADER,
                          minimum=0.5, maximum=300)
UPLOAD_RETRY_MAX_SECONDS = decimal("UPLOAD_RETRY_MAX_SECONDS", 300, "cap of the per-file retry backoff",
                                   UPLOADER, minimum=0.5, maximum=3600)
CONFIG_ERROR_RETRY_SECONDS = decimal("CONFIG_ERROR_RETRY_SECONDS", 60, "how often a configuration error is retried",
                                     UPLOADER, minimum=0.5, maximum=3600)
UPLOAD_STOP_TIMEOUT = decimal("UPLOAD_STOP_TIMEOUT", 30, "seconds uploads in flight get to finish on stop",
                              UPLOADER, minimum=0, maximum=3600)
UPLOADER_METRICS_PORT = integer("UPLOADER_METRICS_PORT", 0, "Prometheus /metrics port on METRICS_BIND (0: off)",
                                UPLOADER, minimum=0, maximum=65535)
METRICS_BIND = text("METRICS_BIND", "127.0.0.1", "address the metrics endpoints listen on (0.0.0.0: every one)",
                    RECORDER | UPLOADER)
UPLOAD_BWLIMIT = text("UPLOAD_BWLIMIT", "off", "limit of all uploads together, as rclone's --bwlimit: 10M, "
                      "512k, off, or a timetable `08:00,512k 19:00,10M`", UPLOADER)

# ----- source folders (backing up another recorder's folder) ------------------------------------
SOURCE_DIRS = optional("SOURCE_DIRS", "folders another recorder writes, `path=template` separated by `;` "
                       "(template default `{camera}/%Y-%m-%d_%H-%M-%S.mp4`); set, they are uploaded "
                       "instead of completed/", UPLOADER | COMMANDS)
SOURCE_TIMEZONE = text("SOURCE_TIMEZONE", "", "time zone of the times in source file names (e.g. Europe/Berlin)",
                       UPLOADER | COMMANDS, shown="the host's time zone")
SOURCE_STABLE_SECONDS = decimal("SOURCE_STABLE_SECONDS", 30, "seconds a source file stays unchanged, closed "
                                "and whole before it is uploaded", UPLOADER | COMMANDS, minimum=1, maximum=86400)
SOURCE_PRUNE = boolean("SOURCE_PRUNE", False, "delete source files verified in the bucket and older than "
                       "LOCAL_RETENTION_HOURS (off: the source is never modified)", UPLOADER)

# ----- alerts -----------------------------------------------------------------------------------
ALERT_WEBHOOK_URL = optional("ALERT_WEBHOOK_URL", "Slack-compatible webhook for incidents", RECORDER | UPLOADER)
ALERT_APPRISE_URLS = optional("ALERT_APPRISE_URLS", "apprise URLs (ntfy, Telegram, e-mail...), space or comma "
                              "separated; needs `pip install apprise`", RECORDER | UPLOADER)
ALERT_CAMERA_DOWN_MINUTES = decimal("ALERT_CAMERA_DOWN_MINUTES", 5, "a camera not recording this long alerts",
                                    RECORDER | UPLOADER, minimum=0, maximum=WEEK_MINUTES)
ALERT_UPLOAD_FAILING_MINUTES = decimal("ALERT_UPLOAD_FAILING_MINUTES", 15, "uploads failing this long alert",
                                       RECORDER | UPLOADER, minimum=0, maximum=WEEK_MINUTES)
ALERT_DISK_LOW_MINUTES = decimal("ALERT_DISK_LOW_MINUTES", 0, "free space below MIN_FREE_DISK_MB this long alerts",
                                 RECORDER | UPLOADER, minimum=0, maximum=WEEK_MINUTES)

# ----- operator commands ------------------------------------------------------------------------
STATUS_BACKLOG_MAX_MINUTES = integer("STATUS_BACKLOG_MAX_MINUTES", 60, "status fails when the backlog is older",
                                     COMMANDS, minimum=1)
CAMERA_CLOCK_WARN_SECONDS = decimal("CAMERA_CLOCK_WARN_SECONDS", 10, "status and doctor warn when a camera's "
                                    "clock is further than this from the host's", COMMANDS, minimum=1,
                                    maximum=86400)
LIFECYCLE_TRANSITION_DAYS = integer("LIFECYCLE_TRANSITION_DAYS", 30, "lifecycle: colder class after N days (0: never)",
                                    COMMANDS, minimum=0, maximum=36500)
LIFECYCLE_TRANSITION_CLASS = choice("LIFECYCLE_TRANSITION_CLASS", "glacier_ir", TRANSITION_CLASSES,
                                    "lifecycle: the colder class", COMMANDS)
LIFECYCLE_EXPIRE_DAYS = integer("LIFECYCLE_EXPIRE_DAYS", 365, "lifecycle: delete after M days (0: keep)",
                                COMMANDS, minimum=0, maximum=36500)
LIFECYCLE_ABORT_MULTIPART_DAYS = integer("LIFECYCLE_ABORT_MULTIPART_DAYS", 1,
                                         "lifecycle: abort unfinished multipart uploads after N days",
                                         COMMANDS, minimum=1, maximum=365)
VIEWER_BIND = text("VIEWER_BIND", "127.0.0.1", "address the `web` viewer listens on (another than loopback "
                   "needs VIEWER_TOKEN)", COMMANDS)
VIEWER_PORT = integer("VIEWER_PORT", 8470, "port of the `web` viewer", COMMANDS, minimum=1, maximum=65535)
VIEWER_TOKEN = optional("VIEWER_TOKEN", "password of the `web` viewer (HTTP basic auth, any user name; "
                        "at least 16 characters)", COMMANDS)
# USD per GB-month: AWS S3 us-east-1 list prices, inputs rather than facts about an account.
_LIST_PRICES_GB_MONTH = {"STANDARD": 0.023, "STANDARD_IA": 0.0125, "ONEZONE_IA": 0.01,
                         "INTELLIGENT_TIERING": 0.023, "GLACIER_IR": 0.004, "GLACIER": 0.0036,
                         "DEEP_ARCHIVE": 0.00099, "REDUCED_REDUNDANCY": 0.023, "EXPRESS_ONEZONE": 0.16}
COST_PRICE_GB_MONTH = {cls: decimal(f"COST_PRICE_{cls}_GB_MONTH", price, f"cost: USD per GB-month of {cls}",
                                    COMMANDS, minimum=0, shown="AWS us-east-1 list price")
                       for cls, price in _LIST_PRICES_GB_MONTH.items()}
COST_PRICE_PUT_PER_1000 = decimal("COST_PRICE_PUT_PER_1000", 0.005, "cost: USD per 1,000 upload requests",
                                  COMMANDS, minimum=0)
COST_INSTANCE_MONTHLY = decimal("COST_INSTANCE_MONTHLY", 0, "cost: USD per month of the recording host",
                                COMMANDS, minimum=0)

ALL: tuple[Setting, ...] = tuple(_ALL)


def find(key: str) -> Setting | None:
    """The declaration a key in a `.env` belongs to (patterns included), or None."""
    return next((s for s in ALL if s.matches(key)), None)


def nearest(key: str) -> str | None:
    """The declared key a misspelt one most likely meant (`CAMERA1_URL` -> `CAMERA_1_URL`), or None.

    Patterns are filled with every number in `key`, so a camera's key is suggested with its id.
    """
    numbers = re.findall(r"\d+", key) or ["1"]
    candidates = [s.at(int(n)).name for s in ALL if s.is_pattern for n in numbers]
    candidates += [s.name for s in ALL if not s.is_pattern]
    found = difflib.get_close_matches(key.upper(), candidates, n=1, cutoff=0.6)
    return found[0] if found else None
