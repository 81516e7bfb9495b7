"""systemd notification protocol (READY, STATUS, WATCHDOG); a no-op outside systemd."""
from __future__ import annotations

import os
import socket

# A STATUS= text is superseded by the next one, so when the receiver's queue is full it is
# dropped rather than stalling the daemon (a receiver that stopped reading fills a Unix datagram
# queue, 10 messages by default, and would block the main loop on its next send). Anything else
# (READY, STOPPING, RELOADING, WATCHDOG) changes what systemd does, or a missed keep-alive gets
# the daemon killed: it waits up to 5 s for room.
_WAIT_SECONDS = 5.0


def notify(message: str) -> bool:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            only_status = all(line.startswith("STATUS=") for line in message.split("\n"))
            sock.settimeout(0 if only_status else _WAIT_SECONDS)
            sock.connect(address)
            sock.sendall(message.encode())
        return True
    except OSError:   # no listener, or a full queue (BlockingIOError, socket.timeout)
        return False


def watchdog_interval() -> float | None:
    """Half of WATCHDOG_USEC in seconds, when systemd expects keep-alives from this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None
