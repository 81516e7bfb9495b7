"""sync and sync --verify on prepared mismatches, against a real S3 server."""

from services.bucket.keys import object_key
from services.common.segment_names import parse_name
from tests.support.processes import run_module, write_env
from tests.support.s3_server import S3Server, list_keys

BUCKET = "sync-test"
NAMES = {name: f"camera_1_2026-02-01_10-{minute:02d}-00.mp4" for name, minute in
         (("ok", 0), ("missing", 10), ("different", 20), ("waiting", 30))}


def cli(*args, env_file):
    return run_module("services", *args, env_file=env_file)


def test_verify_reports_fix_requeues_and_sync_uploads(tmp_path):
    server = S3Server(tmp_path / "s3").start()
    try:
        server.create_bucket(BUCKET)
        client = server.client()
        data = tmp_path / "data" / "videos"
        for folder in ("uploaded", "completed"):
            (data / folder).mkdir(parents=True)
        for label, name in NAMES.items():
            folder = "completed" if label == "waiting" else "uploaded"
            (data / folder / name).write_bytes(label.encode() * 1000)
        key = lambda label: object_key("", parse_name(NAMES[label]))  # noqa: E731
        client.put_object(Bucket=BUCKET, Key=key("ok"), Body=b"ok" * 1000)
        client.put_object(Bucket=BUCKET, Key=key("different"), Body=b"short")
        env = write_env(tmp_path / ".env", {"DATA_DIR": tmp_path / "data", **server.env(BUCKET)})

        code, out = cli("sync", "--verify", env_file=env)
        assert code == 1, out
        assert f"missing        uploaded/{NAMES['missing']}" in out
        assert f"size-mismatch  uploaded/{NAMES['different']}" in out
        assert "1 missing, 1 ok, 1 size-mismatch, 1 waiting" in out
        assert (data / "uploaded" / NAMES["missing"]).exists()  # nothing fixed unless asked

        code, out = cli("sync", "--dry-run", env_file=env)
        assert code == 0 and "would upload" in out and NAMES["waiting"] in out

        code, out = cli("sync", "--verify", "--fix", env_file=env)
        assert code == 1 and "moved 2 files back to completed/" in out

        code, out = cli("sync", env_file=env)
        assert code == 0, out
        keys = list_keys(client, BUCKET)
        assert keys[key("missing")] == 7000 and keys[key("waiting")] == 7000
        assert keys[key("different")] == 5  # never overwritten: a distinct key holds our file
        assert any(".conflict-" in k and v == 9000 for k, v in keys.items())

        code, out = cli("sync", "--verify", env_file=env)
        assert code == 0 and "4 ok" in out, out
    finally:
        server.stop()
