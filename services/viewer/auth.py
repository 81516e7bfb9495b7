"""Who may see the footage (pure): a page open to the network is never an accident.

Loopback needs nothing (anyone there could read DATA_DIR anyway); any other bind address
needs VIEWER_TOKEN, asked for by HTTP basic auth (any user name), compared in constant time.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress

MIN_TOKEN_LENGTH = 16
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False   # a name we cannot judge is treated as reachable from the network


def bind_problem(host: str, token: str | None) -> str | None:
    """Why the viewer must not start with this bind address and token, or None."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        return f"at least {MIN_TOKEN_LENGTH} characters (got {len(token)})"
    if token is None and not is_loopback(host):
        return (f"required when VIEWER_BIND is {host!r}, not a loopback address: anyone on the network "
                "could watch the footage (or bind 127.0.0.1 and use an SSH tunnel)")
    return None


def host_allowed(host_header: str | None, token: str | None) -> bool:
    """Without a token only a loopback Host is served: a web page the operator visits could
    otherwise point its own name at 127.0.0.1 and read the footage (DNS rebinding)."""
    if token is not None:
        return True
    if not host_header:
        return False
    host = host_header.strip()
    if host.startswith("["):                     # [::1]:8470
        host = host[1:host.find("]")] if "]" in host else host
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return is_loopback(host)


def authorized(header: str | None, token: str | None) -> bool:
    """Does a request's Authorization header carry the token (basic: any user; or bearer)?"""
    if token is None:
        return True
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        offered = value.strip()
    elif scheme.lower() == "basic":
        try:
            offered = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    else:
        return False
    return hmac.compare_digest(offered.encode(), token.encode())
