"""Benchmark 2b: encrypted upload (rclone crypt format) against `rclone copy` to a crypt remote.

Same local `rclone serve s3`, same backlog of random-byte segments, same run; both produce
`<name>.bin` objects that one rclone crypt remote reads. Reports MB/s of plaintext and the ratio.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

from services.data_layout import DataLayout
from services.rclone_crypt import encrypted_size
from tests.bench.bench_upload import make_backlog, timed
from tests.bench.common import quick, remove, save, table, workspace
from tests.support.processes import REPO, write_env
from tests.support.s3_server import S3Server, list_keys, rclone_binary

BUCKET = "bench-crypt"
PASSWORD, SALT = "benchmark passphrase", "benchmark salt"


def check(s3: S3Server, prefix: str, sizes: dict[str, int]) -> str:
    found = {key.rsplit("/", 1)[-1]: size for key, size in list_keys(s3.client(), BUCKET, prefix).items()}
    wrong = [n for n, size in sizes.items() if found.get(n + ".bin") != encrypted_size(size)]
    return f"{len(wrong)} objects missing or of the wrong size" if wrong else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8 if quick() else 20)
    parser.add_argument("--min-mb", type=int, default=25)
    parser.add_argument("--max-mb", type=int, default=100)
    args = parser.parse_args(argv)
    work = workspace("crypt-upload")
    layout = DataLayout(work / "data")
    s3 = S3Server(work / "s3", log=work / "s3.log")
    runs = []
    try:
        paths = make_backlog(layout.completed, args.files, args.min_mb, args.max_mb)
        sizes = {p.name: p.stat().st_size for p in paths}
        total = sum(sizes.values())
        print(f"backlog: {len(paths)} files, {total / 1e9:.2f} GB", flush=True)
        s3.start()
        s3.create_bucket(BUCKET)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        env.pop("JOURNAL_STREAM", None)
        obscure = lambda text: subprocess.run([rclone_binary(), "obscure", text], capture_output=True,  # noqa: E731
                                              text=True, check=True).stdout.strip()
        rclone_env = dict(env, RCLONE_CONFIG_STORE_TYPE="s3", RCLONE_CONFIG_STORE_PROVIDER="Other",
                          RCLONE_CONFIG_STORE_ENDPOINT=s3.endpoint, RCLONE_CONFIG_STORE_ACCESS_KEY_ID=s3.access_key,
                          RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY=s3.secret_key,
                          RCLONE_CONFIG_STORE_FORCE_PATH_STYLE="true",
                          RCLONE_CONFIG_SEALED_TYPE="crypt", RCLONE_CONFIG_SEALED_REMOTE=f"store:{BUCKET}/rclone",
                          RCLONE_CONFIG_SEALED_PASSWORD=obscure(PASSWORD), RCLONE_CONFIG_SEALED_PASSWORD2=obscure(SALT),
                          RCLONE_CONFIG_SEALED_FILENAME_ENCRYPTION="off",
                          RCLONE_CONFIG_SEALED_DIRECTORY_NAME_ENCRYPTION="false")
        env_file = write_env(work / "uploader.env", {"DATA_DIR": layout.root, "MIN_FREE_DISK_MB": 0, "S3_PREFIX": "ours",
                                                      "ENCRYPTION_PASSWORD": PASSWORD, "ENCRYPTION_SALT": SALT,
                                                      **s3.env(BUCKET)})
        for label, kind, argv, run_env, prefix in (
            ("s3_uploader --once, encrypted (defaults)", "ours",
             [sys.executable, "-m", "services.s3_uploader", "--once", "--env-file", str(env_file)], env, "ours/"),
            ("rclone copy to a crypt remote (defaults)", "rclone",
             [rclone_binary(), "copy", "--config", "/dev/null", str(layout.completed), "sealed:"], rclone_env, "rclone/"),
        ):
            print(f"  {label} ...", end=" ", flush=True)
            result = timed(argv, run_env, work / f"{kind}.log")
            problem = check(s3, prefix, sizes) if result["exit"] == 0 else f"exit {result['exit']}"
            runs.append({"label": label, "client": kind, **result, "problem": problem,
                         "mb_per_s": round(total / 1e6 / result["wall_s"], 1)})
            print(f"{runs[-1]['mb_per_s']} MB/s {problem}", flush=True)
            for path in layout.uploaded.glob("*.mp4"):
                path.rename(layout.completed / path.name)
    finally:
        s3.stop()
        remove(work)
    print(table(["client", "wall s", "MB/s (plaintext)", "client CPU s", "result"],
                [[r["label"], r["wall_s"], r["mb_per_s"], r["client_cpu_s"], r["problem"] or "ok"] for r in runs]))
    ratio = round(runs[0]["mb_per_s"] / runs[1]["mb_per_s"], 2) if len(runs) == 2 and runs[1]["mb_per_s"] else None
    print(f"ours / rclone crypt: {ratio}")
    print(f"results: {save('crypt-upload', {'files': len(sizes), 'total_bytes': total, 'ratio': ratio, 'runs': runs})}")
    return 0 if runs and not any(r["problem"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
