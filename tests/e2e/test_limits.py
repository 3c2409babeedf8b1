"""Optional limits on a real gproxy in front of a real backend: max_body_size
(413 before a server sees anything, or a cut when the body grows later) and
maxconn_per_client (the (N+1)th connection of an address closed at once).
Every refusal is counted and logged; the backend's request count never moves
on a refused request, and a second client address (127.0.0.2) is not affected."""

from __future__ import annotations

import socket
import time

import pytest

from conftest import http_config
from harness import free_port, http_request, parse_response, recv_all
from test_runtime_api import stat_rows, wait_for

LIMIT = 1024  # max_body_size in the tests, in bytes
PER_CLIENT = 2  # maxconn_per_client in the tests
OTHER_CLIENT = "127.0.0.2"  # another source address on loopback
WAIT = 10.0


@pytest.fixture
def limited(start_backend, start_gproxy, syslog, tmp_path):
    backend = start_backend("b1")
    port = free_port()
    admin = tmp_path / "admin.sock"
    config = http_config([{"name": "b1", "address": backend.address}], port=port, log_target=syslog.target,
                         max_body_size="1k", maxconn_per_client=PER_CLIENT)
    config["global"]["stats_socket"] = [{"path": str(admin), "level": "admin"}]
    config["defaults"]["timeout"]["client"] = "2s"
    proxy = start_gproxy(config, [port])
    wait_for(admin.exists, "the stats socket")
    # The port probe of start_gproxy opened (and closed) a connection from
    # 127.0.0.1: it counts against maxconn_per_client until gproxy sees it end.
    wait_for(lambda: frontend(admin)["scur"] == "0", "the probe connection to end")
    return {"port": port, "backend": backend, "admin": admin, "syslog": syslog, "proxy": proxy}


def frontend(admin) -> dict[str, str]:
    return stat_rows(admin)["app/FRONTEND"]


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.settimeout(WAIT)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def exchange(sock: socket.socket, raw: bytes) -> tuple:
    sock.sendall(raw)
    return parse_response(recv_all(sock))


def post_head(port: int, headers: str) -> bytes:
    return (f"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n").encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


# ---- max_body_size ---------------------------------------------------------------

def test_a_content_length_over_the_limit_gets_413_and_reaches_no_server(limited):
    port, backend, admin = limited["port"], limited["backend"], limited["admin"]
    before = backend.stats()
    with connect(port) as sock:
        # Only the head is sent: the answer must not wait for the body.
        status, headers, body = exchange(sock, post_head(port, f"Content-Length: {LIMIT + 1}\r\n"))
    assert status == 413 and b"413" in body and headers["connection"] == ["close"]
    after = backend.stats()
    assert after["requests"] == before["requests"] + 1  # only our /stats.json call
    assert after["connections"] == before["connections"] + 1  # ditto: gproxy opened none
    line = limited["syslog"].wait_for(r'app app/<NOSRV> .* 413 .* PR-- .*"POST /echo HTTP/1\.1"')
    assert f"{LIMIT + 1}" not in line.split('"')[0]  # the status and flags, not a size, are logged
    row = frontend(admin)
    assert row["dreq"] == "1" and row["ereq"] == "0" and row["hrsp_4xx"] == "1"


def test_a_body_of_exactly_the_limit_is_served(limited):
    port, backend = limited["port"], limited["backend"]
    before = backend.stats()["requests"]
    status, headers, body = http_request(port, "POST", "/echo", body=b"x" * LIMIT)
    assert status == 200 and headers["x-backend"] == ["b1"]
    assert backend.stats()["requests"] == before + 2
    assert frontend(limited["admin"])["dreq"] == "0"


def test_a_chunked_body_already_too_large_in_one_write_reaches_no_server(limited):
    port, backend, admin = limited["port"], limited["backend"], limited["admin"]
    before = backend.stats()
    raw = post_head(port, "Transfer-Encoding: chunked\r\n") + chunk(b"a" * 600) + chunk(b"b" * 600) + b"0\r\n\r\n"
    with connect(port) as sock:
        status, _, _ = exchange(sock, raw)
    assert status == 413
    after = backend.stats()
    assert after["requests"] == before["requests"] + 1 and after["connections"] == before["connections"] + 1
    limited["syslog"].wait_for(r'app app/<NOSRV> .* 413 .* PR-- .*"POST /echo HTTP/1\.1"')
    assert frontend(admin)["dreq"] == "1"


def test_a_chunked_body_growing_past_the_limit_is_cut(limited):
    """Forwarding began (head and a first chunk reached the server): the server
    connection is closed, the client gets 413 (no response byte had been sent
    to it) and its connection is closed; logged PD--."""
    port, backend, admin = limited["port"], limited["backend"], limited["admin"]
    before = backend.stats()
    with connect(port) as sock:
        sock.sendall(post_head(port, "Transfer-Encoding: chunked\r\n") + chunk(b"a" * 600))
        # The server gets the head and the first chunk (its connection count moves).
        wait_for(lambda: backend.stats()["connections"] >= before["connections"] + 2, "the server connection")
        seen = backend.stats()["requests"]  # each stats call is a request
        sock.sendall(chunk(b"b" * 600))
        status, _, _ = parse_response(recv_all(sock))
    assert status == 413
    limited["syslog"].wait_for(r'app app/b1 .* 413 .* PD-- .*"POST /echo HTTP/1\.1"')
    # The server saw a truncated request: it never counted it as one.
    assert backend.stats()["requests"] == seen + 1  # only this /stats.json call
    row = frontend(admin)
    assert row["dreq"] == "1" and row["ereq"] == "0"


# ---- maxconn_per_client ----------------------------------------------------------

def served(sock: socket.socket, port: int) -> int:
    """One keep-alive GET on `sock`; its status."""
    sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"\n"):
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return parse_response(data)[0]


def refused(sock: socket.socket) -> bool:
    """The proxy closed `sock` without a byte of answer."""
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def test_the_connection_past_the_per_client_limit_is_closed_at_once(limited):
    port, backend, admin, syslog = limited["port"], limited["backend"], limited["admin"], limited["syslog"]
    held = [connect(port) for _ in range(PER_CLIENT)]
    try:
        for sock in held:
            assert served(sock, port) == 200
        before = backend.stats()["requests"]
        with connect(port) as extra:
            assert refused(extra)
        assert backend.stats()["requests"] == before + 1  # only the /stats.json call
        syslog.wait_for(r"127\.0\.0\.1:\d+ \[.*\] app/1: Connection refused: 2 connections from this address")
        assert frontend(admin)["dcon"] == "1"  # counted where HAProxy counts a rejected connection
        # Another address is not affected, even now.
        with connect(port, OTHER_CLIENT) as other:
            assert served(other, port) == 200
        # The held connections go on being served.
        for sock in held:
            assert served(sock, port) == 200
    finally:
        for sock in held:
            sock.close()
    # Once one ends, the address may connect again.
    deadline = time.monotonic() + WAIT
    while True:
        with connect(port) as again:
            try:
                if served(again, port) == 200:
                    break
            except OSError:
                pass
        assert time.monotonic() < deadline, "the address stayed refused after its connections ended"
        time.sleep(0.05)
    assert int(frontend(admin)["conn_tot"]) >= PER_CLIENT + 2


def test_a_chunked_body_growing_past_the_limit_after_an_interim_answer_closes_the_client(limited):
    """With `Expect: 100-continue` the server's 100 reached the client before
    the body grew too large: a final 413 is not sent after response bytes, the
    client connection is just closed; logged PD--, counted in dreq."""
    port, admin = limited["port"], limited["admin"]
    with connect(port) as sock:
        sock.sendall(post_head(port, "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n"))
        interim = b""
        while b"\r\n\r\n" not in interim:
            piece = sock.recv(65536)
            assert piece, interim
            interim += piece
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(chunk(b"a" * 600) + chunk(b"b" * 600))
        rest = recv_all(sock)
    assert interim.partition(b"\r\n\r\n")[2] + rest == b""  # closed, no final answer
    limited["syslog"].wait_for(r'app app/b1 .* PD-- .*"POST /echo HTTP/1\.1"')
    assert frontend(admin)["dreq"] == "1"


def test_a_chunked_body_growing_past_the_limit_on_the_stats_page_gets_413(start_backend, start_gproxy):
    """The stats page reads its admin form itself: a body past max_body_size
    is a 413 there too, not a 400."""
    backend = start_backend("b1")
    port = free_port()
    config = http_config([{"name": "b1", "address": backend.address}], port=port, max_body_size="1k",
                         stats={"uri": "/stats", "auth": ["admin:pw"], "admin": True})
    start_gproxy(config, [port])
    before = backend.stats()["requests"]
    with connect(port) as sock:
        sock.sendall(b"POST /stats HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46cHc=\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n")
        time.sleep(0.1)  # the head is routed to the page before the body comes
        sock.sendall(chunk(b"a" * 600))
        time.sleep(0.1)
        status, _, _ = exchange(sock, chunk(b"b" * 600) + b"0\r\n\r\n")
    assert status == 413
    assert backend.stats()["requests"] == before + 1  # only the /stats.json call
