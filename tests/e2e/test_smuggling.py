"""Request smuggling against a real gproxy, checked by an independent backend.

Each vector is written so that a parser with the *other* reading of its
framing would see a second request, `GET /smuggled`. gproxy must answer 400
(or 414/431), or normalise the request exactly as RFC 9112 allows. The
backend here is a raw socket written for this test, not gproxy's codec: it
records every byte of every connection and answers a fixed 200 with
`Connection: close`, so with `connection_mode = "server-close"` each server
connection must carry exactly one request. A strict CRLF-only parser written
below checks that: one request per connection, nothing left over, and
`/smuggled` never reaches the backend unless gproxy itself saw it as a
separate, pipelined request.
"""

from __future__ import annotations

import re
import socket
import threading

import pytest

from conftest import http_config
from harness import free_port

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
BODY_IDLE = 0.3  # the backend answers once the proxy has sent nothing for this long
STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


class RecordingBackend:
    """Accepts on loopback, records each connection's bytes, answers 200 and closes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections: list[bytearray] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            record = bytearray()
            with self._lock:
                self.connections.append(record)
            threading.Thread(target=self._serve, args=(conn, record), daemon=True).start()

    def _serve(self, conn: socket.socket, record: bytearray) -> None:
        with conn:
            conn.settimeout(BODY_IDLE)
            answered = False
            while True:
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    if b"\r\n\r\n" in record and not answered:
                        conn.sendall(OK)
                        answered = True
                        conn.settimeout(2.0)  # then record anything else until the proxy closes
                        continue
                    if answered:
                        return
                    continue
                except OSError:
                    return
                if not data:
                    return
                record.extend(data)

    def close(self) -> None:
        self.sock.close()


def strict_requests(data: bytes) -> list[bytes]:
    """Split a server connection's bytes into requests, CRLF-only and strict.

    Raises AssertionError on anything a strict server would refuse, so a
    vector that gproxy forwarded half-normalised shows up as a failure.
    """
    requests = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"incomplete head {data[:80]!r}"
        assert b"\n" not in head.replace(b"\r\n", b"") and b"\r" not in head.replace(b"\r\n", b"")
        lines = head.split(b"\r\n")
        assert re.fullmatch(rb"[A-Z]+ \S+ HTTP/1\.[01]", lines[0]), lines[0]
        fields: dict[bytes, list[bytes]] = {}
        for line in lines[1:]:
            assert re.fullmatch(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[ \t]*[\x20-\x7e\t]*", line), line
            name, _, value = line.partition(b":")
            fields.setdefault(name.lower(), []).append(value.strip())
        assert not (b"transfer-encoding" in fields and b"content-length" in fields)
        if b"transfer-encoding" in fields:
            assert fields[b"transfer-encoding"][-1].lower().split(b",")[-1].strip() == b"chunked"
            while True:
                line, sep, rest = rest.partition(b"\r\n")
                assert sep and re.fullmatch(rb"[0-9a-fA-F]{1,15}(;[\x20-\x7e\t]*)?", line), line
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    assert rest.startswith(b"\r\n"), rest[:40]
                    rest = rest[2:]
                    break
                assert rest[size:size + 2] == b"\r\n"
                rest = rest[size + 2:]
        elif b"content-length" in fields:
            (value,) = set(fields[b"content-length"])
            rest = rest[int(value):]
        requests.append(lines[0])
        data = rest
    return requests


@pytest.fixture
def proxied(start_gproxy):
    backend = RecordingBackend()
    port = free_port()
    config = http_config([{"name": "raw", "address": f"127.0.0.1:{backend.port}"}], port=port,
                         connection_mode="server-close")
    config["defaults"]["timeout"].update({"http_keep_alive": "300ms", "http_request": "2s"})
    start_gproxy(config, [port])
    yield port, backend
    backend.close()


def exchange(port: int, raw: bytes) -> list[int]:
    """Send `raw` at once; the statuses of every response until gproxy closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
    return [int(s) for s in STATUS.findall(data)]


def _post(headers: bytes, body: bytes) -> bytes:
    return b"POST / HTTP/1.1\r\nHost: h\r\n" + headers + b"\r\n" + body


CHUNKED_SMUGGLE = b"0\r\n\r\n" + SMUGGLED
# Vectors refused with 400 (or the status given): nothing of them reaches a server.
REFUSED = {
    "cl_te": _post(b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", CHUNKED_SMUGGLE),
    "te_cl": _post(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", b"24\r\n" + SMUGGLED + b"\r\n0\r\n\r\n"),
    "te_xchunked": _post(b"Transfer-Encoding: xchunked\r\n", CHUNKED_SMUGGLE),
    "te_space_before_colon": _post(b"Transfer-Encoding : chunked\r\n", CHUNKED_SMUGGLE),
    "te_chunked_identity": _post(b"Transfer-Encoding: chunked, identity\r\n", CHUNKED_SMUGGLE),
    "te_twice_chunked": _post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", CHUNKED_SMUGGLE),
    "te_vertical_tab": _post(b"Transfer-Encoding:\x0bchunked\r\n", CHUNKED_SMUGGLE),
    "te_obs_fold": _post(b"X-A: b\r\nTransfer-Encoding:\r\n chunked\r\n", CHUNKED_SMUGGLE),
    "te_bare_cr": _post(b"X-A: b\rTransfer-Encoding: chunked\r\n", CHUNKED_SMUGGLE),
    "cl_cl_different": _post(b"Content-Length: 0\r\nContent-Length: 37\r\n", SMUGGLED),
    "cl_list_different": _post(b"Content-Length: 0, 37\r\n", SMUGGLED),
    "cl_plus_sign": _post(b"Content-Length: +37\r\n", SMUGGLED),
    "cl_hex": _post(b"Content-Length: 0x25\r\n", SMUGGLED),
    "nul_in_header": _post(b"X-A: a\x00b\r\nContent-Length: 0\r\n", SMUGGLED),
    "ctl_in_header": _post(b"X-A: a\x01b\r\nContent-Length: 0\r\n", SMUGGLED),
    "chunk_size_not_hex": _post(b"Transfer-Encoding: chunked\r\n", b"0x5\r\nhello\r\n" + CHUNKED_SMUGGLE),
    "chunk_size_negative": _post(b"Transfer-Encoding: chunked\r\n", b"-1\r\n" + CHUNKED_SMUGGLE),
    "chunk_size_2_64": _post(b"Transfer-Encoding: chunked\r\n", b"10000000000000000\r\n" + CHUNKED_SMUGGLE),
    "chunk_size_2_63": _post(b"Transfer-Encoding: chunked\r\n", b"8000000000000000\r\n" + CHUNKED_SMUGGLE),
    "chunk_ext_ctl": _post(b"Transfer-Encoding: chunked\r\n", b"1;a\x01b\r\nx\r\n" + CHUNKED_SMUGGLE),
    "chunk_ext_bare_cr": _post(b"Transfer-Encoding: chunked\r\n", b"1;a\rb\r\nx\r\n" + CHUNKED_SMUGGLE),
    "chunk_no_crlf_after_data": _post(b"Transfer-Encoding: chunked\r\n", b"1\r\nxx\r\n" + CHUNKED_SMUGGLE),
    "chunk_lines_bare_lf": _post(b"Transfer-Encoding: chunked\r\n", b"0\n\n" + SMUGGLED),
    "absolute_uri_other_host": b"GET http://evil.example/ HTTP/1.1\r\nHost: h\r\n\r\n",
    "two_hosts": b"GET / HTTP/1.1\r\nHost: h\r\nHost: evil.example\r\n\r\n",
    "bad_method": b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n" + SMUGGLED,
    "http_0_9": b"GET /\r\n\r\n" + SMUGGLED,
    "http_2_0_version": b"GET / HTTP/2.0\r\nHost: h\r\n\r\n" + SMUGGLED,
    "space_in_target": b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n" + SMUGGLED,
}
STATUS_OF = {"uri_too_long": 414}
REFUSED["uri_too_long"] = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n" + SMUGGLED

# Vectors gproxy normalises as RFC 9112 allows: (raw, statuses the client gets).
NORMALISED = {
    "te_trailing_space": (_post(b"Transfer-Encoding: chunked \r\n", CHUNKED_SMUGGLE), [200, 200]),
    "te_mixed_case": (_post(b"Transfer-Encoding: ChUnKeD\r\n", CHUNKED_SMUGGLE), [200, 200]),
    "te_identity_chunked": (_post(b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
                                  CHUNKED_SMUGGLE), [200, 200]),
    "cl_same_twice": (_post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello" + SMUGGLED), [200, 200]),
    "bare_lf_head": (b"GET / HTTP/1.1\nHost: h\n\n" + SMUGGLED, [200, 200]),
    "absolute_uri_same_host": (b"GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n", [200]),
    "chunk_ext_ok": (_post(b"Transfer-Encoding: chunked\r\n", b"5;name=\"v\"\r\nhello\r\n" + CHUNKED_SMUGGLE),
                     [200, 200]),
    "leading_crlf": (b"\r\n" + SMUGGLED, [200]),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_vector_reaches_no_server(proxied, name):
    port, backend = proxied
    assert exchange(port, REFUSED[name]) == [STATUS_OF.get(name, 400)]
    # The error closed the client connection: whatever followed was never
    # parsed. A framing error inside a body may come after the head went to a
    # server; that connection is then cut before anything smuggled.
    for record in backend.connections:
        assert b"/smuggled" not in record and b"evil" not in record


@pytest.mark.parametrize("name", sorted(NORMALISED))
def test_normalised_vector_is_one_request_per_server_connection(proxied, name):
    port, backend = proxied
    raw, statuses = NORMALISED[name]
    assert exchange(port, raw) == statuses
    records = [bytes(c) for c in backend.connections]
    assert len(records) == len(statuses)
    seen = [strict_requests(r) for r in records]
    assert all(len(reqs) == 1 for reqs in seen), seen
    # `/smuggled` reaches a server only as the separate request gproxy saw.
    smuggled = [r for r in records if b"/smuggled" in r]
    assert all(r.startswith(b"GET /smuggled ") for r in smuggled)


def test_garbage_after_the_body_is_a_request_of_its_own(proxied):
    port, backend = proxied
    raw = _post(b"Content-Length: 2\r\n", b"ok") + b"X-Late: header\r\n\r\n" + SMUGGLED
    assert exchange(port, raw) == [200, 400]
    records = [bytes(c) for c in backend.connections]
    assert [strict_requests(r) for r in records] == [[b"POST / HTTP/1.1"]]
    assert records[0].endswith(b"\r\n\r\nok")
