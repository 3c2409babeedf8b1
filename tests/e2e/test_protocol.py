"""HTTP framing through a real gproxy: keep-alive, pipelining, bodies,
timeouts, and bad input that must never reach a server."""

from __future__ import annotations

import json
import socket
import time

import pytest

from conftest import http_config
from harness import http_get, parse_response, read_response, recv_all


@pytest.fixture
def proxy(start_backend, start_gproxy, port, syslog):
    """One backend behind a keep-alive listen; returns (port, backend, syslog)."""
    backend = start_backend("web")

    def make(**listen):
        timeouts = listen.pop("timeouts", {})
        config = http_config([{"name": "web", "address": backend.address}], port=port,
                             log_target=syslog.target, **listen)
        config["defaults"]["timeout"].update(timeouts)
        start_gproxy(config, [port])
        return port, backend, syslog

    return make


def _connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def test_keep_alive_and_pipelining(proxy):
    port, backend, _ = proxy()
    with _connect(port) as sock:
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        status1, _, body1, rest = read_response(sock)
        status2, _, body2, rest = read_response(sock, rest)
        assert (status1, status2) == (200, 200)
        assert body1 == b"hello from web\n"
        assert json.loads(body2)["target"] == "/echo"
        # Still open: a third request on the same connection.
        sock.sendall(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock, rest)[0] == 200
    assert backend.stats()["connections"] <= 2  # server connections were reused


def test_http10_client_closes_by_default(proxy):
    port, _, _ = proxy()
    with _connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        status, headers, body = parse_response(recv_all(sock))  # returns only once closed
    assert status == 200 and body == b"hello from web\n"


def test_request_bodies_content_length_and_chunked(proxy):
    port, _, _ = proxy()
    with _connect(port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                     b"PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n")
        _, _, body1, rest = read_response(sock)
        _, _, body2, _ = read_response(sock, rest)
    assert json.loads(body1)["body"] == "hello"
    assert json.loads(body2)["body"] == "abcde"


def test_expect_100_continue(proxy):
    port, _, _ = proxy()
    with _connect(port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(b"body")
        status, _, body, _ = read_response(sock, interim.partition(b"\r\n\r\n")[2])
    assert status == 200 and json.loads(body)["body"] == "body"


def test_large_and_chunked_responses_and_head(proxy):
    port, _, _ = proxy()
    status, _, body = http_get(port, "/bytes/1000000")
    assert status == 200 and len(body) == 1_000_000
    status, headers, body = http_get(port, "/chunked/100000")
    assert status == 200 and len(body) == 100_000 and headers["transfer-encoding"] == ["chunked"]
    with _connect(port) as sock:
        sock.sendall(b"HEAD /bytes/500 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while data.count(b"hello from web") < 1:
            data += sock.recv(65536)
    # The HEAD answer has no body: the next response follows its head directly.
    assert data.count(b"HTTP/1.1 200") == 2


def test_status_204_and_304(proxy):
    port, _, _ = proxy()
    with _connect(port) as sock:
        sock.sendall(b"GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\nGET /status/304 HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"hello from web" not in data:
            data += sock.recv(65536)
    assert b"HTTP/1.1 204" in data and b"HTTP/1.1 304" in data


@pytest.mark.parametrize("raw, status", [
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400),
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431),
])
def test_bad_requests_never_reach_a_server(proxy, raw, status):
    port, backend, syslog = proxy()
    before = backend.stats()["requests"]
    with _connect(port) as sock:
        sock.sendall(raw)
        got, headers, _ = parse_response(recv_all(sock))  # and the connection is closed
    assert got == status
    assert backend.stats()["requests"] == before + 1  # only the stats request itself
    line = syslog.wait_for(rf" {status} \d+ - - PR-- ")
    assert '"<BADREQ>"' in line or "<NOSRV>" in line


def test_bad_chunked_body_gets_400(proxy):
    port, _, _ = proxy()
    with _connect(port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        status, _, _ = parse_response(recv_all(sock))
    assert status == 400


def test_garbage_response_gives_502(proxy):
    port, _, syslog = proxy()
    status, _, body = http_get(port, "/garbage")
    assert status == 502 and b"invalid or incomplete response" in body
    assert " PH-- " in syslog.wait_for(r'"GET /garbage ')


def test_server_closing_without_answer_gives_502(proxy):
    port, _, _ = proxy()
    # POST is not replayed: the server may have acted on it.
    with _connect(port) as sock:
        sock.sendall(b"POST /close HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
        status, _, _ = parse_response(recv_all(sock))
    assert status == 502


def test_server_timeout_gives_504(proxy):
    port, _, syslog = proxy(timeouts={"server": "300ms"})
    status, _, _ = http_get(port, "/?sleep=2")
    assert status == 504
    assert " sH-- " in syslog.wait_for(r'"GET /\?sleep=2 ')


def test_http_request_timeout_gives_408(proxy):
    port, backend, syslog = proxy(timeouts={"http_request": "300ms"})
    with _connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # slowloris: never finishes the head
        status, _, _ = parse_response(recv_all(sock))
    assert status == 408
    assert " cR-- " in syslog.wait_for(r" 408 ")


def test_http_keep_alive_timeout_closes_idle_connection(proxy):
    port, _, _ = proxy(timeouts={"http_keep_alive": "200ms"})
    with _connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _, rest = read_response(sock)
        assert status == 200
        assert rest + recv_all(sock) == b""  # closed by gproxy, with no answer


def test_client_timeout_during_body(proxy):
    port, backend, syslog = proxy(timeouts={"client": "300ms"})
    with _connect(port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        data = recv_all(sock)
    assert data == b"" or data.startswith(b"HTTP/1.1 408")
    assert " cD-- " in syslog.wait_for(r'"POST /echo ')


def test_connect_timeout(start_gproxy, port, syslog):
    # A listener whose accept queue is full drops SYNs: the connect times out.
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(blackhole.getsockname())
        fillers.append(s)
    time.sleep(0.1)
    address = "127.0.0.1:%d" % blackhole.getsockname()[1]
    config = http_config([{"name": "hole", "address": address}], port=port, log_target=syslog.target)
    config["defaults"]["timeout"]["connect"] = "200ms"
    config["defaults"]["retries"] = 1
    start_gproxy(config, [port])
    try:
        status, _, _ = http_get(port, "/")
        assert status == 503
        assert " sC-- " in syslog.wait_for(r'"GET / HTTP/1.1"')
    finally:
        for s in fillers:
            s.close()
        blackhole.close()


def test_connection_mode_server_close(proxy):
    port, backend, _ = proxy(connection_mode="server-close")
    with _connect(port) as sock:
        for _ in range(3):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, head, _, _ = read_response(sock)
            assert status == 200
            assert b"onnection: close" not in head  # the client side stays open
    assert backend.stats()["connections"] >= 3  # a new server connection per request


def test_connection_mode_close(proxy):
    port, _, _ = proxy(connection_mode="close")
    with _connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(sock)
    status, headers, _ = parse_response(data)
    assert status == 200 and headers["connection"] == ["close"]


def _echo_from(port, source_ip):
    sock = socket.socket()
    sock.bind((source_ip, 0))
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    with sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        _, _, body = parse_response(recv_all(sock))
    return [v for k, v in json.loads(body)["headers"] if k.lower() == "x-forwarded-for"]


def test_forwardfor_except_network(proxy):
    port, _, _ = proxy(forwardfor={"except": "127.0.0.2/32"})
    assert _echo_from(port, "127.0.0.1") == ["127.0.0.1"]
    assert _echo_from(port, "127.0.0.2") == []  # the excepted client gets no header
    assert _echo_from(port, "127.0.0.3") == ["127.0.0.3"]


def test_forwardfor_custom_header(proxy):
    port, _, _ = proxy(forwardfor={"header": "X-Client-IP"})
    status, _, body = http_get(port, "/echo")
    names = [k for k, _ in json.loads(body)["headers"]]
    assert "X-Client-IP" in names and "X-Forwarded-For" not in names


def test_uri_length_limit_is_configurable(start_backend, start_gproxy, port):
    backend = start_backend("web")
    config = http_config([{"name": "web", "address": backend.address}], port=port)
    config["global"]["tune"] = {"max_uri_length": 100}
    start_gproxy(config, [port])
    assert http_get(port, "/" + "a" * 50)[0] == 200
    assert http_get(port, "/" + "a" * 200)[0] == 414
