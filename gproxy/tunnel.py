"""Raw two-way relay: TCP mode, and HTTP after 101 Switching Protocols.

Two plain sockets are relayed by the event loop itself, without a greenlet
per direction: a readable socket's callback reads into one buffer shared by
the whole process and writes it to the other side at once, so that a relayed
message costs one read and one write system call and no greenlet switch
(gevent's recv() tries the read again before waiting, an EAGAIN each time).
What a full write leaves behind is kept per direction and that direction
stops reading until it is written: nothing of 64 KiB is held per connection.
A direction whose reads fill the buffer (a bulk transfer) moves to
os.splice() through a pipe of its own, so its bytes stay in the kernel.

TLS sockets (a TLS bind or server, whose reads go through the TLS layer)
are relayed by one greenlet per direction, as before.

Each direction ends at its EOF (the other side then gets a half-close), at
an error, or after `timeout` seconds without progress; the downward one
(server to client) ending by error or inactivity ends the tunnel.
"""

from __future__ import annotations

import fcntl
import os

import gevent
from gevent import socket
from gevent.hub import Waiter, get_hub

from gproxy.netio import RECV_SIZE, is_tls, send_all, shutdown_write

# os.splice() is Linux only; a direction switches to it after a read that
# filled the whole buffer, i.e. for bulk transfers, where keeping the bytes
# in the kernel saves a copy out and a copy in. Small messages stay on
# read/write: the same number of system calls, and no pipe to allocate.
SPLICE = hasattr(os, "splice")
SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
PIPE_SIZE = 262144  # asked of F_SETPIPE_SZ; the kernel's default (64 KiB) when refused
F_SETPIPE_SZ = 1031  # <linux/fcntl.h>
EV_READ, EV_WRITE = 1, 2

# One read buffer for the whole process: callbacks run one at a time in the
# hub, and a buffer's content is written (or copied aside) before returning.
_BUFFER = bytearray(RECV_SIZE)
_VIEW = memoryview(_BUFFER)
_BUFFERS = (_BUFFER,)


class TunnelResult:
    __slots__ = ("up", "down", "client_closed_first", "timed_out", "error_side")

    def __init__(self) -> None:
        self.up = 0  # client -> server bytes
        self.down = 0  # server -> client bytes
        self.client_closed_first = False
        self.timed_out = False
        self.error_side = ""  # "client" | "server" | ""


def relay(client, server, timeout: float, leftover_client: bytes = b"",
          leftover_server: bytes = b"") -> TunnelResult:
    """Relay until both directions finished (EOF, error or `timeout` of inactivity)."""
    result = TunnelResult()
    if leftover_client:
        send_all(server, leftover_client)
        result.up += len(leftover_client)
    if leftover_server:
        send_all(client, leftover_server)
        result.down += len(leftover_server)
    if is_tls(client) or is_tls(server):
        _relay_greenlets(client, server, timeout, result)
    else:
        _EventRelay(client, server, timeout, result).run()
    return result


def pump_both_ways(client, server, timeout: float, leftover_client: bytes = b"",
                   leftover_server: bytes = b"") -> tuple[int, int]:
    result = relay(client, server, timeout, leftover_client, leftover_server)
    return result.up, result.down


# --------------------------------------------------------------------------- plain sockets: the event loop


class _Direction:
    """One way of a tunnel: read `src`, write `dst`."""

    __slots__ = ("tunnel", "upward", "src_sock", "dst_sock", "src", "dst", "reader", "writer",
                 "pending", "pipe", "in_pipe", "last", "total", "done")

    def __init__(self, tunnel: "_EventRelay", src_sock, dst_sock, upward: bool) -> None:
        loop = tunnel.loop
        self.tunnel = tunnel
        self.upward = upward
        self.src_sock, self.dst_sock = src_sock, dst_sock
        self.src, self.dst = src_sock.fileno(), dst_sock.fileno()
        self.reader = loop.io(self.src, EV_READ)
        self.writer = loop.io(self.dst, EV_WRITE)
        self.pending = b""  # read, not yet written (copy mode)
        self.pipe: tuple[int, int] | None = None  # (read end, write end) once splicing
        self.in_pipe = 0  # bytes spliced in, not yet out
        self.last = loop.now()  # the last progress, for the inactivity timeout
        self.total = 0
        self.done = False

    # The side a failed read or write blames, in the log's termination flags.
    def _src_side(self) -> str:
        return "client" if self.upward else "server"

    def _dst_side(self) -> str:
        return "server" if self.upward else "client"

    def start(self) -> None:
        self.reader.start(self.on_readable)

    def on_readable(self) -> None:
        try:
            if self.pipe is not None:
                self._splice_in()
                return
            try:
                count = os.readv(self.src, _BUFFERS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.tunnel.end_direction(self, error=self._src_side())
                return
            if not count:
                self.tunnel.end_direction(self, eof=True)
                return
            self.last = self.tunnel.loop.now()
            try:
                sent = os.write(self.dst, _VIEW[:count])
            except BlockingIOError:
                sent = 0
            except OSError:
                self.tunnel.end_direction(self, error=self._dst_side())
                return
            self.total += sent
            if sent < count:
                self.pending = _VIEW[sent:count].tobytes()
                self._wait_writable()
            elif count == RECV_SIZE and SPLICE:
                self._open_pipe()
        except BaseException as exc:  # noqa: BLE001 - never let it out into the hub
            self.tunnel.crash(exc)

    def on_writable(self) -> None:
        try:
            if self.pipe is not None:
                if self._splice_out():
                    self._resume_reading()
                return
            pending = self.pending
            try:
                sent = os.write(self.dst, pending)
            except BlockingIOError:
                return
            except OSError:
                self.tunnel.end_direction(self, error=self._dst_side())
                return
            self.total += sent
            self.last = self.tunnel.loop.now()
            if sent < len(pending):
                self.pending = pending[sent:]
                return
            self.pending = b""
            self._resume_reading()
        except BaseException as exc:  # noqa: BLE001
            self.tunnel.crash(exc)

    def _wait_writable(self) -> None:
        self.reader.stop()
        self.writer.start(self.on_writable)

    def _resume_reading(self) -> None:
        self.writer.stop()
        self.reader.start(self.on_readable)

    def _open_pipe(self) -> None:
        """Move this direction to splice(); stay on copies if no pipe can be had (EMFILE)."""
        try:
            read_end, write_end = os.pipe()
        except OSError:
            return
        try:
            fcntl.fcntl(write_end, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # the default size still works
        self.pipe = (read_end, write_end)

    def _splice_in(self) -> None:
        assert self.pipe is not None
        try:
            count = os.splice(self.src, self.pipe[1], PIPE_SIZE, flags=SPLICE_FLAGS)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.tunnel.end_direction(self, error=self._src_side())
            return
        if not count:
            self.tunnel.end_direction(self, eof=True)
            return
        self.in_pipe = count
        self.last = self.tunnel.loop.now()
        if not self._splice_out():
            self._wait_writable()

    def _splice_out(self) -> bool:
        """Move what the pipe holds to `dst`; True once it is empty."""
        assert self.pipe is not None
        while self.in_pipe:
            try:
                sent = os.splice(self.pipe[0], self.dst, self.in_pipe, flags=SPLICE_FLAGS)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                self.tunnel.end_direction(self, error=self._dst_side())
                return False
            self.in_pipe -= sent
            self.total += sent
            self.last = self.tunnel.loop.now()
        return True

    def stop(self) -> None:
        self.reader.stop()
        self.writer.stop()
        if self.pipe is not None:
            for end in self.pipe:
                os.close(end)
            self.pipe = None

    def close(self) -> None:
        self.stop()
        self.reader.close()
        self.writer.close()


class _EventRelay:
    """Both directions of a plain tunnel, driven by loop callbacks; `run()`
    blocks the calling greenlet until the tunnel ends."""

    def __init__(self, client, server, timeout: float, result: TunnelResult) -> None:
        self.loop = get_hub().loop
        self.result = result
        self.timeout = timeout
        self.up = _Direction(self, client, server, upward=True)
        self.down = _Direction(self, server, client, upward=False)
        self.timer = None
        self.waiter: Waiter | None = None
        self.failure: BaseException | None = None
        self.finished = False

    def run(self) -> None:
        self.waiter = Waiter()
        try:
            self.up.start()
            self.down.start()
            self._arm(self.timeout)
            self.waiter.get()
        finally:
            self._stop()
            self.up.close()
            self.down.close()
            result = self.result
            result.up += self.up.total
            result.down += self.down.total
        if self.failure is not None:
            raise self.failure

    # ---- called from the loop's callbacks --------------------------------------
    def end_direction(self, direction: _Direction, eof: bool = False, error: str = "",
                      timed_out: bool = False) -> None:
        if direction.done:
            return
        direction.done = True
        direction.stop()
        result = self.result
        if eof and direction.upward and not result.down and not (self.down.done and self.down.total):
            result.client_closed_first = True  # before the server side sent its last byte
        if error:
            result.error_side = result.error_side or error
        if timed_out:
            result.timed_out = True
        shutdown_write(direction.dst_sock)  # the peer sees EOF once this direction is finished
        # The server's side ending by error or inactivity ends the tunnel, as
        # the relay did with a greenlet per direction.
        if self.up.done and self.down.done or (not direction.upward and not eof):
            self._finish()

    def crash(self, exc: BaseException) -> None:
        self.failure = exc
        self._finish()

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self._stop()
        if self.waiter is not None:
            self.waiter.switch(None)

    def _stop(self) -> None:
        self.up.stop()
        self.down.stop()
        if self.timer is not None:
            self.timer.stop()
            self.timer.close()
            self.timer = None

    def _arm(self, after: float) -> None:
        if self.timeout <= 0:
            return
        if self.timer is not None:
            self.timer.stop()
            self.timer.close()
        self.timer = self.loop.timer(after)
        self.timer.start(self._on_timer, update=True)  # from the real now, not a stale loop clock

    def _on_timer(self) -> None:
        """Inactivity: progress does not re-arm the timer (that would cost a
        call per message); the timer, when it fires, compares each direction's
        last progress with the timeout and sleeps again for what is left."""
        try:
            now = self.loop.now()
            for direction in (self.up, self.down):
                if not direction.done and now - direction.last >= self.timeout:
                    if direction.pending or direction.in_pipe:
                        # Blocked writing: the receiving side did not read.
                        self.end_direction(direction, error=direction._dst_side())
                    else:
                        self.end_direction(direction, timed_out=True)
            if self.finished:
                return
            waiting = [d.last for d in (self.up, self.down) if not d.done]
            if waiting:
                self._arm(max(0.001, min(waiting) + self.timeout - now))
        except BaseException as exc:  # noqa: BLE001
            self.crash(exc)


# --------------------------------------------------------------------------- TLS: a greenlet per direction


def _pump(src, dst, timeout: float, result: TunnelResult, upward: bool) -> None:
    src.settimeout(timeout)
    dst.settimeout(timeout)
    total = 0
    try:
        while True:
            try:
                data = src.recv(RECV_SIZE)
            except socket.timeout:
                result.timed_out = True
                break
            except OSError:
                result.error_side = result.error_side or ("client" if upward else "server")
                break
            if not data:
                if upward and not result.down:
                    result.client_closed_first = True
                break
            try:
                send_all(dst, data)  # one send() per read, without gevent's getsockopt
            except (OSError, socket.timeout):
                result.error_side = result.error_side or ("server" if upward else "client")
                break
            total += len(data)
    finally:
        if upward:
            result.up += total
        else:
            result.down += total
        # Half-close: the peer sees EOF once this direction is finished.
        shutdown_write(dst)


def _relay_greenlets(client, server, timeout: float, result: TunnelResult) -> None:
    upward = gevent.spawn(_pump, client, server, timeout, result, True)
    try:
        _pump(server, client, timeout, result, False)
        if result.timed_out or result.error_side:
            upward.kill(block=True)
        else:
            upward.join(timeout)
            if not upward.dead:
                result.timed_out = True
                upward.kill(block=True)
    finally:
        if not upward.dead:
            upward.kill(block=True)
