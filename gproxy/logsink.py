"""Where log lines go: syslog over UDP or a unix socket, or stderr.

The engine hands over a `RequestRecord` and a formatter (or a ready message)
and goes on: `log_record`/`log_message` only append to a bounded deque. A
background greenlet wakes when the queue becomes non-empty, formats the
records and sends each line to every target. Nothing here may slow down or
crash the proxy, so:

- datagram sockets are non-blocking; a send that would block (EAGAIN) drops
  the line, like HAProxy, and every lost line counts in `dropped` (HAProxy's
  `DroppedLogs` in `show info`);
- when the queue holds `max_pending` lines, new ones are dropped and counted
  rather than letting memory grow behind a stalled sink;
- a unix socket that is missing or refuses (syslogd restarting) is retried
  after `RECONNECT_DELAY` seconds, measured on the injected clock;
- a formatter that raises loses its line (counted) and prints a traceback,
  the other lines still go out.

Each target has its own facility, tag and default severity (`LogTarget`).
Syslog datagrams follow RFC 3164 without a host name, newline-terminated,
as HAProxy sends them; stderr gets the bare line.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
import traceback
from collections import deque
from typing import Callable, Sequence

import gevent
from gevent.event import Event

from gproxy.config.model import LogTarget
from gproxy.logfmt import FACILITIES, SEVERITIES, RequestRecord, rfc3164_prefix

__all__ = ["LogSink", "parse_target", "DEFAULT_MAX_PENDING", "DEFAULT_MAX_LINE", "RECONNECT_DELAY"]

DEFAULT_MAX_PENDING = 10_000  # lines held while the sink greenlet catches up
DEFAULT_MAX_LINE = 1024  # bytes per datagram: HAProxy's default `log ... len`
DEFAULT_SYSLOG_PORT = 514
RECONNECT_DELAY = 1.0  # seconds between attempts on a missing/refusing unix socket
BATCH_SIZE = 256  # lines the greenlet sends before yielding to the proxy

Formatter = Callable[[RequestRecord], str]

_KIND_UDP = "udp"
_KIND_UNIX = "unix"
_KIND_STDERR = "stderr"

# A unix datagram peer that went away (syslogd restarted): reconnect later.
_RECONNECT_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ENOTCONN, errno.ENOENT, errno.EPIPE, errno.EDESTADDRREQ, errno.EBADF}
)


def parse_target(target: str) -> tuple[str, str | tuple[str, int] | None]:
    """Split a log target into (kind, address).

    Accepts "udp://host:port", "udp://[v6]:port", "unix://PATH", "stderr",
    and HAProxy's bare forms "host[:port]" and "/path". The port defaults
    to 514. Raises ValueError on anything else.
    """
    if target == "stderr":
        return _KIND_STDERR, None
    if target.startswith("unix://"):
        path = target[len("unix://"):]
        if not path:
            raise ValueError(f"log target {target!r}: empty socket path")
        return _KIND_UNIX, path
    if target.startswith("/"):
        return _KIND_UNIX, target
    rest = target[len("udp://"):] if target.startswith("udp://") else target
    if "://" in rest or not rest:
        raise ValueError(f"log target {target!r}: expected udp://host:port, unix://PATH or stderr")
    port_text = ""
    if rest.startswith("["):
        host, sep, tail = rest[1:].partition("]")
        if not sep or (tail and not tail.startswith(":")):
            raise ValueError(f"log target {target!r}: bad IPv6 address")
        port_text = tail[1:]
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
    else:
        host = rest  # a name, an IPv4 address or a bare IPv6 address
    if not host:
        raise ValueError(f"log target {target!r}: no host")
    port = DEFAULT_SYSLOG_PORT
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"log target {target!r}: bad port {port_text!r}")
        port = int(port_text)
    return _KIND_UDP, (host, port)


class _Sender:
    """One destination: its socket, its syslog identity and its failures.

    A UDP target gets a *connected* socket: `send()` then skips the address
    conversion in Python and the route lookup in the kernel that `sendto()`
    pays on every datagram. The syslog head (`<PRI>date tag[pid]: `) is the
    same for all lines of one second, so it is built once per second and
    severity.
    """

    def __init__(self, config: LogTarget, tag: str, pid: int, max_line: int) -> None:
        self.config = config
        self.kind, self.address = parse_target(config.target)
        if config.facility not in FACILITIES:
            raise ValueError(f"log target {config.target!r}: unknown facility {config.facility!r}")
        if config.level not in SEVERITIES:
            raise ValueError(f"log target {config.target!r}: unknown level {config.level!r}")
        self.facility = config.facility
        self.severity = config.level
        self.tag = tag
        self.pid = pid
        self.max_line = max_line
        self.sock: socket.socket | None = None
        self.sockaddr: tuple | str | None = None
        self.retry_at = 0.0  # clock time before which no reconnect is tried
        self.errors = 0  # lines this target failed to take
        self._prefix_second = -1  # the second the cached heads are for
        self._prefixes: dict[str | None, str] = {}  # severity (None: the target's) -> head

    def send(self, line: str, severity: str | None, now: float) -> bool:
        """Send one line; False when it was lost. Never raises for I/O."""
        if self.kind == _KIND_STDERR:
            try:
                sys.stderr.write(line + "\n")
                return True
            except (OSError, ValueError):  # closed or broken stderr
                return self._failed()
        second = int(now)
        if second != self._prefix_second:
            self._prefix_second = second
            self._prefixes.clear()
        prefix = self._prefixes.get(severity)
        if prefix is None:
            prefix = self._prefixes[severity] = rfc3164_prefix(
                self.facility, severity or self.severity, self.tag, self.pid, second
            )
        # Byte for byte what format_rfc3164 gives (tests compare the two).
        data = f"{prefix}{line}\n".encode("utf-8", "backslashreplace")
        if len(data) > self.max_line:
            data = data[: self.max_line - 1] + b"\n"
        sock = self.sock
        if sock is None:
            if not self._open(now):
                return self._failed()
            sock = self.sock
            assert sock is not None
        try:
            sock.send(data)
            return True
        except BlockingIOError:
            return self._failed()  # the peer can't follow: drop, don't wait
        except OSError as exc:
            # A connected UDP socket reports an ICMP "port unreachable" of an
            # earlier datagram on a later send (ECONNREFUSED): no syslogd there
            # right now. That line is lost; the socket stays and the next line
            # is tried as usual, the target is never given up.
            if self.kind == _KIND_UNIX and exc.errno in _RECONNECT_ERRNOS:
                self.close()
                self.retry_at = now + RECONNECT_DELAY
            return self._failed()

    def _failed(self) -> bool:
        self.errors += 1
        return False

    def _open(self, now: float) -> bool:
        if now < self.retry_at:
            return False
        sock = None
        try:
            if self.kind == _KIND_UDP:
                assert isinstance(self.address, tuple)
                host, port = self.address
                family, _, _, _, sockaddr = socket.getaddrinfo(
                    host, port, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP
                )[0]
                sock = socket.socket(family, socket.SOCK_DGRAM)
            else:
                assert isinstance(self.address, str)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sockaddr = self.address
            sock.setblocking(False)
            # UDP: no packet is sent, the kernel only fixes the peer and route.
            sock.connect(sockaddr)
        except OSError:  # includes socket.gaierror
            if sock is not None:
                sock.close()
            self.retry_at = now + RECONNECT_DELAY
            return False
        self.sock = sock
        self.sockaddr = sockaddr
        return True

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None


class LogSink:
    """Queue log lines from the proxy and send them from a greenlet.

    `log_record` and `log_message` are O(1) and never block. `flush()` sends
    everything pending at once (shutdown, tests); `close()` flushes, stops
    the greenlet and closes the sockets. `dropped` counts lines lost to a
    full queue plus, for each target, lines it could not take.
    """

    def __init__(
        self,
        targets: Sequence[LogTarget],
        tag: str = "gproxy",
        pid: int | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        clock: Callable[[], float] = time.time,
        max_line: int = DEFAULT_MAX_LINE,
    ) -> None:
        pid = os.getpid() if pid is None else pid
        # A target keeps its own tag when it sets one; the model's default
        # ("gproxy") defers to the sink's, so the daemon can name itself.
        default_tag = LogTarget.__dataclass_fields__["tag"].default
        self._senders = [
            _Sender(t, t.tag if t.tag and t.tag != default_tag else tag, pid, max_line) for t in targets
        ]
        self._max_pending = max_pending
        self._clock = clock
        # (record, formatter, severity) or (message, None, severity)
        self._pending: deque[tuple[RequestRecord | str, Formatter | None, str | None]] = deque()
        self._wake = Event()
        self._closed = False
        self.dropped = 0
        self.sent = 0  # lines delivered to at least one target
        self._greenlet = gevent.spawn(self._run) if self._senders else None

    # --- the proxy side: O(1), no I/O -------------------------------------
    def log_record(self, rec: RequestRecord, formatter: Formatter, severity: str | None = None) -> None:
        """Queue an access-log record; `severity` None means each target's level."""
        if severity is not None and severity not in SEVERITIES:
            raise ValueError(f"unknown severity {severity!r}")
        pending = self._pending
        queued = len(pending)
        if queued >= self._max_pending or self._closed or not self._senders:
            if self._senders:
                self.dropped += 1
            return
        pending.append((rec, formatter, severity))
        if not queued:
            self._wake.set()

    def log_message(self, message: str, severity: str = "info") -> None:
        """Queue a ready line, e.g. "Server be/s1 is DOWN, reason: ..."."""
        if severity not in SEVERITIES:
            raise ValueError(f"unknown severity {severity!r}")
        if len(self._pending) >= self._max_pending or self._closed or not self._senders:
            if self._senders:
                self.dropped += 1
            return
        if not self._pending:
            self._wake.set()
        self._pending.append((message, None, severity))

    @property
    def pending(self) -> int:
        return len(self._pending)

    # --- the sending side --------------------------------------------------
    def flush(self) -> None:
        """Format and send everything pending now."""
        while self._pending:
            self._send_batch(len(self._pending))

    def close(self) -> None:
        """Send what is pending, stop the greenlet, close the sockets."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None
        for sender in self._senders:
            sender.close()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._pending:
                self._send_batch(BATCH_SIZE)
                gevent.sleep(0)  # let the proxy run between batches

    def _send_batch(self, count: int) -> None:
        now = self._clock()
        pending = self._pending
        senders = self._senders
        for _ in range(min(count, len(pending))):
            item, formatter, severity = pending.popleft()
            if formatter is None:
                line = item
            else:
                try:
                    line = formatter(item)  # type: ignore[arg-type]
                except Exception:  # a formatting bug must not stop the log
                    traceback.print_exc()
                    self.dropped += 1
                    continue
            delivered = False
            for sender in senders:
                if sender.send(line, severity, now):  # type: ignore[arg-type]
                    delivered = True
                else:
                    self.dropped += 1
            if delivered:
                self.sent += 1
