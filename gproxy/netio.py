"""Small socket helpers shared by the HTTP and TCP proxy layers (gevent)."""

from __future__ import annotations

import errno
import socket as _stdsocket

from gevent import socket

RECV_SIZE = 65536
# Connect errors that mean "this server is not there": retry/redispatch.
CONNECT_ERRORS = (OSError, socket.timeout)


class ConnectFailed(Exception):
    def __init__(self, reason: str, timed_out: bool):
        super().__init__(reason)
        self.timed_out = timed_out


def connect(host: str, port: int, timeout_ms: int) -> socket.socket:
    """Open a TCP connection to a server; raise ConnectFailed with a reason."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout_ms / 1000.0)
    try:
        sock.connect((host, port))
    except socket.timeout:
        sock.close()
        raise ConnectFailed("Connection timed out", timed_out=True) from None
    except OSError as exc:
        sock.close()
        reason = errno.errorcode.get(exc.errno or 0, str(exc)) if exc.errno else str(exc)
        raise ConnectFailed(exc.strerror or reason, timed_out=False) from None
    sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)
    return sock


def close_quietly(sock) -> None:
    if sock is None:
        return
    try:
        sock.close()
    except OSError:
        pass


def shutdown_write(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def peer_closed(sock) -> bool:
    """True if an idle socket was closed (or got unexpected data) by its peer.

    Checked before reusing an idle server connection, so that a keep-alive
    connection the server already dropped is not used for a request.
    """
    old = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        sock.recv(1, _stdsocket.MSG_PEEK)
    except (BlockingIOError, socket.timeout):
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(old)
    return True  # EOF (b"") or stray bytes: either way not reusable
