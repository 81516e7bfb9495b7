"""systemd notification protocol (READY, STATUS, WATCHDOG); a no-op outside systemd."""
from __future__ import annotations

import os
import socket

# READY and STOPPING change what systemd does: worth waiting a moment for. A STATUS or WATCHDOG
# message is superseded by the next one, so a full queue drops it rather than stalling the daemon
# (a Unix datagram queue holds 10 messages by default: a receiver that stops reading would
# otherwise block the main loop on its next send).
_WAIT_FOR = ("READY=1", "STOPPING=1")
_WAIT_SECONDS = 1.0


def notify(message: str) -> bool:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(_WAIT_SECONDS if any(m in message.split("\n") for m in _WAIT_FOR) else 0)
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
