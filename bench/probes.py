"""The two clients of the bench that are not wrk: sequential keep-alive requests
(the latency one request adds, with no load) and one large download (bulk
throughput). Both speak just enough HTTP/1.1 for the bench's origins:
responses with a Content-Length.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

RECV_BUFFER = 1 << 20  # bulk reads: large enough that the client is not the bottleneck
SMALL_RECV = 65_536
HEAD_LIMIT = 65_536  # a response head longer than this is an error, not a bench figure
IO_TIMEOUT_SECONDS = 30.0
REQUEST_TEMPLATE = "GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: gproxy-bench\r\n\r\n"


class ProbeError(RuntimeError):
    """The exchange failed (closed connection, bad response)."""


@dataclass(frozen=True)
class Head:
    status: int
    content_length: int
    size: int  # bytes of the head, final CRLF CRLF included


def parse_head(data: bytes) -> Head | None:
    """The response head at the start of `data`, or None while it is incomplete."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if len(data) > HEAD_LIMIT:
            raise ProbeError("response head too long")
        return None
    lines = data[:end].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ProbeError(f"not an HTTP response: {lines[0][:80]!r}")
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise ProbeError("response without Content-Length")
    return Head(status=int(parts[1]), content_length=length, size=end + 4)


@dataclass(frozen=True)
class Latencies:
    milliseconds: tuple[float, ...]  # one per measured request, in order
    non_2xx: int


def sequential_requests(host: str, port: int, count: int, warmup: int, path: str = "/") -> Latencies:
    """`warmup` then `count` requests one after the other on one keep-alive connection, each timed."""
    request = REQUEST_TEMPLATE.format(path=path).encode()
    timings: list[float] = []
    non_2xx = 0
    with socket.create_connection((host, port), timeout=IO_TIMEOUT_SECONDS) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        for index in range(warmup + count):
            started = time.perf_counter_ns()
            sock.sendall(request)
            head = None
            while head is None or len(pending) < head.size + head.content_length:
                chunk = sock.recv(SMALL_RECV)
                if not chunk:
                    raise ProbeError(f"connection closed after {index} requests")
                pending += chunk
                if head is None:
                    head = parse_head(pending)
            elapsed = time.perf_counter_ns() - started
            pending = pending[head.size + head.content_length:]
            if index >= warmup:
                timings.append(elapsed / 1e6)
                non_2xx += not 200 <= head.status < 300
    return Latencies(tuple(timings), non_2xx)


@dataclass(frozen=True)
class Transfer:
    status: int
    body_bytes: int
    seconds: float

    @property
    def mib_per_second(self) -> float:
        return self.body_bytes / (1 << 20) / max(self.seconds, 1e-9)


def download(host: str, port: int, path: str) -> Transfer:
    """GET `path` and count its body's bytes; timed from the request to the last byte."""
    buffer = bytearray(RECV_BUFFER)
    view = memoryview(buffer)
    with socket.create_connection((host, port), timeout=IO_TIMEOUT_SECONDS) as sock:
        started = time.perf_counter()
        sock.sendall(REQUEST_TEMPLATE.format(path=path).encode())
        received = b""
        head = None
        while head is None:
            chunk = sock.recv(SMALL_RECV)
            if not chunk:
                raise ProbeError("connection closed before the response head")
            received += chunk
            head = parse_head(received)
        body = len(received) - head.size
        while body < head.content_length:
            count = sock.recv_into(view)
            if count == 0:
                break  # short body: the caller compares body_bytes with what it expected
            body += count
        seconds = time.perf_counter() - started
    return Transfer(status=head.status, body_bytes=body, seconds=seconds)
