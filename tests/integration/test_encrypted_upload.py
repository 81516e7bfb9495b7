"""Client-side encryption end to end: the uploader writes rclone-crypt objects that the real
rclone reads back byte for byte; re-uploads after a crash are recognised; verify and clip work."""
import os
import shutil
import subprocess

from services.crypt.format import encrypted_size
from tests.support.processes import REPO, run_module, write_env
from tests.support.s3_server import S3Server, list_keys

BUCKET = "sealed"
RCLONE = str(REPO / ".venv" / "bin" / "rclone")
PASSWORD, SALT = "correct horse battery", "staple"


def cli(module_args, env_file):
    return run_module(*module_args, env_file=env_file)


def rclone_cat(server, key):
    obscure = lambda text: subprocess.run([RCLONE, "obscure", text], capture_output=True, text=True,  # noqa: E731
                                          check=True).stdout.strip()
    env = dict(os.environ,
               RCLONE_CONFIG_STORE_TYPE="s3", RCLONE_CONFIG_STORE_PROVIDER="Other",
               RCLONE_CONFIG_STORE_ENDPOINT=server.endpoint, RCLONE_CONFIG_STORE_ACCESS_KEY_ID=server.access_key,
               RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY=server.secret_key,
               RCLONE_CONFIG_SEALED_TYPE="crypt", RCLONE_CONFIG_SEALED_REMOTE=f"store:{BUCKET}",
               RCLONE_CONFIG_SEALED_PASSWORD=obscure(PASSWORD), RCLONE_CONFIG_SEALED_PASSWORD2=obscure(SALT),
               RCLONE_CONFIG_SEALED_FILENAME_ENCRYPTION="off", RCLONE_CONFIG_SEALED_DIRECTORY_NAME_ENCRYPTION="false")
    return subprocess.run([RCLONE, "cat", f"sealed:{key}", "--config", "/dev/null"], env=env, capture_output=True,
                          check=True).stdout


def test_encrypted_uploads_read_back_with_rclone(tmp_path):
    server = S3Server(tmp_path / "s3").start()
    try:
        server.create_bucket(BUCKET)
        completed = tmp_path / "data" / "videos" / "completed"
        completed.mkdir(parents=True)
        sizes = {"camera_1_2026-03-01_10-00-00.mp4": 65536, "camera_1_2026-03-01_10-10-00.mp4": 12 * 2**20 + 7,
                 "camera_2_2026-03-01_10-00-00.mp4": 1}
        originals = {}
        for name, size in sizes.items():
            originals[name] = os.urandom(size)
            (completed / name).write_bytes(originals[name])
        env = write_env(tmp_path / ".env", {"DATA_DIR": tmp_path / "data", "ENCRYPTION_PASSWORD": PASSWORD,
                                            "ENCRYPTION_SALT": SALT, "MULTIPART_THRESHOLD_MB": 5,
                                            "MULTIPART_PART_SIZE_MB": 5, "MIN_FREE_DISK_MB": 0, **server.env(BUCKET)})
        code, out = cli(["services.s3_uploader", "--once"], env)
        assert code == 0, out
        assert PASSWORD not in out and SALT not in out
        # Below the threshold one streaming PUT, checked against the MD5 of what was sent.
        assert out.count("verified by md5-etag+crypt-fingerprint") == 3, out
        keys = list_keys(server.client(), BUCKET)
        assert sorted(keys) == sorted(f"2026/03/01/camera_{n[7]}/{n}.bin" for n in sizes)
        for name, data in originals.items():
            key = f"2026/03/01/camera_{name[7]}/{name}"
            assert keys[key + ".bin"] == encrypted_size(len(data))
            assert rclone_cat(server, key) == data

        # A crash between upload and move: the file is back in completed/ and is re-encrypted
        # with a new nonce, yet recognised as already there (no second object).
        uploaded = tmp_path / "data" / "videos" / "uploaded"
        shutil.move(uploaded / "camera_1_2026-03-01_10-00-00.mp4", completed)
        code, out = cli(["services.s3_uploader", "--once"], env)
        assert code == 0 and "already in the bucket" in out, out
        assert len(list_keys(server.client(), BUCKET)) == 3

        code, out = cli(["services", "sync", "--verify"], env)
        assert code == 0 and "3 ok" in out, out
        server.client().put_object(Bucket=BUCKET, Key="2026/03/01/camera_2/camera_2_2026-03-01_10-00-00.mp4.bin",
                                   Body=b"tampered")
        code, out = cli(["services", "sync", "--verify"], env)
        assert code == 1 and "size-mismatch" in out, out

        # Another password cannot pass for the same content: a distinct key, never an overwrite.
        shutil.move(uploaded / "camera_1_2026-03-01_10-10-00.mp4", completed)
        env2 = write_env(tmp_path / "other.env", {**{k: v for k, v in (line.split("=", 1) for line in
                                                   env.read_text().splitlines())}, "ENCRYPTION_PASSWORD": "other"})
        code, out = cli(["services.s3_uploader", "--once"], env2)
        assert code == 0, out
        assert any(".conflict-" in k and k.endswith(".mp4.bin") for k in list_keys(server.client(), BUCKET))
    finally:
        server.stop()


def test_clip_and_coverage_from_an_encrypted_bucket(tmp_path):
    from tests.integration.test_footage_commands import make_segment
    from tests.support.media import decode_errors
    server = S3Server(tmp_path / "s3").start()
    try:
        server.create_bucket(BUCKET)
        completed = tmp_path / "data" / "videos" / "completed"
        completed.mkdir(parents=True)
        for second in (0, 2):
            make_segment(completed / f"camera_1_2026-03-01_10-00-0{second}.mp4")
        env = write_env(tmp_path / ".env", {"DATA_DIR": tmp_path / "data", "ENCRYPTION_PASSWORD": PASSWORD,
                                            "LOCAL_RETENTION_HOURS": 0, "MIN_FREE_DISK_MB": 0,
                                            "SEGMENT_DURATION": 2, **server.env(BUCKET)})
        assert cli(["services.s3_uploader", "--once"], env)[0] == 0
        for path in (tmp_path / "data" / "videos" / "uploaded").glob("*.mp4"):
            path.unlink()  # only the bucket has them now
        code, out = cli(["services", "clip", "--camera", "1", "--start", "2026-03-01T10:00:00Z",
                         "--end", "2026-03-01T10:00:04Z", "-o", str(tmp_path / "clip.mp4")], env)
        assert code == 0 and "0 local, 2 from the bucket" in out, out
        assert decode_errors(tmp_path / "clip.mp4") == ""
        code, out = cli(["services", "coverage", "--camera", "1", "--date", "2026-03-01", "--json"], env)
        assert code == 0 and '"covered_seconds": 4.0' in out, out
    finally:
        server.stop()
