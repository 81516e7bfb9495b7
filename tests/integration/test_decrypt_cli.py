"""`python -m services decrypt` end to end: a file rclone encrypted, right and wrong passwords."""
import os
import subprocess

from tests.support.processes import REPO, run_module, write_env

RCLONE = str(REPO / ".venv" / "bin" / "rclone")


def rclone_encrypt(tmp_path, data: bytes, password: str):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "camera_1_2026-01-01_00-00-00.mp4").write_bytes(data)
    obscured = subprocess.run([RCLONE, "obscure", password], capture_output=True, text=True, check=True).stdout.strip()
    env = dict(os.environ, RCLONE_CONFIG_SECRET_TYPE="crypt", RCLONE_CONFIG_SECRET_REMOTE=str(tmp_path / "enc"),
               RCLONE_CONFIG_SECRET_PASSWORD=obscured, RCLONE_CONFIG_SECRET_FILENAME_ENCRYPTION="off",
               RCLONE_CONFIG_SECRET_DIRECTORY_NAME_ENCRYPTION="false")
    subprocess.run([RCLONE, "copy", str(plain), "secret:", "--config", "/dev/null"], env=env, check=True)
    return tmp_path / "enc" / "camera_1_2026-01-01_00-00-00.mp4.bin", obscured


def decrypt(env_file, *args):
    return run_module("services", "decrypt", *args, env_file=env_file)


def test_decrypt_rclone_file_with_obscured_password(tmp_path):
    data = os.urandom(200_000)
    encrypted, obscured = rclone_encrypt(tmp_path, data, "correct horse")
    env = write_env(tmp_path / ".env", {"DATA_DIR": tmp_path / "d", "ENCRYPTION_PASSWORD": f"obscured:{obscured}"})
    code, out = decrypt(env, str(encrypted), "-o", str(tmp_path / "out.mp4"))
    assert code == 0, out
    assert (tmp_path / "out.mp4").read_bytes() == data


def test_wrong_password_is_one_line_and_leaves_nothing(tmp_path):
    encrypted, _ = rclone_encrypt(tmp_path, os.urandom(1000), "correct horse")
    env = write_env(tmp_path / ".env", {"DATA_DIR": tmp_path / "d", "ENCRYPTION_PASSWORD": "battery staple"})
    code, out = decrypt(env, str(encrypted), "-o", str(tmp_path / "out.mp4"))
    assert code == 1 and len(out.strip().splitlines()) == 1 and "battery staple" not in out
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".out.mp4*"))


def test_bad_obscured_value_is_a_config_error(tmp_path):
    env = write_env(tmp_path / ".env", {"DATA_DIR": tmp_path / "d", "ENCRYPTION_PASSWORD": "obscured:!!notbase64"})
    code, out = decrypt(env, "x.bin", "-o", str(tmp_path / "o.mp4"))
    assert code == 78 and "ENCRYPTION_PASSWORD" in out and "Traceback" not in out
