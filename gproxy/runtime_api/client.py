"""`gproxy ctl`'s side of the stats socket: send command lines, read the
answer until the daemon closes (non-interactive mode), like `socat`."""

from __future__ import annotations

import socket

from gproxy.config.model import Config, StatsSocket

CLIENT_TIMEOUT = 10.0  # seconds without a byte before giving up
RECV_SIZE = 65536
LEVEL_ORDER = {"admin": 0, "operator": 1, "user": 2}


class CtlError(Exception):
    """The socket cannot be reached; the message is one line for the user."""


def pick_socket(config: Config) -> StatsSocket:
    """The configuration's most privileged stats socket (first one on ties)."""
    sockets = config.global_.stats_sockets
    if not sockets:
        raise CtlError(f"{config.source or 'the configuration'}: no global.stats_socket is configured")
    return min(sockets, key=lambda s: LEVEL_ORDER[s.level])


def send(path: str, line: str, timeout: float = CLIENT_TIMEOUT) -> bytes:
    """Send one command line (`;` separates several) and return the answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except OSError as exc:
            raise CtlError(f"cannot connect to {path}: {exc.strerror or exc}") from None
        try:
            sock.sendall(line.encode("latin-1", "replace") + b"\n")
            chunks = []
            while True:
                data = sock.recv(RECV_SIZE)
                if not data:
                    break
                chunks.append(data)
        except socket.timeout:
            raise CtlError(f"{path}: no answer within {timeout:g}s") from None
        except OSError as exc:
            raise CtlError(f"{path}: {exc.strerror or exc}") from None
        return b"".join(chunks)
    finally:
        sock.close()
