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

import os as _os
import sys
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

    def _do_read(self) -> None:
        """gevent's accept loop (BaseServer._do_read, interpreted), compiled
        here with do_read and do_handle inlined: per accepted connection that
        was four interpreted calls (do_read, do_handle, a handle-and-close
        wrapper, do_close) before `on_accept` ran. Errors are handled as
        gevent does (reported, accepting paused with a growing delay)."""
        accept = self._raw_accept
        family, kind, proto = self._socket_args
        on_accept = self._handle
        is_full = self._is_full
        for _ in range(ACCEPT_BATCH):
            if is_full():
                self.stop_accepting()  # resume() starts it again
                return
            try:
                fd, address = accept()
            except BlockingIOError:
                if not self.socket.timeout:
                    return  # nothing (left) to accept
                self._accept_failed(self, True)
                return
            except BaseException:  # noqa: BLE001 - as gevent: reported, then paused
                self._accept_failed(self, True)
                return
            self.delay = self.min_delay
            try:
                sock = Socket(family, kind, proto, fd)
            except BaseException:  # noqa: BLE001
                _close_fd(fd)
                self._accept_failed(self, True)
                return
            try:
                on_accept(sock, address)
            except BaseException:  # noqa: BLE001 - the callee closed the connection
                self._accept_failed(((address,), self), False)
                return

    def _accept_failed(self, context: Any, fatal_checked: bool) -> None:
        """The current exception, as gevent's accept loop handles it: reported
        (the hub's handle_error), the server closed if the error is fatal
        (an accept error only), else accepting paused for `delay`, doubled up
        to max_delay at each consecutive failure."""
        exc_info = sys.exc_info()
        self.loop.handle_error(context, *exc_info)
        if fatal_checked and self.is_fatal_error(exc_info[1]):
            self.close()
            sys.stderr.write("ERROR: %s failed with %s\n" % (self, str(exc_info[1]) or repr(exc_info[1])))
            return
        if self.delay >= 0:
            self.stop_accepting()
            self._timer = self.loop.timer(self.delay)
            self._timer.start(self._start_accepting_if_started)
            self.delay = min(self.max_delay, self.delay * 2)

    def do_close(self, *args: Any) -> None:
        """gevent closes a connection when its handler returns: ours live on."""

    def resume(self) -> None:
        """A connection ended: accept again if maxconn had stopped it."""
        if self.started and not self.closed and self._watcher is None and not self._is_full():
            self.start_accepting()


def _close_fd(fd: int) -> None:
    try:
        _os.close(fd)
    except OSError:
        pass


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
