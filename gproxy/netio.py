"""Small socket helpers shared by the HTTP and TCP proxy layers (gevent).

`connect` opens a server connection: TCP, then the PROXY protocol header of
a server with `send_proxy`, then the TLS handshake of a server with `ssl`
(in that order: the header travels in clear, before the ClientHello).
"""

from __future__ import annotations

import errno
import os as _os
import socket as _stdsocket
import sys
from typing import Any, NoReturn

from gevent import socket
from gevent._hub_primitives import wait_on_watcher  # what a gevent socket's own wait calls
from gevent._socket3 import _closedsocket, _wrefsocket  # what gevent's socket holds, open and closed
from gevent._socketcommon import SocketMixin, cancel_wait_ex
from gevent import get_hub, getcurrent

RECV_SIZE = 65536
# Connect errors that mean "this server is not there": retry/redispatch.
CONNECT_ERRORS = (OSError, socket.timeout)


class ConnectFailed(Exception):
    def __init__(self, reason: str, timed_out: bool):
        super().__init__(reason)
        self.timed_out = timed_out


_WRITE_WATCHER = SocketMixin._write_event  # the slot under Socket's property


class Socket(socket.socket):
    """gevent's socket, made and closed for less: the proxy's client and
    server connections (one of each per request in `close` mode).

    gevent's constructor makes two io watchers, each validating the
    descriptor with fcntl(F_GETFD), and its close goes through a chain of
    interpreted calls that cancels both: here (compiled) the write watcher
    is made only when something waits for writability (a full send buffer,
    a connect still under way: rare on the hot path), and a close with no
    wait under way drops the watchers and the descriptor directly. Every
    other method is gevent's (TLS wrapping, sendall, timeouts...)."""

    __slots__ = ()

    def __init__(self, family: int, kind: int, proto: int = 0, fileno: int | None = None) -> None:
        # gevent's socket.__init__ (and SocketMixin's), less the write watcher.
        self._closed = False
        _WRITE_WATCHER.__set__(self, None)
        raw = _wrefsocket(family, kind, proto, fileno)
        self._sock = raw
        self._io_refs = 0
        raw.setblocking(False)
        hub = get_hub()
        self.hub = hub
        self._read_event = hub.loop.io(raw.fileno(), 1)
        self.timeout = _stdsocket.getdefaulttimeout()

    @property
    def _write_event(self):
        watcher = _WRITE_WATCHER.__get__(self)
        if watcher is None and self._read_event is not None:  # open (gevent drops both at close)
            watcher = self.hub.loop.io(self._sock.fileno(), 2)
            _WRITE_WATCHER.__set__(self, watcher)
        return watcher

    @_write_event.setter
    def _write_event(self, watcher) -> None:
        _WRITE_WATCHER.__set__(self, watcher)

    def _drop_events_and_close(self, closefd=True, _cancel_wait_ex=cancel_wait_ex):
        # gevent's, reading the write watcher's slot: its property would make one.
        read_event = self._read_event
        write_event = _WRITE_WATCHER.__get__(self)
        self._read_event = None
        _WRITE_WATCHER.__set__(self, None)
        self.hub.cancel_waits_close_and_then((read_event, write_event), _cancel_wait_ex,
                                             self._drop_ref_on_close if closefd else id, self._sock)

    def close(self) -> None:
        self._closed = True
        if self._io_refs > 0:
            return  # a makefile() is still open: gevent closes when it is
        raw = self._sock
        read_event = self._read_event
        write_event = _WRITE_WATCHER.__get__(self)
        if (read_event is None or read_event.callback is not None
                or (write_event is not None and write_event.callback is not None)):
            socket.socket.close(self)  # closed already, or a greenlet waits on it: gevent's way
            return
        self._read_event = None
        _WRITE_WATCHER.__set__(self, None)
        read_event.close()
        if write_event is not None:
            write_event.close()
        fd = raw.fileno()
        self._sock = _closedsocket(raw.family, raw.type, raw.proto, fd, "closed")
        loop = self.hub.loop
        if fd >= 0 and loop.closing_fd(fd):
            # libev has events of the descriptor pending: as gevent, close it
            # after they ran, so that its number is not reused under them.
            check = loop.check()
            check.start(_close_later, raw, check)
        else:
            raw.close()


def _close_later(raw, check) -> None:
    try:
        raw.close()
    except OSError:
        pass
    finally:
        check.stop()
        check.close()


_PLAIN_SOCKETS = (Socket, socket.socket)  # not TLS: the socket underneath can be read and written


def connect(host: str, port: int, timeout_ms: int, tls: Any = None, server_hostname: str | None = None,
            preamble: bytes = b"") -> socket.socket:
    """Open a connection to a server; raise ConnectFailed with a reason.

    `preamble` (a PROXY header) is sent first; with `tls` (an SSLContext) the
    handshake follows, within the same connect timeout, and a failed one is a
    failed connect (retried, counted in econ)."""
    sock = _connect_tcp(host, port, timeout_ms)
    if preamble:
        send_preamble(sock, preamble)
    if tls is None:
        return sock
    try:
        return tls.wrap_socket(sock, server_hostname=server_hostname)
    except socket.timeout:
        sock.close()
        raise ConnectFailed("SSL handshake timed out", timed_out=True) from None
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        sock.close()
        detail = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise ConnectFailed(f"SSL handshake failure ({detail})", timed_out=False) from None


def send_preamble(sock: socket.socket, preamble: bytes) -> None:
    """Send a PROXY header on a new connection; a failure is a failed connect
    (`sock` closed, ConnectFailed)."""
    try:
        sock.sendall(preamble)
    except OSError as exc:
        sock.close()
        raise ConnectFailed(exc.strerror or str(exc), timed_out=False) from None


def connect_sending(host: str, port: int, timeout_ms: int, data: bytes) -> tuple[socket.socket, int]:
    """Open a plain TCP connection to a server and send `data` on it at once;
    return the socket and how many bytes of `data` went (the caller sends the
    rest). Raise ConnectFailed as connect() does.

    The send is tried as soon as the connect is under way, before any wait:
    on loopback the handshake is over when connect() returns (its SYN,
    SYN-ACK and ACK go through the kernel within the call: every time in
    3,000 tries), and a send that succeeds proves the connection up, with no wait for
    writability through the hub and no timer. Linux answers EAGAIN while the
    handshake is on: only then is it waited for, within the connect timeout.
    A send that fails with nothing sent is a failed connect (retried)."""
    family = _literal_family(host)
    if family is None:  # a name: resolved by gevent's own connect
        return _connect_tcp(host, port, timeout_ms), 0
    sock, err = _start_connect(family, host, port)
    if err == 0 or err == errno.EINPROGRESS:
        sock.settimeout(timeout_ms / 1000.0)  # the caller sets its own for the exchange
        try:
            return sock, sock._sock.send(data)
        except BlockingIOError:  # the handshake is still on (a remote server)
            _wait_connected(sock, timeout_ms)
            return sock, 0
        except OSError as exc:
            err = exc.errno or errno.EPIPE
    _failed(sock, err)


def _connect_tcp(host: str, port: int, timeout_ms: int) -> socket.socket:
    family = _literal_family(host)
    if family is None:
        return _connect_resolving(host, port, timeout_ms)
    sock, err = _start_connect(family, host, port)
    if err == errno.EINPROGRESS:
        _wait_connected(sock, timeout_ms)
    elif err:
        _failed(sock, err)
    sock.settimeout(timeout_ms / 1000.0)  # a PROXY header and a TLS handshake follow within it
    return sock


def _start_connect(family: int, host: str, port: int) -> tuple[socket.socket, int]:
    """A new gevent socket with its non-blocking connect started: (socket, errno).

    gevent's connect() costs, per connection, a Timeout started and cancelled,
    two SO_ERROR reads, two connect() calls and a wait for writability even
    when the handshake is already over: the connect is done here on the
    socket underneath, and the wait left to the caller."""
    sock = Socket(family, socket.SOCK_STREAM)
    raw = sock._sock  # non-blocking: gevent's sockets are
    # Set before the connect (inherited by the connection): a head and its body
    # sent apart must not wait on Nagle.
    raw.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)
    return sock, raw.connect_ex((host, port))


def _wait_connected(sock: socket.socket, timeout_ms: int) -> None:
    """Wait until the connect under way on `sock` ends, within `timeout_ms`;
    close `sock` and raise ConnectFailed if it failed or timed out."""
    timer = sock.hub.loop.timer(timeout_ms / 1000.0, ref=True, priority=-1)  # as gevent's Timeout
    # update=True: the timeout counts from now, not from the loop's last poll.
    timer.start(_throw_timeout, getcurrent(), update=True)
    try:
        wait_on_watcher(sock._write_event, None, None, sock.hub)
    except socket.timeout:
        sock.close()
        raise ConnectFailed("Connection timed out", timed_out=True) from None
    except BaseException:
        sock.close()
        raise
    finally:
        timer.stop()
        timer.close()
    err = sock._sock.getsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_ERROR)
    if err:
        _failed(sock, err)


def _failed(sock: socket.socket, err: int) -> NoReturn:
    sock.close()
    if err == errno.ETIMEDOUT:  # the kernel gave up its SYN retries first
        raise ConnectFailed(_os.strerror(err), timed_out=True)
    raise ConnectFailed(_os.strerror(err), timed_out=False)


def _literal_family(host: str) -> int | None:
    """AF_INET or AF_INET6 for an IP literal, None for a name (cached: a
    server's host is asked about on every connect)."""
    try:
        return _FAMILIES[host]
    except KeyError:
        pass
    family = None
    for candidate in (_stdsocket.AF_INET, _stdsocket.AF_INET6):
        try:
            _stdsocket.inet_pton(candidate, host)
        except OSError:
            continue
        family = candidate
        break
    if len(_FAMILIES) < MAX_CACHED_HOSTS:
        _FAMILIES[host] = family
    return family


MAX_CACHED_HOSTS = 4096  # servers' hosts (configuration and runtime API): a bound, not a size
_FAMILIES: dict[str, int | None] = {}


def _connect_resolving(host: str, port: int, timeout_ms: int) -> socket.socket:
    """A connect to a host name, through gevent (its resolver does not block the hub)."""
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


def quick_ack(sock) -> None:
    """ACK the server's next segments at once on a reused connection.

    A new connection starts in the kernel's quick-ACK mode; a kept-alive one
    has left it and delays its ACKs up to 40 ms. A server that writes its
    response head and body in two sends without TCP_NODELAY (Nagle) then
    holds the body until that delayed ACK: 44 ms per request that a new
    connection would not pay. The mode is not sticky, so it is asked for
    again after each request is sent."""
    try:
        sock.setsockopt(_stdsocket.IPPROTO_TCP, _QUICKACK, 1)
    except OSError:
        pass  # a TLS wrapper or a closed socket: the delay is only a cost


_QUICKACK = getattr(_stdsocket, "TCP_QUICKACK", 12)  # Linux's value


def send_all(sock, data: bytes, timeout: float | None = None) -> None:
    """Send all of `data`, as `sendall` does, with one send() when it fits;
    `timeout` (seconds), when given, becomes the socket's timeout before it
    has to wait for the rest (a send that fits needs none: not set then).

    gevent's sendall asks the kernel for SO_SNDBUF (a getsockopt system call)
    and reads the clock on every call, whatever the size: on the hot path,
    where a request head or a small response is sent whole by one send(),
    that was a tenth of the worker's time (docs/performance.md)."""
    if not data:
        return  # an empty send breaks TLS sockets (gevent issue 719), as sendall knows
    if type(sock) in _PLAIN_SOCKETS:
        # Straight on the socket underneath (non-blocking): gevent's send()
        # is a Python frame around the same call. Only a full buffer (EAGAIN)
        # or a partial send goes through gevent's sendall and its wait.
        try:
            sent = sock._sock.send(data)
        except BlockingIOError:
            sent = 0
    else:
        sent = sock.send(data)
    if sent < len(data):
        if timeout is not None:
            sock.settimeout(timeout)
        sock.sendall(memoryview(data)[sent:])


def recv_when_readable(sock, size: int, deadline: ReusableDeadline | None = None) -> bytes:
    """recv() on a socket whose peer has had no time to send yet (a response
    just asked for, the next request of a kept-alive client): wait for
    readability first. gevent's recv() tries the read before waiting, and on
    the hot path that try is an EAGAIN system call per message. TLS sockets
    read as usual (their layer may hold decrypted bytes the fd does not show).

    The wait is bounded by the socket's timeout, or by `deadline` (see
    `reusable_deadline`) when given: gevent makes a Timeout and its timer
    for each wait otherwise, 1.3 us more per wait."""
    if type(sock) in _PLAIN_SOCKETS:
        if deadline is None:
            sock._wait(sock._read_event)  # gevent's own wait: the socket's timeout, socket.timeout
        else:
            while True:
                deadline.start()
                try:
                    wait_on_watcher(sock._read_event, None, None, sock.hub)
                finally:
                    deadline.cancel()
                try:
                    return sock._sock.recv(size)  # readable: no gevent frame around the call
                except BlockingIOError:
                    continue  # woken with nothing to read after all: wait again
        try:
            return sock._sock.recv(size)
        except BlockingIOError:
            pass  # nothing to read after all: gevent's recv waits again (socket timeout)
    return sock.recv(size)


class ReusableDeadline:
    """A deadline for recv_when_readable(): one libev timer for a connection's
    life, started and stopped at each wait; it raises socket.timeout in the
    waiting greenlet, as a socket timeout does. gevent's Timeout does the same
    through start()/cancel() (a pending check and exception dispatch in Python
    per wait: 0.42 us per start and cancel against 0.10 us for the timer alone,
    and there are two such waits per keep-alive request)."""

    __slots__ = ("_timer",)

    def __init__(self, seconds: float) -> None:
        self._timer = get_hub().loop.timer(seconds, ref=True, priority=-1)  # as gevent's Timeout

    def start(self) -> None:
        # update=True: the loop's clock is refreshed first, so the deadline is
        # not shortened by the time the loop spent since its last poll.
        self._timer.start(_throw_timeout, getcurrent(), update=True)

    def cancel(self) -> None:
        self._timer.stop()

    def close(self) -> None:
        self._timer.stop()
        self._timer.close()


def _throw_timeout(greenlet) -> None:
    greenlet.throw(socket.timeout("timed out"))


def reusable_deadline(seconds: float) -> ReusableDeadline:
    """A deadline for recv_when_readable() (see ReusableDeadline)."""
    return ReusableDeadline(seconds)


class IdleConnection:
    """A kept-alive server connection waiting in its server's pool (`pool`,
    the server's `idle` list), watched meanwhile as HAProxy watches its idle
    connections: if the server closes it or sends anything (a stray 408
    before closing), it leaves the pool and is closed at once. So a request
    is not sent on a connection the server dropped, and nothing is read on
    reuse to check it (that was a MSG_PEEK recv per request).

    The watcher is the socket's own read watcher (gevent's, idle while no
    greenlet reads): a new watcher per pooling would cost an fcntl() each."""

    __slots__ = ("sock", "_pool")

    def __init__(self, sock, pool: list) -> None:
        self.sock = sock
        self._pool = pool
        sock._read_event.start(self._on_event)

    def take(self):
        """Out of the pool for a request: the socket, its watcher free again for gevent."""
        self.sock._read_event.stop()
        return self.sock

    def _on_event(self) -> None:
        try:
            self._pool.remove(self)
        except ValueError:
            pass
        self.close()

    def close(self) -> None:
        self.sock._read_event.stop()  # before close: gevent must find no callback on it
        close_quietly(self.sock)


def is_tls(sock) -> bool:
    """A TLS socket? Asked without importing the ssl module (OpenSSL costs a
    process 4 MiB): no TLS socket exists before something imported it."""
    tls = sys.modules.get("gevent.ssl")
    return tls is not None and isinstance(sock, tls.SSLSocket)


def close_quietly(sock) -> None:
    if sock is None:
        return
    try:
        sock.close()
    except OSError:
        pass


def shutdown_write(sock) -> None:
    try:
        if is_tls(sock):
            # SSLSocket.shutdown() forgets the TLS layer, and the other
            # direction still reads through it: half-close the TCP socket only.
            socket.socket.shutdown(sock, socket.SHUT_WR)
        else:
            sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
