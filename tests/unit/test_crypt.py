"""rclone crypt: keys and obscured passwords, the framing (sizes, round trips, failures), the reader."""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import zlib
from dataclasses import fields
from pathlib import Path

import pytest

from services.commands import decrypt as decrypt_cli
from services.common.digest import crc32_base64
from services.crypt.format import (
    BLOCK_DATA_SIZE,
    BLOCK_SIZE,
    HEADER_SIZE,
    MAGIC,
    _nonce_add,
    decrypt_bytes,
    decrypt_file,
    decrypt_stream,
    encrypt_bytes,
    encrypted_name,
    encrypted_size,
    plain_name,
    plain_size,
)
from services.common.config import EnvReader
from services.common.startup import load_config_or_exit
from services.crypt.config import read_encryption
from services.crypt.keys import (_OBSCURE_KEY, CryptError, content_fingerprint, derive_keys, password_from_setting,
                                 reveal)
from services.crypt.reader import EncryptingReader

KIB64 = BLOCK_DATA_SIZE
SIZES = [0, 1, 16, KIB64 - 1, KIB64, KIB64 + 1, 3 * KIB64, 5 * KIB64 + 12345]
# Produced with `rclone obscure 'pässwörd'` (rclone v1.75); a random IV each run, any reveals.
OBSCURED_VECTOR = ("yxmpqNVJwkRmfxsNUfTlgTtB3DOgLI8_MGw", "pässwörd")


@pytest.fixture(scope="module")
def keys():
    return derive_keys("correct horse", "battery staple")


@pytest.fixture(scope="module")
def other_keys():
    return derive_keys("wrong horse", "battery staple")


def test_key_derivation_matches_rclone_known_answers():
    # Data keys from rclone's backend/crypt/cipher_test.go TestKey.
    assert derive_keys("potato", "").data_key[:8] == bytes([0x74, 0x55, 0xC7, 0x1A, 0xB1, 0x7C, 0x86, 0x5B])
    assert derive_keys("potato", None).name_tweak[:4] == bytes([0xC1, 0x8D, 0x59, 0x32])
    assert derive_keys("potato", "sausage").data_key[:8] == bytes([0x8E, 0x9B, 0x6B, 0x99, 0xF8, 0x69, 0x04, 0x67])


def test_empty_password_refused():
    with pytest.raises(CryptError):
        derive_keys("", None)


def test_derived_keys_never_printed_by_what_holds_them(keys):
    """The password is dropped once scrypt has run; the keys live on in CryptKeys (printed
    with the uploader's settings) and in the reader, so neither may show them."""
    with EncryptingReader(io.BytesIO(b"x"), keys) as reader:
        shown = " ".join([repr(keys), str(keys), repr(reader), str(reader)])
    for secret in fields(keys):
        value = getattr(keys, secret.name)
        assert repr(value) not in shown and value.hex() not in shown, secret.name


@pytest.mark.parametrize("size", SIZES)
def test_sizes_and_round_trip(keys, size):
    data = os.urandom(size)
    encrypted = encrypt_bytes(data, keys)
    assert len(encrypted) == encrypted_size(size)
    assert plain_size(len(encrypted)) == size
    assert encrypted[:8] == MAGIC
    assert decrypt_bytes(encrypted, keys) == data


@pytest.mark.parametrize("size", SIZES)
def test_reader_yields_what_encrypt_bytes_does(keys, size):
    """Two ways to the same ciphertext: the whole buffer, and the upload body from a file or a pipe."""
    data, nonce = os.urandom(size), os.urandom(24)
    expected = encrypt_bytes(data, keys, nonce)
    for source in (io.BytesIO(data), _Stream(data)):
        with EncryptingReader(source, keys, nonce) as reader:
            assert reader.read() == expected


def test_size_formula_edges():
    assert encrypted_size(0) == HEADER_SIZE
    assert encrypted_size(1) == HEADER_SIZE + 17
    assert encrypted_size(KIB64) == HEADER_SIZE + BLOCK_SIZE
    assert encrypted_size(KIB64 + 1) == HEADER_SIZE + BLOCK_SIZE + 17
    for impossible in (-1, 0, 31, HEADER_SIZE + 1, HEADER_SIZE + 16, HEADER_SIZE + BLOCK_SIZE + 16):
        with pytest.raises(CryptError):
            plain_size(impossible)
    with pytest.raises(CryptError):
        encrypted_size(-1)


def test_nonce_increments_little_endian_with_carry():
    assert _nonce_add(bytes(24), 1) == b"\x01" + bytes(23)
    assert _nonce_add(b"\xff\xff" + bytes(22), 1) == b"\x00\x00\x01" + bytes(21)
    assert _nonce_add(b"\xff" * 24, 1) == bytes(24)


def test_blocks_use_consecutive_nonces(keys):
    from nacl.bindings import crypto_secretbox_open

    nonce = b"\xfe" + bytes(23)
    data = os.urandom(3 * KIB64)
    encrypted = encrypt_bytes(data, keys, nonce)
    third = encrypted[HEADER_SIZE + 2 * BLOCK_SIZE:]
    assert crypto_secretbox_open(third, b"\x00\x01" + bytes(22), keys.data_key) == data[2 * KIB64:]


def test_wrong_password_is_one_line_without_secrets(keys, other_keys):
    encrypted = encrypt_bytes(b"x" * 1000, keys)
    with pytest.raises(CryptError) as caught:
        decrypt_bytes(encrypted, other_keys)
    message = str(caught.value)
    assert "wrong password" in message and "\n" not in message
    assert "horse" not in message and "staple" not in message


def test_bad_magic_and_too_short(keys):
    encrypted = encrypt_bytes(b"hello", keys)
    with pytest.raises(CryptError, match="bad magic"):
        decrypt_bytes(b"NOTCLONE" + encrypted[8:], keys)
    with pytest.raises(CryptError, match="bad magic"):
        decrypt_stream(io.BytesIO(b"\x00\x00\x00\x18ftypisom" + bytes(100)), io.BytesIO(), keys)
    with pytest.raises(CryptError, match="too short"):
        decrypt_stream(io.BytesIO(encrypted[:20]), io.BytesIO(), keys)
    with pytest.raises(CryptError, match="too short"):
        decrypt_stream(io.BytesIO(b""), io.BytesIO(), keys)


def test_truncation_detected(keys):
    encrypted = encrypt_bytes(os.urandom(3 * KIB64 + 100), keys)
    cut_mid_block = encrypted[:HEADER_SIZE + BLOCK_SIZE + 1000]
    with pytest.raises(CryptError, match="truncated"):
        decrypt_stream(io.BytesIO(cut_mid_block), io.BytesIO(), keys)
    cut_in_tag = encrypted[:HEADER_SIZE + BLOCK_SIZE + 10]
    with pytest.raises(CryptError, match="truncated"):
        decrypt_stream(io.BytesIO(cut_in_tag), io.BytesIO(), keys)
    # A cut at a block boundary is only visible against the stored size.
    cut_at_boundary = encrypted[:HEADER_SIZE + 2 * BLOCK_SIZE]
    assert decrypt_stream(io.BytesIO(cut_at_boundary), io.BytesIO(), keys) == 2 * KIB64
    with pytest.raises(CryptError, match="truncated"):
        decrypt_stream(io.BytesIO(cut_at_boundary), io.BytesIO(), keys, expected_size=len(encrypted))


def test_damaged_block_detected(keys):
    encrypted = bytearray(encrypt_bytes(os.urandom(2 * KIB64), keys))
    encrypted[HEADER_SIZE + BLOCK_SIZE + 500] ^= 1
    with pytest.raises(CryptError, match="block 1"):
        decrypt_bytes(bytes(encrypted), keys)


def test_reader_streams_a_file_and_hashes_what_it_produced(tmp_path, keys):
    data = os.urandom(4 * KIB64 + 7)
    source = tmp_path / "seg.mp4"
    source.write_bytes(data)
    with EncryptingReader(source, keys) as reader:
        assert reader.seekable() and reader.size == encrypted_size(len(data))
        chunks = []
        while chunk := reader.read(10_000):          # odd sizes cross block boundaries
            chunks.append(chunk)
        ciphertext = b"".join(chunks)
        digest = reader.digest()
    assert len(ciphertext) == reader.size
    assert ciphertext[8:32] == reader.nonce
    assert digest.md5 == hashlib.md5(ciphertext).hexdigest()
    assert reader.crc32 == zlib.crc32(ciphertext)
    assert decrypt_bytes(ciphertext, keys) == data


def test_reader_seek_and_reread_like_boto3(tmp_path, keys):
    """s3transfer: tell, seek(0, 2), tell, seek back; botocore: read for a checksum, seek, read again."""
    data = os.urandom(3 * KIB64 + 5)
    source = tmp_path / "seg.mp4"
    source.write_bytes(data)
    reader = EncryptingReader(source, keys)
    start = reader.tell()
    assert reader.seek(0, 2) == encrypted_size(len(data)) and reader.tell() == reader.size
    reader.seek(start)
    first = reader.read()
    reader.seek(0)
    assert reader.read() == first
    reader.seek(HEADER_SIZE + BLOCK_SIZE + 3)
    assert reader.read(100) == first[HEADER_SIZE + BLOCK_SIZE + 3:HEADER_SIZE + BLOCK_SIZE + 103]
    assert reader.digest().md5 == hashlib.md5(first).hexdigest()   # counted once
    reader.close()


def test_reader_part_sized_reads_are_full(tmp_path, keys):
    data = os.urandom(5 * KIB64)
    source = tmp_path / "seg.mp4"
    source.write_bytes(data)
    part = 100_000
    with EncryptingReader(source, keys) as reader:
        parts = iter(lambda: reader.read(part), b"")
        sizes = [len(p) for p in parts]
    total = encrypted_size(len(data))
    assert sizes == [part] * (total // part) + [total % part]


def test_reader_keeps_the_crc32_of_each_part_for_s3s_composite_checksum(tmp_path, keys):
    source = tmp_path / "seg.mp4"
    source.write_bytes(os.urandom(5 * KIB64 + 123))
    part = 100_000
    with EncryptingReader(source, keys, part_size=part) as reader:
        sent = b"".join(iter(lambda: reader.read(7_777), b""))   # reads that straddle part ends
        digest = reader.digest()
    parts = [sent[i:i + part] for i in range(0, len(sent), part)]
    joined = b"".join(zlib.crc32(p).to_bytes(4, "big") for p in parts)
    assert digest.composite_crc32 == f"{crc32_base64(zlib.crc32(joined))}-{len(parts)}"
    assert len(parts) == 4 and digest.crc32 == ""          # several parts: only the composite
    with EncryptingReader(io.BytesIO(b"short"), keys, part_size=part) as reader:
        one_part = reader.read()
        digest = reader.digest()
    assert digest.crc32 == crc32_base64(zlib.crc32(one_part)) and digest.composite_crc32.endswith("-1")


class _Stream(io.RawIOBase):
    """A non-seekable source with short reads, like a pipe or a socket."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(min(len(buffer), 5000))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def test_reader_over_a_stream_is_not_seekable(keys):
    data = os.urandom(2 * KIB64 + 3)
    reader = EncryptingReader(_Stream(data), keys)
    assert not reader.seekable() and reader.size is None
    with pytest.raises(io.UnsupportedOperation):
        reader.seek(0, 2)
    ciphertext = reader.read(KIB64) + reader.read()
    assert reader.complete and reader.digest().size == len(ciphertext) == encrypted_size(len(data))
    assert decrypt_bytes(ciphertext, keys) == data
    empty = EncryptingReader(_Stream(b""), keys)
    assert empty.read() == MAGIC + empty.nonce and empty.complete


def test_reader_with_fixed_nonce_is_deterministic(keys):
    nonce = bytes(range(24))
    assert encrypt_bytes(b"abc" * 50_000, keys, nonce) == encrypt_bytes(b"abc" * 50_000, keys, nonce)
    assert encrypt_bytes(b"abc", keys) != encrypt_bytes(b"abc", keys)
    with pytest.raises(CryptError):
        EncryptingReader(io.BytesIO(b""), keys, b"short")
    with pytest.raises(CryptError):
        encrypt_bytes(b"", keys, b"short")


def test_source_shrinking_during_encryption_is_an_error(tmp_path, keys):
    source = tmp_path / "seg.mp4"
    source.write_bytes(os.urandom(3 * KIB64))
    with EncryptingReader(source, keys) as reader:
        reader.read(1000)
        with open(source, "r+b") as handle:
            handle.truncate(KIB64)
        with pytest.raises(CryptError, match="shorter"):
            reader.read()


def test_names():
    assert encrypted_name("camera_1_2026-01-24_14-30-00.mp4") == "camera_1_2026-01-24_14-30-00.mp4.bin"
    assert plain_name("a.mp4.bin") == "a.mp4"
    for bad in ("a.mp4", ".bin"):
        with pytest.raises(CryptError):
            plain_name(bad)


def test_reveal_known_vector_and_settings():
    obscured, plain = OBSCURED_VECTOR
    assert reveal(obscured) == plain
    assert password_from_setting("obscured:" + obscured) == plain
    assert password_from_setting(obscured) == obscured          # no prefix: plain text
    for bad in ("not base64!", "abc", "a+b/"):
        with pytest.raises(CryptError) as caught:
            reveal(bad)
        assert "\n" not in str(caught.value)


def test_reveal_matches_the_real_rclone_obscure():
    import subprocess

    from tests.support.s3_server import rclone_binary

    try:
        binary = rclone_binary()
    except RuntimeError:
        pytest.skip("rclone not installed")
    obscured = subprocess.run([binary, "obscure", "s3cr3t with spaces"], capture_output=True,
                              text=True, check=True, timeout=20).stdout.strip()
    assert reveal(obscured) == "s3cr3t with spaces"


def test_content_fingerprint_is_keyed(keys, other_keys):
    plain = hashlib.sha256(b"video").hexdigest()
    assert content_fingerprint(keys, plain) == content_fingerprint(keys, plain.upper())
    assert content_fingerprint(keys, plain) != content_fingerprint(other_keys, plain)
    assert content_fingerprint(keys, plain) != content_fingerprint(keys, hashlib.sha256(b"video!").hexdigest())
    assert plain[:16] not in content_fingerprint(keys, plain)


def test_decrypt_file_leaves_nothing_on_failure(tmp_path, keys, other_keys):
    source = tmp_path / "seg.mp4.bin"
    data = os.urandom(KIB64 + 10)
    source.write_bytes(encrypt_bytes(data, keys))
    target = tmp_path / "out.mp4"
    with pytest.raises(CryptError):
        decrypt_file(source, target, other_keys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.mp4.bin"]
    assert decrypt_file(source, target, keys) == len(data)
    assert target.read_bytes() == data
    with pytest.raises(FileExistsError):
        decrypt_file(source, target, keys)


def _args(source: Path | str, output: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    decrypt_cli.add_arguments(parser)
    return parser.parse_args([str(source), "-o", str(output)])


def test_decrypt_cli_local(tmp_path, keys, other_keys, capsys):
    data = os.urandom(3 * KIB64)
    source = tmp_path / "camera_1_2026-01-24_14-30-00.mp4.bin"
    source.write_bytes(encrypt_bytes(data, keys))
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    assert decrypt_cli.decrypt(_args(source, out_dir), other_keys, None) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wrong password" in err and "Traceback" not in err
    assert list(out_dir.iterdir()) == []

    assert decrypt_cli.decrypt(_args(source, out_dir), keys, None) == 0
    assert (out_dir / "camera_1_2026-01-24_14-30-00.mp4").read_bytes() == data
    assert decrypt_cli.decrypt(_args(source, out_dir), keys, None) == 1      # never overwrites
    assert "not overwritten" in capsys.readouterr().err

    assert decrypt_cli.decrypt(_args(tmp_path / "missing.bin", tmp_path / "x.mp4"), keys, None) == 1
    assert decrypt_cli.decrypt(_args("s3://bucket/key.bin", tmp_path / "x.mp4"), keys, None) == 78
    assert decrypt_cli.decrypt(_args(source, tmp_path / "x.mp4"), None, None) == 78
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("value, problem", [("  pass phrase ", "has spaces at its start or end"),
                                            ("pass phrase\t", "has spaces at its start or end"),
                                            ("   ", "is only spaces")])
def test_spaces_around_the_password_are_refused_with_exit_78(tmp_path, capsys, value, problem):
    """Neither stripped (earlier versions) nor kept (rclone): the operator chooses, nothing is
    encrypted meanwhile with a key the other side would not derive."""
    env_file = tmp_path / "crypt.env"
    env_file.write_text(f'ENCRYPTION_PASSWORD="{value}"\n')

    def read(env: EnvReader):
        keys = read_encryption(env)
        env.check()
        return keys

    with pytest.raises(SystemExit) as info:
        load_config_or_exit(str(env_file), read)
    err = capsys.readouterr().err
    assert info.value.code == 78 and f"ENCRYPTION_PASSWORD: {problem}" in err
    assert "pass phrase" not in err


def obscure(plain: str) -> str:
    """`rclone obscure`, the inverse of keys.reveal (AES-CTR under rclone's fixed key)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    iv = bytes(range(16))
    encryptor = Cipher(algorithms.AES(_OBSCURE_KEY), modes.CTR(iv)).encryptor()
    sealed = iv + encryptor.update(plain.encode()) + encryptor.finalize()
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def test_a_password_with_inner_spaces_or_obscured_spaces_is_used_as_is():
    assert read_encryption(EnvReader({"ENCRYPTION_PASSWORD": "pass phrase"})) == derive_keys("pass phrase", None)
    obscured = "obscured:" + obscure("  spaced  ")
    env = EnvReader({"ENCRYPTION_PASSWORD": obscured})
    assert read_encryption(env) == derive_keys("  spaced  ", None) and env.issues == []
    salt = EnvReader({"ENCRYPTION_PASSWORD": "pw", "ENCRYPTION_SALT": " salt"})
    assert read_encryption(salt) is None and [i.key for i in salt.issues] == ["ENCRYPTION_SALT"]
