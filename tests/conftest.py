import pytest

from tests.support.processes import CameraServer

# s3_server, data_layout, start_uploader: shared by the uploader's tests.
pytest_plugins = ("tests.support.s3_fixtures",)


@pytest.fixture
def camera_server():
    """Factory for RTSP test servers; every one started is stopped by PID afterwards."""
    servers: list[CameraServer] = []

    def start(mounts: dict[str, str], auth: str | None = None) -> CameraServer:
        server = CameraServer(mounts, auth).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
