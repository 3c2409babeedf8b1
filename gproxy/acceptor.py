"""Accepting client connections, and holding idle ones without a greenlet.

`Acceptor` is a gevent StreamServer that hands each accepted connection to
a callback run in the hub (no greenlet is spawned for it) and stops
accepting while the caller says it is full (maxconn), until `resume()`:
backpressure stays at accept, as with a bounded pool. Accepts come in
batches of at most ACCEPT_BATCH per readiness of the listening socket, so
that a burst of new connections does not starve established ones.

`Parked` holds a connection that waits for its client's next bytes (the
first request, or the next one on a kept-alive connection): an io watcher
(the socket's own) and a timer, a few hundred bytes, where a greenlet blocked in recv() keeps
its saved stack (several KiB) for as long as the client stays silent. When
the socket turns readable (data, EOF or an error alike) or the timeout
expires, the callback runs once, in the hub, and is told which.
"""

from __future__ import annotations

from typing import Any, Callable

from gevent.hub import get_hub
from gevent.server import StreamServer
from gproxy.netio import Socket

# Accepted connections per readiness of a listening socket (gevent's default
# is 100; HAProxy's tune.maxaccept is 64): each one costs a callback in the
# hub, and ready connections wait meanwhile.
ACCEPT_BATCH = 64


class Acceptor(StreamServer):
    """Calls `on_accept(sock, address)` in the hub for each connection, which
    then belongs to the callee (it is not closed when the callback returns)."""

    max_accept = ACCEPT_BATCH

    def __init__(self, listener: Any, on_accept: Callable[[Any, Any], None], is_full: Callable[[], bool]):
        super().__init__(listener, handle=on_accept, spawn=None)
        self._is_full = is_full

    def full(self) -> bool:  # noqa: D102 - gevent stops accepting while this is True
        return self._is_full()

    def init_socket(self) -> None:
        super().init_socket()
        listener = self.socket  # the standard library's socket under gevent's
        self._raw_accept = listener._accept
        # Plain ints, asked once: the standard socket's family and type are
        # properties that build an enum member on every read.
        self._socket_args = (int(listener.family), int(listener.type), listener.proto)

    def do_read(self) -> tuple[Any, Any] | None:
        """One accepted connection as a gevent socket, as gevent's do_read, less
        its per-connection costs: the listening socket's family and type read
        (an enum built from each), a method lookup through gevent's wrapper."""
        try:
            fd, address = self._raw_accept()
        except BlockingIOError:
            if not self.socket.timeout:
                return None  # nothing (left) to accept
            raise
        family, kind, proto = self._socket_args
        return Socket(family, kind, proto, fd), address

    def do_close(self, *args: Any) -> None:
        """gevent closes a connection when its handler returns: ours live on."""

    def resume(self) -> None:
        """A connection ended: accept again if maxconn had stopped it."""
        if self.started and not self.closed and self._watcher is None and not self._is_full():
            self.start_accepting()


class Parked:
    """Wait, without a greenlet, until the gevent socket `sock` is readable or
    `timeout` seconds passed; then `callback(timed_out)` runs once in the hub.
    `cancel()` stops the wait without calling it.

    The read watcher is the socket's own (gevent's, idle while no greenlet
    reads it): a new io watcher would cost an fcntl() per wait."""

    __slots__ = ("_watcher", "_timer", "_callback")

    def __init__(self, sock: Any, timeout: float | None, callback: Callable[[bool], None]):
        loop = get_hub().loop
        self._callback: Callable[[bool], None] | None = callback
        self._watcher = sock._read_event
        self._watcher.start(self._fire, False)
        self._timer = None
        if timeout is not None:
            self._timer = loop.timer(max(0.0, timeout))
            # update=True: from a stale loop clock (the hub blocked for a while)
            # the timer would expire at once and close a connection that just came.
            self._timer.start(self._fire, True, update=True)

    @property
    def waiting(self) -> bool:
        return self._callback is not None

    def _fire(self, timed_out: bool) -> None:
        callback = self._callback
        self.cancel()
        if callback is not None:
            callback(timed_out)

    def cancel(self) -> None:
        self._callback = None
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()  # the socket's: stopped, not closed (gevent reads with it next)
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.stop()
            timer.close()
