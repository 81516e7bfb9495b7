"""The start-up probe of a store's abilities, what the uploader does with each answer, and
S3_CA_BUNDLE: read from .env, checked at start, an untrusted certificate a configuration problem."""
from __future__ import annotations

import ssl
import subprocess

import pytest
from botocore.exceptions import ClientError
from botocore.exceptions import SSLError as BotocoreSSLError
from moto import mock_aws

from services.bucket.abilities import StoreAbilities, Support
from services.bucket.client import UNTRUSTED_CERTIFICATE, ProblemKind, S3Problem, classify
from services.bucket.store import ObjectStore
from services.common.config import ConfigError, EnvReader
from services.uploader.config import read_uploader_config
from services.uploader.preparation import prepare_bucket, probe_abilities, refusal

BUCKET = "unit-bucket"
BASE = {"S3_BUCKET_NAME": BUCKET, "S3_PREFIX": "cams", "AWS_ACCESS_KEY_ID": "AKIAUNITTESTKEY",
        "AWS_SECRET_ACCESS_KEY": "unit-secret-value"}


def config(tmp_path, **extra):
    return read_uploader_config(EnvReader({"DATA_DIR": str(tmp_path / "data"), **BASE,
                                           **{k: str(v) for k, v in extra.items()}}))


@pytest.fixture
def store(tmp_path):
    with mock_aws():
        made = ObjectStore.for_config(config(tmp_path))
        made.client.create_bucket(Bucket=BUCKET)
        yield made


def refusing(operation: str, status: int, code: str):
    """A client call that answers like a server refusing the request's form."""
    def call(**_):
        raise ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)
    return call


# ----- the probe ---------------------------------------------------------------------------------
def test_moto_confirms_everything_the_settings_use(tmp_path, store):
    found = probe_abilities(store, config(tmp_path, S3_SSE="aes256"))
    assert (found.conditional_writes, found.crc32, found.sse, found.object_lock) == (
        Support.YES, Support.YES, Support.YES, Support.NOT_PROBED)
    assert found.checksums_sent
    assert store.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []   # probes left nothing


def test_unused_features_are_not_probed(tmp_path, store):
    found = probe_abilities(store, config(tmp_path, S3_CHECKSUM="off", S3_SSE="none"))
    assert (found.crc32, found.sse, found.checksums_sent) == (Support.NOT_PROBED, Support.NOT_PROBED, False)


def test_a_store_that_rejects_the_crc32_trailer_gets_no_checksums_for_the_run(tmp_path, store, monkeypatch):
    monkeypatch.setattr(store.client, "upload_part", refusing("UploadPart", 411, "MissingContentLength"))
    prepared = prepare_bucket(store, config(tmp_path))
    assert prepared.abilities.crc32 is Support.REJECTED and not prepared.abilities.checksums_sent
    assert prepared.abilities.crc32_answer == "HTTP 411 MissingContentLength"
    assert not store.checksums
    args = {"ChecksumAlgorithm": "CRC32", "ChecksumCRC32": "AAAAAA==", "ContentType": "video/mp4"}
    assert store._args(args) == {"ContentType": "video/mp4"}
    # The remade clients send none of their own either (as S3_CHECKSUM=off).
    assert store.client.meta.config.request_checksum_calculation == "when_required"


def test_a_store_that_rejects_sse_is_refused_with_the_setting_named(tmp_path, store, monkeypatch):
    monkeypatch.setattr(store.client, "create_multipart_upload",
                        refusing("CreateMultipartUpload", 400, "InvalidEncryptionAlgorithmError"))
    with pytest.raises(S3Problem) as raised:
        prepare_bucket(store, config(tmp_path, S3_SSE="aes256", S3_CHECKSUM="off"))
    assert raised.value.kind is ProblemKind.CONFIG and "set S3_SSE=none" in raised.value.message


def test_denied_is_not_taken_for_a_missing_feature(tmp_path, store, monkeypatch):
    monkeypatch.setattr(store.client, "upload_part", refusing("UploadPart", 403, "AccessDenied"))
    with pytest.raises(S3Problem) as raised:
        probe_abilities(store, config(tmp_path))
    assert raised.value.code == "AccessDenied"


@pytest.mark.parametrize("abilities, extra, words", [
    (StoreAbilities(object_lock=Support.NOT_ENABLED), {"S3_OBJECT_LOCK_DAYS": 7}, "does not have object lock"),
    (StoreAbilities(crc32=Support.REJECTED, object_lock=Support.YES), {"S3_OBJECT_LOCK_DAYS": 7},
     "rejects CRC32 checksums"),
    (StoreAbilities(crc32=Support.REJECTED), {}, None),           # adapted, not refused
    (StoreAbilities(sse=Support.ACCEPTED), {"S3_SSE": "aes256"}, None),
])
def test_refusal(tmp_path, abilities, extra, words):
    problem = refusal(abilities, config(tmp_path, **extra))
    assert (problem and problem.kind is ProblemKind.CONFIG and words in problem.message) or (problem is words)


# ----- S3_CA_BUNDLE ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ca_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ca")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "ca.pem"), "-days", "2",
                    "-subj", "/CN=test"], check=True, capture_output=True)
    return folder / "ca.pem"


@pytest.mark.parametrize("key", ["S3_CA_BUNDLE", "AWS_CA_BUNDLE"])
def test_a_ca_bundle_in_env_reaches_every_client(tmp_path, ca_file, key):
    settings = config(tmp_path, S3_ENDPOINT_URL="https://s3.site.internal:9000", **{key: ca_file})
    assert settings.ca_bundle == str(ca_file)
    store = ObjectStore.for_config(settings)
    for client in (store.client, store.put_client):
        assert client._endpoint.http_session._verify == str(ca_file)


@pytest.mark.parametrize("content, words", [(None, "is not a file"), ("not a certificate\n", "no PEM certificate")])
def test_a_bad_ca_bundle_stops_the_start_naming_the_key(tmp_path, content, words):
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as raised:
        config(tmp_path, S3_CA_BUNDLE=path)
    assert [(issue.key, words in issue.problem) for issue in raised.value.issues] == [("S3_CA_BUNDLE", True)]


def test_s3_ca_bundle_wins_over_a_machine_wide_aws_ca_bundle(tmp_path, ca_file):
    settings = config(tmp_path, S3_CA_BUNDLE=ca_file, AWS_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt")
    assert settings.ca_bundle == str(ca_file)


def test_an_untrusted_certificate_is_a_configuration_problem_naming_the_setting():
    cause = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                            "self-signed certificate (_ssl.c:1006)")
    cause.verify_message = "self-signed certificate"
    error = BotocoreSSLError(endpoint_url="https://127.0.0.1:9000/b", error=cause)
    error.__cause__ = cause
    problem = classify(error, "checking s3://b/k")
    assert (problem.kind, problem.code) == (ProblemKind.CONFIG, UNTRUSTED_CERTIFICATE)
    assert "(self-signed certificate): set S3_CA_BUNDLE" in problem.message
