import hashlib
import zlib

from services.bucket.metadata import CRC32 as CRC_METADATA
from services.bucket.verify import RemoteObject, remote_from_head, verify
from services.common.digest import LocalDigest, crc32_base64, digest_bytes, digest_file

DATA = b"segment bytes " * 1000
LOCAL = digest_bytes(DATA)


def test_crc32_encoding_matches_s3():
    # S3's ChecksumCRC32 of "hello world" is DUoRhQ==
    assert crc32_base64(zlib.crc32(b"hello world")) == "DUoRhQ=="


def test_digest_file_equals_digest_bytes(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(DATA * 200)  # several read chunks
    assert digest_file(path) == digest_bytes(DATA * 200)


def test_digest_for_encryption_is_sha256_of_the_plaintext(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(DATA * 200)
    digest = digest_file(path, for_encryption=True)
    assert digest.size == len(DATA) * 200 and not digest.md5 and not digest.crc32
    assert digest.sha256 == hashlib.sha256(DATA * 200).hexdigest()
    assert digest.short_hash == digest.sha256[:12]


def test_size_mismatch_always_fails():
    result = verify(LOCAL, RemoteObject(size=LOCAL.size - 1, crc32=LOCAL.crc32))
    assert not result.ok and result.method == "size"


def test_crc32_preferred_when_server_returns_it():
    assert verify(LOCAL, RemoteObject(LOCAL.size, etag=LOCAL.md5, crc32=LOCAL.crc32)).method == "crc32"
    bad = verify(LOCAL, RemoteObject(LOCAL.size, etag=LOCAL.md5, crc32="AAAAAA=="))
    assert not bad.ok and bad.method == "crc32"


def test_composite_crc32_of_a_multipart_upload_compared_part_by_part():
    local = LocalDigest(LOCAL.size, LOCAL.crc32, LOCAL.md5, composite_crc32="qjyblw==-3")
    aws = remote_from_head({"ContentLength": LOCAL.size, "ETag": '"abc-3"', "ChecksumCRC32": "qjyblw==-3",
                            "ChecksumType": "COMPOSITE"})
    moto = remote_from_head({"ContentLength": LOCAL.size, "ETag": '"abc-3"', "ChecksumCRC32": "qjyblw=="})
    for remote in (aws, moto):
        assert remote.crc32 is None and verify(local, remote).method == "composite-crc32"
        assert verify(local, remote).ok
    other_parts = remote_from_head({"ContentLength": LOCAL.size, "ETag": '"abc-4"', "ChecksumCRC32": "qjyblw=="})
    assert not verify(local, other_parts).ok
    assert not verify(LocalDigest(LOCAL.size, composite_crc32="AAAAAA==-3"), aws).ok
    # No part count anywhere: not comparable, so not a failure that would never clear.
    odd = remote_from_head({"ContentLength": LOCAL.size, "ETag": '"abc"', "ChecksumCRC32": "qjyblw==",
                            "ChecksumType": "COMPOSITE"})
    assert verify(local, odd).method != "composite-crc32"
    # A plain upload keeps no part checksums: the composite cannot be compared.
    assert verify(LOCAL, aws).method == "size"
    # A streamed multipart upload has no whole-object CRC32 to compare with a full one.
    full = RemoteObject(LOCAL.size, etag="abc-3", crc32="AAAAAA==")
    assert verify(LocalDigest(LOCAL.size, md5=LOCAL.md5, composite_crc32="x-3"), full).method == "size"


def test_md5_etag_used_for_plain_etags_only():
    assert verify(LOCAL, RemoteObject(LOCAL.size, etag=LOCAL.md5)).method == "md5-etag"
    assert not verify(LOCAL, RemoteObject(LOCAL.size, etag="0" * 32)).ok
    multipart = verify(LOCAL, RemoteObject(LOCAL.size, etag="0" * 32 + "-3"))
    assert multipart.ok and multipart.method == "size"
    kms = verify(LOCAL, RemoteObject(LOCAL.size, etag="0" * 32, sse="aws:kms"))
    assert kms.ok and kms.method == "size"


def test_metadata_crc_when_nothing_else():
    tagged = RemoteObject(LOCAL.size, etag="x-2", metadata={CRC_METADATA: LOCAL.crc32})
    assert verify(LOCAL, tagged).method == "metadata-crc32"
    other = RemoteObject(LOCAL.size, etag="x-2", metadata={CRC_METADATA: "AAAAAA=="})
    assert not verify(LOCAL, other).ok


def test_remote_from_head_normalises():
    remote = remote_from_head({"ContentLength": 5, "ETag": '"ABCDEF"', "Metadata": {"Content-Crc32": "x"},
                               "ChecksumCRC32": "y", "ServerSideEncryption": "AES256"})
    assert remote == RemoteObject(5, "abcdef", "y", "AES256", False, {"content-crc32": "x"})


def test_composite_multipart_checksum_is_not_compared():
    head = {"ContentLength": LOCAL.size, "ETag": '"abc-3"', "ChecksumCRC32": "AAAAAA==-3", "ChecksumType": "COMPOSITE"}
    assert remote_from_head(head).crc32 is None
    full = {"ContentLength": LOCAL.size, "ETag": '"abc-3"', "ChecksumCRC32": LOCAL.crc32, "ChecksumType": "FULL_OBJECT"}
    assert verify(LOCAL, remote_from_head(full)).method == "crc32"
