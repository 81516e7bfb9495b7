"""Interop with the real rclone binary, both directions, no network (local folder and local S3).

rclone reads crypt remotes from RCLONE_CONFIG_<NAME>_* environment variables; `--config
/dev/null` keeps any user config out. Passwords in those variables must be obscured.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from services.bucket.store import ObjectStore
from services.commands import decrypt as decrypt_cli
from services.crypt.format import decrypt_file, encrypted_name, encrypted_size
from services.crypt.keys import derive_keys, password_from_setting
from services.crypt.reader import EncryptingReader
from tests.support.s3_server import S3Server, rclone_binary

KIB64 = 64 * 1024
SIZES = {"empty.mp4": 0, "one-block.mp4": KIB64, "multi.mp4": 5 * 1024 * 1024 + 123}
# (password, salt or None): rclone's default salt and a password2.
SECRETS = [("correct horse battery", None), ("pässwörd with spaces", "my salt / password2")]


def rclone(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([rclone_binary(), "--config", "/dev/null", *args], env={**os.environ, **env},
                          capture_output=True, timeout=timeout)


def obscure(value: str) -> str:
    return subprocess.run([rclone_binary(), "obscure", value], capture_output=True, text=True,
                          check=True, timeout=20).stdout.strip()


def crypt_env(name: str, remote: str, password: str, salt: str | None) -> dict[str, str]:
    prefix = f"RCLONE_CONFIG_{name.upper()}_"
    env = {prefix + "TYPE": "crypt", prefix + "REMOTE": remote, prefix + "PASSWORD": obscure(password),
           prefix + "FILENAME_ENCRYPTION": "off", prefix + "DIRECTORY_NAME_ENCRYPTION": "false"}
    if salt:
        env[prefix + "PASSWORD2"] = obscure(salt)
    return env


def settings_to_keys(password: str, salt: str | None, form: str):
    """Keys as the uploader would get them from .env in the plain or the obscured form."""
    if form == "obscured":
        password_setting = "obscured:" + obscure(password)
        salt_setting = "obscured:" + obscure(salt) if salt else None
    else:
        password_setting, salt_setting = password, salt
    return derive_keys(password_from_setting(password_setting),
                       password_from_setting(salt_setting) if salt_setting else None)


@pytest.fixture(scope="module")
def plain_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("plain")
    files = {}
    for name, size in SIZES.items():
        files[name] = folder / name
        files[name].write_bytes(os.urandom(size))
    return files


@pytest.mark.parametrize("form", ["plain", "obscured"])
@pytest.mark.parametrize("password,salt", SECRETS)
def test_rclone_cat_reads_what_we_encrypt(tmp_path, plain_files, password, salt, form):
    keys = settings_to_keys(password, salt, form)
    store = tmp_path / "store"
    store.mkdir()
    for name, path in plain_files.items():
        with EncryptingReader(path, keys) as reader, open(store / encrypted_name(name), "wb") as out:
            while chunk := reader.read(1024 * 1024):
                out.write(chunk)
        assert (store / encrypted_name(name)).stat().st_size == encrypted_size(path.stat().st_size)
    env = crypt_env("ours", str(store), password, salt)
    listing = rclone("lsf", "ours:", env=env)
    assert sorted(listing.stdout.decode().split()) == sorted(plain_files), listing.stderr
    for name, path in plain_files.items():
        result = rclone("cat", f"ours:{name}", env=env)
        assert result.returncode == 0, result.stderr.decode()[-500:]
        assert hashlib.md5(result.stdout).hexdigest() == hashlib.md5(path.read_bytes()).hexdigest(), name


@pytest.mark.parametrize("password,salt", SECRETS)
def test_we_decrypt_what_rclone_encrypts(tmp_path, plain_files, password, salt):
    store = tmp_path / "store"
    store.mkdir()
    env = crypt_env("theirs", str(store), password, salt)
    result = rclone("copy", str(next(iter(plain_files.values())).parent), "theirs:", env=env)
    assert result.returncode == 0, result.stderr.decode()[-500:]
    keys = settings_to_keys(password, salt, "plain")
    for name, path in plain_files.items():
        target = tmp_path / name
        decrypt_file(store / encrypted_name(name), target, keys)
        assert target.read_bytes() == path.read_bytes(), name
    wrong = derive_keys(password + "x", salt)
    args = argparse.Namespace(source=str(store / encrypted_name("multi.mp4")), output=str(tmp_path / "bad.mp4"))
    assert decrypt_cli.decrypt(args, wrong, None) == 1
    assert not (tmp_path / "bad.mp4").exists()


def test_through_a_local_s3_server(tmp_path, plain_files):
    """Upload as the uploader does (multipart) → rclone cat over crypt-over-s3; rclone copy → `decrypt` from s3://."""
    from boto3.s3.transfer import TransferConfig

    password, salt = SECRETS[1]
    keys = derive_keys(password, salt)
    with S3Server(tmp_path / "s3", kind="rclone") as server:
        server.create_bucket("footage")
        client = server.client()
        # The uploader's own streaming path (read once, parts buffered in memory).
        store = ObjectStore(client, "footage", TransferConfig(multipart_threshold=5 * 1024 * 1024,
                                                              multipart_chunksize=5 * 1024 * 1024, max_concurrency=4))
        prefix = "site-a/2026/01/24/camera_1/"
        for name, path in plain_files.items():
            with EncryptingReader(path, keys) as reader:
                store.upload_stream(reader, prefix + encrypted_name(name), {"ContentType": "application/octet-stream"})
                digest = reader.digest()
            head = client.head_object(Bucket="footage", Key=prefix + encrypted_name(name))
            assert head["ContentLength"] == encrypted_size(path.stat().st_size) == digest.size
            etag = head["ETag"].strip('"')
            if "-" not in etag:
                assert etag == digest.md5      # the checksum covers the bytes actually sent

        env = {"RCLONE_CONFIG_S3X_TYPE": "s3", "RCLONE_CONFIG_S3X_PROVIDER": "Other",
               "RCLONE_CONFIG_S3X_ENDPOINT": server.endpoint,
               "RCLONE_CONFIG_S3X_ACCESS_KEY_ID": server.access_key,
               "RCLONE_CONFIG_S3X_SECRET_ACCESS_KEY": server.secret_key,
               **crypt_env("cam", "s3x:footage/site-a", password, salt)}
        for name, path in plain_files.items():
            result = rclone("cat", f"cam:2026/01/24/camera_1/{name}", env=env)
            assert result.returncode == 0, result.stderr.decode()[-500:]
            assert result.stdout == path.read_bytes(), name

        result = rclone("copyto", str(plain_files["multi.mp4"]), "cam:2026/01/25/camera_1/from-rclone.mp4", env=env)
        assert result.returncode == 0, result.stderr.decode()[-500:]
        out = tmp_path / "out.mp4"
        args = argparse.Namespace(source="s3://footage/site-a/2026/01/25/camera_1/from-rclone.mp4", output=str(out))
        assert decrypt_cli.decrypt(args, keys, client) == 0          # ".bin" found on its own
        assert out.read_bytes() == plain_files["multi.mp4"].read_bytes()
        bad = tmp_path / "bad.mp4"
        args = argparse.Namespace(source="s3://footage/site-a/2026/01/25/camera_1/from-rclone.mp4.bin",
                                  output=str(bad))
        assert decrypt_cli.decrypt(args, derive_keys("nope", salt), client) == 1
        assert not bad.exists() and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
        args = argparse.Namespace(source="s3://footage/site-a/missing.mp4", output=str(bad))
        assert decrypt_cli.decrypt(args, keys, client) == 1
