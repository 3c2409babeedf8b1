"""Continuous HTTP load on a cluster's VIP, counting every failed request.

`VipLoad(vip, port)` runs two client loops in threads of the test process
(the root namespace, which reaches the nodes through the lab's bridge):

- `close`: a new connection per request (`Connection: close`), back to back;
- `keepalive`: one connection carrying request after request. When a reused
  connection dies before the first byte of a response, the request is sent
  again once on a new connection, as HTTP clients do for idempotent requests
  (RFC 9112 section 9.3.1: the server may have closed or lost it): that is
  counted as `retried`, and as `failed` only if the new connection fails too.

A request fails when it gets no complete `200` within `timeout` seconds.
`phase(name)` starts counting under a new name (a request is counted in the
phase it began in). Nothing is asserted here: `figures()` gives, per phase
and mode, the counts, the slowest request and the first failures (wall
clock time, error) for the test to assert and print.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

REQUEST = b"GET / HTTP/1.1\r\nHost: vip\r\n%s\r\n"
KEPT_FAILURES = 20  # failures remembered for the report
SLOW_S = 0.5  # a request answered after this long is counted slow (a SYN sent again after 1 s, typically)


class RequestFailed(Exception):
    def __init__(self, reason: str, answered: bool):
        super().__init__(reason)
        self.answered = answered  # some response bytes came back before it failed


@dataclass
class Counts:
    requests: int = 0
    failed: int = 0
    retried: int = 0
    slow: int = 0  # answered, but after SLOW_S or more
    slowest_s: float = 0.0
    failures: list[tuple[float, str]] = field(default_factory=list)


def _read_response(sock: socket.socket) -> bytes:
    """One response, read by its Content-Length (a close-delimited body up to EOF)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RequestFailed("connection closed before the response head" if not data else
                                "connection closed in the response head", bool(data))
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while length is None or len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            if length is None:
                break
            raise RequestFailed("connection closed in the body", True)
        body += chunk
    if not head.startswith(b"HTTP/1.1 200"):
        raise RequestFailed(head.split(b"\r\n", 1)[0].decode(errors="replace"), True)
    return body


class VipLoad:
    def __init__(self, vip: str, port: int, timeout: float = 5.0):
        self.address = (vip, port)
        self.timeout = timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.current = "start"
        self.counts: dict[str, dict[str, Counts]] = {}
        self.phase(self.current)
        self._threads = [threading.Thread(target=self._close_loop, daemon=True),
                         threading.Thread(target=self._keepalive_loop, daemon=True)]
        self.started_at = 0.0

    def start(self) -> "VipLoad":
        self.started_at = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def phase(self, name: str) -> None:
        with self._lock:
            self.current = name
            self.counts.setdefault(name, {"close": Counts(), "keepalive": Counts()})

    def stop(self) -> dict:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 2)
        return self.figures()

    def figures(self) -> dict:
        with self._lock:
            return {phase: {mode: {"requests": c.requests, "failed": c.failed, "retried": c.retried, "slow": c.slow,
                                   "slowest_s": round(c.slowest_s, 3), "failures": list(c.failures)}
                            for mode, c in modes.items()}
                    for phase, modes in self.counts.items()}

    def _record(self, phase: str, mode: str, took: float, error: str | None = None, retried: bool = False) -> None:
        with self._lock:
            counts = self.counts[phase][mode]
            counts.requests += 1
            counts.slowest_s = max(counts.slowest_s, took)
            counts.retried += retried
            counts.slow += error is None and took >= SLOW_S
            if error is not None:
                counts.failed += 1
                if len(counts.failures) < KEPT_FAILURES:
                    now = time.time()
                    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
                    counts.failures.append((stamp, error))

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=self.timeout)
        sock.settimeout(self.timeout)
        return sock

    def _close_loop(self) -> None:
        while not self._stop.is_set():
            began, phase = time.monotonic(), self.current
            try:
                with self._connect() as sock:
                    sock.sendall(REQUEST % b"Connection: close\r\n")
                    _read_response(sock)
            except (OSError, RequestFailed, ValueError) as exc:
                self._record(phase, "close", time.monotonic() - began, f"{type(exc).__name__}: {exc}")
                self._stop.wait(0.01)  # an error can be instant: do not spin
                continue
            self._record(phase, "close", time.monotonic() - began)

    def _keepalive_loop(self) -> None:
        sock: socket.socket | None = None
        while not self._stop.is_set():
            began, phase = time.monotonic(), self.current
            reused = sock is not None
            retried = False
            try:
                if sock is None:
                    sock = self._connect()
                try:
                    sock.sendall(REQUEST % b"")
                    _read_response(sock)
                except (OSError, RequestFailed) as exc:
                    sock.close()
                    sock = None
                    if not reused or (isinstance(exc, RequestFailed) and exc.answered) or \
                            isinstance(exc, socket.timeout):
                        raise
                    retried = True  # a reused connection lost before any answer: once more, on a new one
                    sock = self._connect()
                    sock.sendall(REQUEST % b"")
                    _read_response(sock)
            except (OSError, RequestFailed, ValueError) as exc:
                if sock is not None:
                    sock.close()
                    sock = None
                self._record(phase, "keepalive", time.monotonic() - began, f"{type(exc).__name__}: {exc}", retried)
                self._stop.wait(0.01)
                continue
            self._record(phase, "keepalive", time.monotonic() - began, retried=retried)
        if sock is not None:
            sock.close()
