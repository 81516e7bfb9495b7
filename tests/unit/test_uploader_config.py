import pytest

from services.common.config import ConfigError, EnvReader
from services.common.redact import redact
from services.uploader.config import MB, read_uploader_config


def read(values, tmp_path):
    base = {"DATA_DIR": str(tmp_path / "data"), "S3_BUCKET_NAME": "my-bucket"}
    base.update(values)
    return read_uploader_config(EnvReader({k: v for k, v in base.items() if v is not None}))


def problems(values, tmp_path):
    with pytest.raises(ConfigError) as info:
        read(values, tmp_path)
    return [str(issue) for issue in info.value.issues]


def test_defaults(tmp_path):
    config = read({}, tmp_path)
    assert config.region == "us-east-1"
    assert config.endpoint_url is None and config.access_key_id is None
    assert config.sse == "AES256" and config.storage_class == "STANDARD" and config.checksum == "crc32"
    assert config.retention_hours == 24 and config.min_free_bytes == 2048 * MB
    assert config.delete_unuploaded_when_full is False
    assert config.concurrency == 4 and config.part_size == 16 * MB and config.multipart_threshold == 200 * MB
    assert config.prefix == ""
    assert not (tmp_path / "data").exists()   # reading settings creates nothing; run_daemon does


def test_endpoint_turns_default_encryption_off_and_prefix_is_normalised(tmp_path):
    config = read({"S3_ENDPOINT_URL": "http://127.0.0.1:9000/", "S3_PREFIX": "/site-a/cams"}, tmp_path)
    assert config.endpoint_url == "http://127.0.0.1:9000" and config.sse is None
    assert config.prefix == "site-a/cams/"


def test_kms_and_camera_names(tmp_path):
    config = read({"S3_SSE": "aws:kms", "S3_SSE_KMS_KEY_ID": "alias/k", "CAMERA_2_NAME": "Gate",
                   "S3_STORAGE_CLASS": "standard_ia"}, tmp_path)
    assert (config.sse, config.sse_kms_key_id, config.storage_class) == ("aws:kms", "alias/k", "STANDARD_IA")
    assert config.camera_name(2) == "Gate" and config.camera_name(1) is None


@pytest.mark.parametrize("values, key, fragment", [
    ({"S3_BUCKET_NAME": None}, "S3_BUCKET_NAME", "required"),
    ({"S3_BUCKET_NAME": "Bad_Bucket"}, "S3_BUCKET_NAME", "not a valid bucket name"),
    ({"AWS_REGION": "eu west"}, "AWS_REGION", "region"),
    ({"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"}, "AWS_SECRET_ACCESS_KEY", "both"),
    ({"S3_ENDPOINT_URL": "ftp://x"}, "S3_ENDPOINT_URL", "http"),
    ({"S3_PREFIX": "a/../b"}, "S3_PREFIX", "plain key prefix"),
    ({"S3_STORAGE_CLASS": "cheap"}, "S3_STORAGE_CLASS", "one of"),
    ({"S3_SSE": "rot13"}, "S3_SSE", "one of"),
    ({"S3_SSE_KMS_KEY_ID": "k"}, "S3_SSE_KMS_KEY_ID", "aws:kms"),
    ({"S3_CHECKSUM": "sha1"}, "S3_CHECKSUM", "one of"),
    ({"LOCAL_RETENTION_HOURS": "-1"}, "LOCAL_RETENTION_HOURS", "between"),
    ({"MIN_FREE_DISK_MB": "lots"}, "MIN_FREE_DISK_MB", "whole number"),
    ({"UPLOAD_CONCURRENCY": "0"}, "UPLOAD_CONCURRENCY", "between"),
    ({"MULTIPART_PART_SIZE_MB": "1"}, "MULTIPART_PART_SIZE_MB", "between 5"),
    ({"DELETE_UNUPLOADED_WHEN_FULL": "maybe"}, "DELETE_UNUPLOADED_WHEN_FULL", "true or false"),
    ({"RESCAN_INTERVAL": "3600"}, "RESCAN_INTERVAL", "between"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL", "one of"),
])
def test_each_bad_value_names_its_key(values, key, fragment, tmp_path):
    found = problems(values, tmp_path)
    assert any(line.startswith(f"{key}:") and fragment in line for line in found), found


def test_all_problems_at_once_and_secrets_registered(tmp_path):
    found = problems({"S3_BUCKET_NAME": None, "UPLOAD_CONCURRENCY": "x",
                      "AWS_ACCESS_KEY_ID": "AKIAUNITTEST1", "AWS_SECRET_ACCESS_KEY": "s3cr3t/unit+test"}, tmp_path)
    assert len(found) == 2
    assert redact("key AKIAUNITTEST1 secret s3cr3t/unit+test") == "key *** secret ***"
