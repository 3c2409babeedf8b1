"""Listening sockets: bound before anything else (so bind errors are seen
before daemonizing), and handed to gevent servers afterwards. Keeping them
as plain sockets is what lets a new process inherit them on upgrade."""

from __future__ import annotations

import socket

from gproxy.config.model import Address
from gproxy.errors import GproxyError

LISTEN_BACKLOG = 1024


class BindError(GproxyError):
    pass


def bind_tcp(address: Address, backlog: int = LISTEN_BACKLOG) -> socket.socket:
    host = address.host
    if host in ("", "*"):
        host = "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, address.port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot bind {address}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock
