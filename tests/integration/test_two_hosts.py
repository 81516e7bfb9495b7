"""Two uploaders as two hosts on one bucket and prefix, both given camera 3 by mistake.

Each host holds different footage under the same file names. On a server that refuses to
overwrite (moto: If-None-Match) and on one that ignores it (rclone serve s3), every recording
of both hosts ends up in the bucket, nothing is overwritten, and the clash is reported.
"""
from __future__ import annotations

import pytest

from services.common.data_layout import DataLayout
from services.common.state_file import read_json
from tests.support.processes import wait_for
from tests.support.s3_fixtures import BUCKET, SEGMENT, drop_segment, uploader_env
from tests.support.s3_server import S3Server, list_keys

FILES = 8


def local_copies(layout: DataLayout) -> list[str]:
    return [p.name for folder in (layout.completed, layout.uploaded) for p in folder.iterdir()
            if not p.name.startswith(".")]


@pytest.mark.parametrize("kind", ["moto", "rclone"])
def test_two_hosts_same_camera_id_nothing_lost_clash_reported(tmp_path, kind, start_uploader):
    server = S3Server(tmp_path / "s3", kind=kind).start()
    try:
        server.create_bucket(BUCKET)
        hosts = {}
        for name in ("host-a", "host-b"):
            layout = DataLayout(tmp_path / name)
            layout.prepare()
            # Retention 0: each copy is deleted as soon as the bucket is seen to hold it.
            env = uploader_env(tmp_path / name, server, layout, HOST_ID=name, LOCAL_RETENTION_HOURS=0,
                               RESCAN_INTERVAL=0.5, UPLOAD_CONCURRENCY=8)
            hosts[name] = (layout, env)
        footage = {name: [drop_segment(layout, SEGMENT.format(cam=3, minute=m)) for m in range(FILES)]
                   for name, (layout, _) in hosts.items()}
        daemons = [start_uploader(env, name) for name, (_, env) in hosts.items()]   # both at once: races
        for name, (layout, _) in hosts.items():
            wait_for(lambda layout=layout: not local_copies(layout), 60, f"{name} to upload and prune everything")

        client = server.client()
        stored = {client.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in list_keys(client, BUCKET)}
        for name, contents in footage.items():
            missing = [i for i, data in enumerate(contents) if data not in stored]
            assert missing == [], f"{kind}: {name}'s recordings {missing} are not in the bucket"
        assert len(list_keys(client, BUCKET)) == 2 * FILES

        def reports() -> dict:   # the state files are rewritten every 2 s
            return {name: read_json(layout.state / "uploader.json") or {} for name, (layout, _) in hosts.items()}

        def clashes() -> set:
            return {(name, c["camera_id"], c["other_host"]) for name, r in reports().items()
                    for c in r.get("clashes", [])}
        wait_for(clashes, 10, f"{kind}: a host to report the clash")
        assert clashes() <= {("host-a", 3, "host-b"), ("host-b", 3, "host-a")}
        probed = wait_for(lambda: all(r.get("conditional_writes") is not None for r in reports().values())
                          and reports(), 10, "both state files to show the probe")
        assert {r["conditional_writes"] for r in probed.values()} == {kind == "moto"}
        for daemon in daemons:
            daemon.stop()
    finally:
        server.stop()
