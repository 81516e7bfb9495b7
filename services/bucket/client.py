"""The edge to S3: client set-up, error classification, and the few calls it makes.

Errors are sorted into two kinds because they need opposite handling: transient ones
(network, 5xx, throttling) are retried per file with backoff; configuration ones (bucket
missing, access denied, bad keys) stop all uploads until the next probe and are logged once
per interval. Messages are redacted here so no caller can leak a key.
"""
from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError
from botocore.exceptions import SSLError as BotocoreSSLError

from services.common.redact import redact

# Threads each managed transfer uses for the parts of one file.
PART_THREADS = 4
CONFIG_ERROR_CODES = {
    "NoSuchBucket": "bucket does not exist",
    "AccessDenied": "access denied",
    "AllAccessDisabled": "access to the bucket is disabled",
    "InvalidAccessKeyId": "access key id is not known to the server",
    "SignatureDoesNotMatch": "secret access key is wrong",
    "InvalidBucketName": "invalid bucket name",
    "AuthorizationHeaderMalformed": "wrong AWS_REGION for this bucket",
    "PermanentRedirect": "bucket is in another region (check AWS_REGION / S3_ENDPOINT_URL)",
    "InvalidToken": "session token is invalid",
    "ExpiredToken": "session token has expired",
    "AccountProblem": "account problem",
    "KMS.NotFoundException": "KMS key not found",
    "KMS.DisabledException": "KMS key is disabled",
    "InvalidStorageClass": "S3_STORAGE_CLASS is not supported by this server",
    "InvalidEncryptionAlgorithmError": "S3_SSE is not supported by this server",
    "403": "access denied (HTTP 403: check the keys, and that the policy allows s3:ListBucket, s3:GetObject and s3:PutObject)",
}
# The server's TLS certificate is not signed by a CA we trust: the same for every request.
UNTRUSTED_CERTIFICATE = "UntrustedCertificate"
_CODE_IN_TEXT = re.compile(r"An error occurred \((?P<code>[^)]+)\)")
# What servers answer for a key that holds no object.
NO_SUCH_KEY_CODES = ("404", "NoSuchKey", "NotFound")


class ClientSettings(Protocol):
    """What the client set-up reads of the uploader's settings (the bucket wing imports no wing)."""

    bucket: str
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None
    endpoint_url: str | None
    ca_bundle: str | None        # PEM file of the CAs to trust (S3_CA_BUNDLE); None: botocore's own
    checksum: str
    concurrency: int
    multipart_threshold: int
    part_size: int


class ProblemKind(str, Enum):
    CONFIG = "config"          # the same for every request until someone fixes it
    TRANSIENT = "transient"    # worth retrying


@dataclass
class S3Problem(Exception):
    """A failed S3 call, already classified and with a one-line, redacted message."""

    kind: ProblemKind
    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def error_code(exc: BaseException) -> str | None:
    """The server's error code (or HTTP status) in `exc` or its causes; None when there is none."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if untrusted_certificate(exc) is not None:
            return UNTRUSTED_CERTIFICATE
        if isinstance(exc, ClientError):
            return str(exc.response.get("Error", {}).get("Code") or
                       exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        match = _CODE_IN_TEXT.search(str(exc))
        if match:
            return match["code"]
        exc = exc.__cause__ or exc.__context__
    return None


def untrusted_certificate(exc: BaseException) -> str | None:
    """Why the server's certificate was refused (e.g. "self-signed certificate"), None if it was not."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or "certificate verify failed"
    if isinstance(exc, BotocoreSSLError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
        found = re.search(r"certificate verify failed: ([^(]+)", str(exc))
        return found[1].strip() if found else "certificate verify failed"
    return None


def classify(exc: BaseException, what: str) -> S3Problem:
    """Turn any exception from boto3 into an S3Problem; `what` says which call failed."""
    if isinstance(exc, S3Problem):
        return exc
    if error_code(exc) == UNTRUSTED_CERTIFICATE:
        # Retrying cannot help: only trusting the server's CA (or fixing the host name) can.
        reason = next(filter(None, map(untrusted_certificate, _chain(exc))), "certificate verify failed")
        return S3Problem(ProblemKind.CONFIG, UNTRUSTED_CERTIFICATE,
                         f"{what}: the server's TLS certificate is not trusted ({reason}): set S3_CA_BUNDLE to "
                         "the PEM file of the CA that signed it, or check the host name in S3_ENDPOINT_URL")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return S3Problem(ProblemKind.CONFIG, "NoCredentials", f"{what}: no AWS credentials found "
                         "(set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or configure an instance role)")
    code = error_code(exc)
    if code in CONFIG_ERROR_CODES:
        return S3Problem(ProblemKind.CONFIG, code, f"{what}: {code}: {CONFIG_ERROR_CODES[code]}")
    detail = redact(str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
    if len(detail) > 300:
        detail = detail[:300] + "..."
    return S3Problem(ProblemKind.TRANSIENT, code or exc.__class__.__name__, f"{what}: {detail}")


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and its causes, outermost first."""
    found: list[BaseException] = []
    while exc is not None and all(exc is not seen for seen in found):
        found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


def new_session(config: ClientSettings) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        aws_session_token=config.session_token,
        region_name=config.region,
    )


def make_client(config: ClientSettings, streaming_puts: bool = False,
                session: boto3.session.Session | None = None, checksum: str | None = None) -> Any:
    """A client whose connection pool fits every part thread of every parallel upload.

    `streaming_puts`: a client for `ObjectStore.put_stream`, whose request body must be read
    once only: the payload is never hashed for the signature, and over plain HTTP (where
    botocore cannot send a checksum as a trailer) no checksum header is computed either; the
    upload is then checked afterwards, against the MD5 of what was sent.
    `session`: shared by clients made together (a new one loads botocore's models, ~0.2 s).
    `checksum` overrides `config.checksum` (a server found to reject checksums at start).
    TLS certificates are always verified: against `config.ca_bundle` when set (read from `.env`,
    which never reaches botocore's own AWS_CA_BUNDLE), else botocore's CAs.
    """
    checksum = checksum or config.checksum
    options: dict[str, Any] = {
        "max_pool_connections": config.concurrency * (PART_THREADS + 1) + 2,
        "connect_timeout": 10,
        "read_timeout": 60,
        # Our own backoff handles longer outages; botocore only smooths over blips.
        "retries": {"mode": "standard", "max_attempts": 3},
    }
    s3_options: dict[str, Any] = {}
    if config.endpoint_url:
        s3_options["addressing_style"] = "path"
    if checksum == "crc32" or streaming_puts:
        # Every upload request carries a CRC32 of its body that the server checks. Over plain
        # HTTP botocore would also SHA-256 the whole body for the signature, one more pass over
        # every byte (over HTTPS it never does); rclone does not either (UNSIGNED-PAYLOAD with
        # Content-MD5). Plain HTTP protects nothing from someone on the path anyway. A streaming
        # PUT's body is read once (a second read would encrypt it again): no payload hash either.
        s3_options["payload_signing_enabled"] = False
    if s3_options:
        options["s3"] = s3_options
    if checksum == "off":
        # boto3 >= 1.36 adds CRC32 trailers by default; some S3-compatible servers reject them.
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    session = session or new_session(config)
    verify = config.ca_bundle or None
    client = session.client("s3", endpoint_url=config.endpoint_url, config=Config(**options), verify=verify)
    if streaming_puts and not is_https(client) and checksum != "off":
        # Over plain HTTP botocore would put the checksum in a header, computed in a read of its
        # own. Decided on the endpoint botocore chose (it may come from AWS_ENDPOINT_URL too).
        options["request_checksum_calculation"] = "when_required"
        client = session.client("s3", endpoint_url=config.endpoint_url, config=Config(**options), verify=verify)
    return client


def is_https(client: Any) -> bool:
    return urlsplit(client.meta.endpoint_url).scheme.lower() == "https"


def transfer_config(config: ClientSettings) -> TransferConfig:
    return TransferConfig(multipart_threshold=config.multipart_threshold,
                          multipart_chunksize=config.part_size,
                          max_concurrency=PART_THREADS, use_threads=True)
