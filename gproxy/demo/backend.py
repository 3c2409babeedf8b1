"""Demo backend: a small HTTP/1.1 origin server for the demo and the end-to-end tests.

It stands in for the seed's application servers ("ENT" portal nodes) behind the
proxy, and it misbehaves on request so tests can exercise health checks,
retries and error handling. Every response carries `X-Backend: NAME`.

    GET  /                   200 "hello from NAME\\n" (any path not listed here)
    OPTIONS|HEAD any path    200, or 503 after POST /health/fail (health checks)
    GET  /health             same answer as an OPTIONS health check, for `httpchk GET`
    POST /health/fail|ok     make health answers fail / pass again
    *    /echo               JSON: backend, method, target, version, headers, body, client
    *    /setcookie?name=N&value=V[&path=/]   Set-Cookie: N=V; Path=/
    *    /status/CODE        answer CODE (no body for 204 and 304)
    *    /bytes/N            N bytes of body (see `pattern_bytes`)
    *    /chunked/N          N bytes sent with Transfer-Encoding: chunked
    *    /garbage            "this is not http\\r\\n\\r\\n", then close
    *    /close              close without answering
    *    /partial            a head announcing 100 bytes, 10 bytes, then close
    *    /stats.json         counters: requests (this one included), per method, connections
    any  ?sleep=SECONDS      wait before answering

It is deliberately standalone (no import from the rest of gproxy, whose HTTP
codec it helps test) and runs each listener's gevent hub in its own OS thread,
so in-process tests can talk to it with ordinary blocking sockets:

    with start_backend("127.0.0.1", 0, "ents1") as backend:
        http.client.HTTPConnection("127.0.0.1", backend.port)...

As a process: `python -m gproxy.demo.backend --listen 127.0.0.1:8081 --name ents3`
prints `ready 127.0.0.1:8081` once listening and exits 0 on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import enum
import json
import signal
import socket
import sys
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import gevent
import gevent.event
import gevent.monkey
import gevent.pool
import gevent.server

# Limits, chosen for tests rather than production: generous enough for any test
# payload, small enough that a runaway client cannot exhaust the machine.
MAX_HEAD_BYTES = 64 * 1024  # request line + headers; beyond it: 431
MAX_BODY_BYTES = 16 * 1024 * 1024  # request bodies are held in memory (for /echo); beyond it: 413
MAX_GENERATED_BYTES = 1024 * 1024 * 1024  # upper bound of /bytes/N and /chunked/N
MAX_SLEEP_SECONDS = 300.0
MAX_CONNECTIONS = 10_000  # the accept pool: backpressure happens at accept
IDLE_TIMEOUT_SECONDS = 75.0  # a silent client (idle keep-alive or stalled upload) is dropped
STOP_GRACE_SECONDS = 2.0  # in-flight requests get this long to finish on stop
READY_TIMEOUT_SECONDS = 10.0
RECV_SIZE = 64 * 1024
LINGER_SECONDS = 1.0  # after an error answer, unread input is drained this long...
LINGER_BYTES = 1024 * 1024  # ...or up to this much, before closing
MIN_CHUNKS = 4  # /chunked/N is split in at least this many chunks when N allows it
MAX_CHUNK_BYTES = 16 * 1024

# /bytes/N bodies repeat this 64-byte line; pieces are whole multiples of it so
# a streamed body equals pattern_bytes(N) exactly.
PATTERN = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-\n"
STREAM_PIECE = PATTERN * 1024

GARBAGE = b"this is not http\r\n\r\n"
PARTIAL_ANNOUNCED = 100
PARTIAL_SENT = 10
NO_BODY_STATUSES = frozenset({204, 304})
SUPPORTED_VERSIONS = frozenset({"HTTP/1.0", "HTTP/1.1"})
TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def pattern_bytes(size: int, offset: int = 0) -> bytes:
    """Bytes `offset` to `offset + size` of the body of `/bytes/N` and `/chunked/N`."""
    start = offset % len(PATTERN)
    repeats = (start + size) // len(PATTERN) + 1
    return (PATTERN * repeats)[start:start + size]


class HttpError(Exception):
    """The client broke HTTP: answer `status` and close the connection."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class ClientGone(Exception):
    """The client closed or reset the connection in the middle of a request."""


# --------------------------------------------------------------------------- parsing (no I/O)


@dataclass(frozen=True)
class Request:
    """One parsed request; header names keep the case and order they arrived in."""

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def header_tokens(self, name: str) -> list[str]:
        """The comma-separated, lowercased tokens of every `name` header (Connection, TE...)."""
        wanted = name.lower()
        tokens: list[str] = []
        for key, value in self.headers:
            if key.lower() == wanted:
                tokens.extend(token.strip().lower() for token in value.split(",") if token.strip())
        return tokens

    @property
    def keep_alive(self) -> bool:
        """Whether the client lets the connection live after the response (RFC 9112 9.3)."""
        tokens = self.header_tokens("connection")
        if "close" in tokens:
            return False
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return True


def parse_head(head: bytes) -> Request:
    """Parse a request head (request line + header lines, without the blank line)."""
    lines = head.decode("latin-1").split("\n")
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise HttpError(400, f"malformed request line {lines[0][:80]!r}")
    method, target, version = parts
    if not set(method) <= TOKEN_CHARS:
        raise HttpError(400, f"malformed method {method[:40]!r}")
    if version not in SUPPORTED_VERSIONS:
        if version.startswith("HTTP/"):
            raise HttpError(505, f"unsupported version {version[:20]!r}")
        raise HttpError(400, f"malformed version {version[:20]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            raise HttpError(400, "obsolete line folding is not accepted")
        name, colon, value = line.partition(":")
        if not colon or not name or not set(name) <= TOKEN_CHARS:
            raise HttpError(400, f"malformed header line {line[:80]!r}")
        headers.append((name, value.strip(" \t")))
    return Request(method, target, version, tuple(headers))


class Framing(enum.Enum):
    NONE = "none"
    LENGTH = "length"
    CHUNKED = "chunked"


def body_framing(request: Request) -> tuple[Framing, int]:
    """How the request body is delimited, and its length when Content-Length says it."""
    codings = request.header_tokens("transfer-encoding")
    if codings:
        # Transfer-Encoding wins over Content-Length (RFC 9112 6.3); only chunked
        # can delimit a request body.
        if codings[-1] != "chunked":
            raise HttpError(400, f"request transfer-coding {codings[-1]!r} is not chunked")
        return Framing.CHUNKED, 0
    lengths = {value.strip() for key, value in request.headers if key.lower() == "content-length"}
    if not lengths:
        return Framing.NONE, 0
    if len(lengths) > 1:
        raise HttpError(400, "conflicting Content-Length headers")
    text = lengths.pop()
    if not text.isdigit():
        raise HttpError(400, f"malformed Content-Length {text[:20]!r}")
    length = int(text)
    if length > MAX_BODY_BYTES:
        raise HttpError(413, f"request body of {length} bytes is over {MAX_BODY_BYTES}")
    return Framing.LENGTH, length


def parse_chunk_size(line: bytes) -> int:
    """The size on a chunk-size line, ignoring chunk extensions."""
    text = line.split(b";", 1)[0].strip()
    try:
        size = int(text, 16)
    except ValueError:
        raise HttpError(400, f"malformed chunk size {text[:20]!r}") from None
    if size < 0:
        raise HttpError(400, "negative chunk size")
    return size


# --------------------------------------------------------------------------- responses (no I/O)


class Kind(enum.Enum):
    """How a response goes on the wire."""

    NORMAL = "normal"  # head + `body`, Content-Length
    BYTES = "bytes"  # head + `length` generated bytes, Content-Length, streamed
    CHUNKED = "chunked"  # head + `length` generated bytes in chunks
    GARBAGE = "garbage"  # not HTTP at all, then close
    CLOSE = "close"  # nothing, close
    PARTIAL = "partial"  # head announcing more than is sent, then close


@dataclass(frozen=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    kind: Kind = Kind.NORMAL
    length: int = 0


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


TEXT = ("Content-Type", "text/plain; charset=utf-8")
JSON = ("Content-Type", "application/json")


def text_response(status: int, text: str, *headers: tuple[str, str]) -> Response:
    return Response(status, (TEXT, *headers), text.encode())


@dataclass
class BackendState:
    """What a backend remembers between requests: its health switch and counters."""

    name: str
    healthy: bool = True
    requests: int = 0
    connections: int = 0
    methods: dict[str, int] = field(default_factory=dict)

    def count(self, method: str) -> None:
        self.requests += 1
        self.methods[method] = self.methods.get(method, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "requests": self.requests,
            "methods": dict(self.methods),
            "connections": self.connections,
            "health": "ok" if self.healthy else "fail",
        }


def split_target(target: str) -> tuple[str, dict[str, list[str]]]:
    """The path and query parameters of a request target (origin or absolute form)."""
    parts = urlsplit(target)
    return parts.path or "/", parse_qs(parts.query, keep_blank_values=True)


def sleep_seconds(query: dict[str, list[str]]) -> float:
    """The `?sleep=SECONDS` delay of a request (0 when absent)."""
    values = query.get("sleep")
    if not values:
        return 0.0
    try:
        delay = float(values[0])
    except ValueError:
        raise HttpError(400, f"sleep={values[0][:20]!r} is not a number") from None
    if not 0.0 <= delay <= MAX_SLEEP_SECONDS:  # also rejects NaN
        raise HttpError(400, f"sleep must be within 0..{MAX_SLEEP_SECONDS:g} seconds")
    return delay


def _size_in(path: str, prefix: str) -> int:
    text = path[len(prefix):]
    if not text.isdigit() or int(text) > MAX_GENERATED_BYTES:
        raise HttpError(400, f"expected {prefix}N with N in 0..{MAX_GENERATED_BYTES}")
    return int(text)


def route(request: Request, state: BackendState, client: str) -> Response:
    """Choose the response to `request`; the only state change is the health switch."""
    path, query = split_target(request.target)
    method = request.method
    name = state.name
    if path == "/garbage":
        return Response(200, kind=Kind.GARBAGE)
    if path == "/close":
        return Response(200, kind=Kind.CLOSE)
    if path == "/partial":
        return Response(200, (TEXT,), kind=Kind.PARTIAL)
    if path.startswith("/status/"):
        code_text = path[len("/status/"):]
        if not code_text.isdigit() or not 200 <= int(code_text) <= 599:
            raise HttpError(400, "expected /status/CODE with CODE in 200..599")
        code = int(code_text)
        return text_response(code, f"{code} {reason_phrase(code)} from {name}\n")
    if path in ("/health/fail", "/health/ok"):
        if method != "POST":
            return text_response(405, "use POST\n", ("Allow", "POST"))
        state.healthy = path == "/health/ok"
        return text_response(200, f"health of {name} is now {'ok' if state.healthy else 'fail'}\n")
    if method in ("OPTIONS", "HEAD") or path == "/health":
        # Health checks: HAProxy sends `OPTIONS / HTTP/1.0` by default.
        allow = ("Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS")
        if not state.healthy:
            return text_response(503, f"{name} is failing its health checks\n", allow)
        if method == "OPTIONS":
            return Response(200, (allow,))
        return text_response(200, f"hello from {name}\n", allow)
    if path == "/echo":
        echo = {
            "backend": name,
            "method": method,
            "target": request.target,
            "version": request.version,
            "headers": [list(header) for header in request.headers],
            "body": request.body.decode("utf-8", "replace"),
            "client": client,
        }
        return Response(200, (JSON,), json.dumps(echo).encode())
    if path == "/stats.json":
        return Response(200, (JSON,), json.dumps(state.snapshot()).encode())
    if path == "/setcookie":
        cookie_name = query.get("name", [""])[0]
        if not cookie_name or not set(cookie_name) <= TOKEN_CHARS:
            raise HttpError(400, "expected /setcookie?name=N&value=V[&path=P]")
        value = query.get("value", [""])[0]
        cookie_path = query.get("path", ["/"])[0]
        cookie = f"{cookie_name}={value}; Path={cookie_path}"
        return text_response(200, f"set {cookie_name}={value}\n", ("Set-Cookie", cookie))
    if path.startswith("/bytes/"):
        return Response(200, (("Content-Type", "application/octet-stream"),),
                        kind=Kind.BYTES, length=_size_in(path, "/bytes/"))
    if path.startswith("/chunked/"):
        return Response(200, (("Content-Type", "application/octet-stream"),),
                        kind=Kind.CHUNKED, length=_size_in(path, "/chunked/"))
    return text_response(200, f"hello from {name}\n")


def chunk_sizes(length: int) -> list[int]:
    """How `/chunked/N` splits N bytes: at least MIN_CHUNKS chunks when N allows, none empty."""
    if length == 0:
        return []
    size = min(MAX_CHUNK_BYTES, max(1, -(-length // MIN_CHUNKS)))
    whole, rest = divmod(length, size)
    return [size] * whole + ([rest] if rest else [])


def render_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason_phrase(status)}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# --------------------------------------------------------------------------- socket layer


class _Stream:
    """Buffered reads from one client socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(RECV_SIZE)
        if not data:
            return False
        self.buffer += data
        return True

    def read_head(self) -> bytes | None:
        """The next request head, or None if the client closed cleanly between requests."""
        while True:
            # Tolerate empty lines before a request line (RFC 9112 2.2).
            while self.buffer[:2] == b"\r\n" or self.buffer[:1] == b"\n":
                del self.buffer[:2 if self.buffer[:1] == b"\r" else 1]
            end, separator = self.buffer.find(b"\r\n\r\n"), 4
            if end < 0:
                end, separator = self.buffer.find(b"\n\n"), 2  # bare-LF clients (hand-typed requests)
            if end > MAX_HEAD_BYTES or (end < 0 and len(self.buffer) > MAX_HEAD_BYTES):
                raise HttpError(431, f"request head is over {MAX_HEAD_BYTES} bytes")
            if end >= 0:
                head = bytes(self.buffer[:end])
                del self.buffer[:end + separator]
                return head
            if not self._fill():
                if self.buffer:
                    raise ClientGone("closed in the middle of a request head")
                return None

    def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise ClientGone("closed in the middle of a request body")
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[:end]).rstrip(b"\r")
                del self.buffer[:end + 1]
                return line
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise HttpError(400, "chunk line too long")
            if not self._fill():
                raise ClientGone("closed in the middle of a chunked body")

    def read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = parse_chunk_size(self.read_line())
            if size == 0:
                break
            if len(body) + size > MAX_BODY_BYTES:
                raise HttpError(413, f"request body is over {MAX_BODY_BYTES} bytes")
            body += self.read_exact(size)
            if self.read_exact(2) != b"\r\n":
                raise HttpError(400, "chunk data not followed by CRLF")
        while self.read_line():  # trailer fields, ignored
            pass
        return bytes(body)

    def read_body(self, request: Request) -> bytes:
        framing, length = body_framing(request)
        if framing is Framing.LENGTH:
            return self.read_exact(length)
        if framing is Framing.CHUNKED:
            return self.read_chunked()
        return b""


def _send_response(sock: socket.socket, request: Request, response: Response, name: str) -> bool:
    """Write `response`; return whether the connection can serve another request."""
    if response.kind is Kind.CLOSE:
        return False
    if response.kind is Kind.GARBAGE:
        sock.sendall(GARBAGE)
        return False
    keep_alive = request.keep_alive
    headers = [("X-Backend", name), *response.headers]
    if response.kind is Kind.PARTIAL:
        headers += [("Content-Length", str(PARTIAL_ANNOUNCED))]
        sock.sendall(render_head(200, headers) + pattern_bytes(PARTIAL_SENT))
        return False
    head_only = request.method == "HEAD"
    chunked = response.kind is Kind.CHUNKED and request.version == "HTTP/1.1"
    if response.kind is Kind.CHUNKED and not chunked:
        keep_alive = False  # an HTTP/1.0 client cannot read chunks: the close delimits the body
    if response.status in NO_BODY_STATUSES:
        body_length = 0
    elif response.kind is Kind.NORMAL:
        body_length = len(response.body)
        headers.append(("Content-Length", str(body_length)))
    elif chunked:
        body_length = response.length
        headers.append(("Transfer-Encoding", "chunked"))
    elif response.kind is Kind.BYTES:
        body_length = response.length
        headers.append(("Content-Length", str(body_length)))
    else:
        body_length = response.length
    if not keep_alive:
        headers.append(("Connection", "close"))
    elif request.version == "HTTP/1.0":
        headers.append(("Connection", "keep-alive"))
    head = render_head(response.status, headers)
    if head_only or body_length == 0:
        sock.sendall(head + (b"0\r\n\r\n" if chunked and not head_only else b""))
    elif response.kind is Kind.NORMAL:
        sock.sendall(head + response.body)
    elif chunked:
        sock.sendall(head)
        offset = 0
        for size in chunk_sizes(body_length):
            sock.sendall(b"%x\r\n" % size + pattern_bytes(size, offset) + b"\r\n")
            offset += size
        sock.sendall(b"0\r\n\r\n")
    else:
        sock.sendall(head)
        remaining = body_length
        while remaining:
            piece = STREAM_PIECE[:remaining]
            sock.sendall(piece)
            remaining -= len(piece)
    return keep_alive


class BackendServer:
    """One listening demo backend, served by a gevent hub in its own OS thread.

    Build it with `start_backend()`; `port` is the bound port (useful with port 0).
    """

    def __init__(self, host: str, port: int, name: str) -> None:
        self.host = host
        self.name = name
        self.state = BackendState(name)
        self._requested_port = port
        self._port = 0
        self._error: BaseException | None = None
        self._stopping = False
        self._stop_timeout = STOP_GRACE_SECONDS
        self._idle: dict[socket.socket, bool] = {}  # open client sockets -> waiting for a request
        self._wake: Any = None  # the hub's async watcher: the one thread-safe way in
        # Real OS-thread primitives even if the caller monkey-patched threading.
        allocate_lock = gevent.monkey.get_original("_thread", "allocate_lock")
        self._ready = allocate_lock()
        self._done = allocate_lock()

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        return f"{self.host}:{self._port}"

    def counts(self) -> dict[str, Any]:
        """The `/stats.json` counters, read directly."""
        return self.state.snapshot()

    def start(self) -> BackendServer:
        """Bind and start serving; raise OSError if the address cannot be bound."""
        start_new_thread: Callable[..., int] = gevent.monkey.get_original("_thread", "start_new_thread")
        self._ready.acquire()
        self._done.acquire()
        start_new_thread(self._run, ())
        if not self._ready.acquire(timeout=READY_TIMEOUT_SECONDS):
            raise OSError(f"backend {self.name} did not start listening on {self.host}:{self._requested_port}")
        if self._error is not None:
            self._done.acquire(timeout=READY_TIMEOUT_SECONDS)
            raise self._error
        return self

    def stop(self, timeout: float = STOP_GRACE_SECONDS) -> None:
        """Stop accepting, let in-flight requests finish for `timeout` seconds, close everything."""
        if self._wake is None or self._stopping:
            return
        self._stop_timeout = timeout
        self._stopping = True
        self._wake.send()
        self._done.acquire(timeout=timeout + READY_TIMEOUT_SECONDS)

    def __enter__(self) -> BackendServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    # ---- inside the server thread

    def _run(self) -> None:
        hub = gevent.get_hub()
        try:
            pool = gevent.pool.Pool(MAX_CONNECTIONS)
            try:
                server = gevent.server.StreamServer((self.host, self._requested_port), self._handle, spawn=pool)
                server.start()
            except BaseException as exc:  # reported to the starting thread
                self._error = exc
                self._ready.release()
                return
            self._port = server.server_port
            stop_requested = gevent.event.Event()
            wake = hub.loop.async_()
            wake.start(stop_requested.set)
            self._wake = wake
            self._ready.release()
            stop_requested.wait()
            server.close()
            for sock, idle in list(self._idle.items()):
                if idle:  # wakes its handler with EOF
                    _shutdown(sock)
            pool.join(timeout=self._stop_timeout)
            pool.kill(block=True, timeout=1)
            wake.close()
        finally:
            hub.destroy(destroy_loop=True)
            self._done.release()

    def _handle(self, sock: socket.socket, address: tuple[Any, ...]) -> None:
        client = f"{address[0]}:{address[1]}"
        state = self.state
        state.connections += 1
        self._idle[sock] = True
        stream = _Stream(sock)
        try:
            sock.settimeout(IDLE_TIMEOUT_SECONDS)
            # Heads and bodies go out in separate writes: do not let Nagle hold the second.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while not self._stopping:
                self._idle[sock] = True
                head = stream.read_head()
                if head is None:
                    break
                self._idle[sock] = False
                request = parse_head(head)
                if "100-continue" in request.header_tokens("expect") and request.version == "HTTP/1.1":
                    sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                request = Request(request.method, request.target, request.version, request.headers,
                                  stream.read_body(request))
                state.count(request.method)
                delay = sleep_seconds(split_target(request.target)[1])
                if delay:
                    gevent.sleep(delay)
                response = route(request, state, client)
                if not _send_response(sock, request, response, self.name):
                    break
        except HttpError as error:
            _answer_error(sock, error, self.name)
        except (OSError, ClientGone):
            pass  # the client went away or timed out: nothing to answer
        finally:
            self._idle.pop(sock, None)
            _shutdown(sock)
            sock.close()


def _answer_error(sock: socket.socket, error: HttpError, name: str) -> None:
    body = f"{error.status} {reason_phrase(error.status)}: {error}\n".encode()
    headers = [("X-Backend", name), TEXT, ("Content-Length", str(len(body))), ("Connection", "close")]
    try:
        sock.sendall(render_head(error.status, headers) + body)
        # Lingering close: closing with unread input would reset the connection
        # and could destroy the answer before the client reads it.
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(LINGER_SECONDS)
        drained = 0
        while drained < LINGER_BYTES and (data := sock.recv(RECV_SIZE)):
            drained += len(data)
    except OSError:
        pass


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def start_backend(host: str, port: int, name: str) -> BackendServer:
    """Start a backend listening on `host:port` (0: an ephemeral port) and return it, serving."""
    return BackendServer(host, port, name).start()


# --------------------------------------------------------------------------- command line


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT` -> (host, port)."""
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host or "0.0.0.0", int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gproxy.demo.backend",
                                     description="A demo HTTP/1.1 origin server for gproxy's demo and tests.")
    parser.add_argument("--listen", action="append", type=parse_listen, required=True, metavar="HOST:PORT",
                        help="address to listen on (repeatable; port 0 picks a free port)")
    parser.add_argument("--name", required=True, help="the name answered in X-Backend and bodies")
    args = parser.parse_args(argv)
    # Block the stop signals before any thread starts, so that every thread
    # inherits the mask and only sigwait() below receives them.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    backends: list[BackendServer] = []
    try:
        for host, port in args.listen:
            backends.append(start_backend(host, port, args.name))
    except OSError as error:
        print(f"backend {args.name}: cannot listen: {error}", file=sys.stderr)
        for backend in backends:
            backend.stop()
        return 1
    try:
        for backend in backends:
            print(f"ready {backend.address}", flush=True)
    except BrokenPipeError:
        pass  # nobody reads stdout any more: keep serving anyway
    signal.sigwait(stop_signals)
    for backend in backends:
        backend.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
