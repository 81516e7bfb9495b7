import pytest

from tests.support.processes import CameraServer


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
