"""A tiny stream-socket client for the daemons' status sockets.

One request, one answer, then the daemon closes the connection: HAProxy's
runtime API in its non-interactive mode and heartbeat's JSON status socket
both work that way. Every failure becomes a `SocketQueryError` whose message
names the socket and says what went wrong in words an administrator can act
on, so the plugins can report UNKNOWN without a traceback.
"""

from __future__ import annotations

import errno
import socket
import time

MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a `show stat` of thousands of servers fits; garbage does not run forever
RECV_CHUNK = 65536


class SocketQueryError(Exception):
    """The socket could not be queried; the message is meant for the status line."""


def _connect(address: str, timeout: float) -> socket.socket:
    """Connect to a unix socket path, or to `HOST:PORT` for a TCP stats socket."""
    if "/" not in address and address.count(":") == 1:
        host, _, port = address.partition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        target: str | tuple[str, int] = (host, int(port))
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = address
    sock.settimeout(timeout)
    try:
        sock.connect(target)
    except BaseException:
        sock.close()
        raise
    return sock


def _explain(address: str, exc: OSError) -> str:
    """Turn an OSError into a one-line reason that says what to check."""
    if isinstance(exc, socket.timeout):
        return f"socket {address}: no answer (timed out)"
    reasons = {
        errno.ENOENT: "no such socket (is the daemon running? is the path right?)",
        errno.EACCES: "permission denied (is the plugin's user allowed to read the socket?)",
        errno.EPERM: "permission denied (is the plugin's user allowed to read the socket?)",
        errno.ECONNREFUSED: "connection refused (daemon not listening)",
        errno.ENOTSOCK: "not a socket",
        errno.ECONNRESET: "connection reset by the daemon",
        errno.EPIPE: "connection closed by the daemon before the request was sent",
    }
    reason = reasons.get(exc.errno or 0, exc.strerror or str(exc))
    return f"socket {address}: {reason}"


def query(address: str, request: bytes, *, timeout: float, one_line: bool = False,
          limit: int = MAX_ANSWER_BYTES) -> bytes:
    """Send `request` and return the answer.

    The answer ends where the daemon closes the connection, or at the first
    newline when `one_line` is true (heartbeat answers one JSON line). The
    whole exchange must finish within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    try:
        sock = _connect(address, timeout)
    except ValueError as exc:  # a bad port number in HOST:PORT
        raise SocketQueryError(f"socket {address}: bad address ({exc})") from None
    except OSError as exc:
        raise SocketQueryError(_explain(address, exc)) from None
    chunks: list[bytes] = []
    size = 0
    try:
        sock.sendall(request)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout()
            sock.settimeout(remaining)
            chunk = sock.recv(RECV_CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise SocketQueryError(f"socket {address}: answer larger than {limit} bytes")
            if one_line and b"\n" in chunk:
                break
    except OSError as exc:
        if isinstance(exc, socket.timeout):
            raise SocketQueryError(f"socket {address}: no complete answer within {timeout:g}s") from None
        raise SocketQueryError(_explain(address, exc)) from None
    finally:
        sock.close()
    answer = b"".join(chunks)
    if one_line:
        answer = answer.split(b"\n", 1)[0]
    return answer
