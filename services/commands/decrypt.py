"""`decrypt`: turn an rclone-crypt object (s3://bucket/key) or a downloaded `.bin` file into the MP4.

Streams one 64 KiB block at a time (the S3 body is never held in memory) into a hidden
temporary file next to the output, which is linked into place only after the last block
authenticated: a wrong password or a damaged/truncated file leaves no output behind.
An existing output file is never replaced.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.config import EX_CONFIG, EnvReader
from services.common.redact import redact
from services.common.settings import S3_BUCKET_NAME
from services.crypt.config import read_encryption
from services.crypt.format import SUFFIX, decrypt_stream, plain_name, write_atomically
from services.crypt.keys import CryptError, CryptKeys
from services.uploader.config import UploaderConfig, read_uploader_config

NAME = "decrypt"
HELP = "turn an encrypted object (s3://BUCKET/KEY) or .bin file back into the MP4"
EXIT_CODES = {0: "the MP4 was written", 1: "wrong password, damaged or missing source, or the output exists",
              78: "no password, or no bucket settings for an s3:// source"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments decrypt() expects (the caller adds --env-file)."""
    parser.add_argument("source", metavar="SOURCE",
                        help="a local encrypted file (…mp4.bin) or s3://BUCKET/KEY (the .bin is added if missing)")
    parser.add_argument("-o", "--output", metavar="PATH", required=True,
                        help="the MP4 to write (never overwritten); a folder means the name without .bin inside it")


def parse_s3_url(text: str) -> tuple[str, str] | None:
    """s3://bucket/key -> (bucket, key); None for anything that is not an S3 URL."""
    if not text.startswith("s3://"):
        return None
    bucket, _, key = text[5:].partition("/")
    if not bucket or not key:
        raise CryptError(f"not an S3 URL like s3://BUCKET/KEY: {text}")
    return bucket, key


def output_path(output: str, source_name: str) -> Path:
    """-o as given, or for a folder the source name without its .bin suffix inside it."""
    path = Path(output)
    if path.is_dir():
        name = source_name[:-len(SUFFIX)] if source_name.endswith(SUFFIX) and source_name != SUFFIX else source_name
        return path / name
    return path


def _fail(message: str, code: int = 1) -> int:
    print(f"decrypt: {redact(message)}", file=sys.stderr)
    return code


@dataclass(frozen=True)
class Settings:
    """The keys; the bucket settings too when S3_BUCKET_NAME is set (for s3:// sources)."""
    keys: CryptKeys | None
    uploader: UploaderConfig | None


def read_settings(env: EnvReader) -> Settings:
    keys = read_encryption(env)
    uploader = read_uploader_config(env) if env.get(S3_BUCKET_NAME) else None
    env.check()
    return Settings(keys, uploader)


def run(args: argparse.Namespace, settings: Settings) -> int:
    client = None
    if settings.uploader is not None and args.source.startswith("s3://"):
        from services.bucket.client import make_client  # loads boto3: only for S3 sources

        client = make_client(settings.uploader)
    return decrypt(args, settings.keys, client)


def decrypt(args: argparse.Namespace, keys: CryptKeys | None, client: Any | None) -> int:
    """0 when the MP4 was written, 1 on any problem (one line on stderr), 78 without a password."""
    if keys is None:
        return _fail("no encryption password configured (set ENCRYPTION_PASSWORD)", EX_CONFIG)
    try:
        location = parse_s3_url(args.source)
        if location is None:
            return _decrypt_local(Path(args.source), args.output, keys)
        if client is None:
            return _fail("reading from S3 needs the bucket settings (S3_BUCKET_NAME, credentials)", EX_CONFIG)
        return _decrypt_object(client, *location, args.output, keys)
    except CryptError as exc:
        return _fail(f"{args.source}: {exc}")
    except FileExistsError as exc:
        return _fail(f"{exc}; not overwritten")
    except FileNotFoundError as exc:
        return _fail(str(exc) if str(exc).startswith("s3://") else f"{exc.filename or args.source}: no such file")
    except OSError as exc:
        if not type(exc).__module__.startswith(("botocore", "urllib3")):   # theirs (TLS, connection) are OSErrors too
            return _fail(f"{exc.filename or args.source}: {exc.strerror or exc.__class__.__name__}")
        return _fail_s3(exc, args.source)
    except Exception as exc:  # boto3/botocore errors: classified, one line
        return _fail_s3(exc, args.source)


def _fail_s3(exc: BaseException, source: str) -> int:
    from services.bucket.client import classify

    return _fail(str(classify(exc, f"reading {source}")))


def _decrypt_local(source: Path, output: str, keys: CryptKeys) -> int:
    if not source.is_file():
        raise FileNotFoundError(2, "no such file", str(source))
    target = output_path(output, source.name)
    size = source.stat().st_size
    with open(source, "rb") as src:
        written = write_atomically(target, lambda dst: decrypt_stream(src, dst, keys, expected_size=size))
    print(f"decrypt: wrote {target} ({written} bytes)")
    return 0


def _decrypt_object(client: Any, bucket: str, key: str, output: str, keys: CryptKeys) -> int:
    from services.bucket.objects import open_first  # loads boto3: only for S3 sources

    # The key as given, else with the ".bin" rclone appends.
    found = open_first(client, bucket, [key] if key.endswith(SUFFIX) else [key, key + SUFFIX])
    target = output_path(output, found.key.rsplit("/", 1)[-1])
    if not found.key.endswith(SUFFIX):
        plain_name(found.key)   # raises: rclone would not show this object through a crypt remote
    try:
        written = write_atomically(target, lambda dst: decrypt_stream(found.body, dst, keys, expected_size=found.size))
    finally:
        found.body.close()
    print(f"decrypt: wrote {target} ({written} bytes) from s3://{bucket}/{found.key}")
    return 0
