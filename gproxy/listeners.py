"""Listening sockets: bound before anything else (so bind errors are seen
before daemonizing), and handed to gevent servers afterwards. Keeping them
as plain sockets is what lets a new process inherit them on upgrade.

Also what a connection accepted on them goes through before its session:
the PROXY protocol header of a bind with `accept_proxy` (parsed by
gproxy.proxy_protocol), then the TLS handshake of a bind with `ssl`
(gproxy.tls), both bounded by the frontend's client timeout."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import gevent

from gproxy.config.model import Address, BindConfig
from gproxy.errors import GproxyError
from gproxy.proxy_protocol import NEED_DATA, ProxyHeader, ProxyHeaderError, parse_header
# gproxy.tls (and OpenSSL, 4 MiB a process) is imported by the binds that use TLS only.

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


# --- what an accepted connection goes through before HTTP or TCP ------------------


@dataclass(frozen=True)
class Listener:
    """One bind of a frontend as the accept loop sees it: its options, the
    TLS context (None: plain TCP) and its name in logs (HAProxy's `fe/1`)."""

    bind: BindConfig
    tls: Any = None  # ssl.SSLContext
    name: str = "1"


@dataclass(frozen=True)
class Accepted:
    """A connection ready for its session: the socket to use (TLS-wrapped or
    not), the client (from the PROXY header when there is one) and the
    address the client connected to (None: ask the socket)."""

    sock: Any
    client: tuple[str, int]
    local: tuple[str, int] | None
    tls: bool


class PreambleError(GproxyError):
    """The PROXY header or the TLS handshake failed. `reason` is HAProxy's
    wording; `kind` says which counter it feeds ("proxy" or "ssl"); `empty`
    means the client sent nothing (not logged with dontlognull)."""

    def __init__(self, reason: str, kind: str, empty: bool = False, detail: str = ""):
        super().__init__(f"{reason} ({detail})" if detail else reason)
        self.reason = reason
        self.kind = kind
        self.empty = empty
        self.detail = detail


PROXY_PEEK_SIZE = 16384  # a v2 header with TLVs fits (proxy_protocol.V2_MAX_LENGTH)
PROXY_TRUNCATED = "Truncated PROXY protocol header received"
PROXY_TIMEOUT = "Timeout while waiting for PROXY protocol header"
PROXY_EMPTY = "Connection closed while waiting for PROXY protocol header"
PROXY_ABORTED = "Connection error while waiting for PROXY protocol header"


def read_proxy_header(sock: Any) -> ProxyHeader:
    """Consume a PROXY header from `sock` and nothing after it: bytes are
    peeked, and only the header's own bytes are read, so a TLS ClientHello
    or a request that follows stays in the socket for the next layer."""
    consumed = b""
    while True:
        try:
            peeked = sock.recv(PROXY_PEEK_SIZE, socket.MSG_PEEK)
        except TimeoutError:
            raise PreambleError(PROXY_TIMEOUT, "proxy", empty=not consumed) from None
        except OSError as exc:
            raise PreambleError(PROXY_ABORTED, "proxy", empty=not consumed, detail=exc.strerror or "") from None
        if not peeked:
            raise PreambleError(PROXY_TRUNCATED if consumed else PROXY_EMPTY, "proxy", empty=not consumed)
        try:
            result = parse_header(consumed + peeked)
        except ProxyHeaderError as exc:
            raise PreambleError(exc.summary, "proxy", detail=exc.detail) from None
        if result is NEED_DATA:
            # Every byte seen belongs to the header: take them, wait for more.
            consumed += _recv_exactly(sock, len(peeked))
            continue
        header, _ = result
        _recv_exactly(sock, header.length - len(consumed))
        return header


def _recv_exactly(sock: Any, size: int) -> bytes:
    chunks = []
    while size > 0:
        data = sock.recv(size)
        if not data:
            raise PreambleError(PROXY_TRUNCATED, "proxy")
        chunks.append(data)
        size -= len(data)
    return b"".join(chunks)


def accept_preamble(sock: Any, address: tuple[str, int], listener: Listener, timeout: float) -> Accepted:
    """PROXY header (with accept_proxy), then TLS handshake (with a context),
    both within `timeout` seconds in all (the frontend's `timeout.client`):
    a client dribbling a byte at a time does not hold a slot longer. A
    client that sends nothing at all fails with `empty` set."""
    client, local = (address[0], address[1]), None
    deadline = gevent.Timeout(timeout)
    deadline.start()
    phase = "empty"
    kind = "proxy" if listener.bind.accept_proxy else "ssl"
    try:
        _wait_first_byte(sock, kind)
        if listener.bind.accept_proxy:
            phase = "proxy"
            sock.settimeout(None)  # the deadline bounds it
            header = read_proxy_header(sock)
            if header.source is not None:
                client, local = header.source, header.destination
        if listener.tls is None:
            return Accepted(sock, client, local, tls=False)
        phase = "ssl"
        from gproxy import tls
        try:
            wrapped = tls.accept(sock, listener.tls, None)
        except tls.HandshakeError as exc:
            raise PreambleError(exc.reason, "ssl", empty=exc.empty, detail=exc.detail) from None
        return Accepted(wrapped, client, local, tls=True)
    except gevent.Timeout as exc:
        if exc is not deadline:
            raise
        if kind == "proxy" and phase != "ssl":
            raise PreambleError(PROXY_TIMEOUT, kind, empty=phase == "empty") from None
        from gproxy.tls import HANDSHAKE_TIMEOUT
        if phase == "ssl":
            raise PreambleError(HANDSHAKE_TIMEOUT, "ssl") from None
        reason = HANDSHAKE_TIMEOUT
        raise PreambleError(reason, kind, empty=phase == "empty") from None
    finally:
        deadline.cancel()


def _wait_first_byte(sock: Any, kind: str) -> None:
    """A client that connects and leaves (a port scan, a TCP health check)
    is a closed connection, not a failed handshake or a bad header."""
    sock.settimeout(None)  # the caller's deadline bounds the wait
    try:
        first = sock.recv(1, socket.MSG_PEEK)
    except OSError as exc:
        reason = PROXY_ABORTED if kind == "proxy" else _tls_reason("HANDSHAKE_ABORTED")
        raise PreambleError(reason, kind, empty=True, detail=exc.strerror or "") from None
    if not first:
        raise PreambleError(PROXY_EMPTY if kind == "proxy" else _tls_reason("HANDSHAKE_CLOSED"), kind, empty=True)


def _tls_reason(name: str) -> str:
    """One of gproxy.tls's handshake failure wordings (loaded: the bind has TLS)."""
    from gproxy import tls
    return getattr(tls, name)


def matching_listener(listeners: tuple[Listener, ...], sockname: tuple) -> Listener | None:
    """The listener whose bind address a bound socket has (inherited sockets
    come without their bind: they are matched by port, then by host)."""
    host, port = sockname[0], sockname[1]
    same_port = [item for item in listeners if item.bind.address.port == port]
    if len(same_port) <= 1:
        return same_port[0] if same_port else None
    for item in same_port:
        wanted = item.bind.address.host
        if wanted == host or (wanted in ("", "*") and host in ("0.0.0.0", "::")):
            return item
    return same_port[0]
