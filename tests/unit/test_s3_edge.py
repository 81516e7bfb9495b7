"""Only services/bucket/ talks to S3: no other module imports boto3 or botocore or calls a boto3
client method, so error classification, redaction and the IAM scan see every call."""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import botocore.session
from botocore import xform_name

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "services"
EDGE = SERVICES / "bucket"
S3_PACKAGES = ("boto3", "botocore", "s3transfer")
# What boto3 adds to the S3 client besides the API's operations (`copy` and `close` are caught
# by the receiver's name only: the words are too common).
INJECTED = {"upload_file", "upload_fileobj", "download_file", "download_fileobj", "generate_presigned_url",
            "generate_presigned_post", "get_paginator", "get_waiter", "can_paginate"}


@lru_cache(maxsize=None)
def client_methods() -> frozenset[str]:
    operations = botocore.session.get_session().get_service_model("s3").operation_names
    return frozenset(xform_name(name) for name in operations) | INJECTED


def _receiver(node: ast.expr) -> str:
    """The last name of what a method is called on: `self.put_client` -> `put_client`."""
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def s3_uses(source: str, name: str = "<source>") -> set[str]:
    """Imports of the AWS SDK, and calls of an S3 client method or of anything on a `...client`."""
    found = set()
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module or ""]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method = node.func.attr
            if method in client_methods() or _receiver(node.func.value).endswith("client"):
                found.add(f"{name}:{node.lineno} calls .{method}()")
            continue
        else:
            continue
        found |= {f"{name}:{node.lineno} imports {m}" for m in modules if m.split(".")[0] in S3_PACKAGES}
    return found


def test_no_module_outside_the_bucket_wing_talks_to_s3():
    outside = [p for p in sorted(SERVICES.rglob("*.py")) if EDGE not in p.parents]
    assert outside, "no modules found outside services/bucket/"
    assert set().union(*(s3_uses(p.read_text(), str(p.relative_to(REPO))) for p in outside)) == set()


def test_the_scan_sees_the_bucket_wing_talk():
    uses = s3_uses((EDGE / "client.py").read_text(), "client.py") | s3_uses((EDGE / "store.py").read_text(), "store.py")
    assert any("imports boto3" in use for use in uses)
    assert any(".put_object()" in use for use in uses)


def test_the_scan_catches_imports_and_calls_at_any_depth():
    source = '''
import boto3
from botocore.exceptions import ClientError


def fetch(s3, store, body, path):
    from s3transfer.manager import TransferConfig
    s3.head_bucket(Bucket="b")
    store.client.get_paginator("list_objects_v2")
    store.put_client.copy({}, "b", "k")
    body.close()
    path.read_text()
'''
    assert s3_uses(source, "m.py") == {
        "m.py:2 imports boto3", "m.py:3 imports botocore.exceptions", "m.py:7 imports s3transfer.manager",
        "m.py:8 calls .head_bucket()", "m.py:9 calls .get_paginator()", "m.py:10 calls .copy()"}
