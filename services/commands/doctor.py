"""`doctor`: check a setup before and after install; each check says ok, warn or fail, with a fix."""
from __future__ import annotations

import argparse
import shutil
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from services.commands.status import human_bytes
from services.common.config import ConfigError, EnvReader
from services.common.data_layout import DataLayout
from services.common.redact import redact
from services.recorder.config import CameraConfig, RecorderConfig, read_recorder_config
from services.recorder.ffmpeg_command import FfmpegVersion, audio_plan, build_probe_command, parse_probe_output
from services.recorder.runs import ffmpeg_version

if TYPE_CHECKING:   # the bucket wing loads boto3: imported where the bucket checks run
    from services.bucket.probe import Failure

UNIT_DIR = Path("/etc/systemd/system")
UNITS = ("video-recorder.service", "s3-uploader.service")
PROBE_TIMEOUT = 20


@dataclass(frozen=True)
class Check:
    level: str  # ok | warn | fail
    name: str
    detail: str
    hint: str = ""

    def line(self) -> str:
        hint = f"\n       fix: {self.hint}" if self.hint and self.level != "ok" else ""
        return f"{self.level:<4}  {self.name}: {redact(self.detail)}{hint}"


def check_env_file(path: Path | None) -> list[Check]:
    if path is None or not path.is_file():
        return [Check("warn", "env file", "no .env file; using the environment only",
                      "copy .env.example to .env (or pass --env-file)")]
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o004:
        return [Check("fail", "env file", f"{path} is readable by every user (mode {mode:o}); it holds passwords",
                      f"chmod 600 {path}")]
    if mode & 0o040:
        return [Check("warn", "env file", f"{path} is group-readable (mode {mode:o})", f"chmod 600 {path}")]
    return [Check("ok", "env file", f"{path} (mode {mode:o})")]


def check_config(env: EnvReader, read: Callable[[EnvReader], object]) -> tuple[object | None, list[Check]]:
    try:
        return read(env), [Check("ok", "configuration", "all keys valid")]
    except ConfigError as exc:
        return None, [Check("fail", "configuration", str(issue), "edit the key in .env") for issue in exc.issues]


def check_ffmpeg(config: RecorderConfig) -> tuple[Check, FfmpegVersion | None]:
    """The check, and the version the camera probes need (None when FFmpeg does not run)."""
    try:
        version = ffmpeg_version(config.ffmpeg)
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("fail", "ffmpeg", f"cannot run {config.ffmpeg}: {exc}", "apt-get install ffmpeg"), None
    if version.major < 4:
        return Check("warn", "ffmpeg", f"{version.text} is older than 4.4", "upgrade FFmpeg"), version
    return Check("ok", "ffmpeg", version.text), version


def probe_camera(config: RecorderConfig, camera: CameraConfig, version: FfmpegVersion) -> Check:
    argv = build_probe_command(config.ffprobe, camera, version, min(config.stall_timeout, PROBE_TIMEOUT))
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        return Check("fail", camera.label, f"{camera.safe_url}: no answer in {PROBE_TIMEOUT}s",
                     "check the camera's address, port and that RTSP is enabled")
    stream = parse_probe_output(out.stdout)
    if out.returncode != 0 or not stream.video_codec:
        reason = (out.stderr.strip().splitlines() or ["no video stream"])[-1].replace(f"{camera.url}: ", "")
        hint = ("check user and password in the URL" if "401" in reason or "nauthorized" in reason
                else "check the address and path; try the URL in VLC")
        return Check("fail", camera.label, f"{camera.safe_url}: {reason}", hint)
    plan = audio_plan(camera.audio, stream.audio_codec)
    audio = {"copy": f"audio {stream.audio_codec} (copied)", "none": "no audio recorded",
             "aac": f"audio {stream.audio_codec} (transcoded to AAC)"}[plan]
    return Check("ok", camera.label, f"{camera.safe_url}: video {stream.video_codec}, {audio}")


def check_cameras(config: RecorderConfig, version: FfmpegVersion) -> list[Check]:
    with ThreadPoolExecutor(max_workers=min(8, len(config.cameras))) as pool:
        return list(pool.map(lambda camera: probe_camera(config, camera, version), config.cameras))


def check_disk(layout: DataLayout, min_free_bytes: int) -> Check:
    usage = shutil.disk_usage(layout.root)
    detail = f"{human_bytes(usage.free)} free of {human_bytes(usage.total)} at {layout.root}"
    if usage.free < min_free_bytes:
        return Check("warn", "disk", detail, "free space or lower LOCAL_RETENTION_HOURS")
    return Check("ok", "disk", detail)


def check_units(unit_dir: Path = UNIT_DIR) -> list[Check]:
    checks = []
    for unit in UNITS:
        if (unit_dir / unit).is_file():
            checks.append(Check("ok", "systemd", f"{unit} installed"))
        else:
            checks.append(Check("warn", "systemd", f"{unit} not installed in {unit_dir}",
                                "sudo systemd/install-services.sh"))
    return checks


def run_recorder_checks(env_path: Path | None, env: EnvReader, min_free_bytes: int) -> list[Check]:
    checks = check_env_file(env_path)
    config, found = check_config(env, read_recorder_config)
    checks += found
    if isinstance(config, RecorderConfig):
        ffmpeg, version = check_ffmpeg(config)
        checks.append(ffmpeg)
        if version is not None:
            checks += check_cameras(config, version)
        checks.append(check_disk(DataLayout(config.common.data_dir), min_free_bytes))
    checks += check_units()
    return checks


# ----- the command --------------------------------------------------------------------------------
NAME = "doctor"
HELP = "check configuration, FFmpeg, cameras, disk, units and the bucket"


@dataclass(frozen=True)
class Settings:
    """The reader itself: doctor reports configuration problems as checks instead of exiting 78."""
    env: EnvReader
    min_free_bytes: int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """None besides --env-file."""


def read_settings(env: EnvReader) -> Settings:
    from services.common.settings import MIN_FREE_DISK_MB

    return Settings(env, env.get(MIN_FREE_DISK_MB) * 1024 * 1024)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from services.common.settings import S3_BUCKET_NAME

    env = settings.env
    checks = run_recorder_checks(env.file, env, settings.min_free_bytes)
    if env.get(S3_BUCKET_NAME):
        checks += run_bucket_checks(EnvReader(env.values, env.source), already=checks)
    text, code = summary(checks)
    print(text)
    return code


def summary(checks: Iterable[Check]) -> tuple[str, int]:
    checks = list(checks)
    fails = sum(c.level == "fail" for c in checks)
    warns = sum(c.level == "warn" for c in checks)
    text = "\n".join(c.line() for c in checks) + f"\n\n{fails} failed, {warns} warnings, {len(checks) - fails - warns} ok"
    return text, 1 if fails else 0


# ----- the bucket ---------------------------------------------------------------------------------
POLICY_HINT = "see `python -m services iam-policy`"


def _reason(exc: BaseException, what: str) -> str:
    from services.bucket.client import classify
    return str(classify(exc, what))


def _unreadable(name: str, failure: Failure, action: str) -> Check:
    """A read of a bucket setting that failed: warn, never fail (servers and policies may not allow it)."""
    if failure.unsupported:
        return Check("warn", name, f"cannot check: this server does not implement it ({failure.code})",
                     "check the setting in the storage provider's console")
    if failure.denied:
        return Check("warn", name, f"cannot check: no permission ({action})",
                     f"run doctor with admin credentials to see it; {action} is in the admin policy ({POLICY_HINT})")
    return Check("warn", name, f"cannot check: {failure.reason}", "")


def _reachable(client: Any, bucket: str, prefix: str, where: str) -> Check:
    from services.bucket.probe import Reach, reachability

    found = reachability(client, bucket, prefix)
    if found.reach is Reach.HEAD:
        return Check("ok", "bucket", f"s3://{bucket} at {where} is reachable")
    if found.reach is Reach.MISSING:
        return Check("fail", "bucket", f"s3://{bucket} does not exist at {where}",
                     "create the bucket, or fix S3_BUCKET_NAME / S3_ENDPOINT_URL / AWS_REGION")
    if found.reach is Reach.LISTING:
        return Check("ok", "bucket", f"s3://{bucket} at {where} is reachable (listing allowed under {prefix!r})")
    failure = found.failure
    hints = {"SignatureDoesNotMatch": "fix AWS_SECRET_ACCESS_KEY",
             "InvalidAccessKeyId": "fix AWS_ACCESS_KEY_ID (and the secret)",
             "NoSuchBucket": "create the bucket, or fix S3_BUCKET_NAME",
             "AccessDenied": f"the keys need s3:ListBucket on the bucket ({POLICY_HINT})",
             "PermanentRedirect": "set AWS_REGION to the bucket's region",
             "AuthorizationHeaderMalformed": "set AWS_REGION to the bucket's region"}
    hint = hints.get(failure.code, "check S3_ENDPOINT_URL, the network and the keys")
    reason = f"s3://{bucket}: cannot connect to {where}" if failure.no_connection else failure.reason
    return Check("fail", "bucket", reason, hint)


def _writable(client: Any, config: Any) -> Check:
    from services.bucket.probe import WriteStep, probe_folder, write_probe

    probe = write_probe(client, config.bucket, config.prefix, config.sse, config.sse_kms_key_id)
    where = f"s3://{config.bucket}/{probe.key}"
    if probe.failed_at is None:
        return Check("ok", "bucket write",
                     f"wrote, read back and deleted a probe under {probe_folder(config.prefix)}")
    if probe.failed_at is WriteStep.COMPARE:
        return Check("fail", "bucket write", f"the probe {where} read back different bytes", "check the S3 server")
    failure = probe.failure
    if probe.failed_at is WriteStep.WRITE:
        return Check("fail", "bucket write", failure.reason,
                     f"the uploader needs s3:PutObject on arn:aws:s3:::{config.bucket}/{config.prefix}* ({POLICY_HINT})")
    if probe.failed_at is WriteStep.READ_BACK:
        return Check("fail", "bucket write", failure.reason + f" (the probe stays at {where})",
                     f"the uploader needs s3:GetObject to verify uploads ({POLICY_HINT})")
    if failure.denied:
        return Check("ok", "bucket write", f"wrote and read back a probe; no delete permission, as the "
                                           f"least-privilege policy intends, or object lock keeps it (the probe stays at {where})")
    return Check("warn", "bucket write", f"wrote and read back a probe, but could not delete it "
                                         f"({failure.reason}); it stays at {where}",
                 "delete it by hand, or let the lifecycle expiry remove it")


def _encryption(client: Any, config: Any) -> Check:
    from services.bucket.probe import Answer, default_encryption

    name = "bucket encryption"
    per_upload = f"; uploads ask for {config.sse} themselves (S3_SSE)" if config.sse else ""
    found = default_encryption(client, config.bucket)
    if found.answer is Answer.NOT_SET:
        return Check("warn", name, f"no default encryption on s3://{config.bucket}{per_upload}",
                     f"aws s3api put-bucket-encryption --bucket {config.bucket} --server-side-encryption-configuration "
                     "'{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":{\"SSEAlgorithm\":\"AES256\"}}]}'"
                     + ("" if config.sse else ", or set S3_SSE=aes256"))
    if found.answer is Answer.FAILED:
        return _unreadable(name, found.failure, "s3:GetEncryptionConfiguration")
    if found.answer is Answer.NOT_REPORTED:
        return Check("warn", name, f"cannot check: the server does not report it{per_upload}",
                     "check the server's encryption settings")
    return Check("ok", name, f"default encryption {', '.join(found.algorithms)}")


def _public_access(client: Any, config: Any) -> Check:
    from services.bucket.probe import Answer, public_access_block

    name = "bucket public access"
    hint = (f"aws s3api put-public-access-block --bucket {config.bucket} --public-access-block-configuration "
            "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true")
    block = public_access_block(client, config.bucket)
    if block.answer is Answer.NOT_SET:
        return Check("warn", name, f"s3://{config.bucket} has no public access block "
                                   "(an account-wide block may still apply)", hint)
    if block.answer is Answer.FAILED:
        return _unreadable(name, block.failure, "s3:GetBucketPublicAccessBlock")
    if block.answer is Answer.NOT_REPORTED:
        return Check("warn", name, "cannot check: the server does not report it",
                     "make sure the bucket is not public in the server's settings")
    if block.off:
        return Check("warn", name, f"not all public access blocked: {', '.join(block.off)} off", hint)
    return Check("ok", name, "all public access blocked")


def _object_lock(client: Any, config: Any) -> Check:
    from services.bucket.probe import Answer, object_lock

    name = "bucket object lock"
    days = config.object_lock_days
    wanted = f"S3_OBJECT_LOCK_DAYS={days}"
    lock = object_lock(client, config.bucket)
    if lock.answer is Answer.FAILED:
        found = _unreadable(name, lock.failure, "s3:GetBucketObjectLockConfiguration")
        if days:
            return Check("warn", name, f"{found.detail}; {wanted} needs a bucket with object lock", found.hint)
        return found
    if lock.answer is Answer.NOT_REPORTED:
        if days:
            return Check("warn", name, f"cannot check: the server does not report object lock, and {wanted} "
                                       "needs it: uploads may be refused or kept without retention",
                         "use a server with object lock, or set S3_OBJECT_LOCK_DAYS=0")
        return Check("warn", name, "cannot check: the server does not report object lock", "")
    default = lock.default
    default_text = (f", bucket default {default.mode or '?'} {default.days or default.years}"
                    f" {'days' if default.days else 'years'}") if default else ""
    if lock.enabled:
        mine = (f"; every upload is retained {days} days ({config.object_lock_mode})" if days
                else "; S3_OBJECT_LOCK_DAYS=0, so uploads set no retention of their own")
        return Check("ok", name, f"enabled{default_text}{mine}")
    if days:
        return Check("warn", name, f"disabled on s3://{config.bucket}, but {wanted}: the setting cannot work "
                                   "(S3 refuses retention dates on such a bucket)",
                     "object lock can only be chosen when creating a bucket (or enabled with versioning via "
                     "put-object-lock-configuration); create one with --object-lock-enabled-for-bucket, "
                     "or set S3_OBJECT_LOCK_DAYS=0")
    return Check("ok", name, "disabled (S3_OBJECT_LOCK_DAYS=0)")


def run_bucket_checks(env: EnvReader, already: Iterable[Check] = (), client: Any = None) -> list[Check]:
    """Reachable, writable (probe), encryption, public access block and object lock of the bucket."""
    from services.uploader.config import read_uploader_config

    try:
        config = read_uploader_config(env)
    except ConfigError as exc:
        seen = {c.detail for c in already}
        return [Check("fail", "uploader configuration", str(issue), "edit the key in .env")
                for issue in exc.issues if str(issue) not in seen] or \
            [Check("fail", "uploader configuration", "invalid (see above)", "edit the keys in .env")]
    if client is None:
        from services.bucket.client import make_client
        try:
            client = make_client(config)
        except Exception as exc:  # noqa: BLE001 - e.g. a broken ~/.aws/config
            return [Check("fail", "bucket", _reason(exc, "creating the S3 client"), "check the AWS settings")]
    reachable = _reachable(client, config.bucket, config.prefix, config.safe_endpoint)
    if reachable.level == "fail":
        return [reachable]
    checks = [reachable]
    for check in (_writable, _encryption, _public_access, _object_lock):
        try:
            checks.append(check(client, config))
        except Exception as exc:  # noqa: BLE001 - a check that breaks is one line, not a traceback
            checks.append(Check("fail", "bucket", _reason(exc, check.__name__.strip("_")), ""))
    return checks
