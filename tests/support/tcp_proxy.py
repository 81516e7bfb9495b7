"""A TCP proxy on 127.0.0.1 that can make its open connections go silent, as a network blip does.

Wi-Fi and cheap switches lose connections without a FIN or RST: both ends keep a socket that
will never carry another byte, while a new connection works at once. `silence()` does that to
every connection open at the moment: from then on the proxy still reads both sides (so
neither end blocks on a full buffer, as on a dead link where packets are lost) but forwards
nothing and closes nothing. Connections accepted afterwards are forwarded normally.

One thread runs a selector loop; `stop()` closes everything and joins it.
"""
from __future__ import annotations

import selectors
import socket
import threading
from dataclasses import dataclass

CHUNK = 65536
SEND_TIMEOUT = 5.0


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client side, the upstream side, and whether it went silent."""

    client: socket.socket
    upstream: socket.socket
    silent: bool = False

    def peer(self, sock: socket.socket) -> socket.socket:
        return self.upstream if sock is self.client else self.client

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            sock.close()


class TcpProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._running = False
        self._thread = threading.Thread(target=self._loop, name=f"tcp-proxy-{self.port}", daemon=True)
        self.accepted = 0

    def start(self) -> TcpProxy:
        self._running = True
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._thread.start()
        return self

    def url(self, path: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path}"

    def silence(self) -> int:
        """Every connection open now goes silent for good; returns how many did."""
        with self._lock:
            fresh = [link for link in self._links if not link.silent]
            for link in fresh:
                link.silent = True
        return len(fresh)

    def open_connections(self) -> int:
        with self._lock:
            return sum(not link.silent for link in self._links)

    def stop(self) -> None:
        self._running = False
        self._thread.join(timeout=5)
        self._selector.close()
        self._listener.close()
        for link in self._links:
            link.close()

    def _loop(self) -> None:
        while self._running:
            for key, _ in self._selector.select(timeout=0.1):
                if key.fileobj is self._listener:
                    self._accept()
                else:
                    self._pump(key.fileobj, key.data)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=SEND_TIMEOUT)
        except OSError:
            client.close()  # the camera is down: so is the proxied one
            return
        link = _Link(client, upstream)
        for sock in (client, upstream):
            # Blocking with a timeout: the selector says when to read; a send of the small
            # test streams waits at most SEND_TIMEOUT for a slow reader.
            sock.settimeout(SEND_TIMEOUT)
            self._selector.register(sock, selectors.EVENT_READ, link)
        with self._lock:
            self._links.append(link)
            self.accepted += 1

    def _pump(self, sock: socket.socket, link: _Link) -> None:
        try:
            data = sock.recv(CHUNK)
        except OSError:
            data = b""
        with self._lock:
            if link.silent:
                if not data:  # that end gave up; the other never hears of it
                    self._selector.unregister(sock)
                return  # read and dropped, like packets lost on a dead link
            if not data:
                self._drop(link)
                return
            try:
                link.peer(sock).sendall(data)
            except OSError:
                self._drop(link)

    def _drop(self, link: _Link) -> None:
        for sock in (link.client, link.upstream):
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
        link.close()
        if link in self._links:   # both ends can be ready in one select(): the second finds it dropped
            self._links.remove(link)
