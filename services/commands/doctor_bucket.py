"""`doctor`'s bucket checks: reachable, writable, encryption default, public access, object lock,
and the store's abilities as the uploader probes them at start (conditional writes, CRC32, SSE).

The bucket wing answers with typed results (`bucket.probe`); here they become check lines
with a fix. Imported only when the bucket is configured: it loads boto3.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from services.commands.checks import Check
from services.common.config import ConfigError, EnvReader

if TYPE_CHECKING:
    from services.bucket.probe import Failure

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
    from services.bucket.client import UNTRUSTED_CERTIFICATE

    hints = {UNTRUSTED_CERTIFICATE: "set S3_CA_BUNDLE=/path/to/ca.pem in .env: the PEM file of the CA that signed "
                                    "the server's certificate (certificates are never left unchecked)",
             "SignatureDoesNotMatch": "fix AWS_SECRET_ACCESS_KEY",
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


def _abilities(client: Any, config: Any) -> tuple[Check, Any]:
    """The uploader's own start-up probe (`probe_abilities`), what it will do about each answer,
    and the client the other checks use: one that sends no checksums where the store rejects them."""
    from services.bucket.client import transfer_config
    from services.bucket.store import ObjectStore
    from services.uploader.preparation import probe_abilities

    store = ObjectStore(client, config.bucket, transfer_config(config), settings=config)
    try:
        found = probe_abilities(store, config)
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        return Check("fail", "bucket abilities", _reason(exc, "probing the store"), ""), store.client
    return _abilities_check(found, config), store.client


def _abilities_check(found: Any, config: Any) -> Check:
    from services.bucket.abilities import Support
    from services.uploader.preparation import refusal

    name = "bucket abilities"
    problem = refusal(found, config)
    if problem is not None:
        return Check("fail", name, f"{problem.message}; the uploader refuses to upload", "edit the key in .env")
    if found.crc32 is Support.REJECTED:
        return Check("warn", name, f"{found.summary()}: the store rejects CRC32 checksums ({found.crc32_answer}); "
                                   "the uploader sends none and checks uploads by MD5 ETag or size",
                     "set S3_CHECKSUM=off to say so (and skip the probe at each start)")
    if found.sse is Support.ACCEPTED:
        return Check("warn", name, f"{found.summary()}: S3_SSE={config.sse} is taken but not confirmed",
                     "check the store's encryption at rest, or client-side ENCRYPTION_PASSWORD")
    return Check("ok", name, found.summary())


def run_bucket_checks(env: EnvReader, already: Iterable[Check] = (), client: Any = None) -> list[Check]:
    """Reachable, writable (probe), encryption, public access block, object lock and abilities."""
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
    abilities, client = _abilities(client, config)   # first: the other checks' writes need its client
    for check in (_writable, _encryption, _public_access, _object_lock):
        try:
            checks.append(check(client, config))
        except Exception as exc:  # noqa: BLE001 - a check that breaks is one line, not a traceback
            checks.append(Check("fail", "bucket", _reason(exc, check.__name__.strip("_")), ""))
    return checks + [abilities]
