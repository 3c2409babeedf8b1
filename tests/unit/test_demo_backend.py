"""Tests of the demo backend: its pure parsing helpers, then real sockets against a running server."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gproxy.demo.backend import (
    PATTERN,
    BackendServer,
    Framing,
    HttpError,
    Request,
    body_framing,
    chunk_sizes,
    parse_chunk_size,
    parse_head,
    parse_listen,
    pattern_bytes,
    start_backend,
)

REPO = Path(__file__).resolve().parents[2]
NAME = "ents3"


# --------------------------------------------------------------------------- pure helpers


def test_parse_head_keeps_header_order_and_case() -> None:
    request = parse_head(b"POST /echo?x=1 HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-for:  5.6.7.8 ")
    assert (request.method, request.target, request.version) == ("POST", "/echo?x=1", "HTTP/1.1")
    assert request.headers == (("Host", "a"), ("X-Forwarded-For", "1.2.3.4"), ("x-forwarded-for", "5.6.7.8"))
    assert request.header("X-FORWARDED-FOR") == "1.2.3.4"
    assert request.header("Cookie") is None


@pytest.mark.parametrize("head, status", [
    (b"GET /", 400),
    (b"GET  / HTTP/1.1", 400),
    (b"G(T / HTTP/1.1", 400),
    (b"GET / HTTP/2.0", 505),
    (b"GET / HTTX/1.1", 400),
    (b"GET / HTTP/1.1\r\nNo colon here", 400),
    (b"GET / HTTP/1.1\r\nBad Name: x", 400),
    (b"GET / HTTP/1.1\r\nA: b\r\n folded", 400),
])
def test_parse_head_rejects_malformed_heads(head: bytes, status: int) -> None:
    with pytest.raises(HttpError) as caught:
        parse_head(head)
    assert caught.value.status == status


@pytest.mark.parametrize("version, connection, keep_alive", [
    ("HTTP/1.1", None, True),
    ("HTTP/1.1", "close", False),
    ("HTTP/1.1", "Keep-Alive, Close", False),
    ("HTTP/1.0", None, False),
    ("HTTP/1.0", "keep-alive", True),
])
def test_keep_alive_follows_version_and_connection(version: str, connection: str | None, keep_alive: bool) -> None:
    headers = (("Connection", connection),) if connection else ()
    assert Request("GET", "/", version, headers).keep_alive is keep_alive


def test_body_framing() -> None:
    def framing(*headers: tuple[str, str]) -> tuple[Framing, int]:
        return body_framing(Request("POST", "/", "HTTP/1.1", headers))

    assert framing() == (Framing.NONE, 0)
    assert framing(("Content-Length", "12")) == (Framing.LENGTH, 12)
    assert framing(("content-length", "3"), ("Content-Length", "3")) == (Framing.LENGTH, 3)
    assert framing(("Transfer-Encoding", "gzip, chunked"), ("Content-Length", "3")) == (Framing.CHUNKED, 0)
    for bad in [(("Content-Length", "3"), ("Content-Length", "4")), (("Content-Length", "-1"),),
                (("Transfer-Encoding", "gzip"),)]:
        with pytest.raises(HttpError) as caught:
            framing(*bad)
        assert caught.value.status == 400
    with pytest.raises(HttpError) as caught:
        framing(("Content-Length", str(10**12)))
    assert caught.value.status == 413


def test_chunk_size_lines() -> None:
    assert parse_chunk_size(b"1A") == 26
    assert parse_chunk_size(b"ff;name=value") == 255
    with pytest.raises(HttpError):
        parse_chunk_size(b"zz")


def test_chunk_sizes_split_in_several_non_empty_chunks() -> None:
    assert chunk_sizes(0) == []
    assert chunk_sizes(1) == [1]
    assert chunk_sizes(10) == [3, 3, 3, 1]
    big = chunk_sizes(1_000_000)
    assert sum(big) == 1_000_000 and len(big) > 4 and all(0 < size <= 16384 for size in big)


def test_pattern_bytes_slices_one_endless_pattern() -> None:
    whole = pattern_bytes(1000)
    assert len(whole) == 1000 and whole.startswith(PATTERN)
    assert pattern_bytes(100, 70) == whole[70:170]
    assert pattern_bytes(0) == b""


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:8081") == ("127.0.0.1", 8081)
    assert parse_listen("[::1]:0") == ("::1", 0)
    with pytest.raises(Exception):
        parse_listen("127.0.0.1")


# --------------------------------------------------------------------------- against a running server


@pytest.fixture
def backend() -> Iterator[BackendServer]:
    server = start_backend("127.0.0.1", 0, NAME)
    try:
        yield server
    finally:
        server.stop()


def request(backend: BackendServer, method: str, target: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=10)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


def raw_exchange(backend: BackendServer, data: bytes) -> bytes:
    """Send `data`, read until the server closes."""
    with socket.create_connection(("127.0.0.1", backend.port), timeout=10) as sock:
        sock.sendall(data)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
        return bytes(received)


def split_response(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


def test_hello_on_any_path(backend: BackendServer) -> None:
    response, body = request(backend, "GET", "/some/page?x=1")
    assert response.status == 200
    assert body == f"hello from {NAME}\n".encode()
    assert response.getheader("X-Backend") == NAME
    assert response.getheader("Content-Length") == str(len(body))


def test_keep_alive_serves_several_requests_on_one_connection(backend: BackendServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=10)
    try:
        for _ in range(3):
            connection.request("GET", "/")
            response = connection.getresponse()
            assert response.read() == f"hello from {NAME}\n".encode()
            assert response.getheader("Connection") is None
    finally:
        connection.close()
    stats = backend.counts()
    assert stats["connections"] == 1 and stats["requests"] == 3


def test_pipelined_requests_are_answered_in_order(backend: BackendServer) -> None:
    raw = raw_exchange(backend, b"GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\n"
                                b"GET /status/202 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.index(b"HTTP/1.1 201 Created") < raw.index(b"HTTP/1.1 202 Accepted")


def test_http10_closes_unless_keep_alive_asked(backend: BackendServer) -> None:
    status, headers, body = split_response(raw_exchange(backend, b"GET / HTTP/1.0\r\n\r\n"))
    assert status == "HTTP/1.1 200 OK" and headers["connection"] == "close"
    assert body == f"hello from {NAME}\n".encode()
    with socket.create_connection(("127.0.0.1", backend.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        first = sock.recv(65536)
        assert b"Connection: keep-alive" in first
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")  # still open: a second request is answered
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")


def test_connection_close_is_honoured(backend: BackendServer) -> None:
    status, headers, _ = split_response(raw_exchange(backend, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"))
    assert status == "HTTP/1.1 200 OK" and headers["connection"] == "close"


def test_health_check_requests(backend: BackendServer) -> None:
    status, headers, body = split_response(raw_exchange(backend, b"OPTIONS / HTTP/1.0\r\n\r\n"))
    assert status == "HTTP/1.1 200 OK" and headers["x-backend"] == NAME and body == b""
    response, body = request(backend, "HEAD", "/anything")
    assert response.status == 200 and body == b""
    assert int(response.getheader("Content-Length")) > 0


def test_health_fail_and_ok_switch_check_answers(backend: BackendServer) -> None:
    assert request(backend, "GET", "/health/fail")[0].status == 405
    assert request(backend, "POST", "/health/fail")[0].status == 200
    assert request(backend, "OPTIONS", "/")[0].status == 503
    assert request(backend, "HEAD", "/")[0].status == 503
    assert request(backend, "GET", "/health")[0].status == 503
    assert request(backend, "GET", "/")[0].status == 200  # ordinary traffic is still served
    assert json.loads(request(backend, "GET", "/stats.json")[1])["health"] == "fail"
    assert request(backend, "POST", "/health/ok")[0].status == 200
    assert request(backend, "OPTIONS", "/")[0].status == 200
    assert request(backend, "GET", "/health")[0].status == 200


def test_echo_reports_request_in_received_order(backend: BackendServer) -> None:
    raw = (b"POST /echo?q=1 HTTP/1.1\r\nHost: h\r\nCookie: SRV=a; JSESSIONID=xyz\r\n"
           b"X-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 127.0.0.2\r\nContent-Length: 5\r\n"
           b"Connection: close\r\n\r\nhello")
    _, headers, body = split_response(raw_exchange(backend, raw))
    assert headers["content-type"] == "application/json"
    echo = json.loads(body)
    assert echo["backend"] == NAME
    assert (echo["method"], echo["target"], echo["version"]) == ("POST", "/echo?q=1", "HTTP/1.1")
    assert echo["headers"][:4] == [["Host", "h"], ["Cookie", "SRV=a; JSESSIONID=xyz"],
                                   ["X-Forwarded-For", "10.0.0.1"], ["x-forwarded-for", "127.0.0.2"]]
    assert echo["body"] == "hello"
    assert echo["client"].startswith("127.0.0.1:")


def test_echo_decodes_chunked_bodies_fed_in_random_pieces(backend: BackendServer) -> None:
    payload = b"first chunk|" + b"x" * 3000 + b"|last"
    chunks = [payload[:12], payload[12:3012], payload[3012:]]
    body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\nTrailer: t\r\n\r\n"
    data = (b"PUT /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + body
            + b"GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n")
    generator = random.Random(7)
    with socket.create_connection(("127.0.0.1", backend.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        offset = 0
        while offset < len(data):
            step = generator.randint(1, 40)
            sock.sendall(data[offset:offset + step])
            offset += step
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    first, second = bytes(received).split(b"HTTP/1.1 200 OK")[1:]
    assert json.loads(first.partition(b"\r\n\r\n")[2])["body"] == payload.decode()
    assert json.loads(second.partition(b"\r\n\r\n")[2])["method"] == "GET"


def test_expect_100_continue(backend: BackendServer) -> None:
    with socket.create_connection(("127.0.0.1", backend.port), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"ok")
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 200 OK") and b'"body": "ok"' in reply


def test_sleep_delays_the_answer(backend: BackendServer) -> None:
    started = time.monotonic()
    response, body = request(backend, "GET", "/echo?sleep=0.2")
    assert response.status == 200 and json.loads(body)["target"] == "/echo?sleep=0.2"
    assert time.monotonic() - started >= 0.2
    assert request(backend, "GET", "/?sleep=soon")[0].status == 400
    assert request(backend, "GET", "/?sleep=-1")[0].status == 400


def test_setcookie(backend: BackendServer) -> None:
    response, _ = request(backend, "GET", "/setcookie?name=JSESSIONID&value=abc123")
    assert response.status == 200 and response.getheader("Set-Cookie") == "JSESSIONID=abc123; Path=/"
    response, _ = request(backend, "GET", "/setcookie?name=A&value=b&path=/app")
    assert response.getheader("Set-Cookie") == "A=b; Path=/app"
    assert request(backend, "GET", "/setcookie?value=b")[0].status == 400


@pytest.mark.parametrize("code", [200, 201, 302, 404, 500, 503])
def test_status_codes_with_body(backend: BackendServer, code: int) -> None:
    response, body = request(backend, "GET", f"/status/{code}")
    assert response.status == code and response.getheader("X-Backend") == NAME
    assert body.startswith(str(code).encode()) and response.getheader("Content-Length") == str(len(body))


@pytest.mark.parametrize("code", [204, 304])
def test_status_codes_without_body(backend: BackendServer, code: int) -> None:
    raw = raw_exchange(backend, f"GET /status/{code} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
    status, headers, body = split_response(raw)
    assert status.startswith(f"HTTP/1.1 {code} ") and body == b"" and "content-length" not in headers


def test_status_rejects_nonsense(backend: BackendServer) -> None:
    assert request(backend, "GET", "/status/100")[0].status == 400
    assert request(backend, "GET", "/status/abc")[0].status == 400


def test_garbage_close_and_partial_misbehave(backend: BackendServer) -> None:
    assert raw_exchange(backend, b"GET /garbage HTTP/1.1\r\n\r\n") == b"this is not http\r\n\r\n"
    assert raw_exchange(backend, b"OPTIONS /close HTTP/1.1\r\n\r\n") == b""
    status, headers, body = split_response(raw_exchange(backend, b"GET /partial HTTP/1.1\r\n\r\n"))
    assert status == "HTTP/1.1 200 OK" and headers["content-length"] == "100" and len(body) == 10
    with pytest.raises(http.client.IncompleteRead):
        request(backend, "GET", "/partial")


def test_bytes_body(backend: BackendServer) -> None:
    for size in (0, 1, 100_000, 300_000):
        response, body = request(backend, "GET", f"/bytes/{size}")
        assert response.getheader("Content-Length") == str(size) and body == pattern_bytes(size)


def test_chunked_body(backend: BackendServer) -> None:
    raw = raw_exchange(backend, b"GET /chunked/10 HTTP/1.1\r\nConnection: close\r\n\r\n")
    _, headers, body = split_response(raw)
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    assert body == b"3\r\nabc\r\n3\r\ndef\r\n3\r\nghi\r\n1\r\nj\r\n0\r\n\r\n"
    response, body = request(backend, "GET", "/chunked/100000")
    assert response.getheader("Transfer-Encoding") == "chunked" and body == pattern_bytes(100_000)
    _, headers, body = split_response(raw_exchange(backend, b"GET /chunked/0 HTTP/1.1\r\nConnection: close\r\n\r\n"))
    assert body == b"0\r\n\r\n"


def test_chunked_to_http10_client_is_close_delimited(backend: BackendServer) -> None:
    _, headers, body = split_response(raw_exchange(backend, b"GET /chunked/1000 HTTP/1.0\r\n\r\n"))
    assert "transfer-encoding" not in headers and headers["connection"] == "close"
    assert body == pattern_bytes(1000)


@pytest.mark.parametrize("data, status", [
    (b"this is not a request\r\n\r\n", 400),
    (b"GET / HTTP/3.0\r\n\r\n", 505),
    (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
])
def test_bad_requests_get_an_error_and_a_close(backend: BackendServer, data: bytes, status: int) -> None:
    status_line, headers, _ = split_response(raw_exchange(backend, data))
    assert status_line.startswith(f"HTTP/1.1 {status} ")
    assert headers["connection"] == "close" and headers["x-backend"] == NAME


def test_stats_count_requests_per_method(backend: BackendServer) -> None:
    request(backend, "GET", "/")
    request(backend, "POST", "/echo", body=b"x")
    request(backend, "OPTIONS", "/")
    stats = json.loads(request(backend, "GET", "/stats.json")[1])
    assert stats["backend"] == NAME
    assert stats["requests"] == 4  # the /stats.json request counts itself
    assert stats["methods"] == {"GET": 2, "POST": 1, "OPTIONS": 1}
    assert stats["connections"] == 4


def test_stop_closes_idle_connections_and_the_listener() -> None:
    server = start_backend("127.0.0.1", 0, NAME)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/")
    connection.getresponse().read()
    server.stop()
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        connection.request("GET", "/")
        connection.getresponse()
    connection.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=10).close()
    server.stop()  # idempotent


def test_binding_a_busy_port_raises_oserror(backend: BackendServer) -> None:
    with pytest.raises(OSError):
        start_backend("127.0.0.1", backend.port, "other")


# --------------------------------------------------------------------------- as a process


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_process_prints_ready_and_exits_cleanly_on_signal(stop_signal: signal.Signals) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "gproxy.demo.backend", "--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0",
         "--name", "proc"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        ports = []
        for _ in range(2):
            line = process.stdout.readline()
            assert line.startswith("ready 127.0.0.1:"), line
            ports.append(int(line.rsplit(":", 1)[1]))
        for port in ports:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/")
            assert connection.getresponse().read() == b"hello from proc\n"
            connection.close()
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None and process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_process_reports_a_busy_port(backend: BackendServer) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "gproxy.demo.backend", "--listen", f"127.0.0.1:{backend.port}", "--name", "x"],
        capture_output=True, text=True, env=env, timeout=20)
    assert result.returncode == 1
    assert result.stderr.startswith("backend x: cannot listen:") and len(result.stderr.splitlines()) == 1
