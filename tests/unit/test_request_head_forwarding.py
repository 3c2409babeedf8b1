"""What a server receives for a request head: as received plus X-Forwarded-For
when nothing else changes, re-serialised when a header is dropped or
rewritten or when the client used bare LF line ends (never forwarded)."""

from __future__ import annotations

import pytest

import gproxy.http_proxy as hp
from gproxy.config.loader import load_string
from gproxy.protocol.http import append_headers
from gproxy.proxy import Gproxy

CONFIG = """
[defaults]
mode = "http"
[listen.app]
bind = ["127.0.0.1:1"]
cookie = { name = "JSESSIONID", mode = "prefix" }
forwardfor = {}
[[listen.app.server]]
name = "web1"
address = "127.0.0.1:2"
cookie = "s1"
"""
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"


class _Watcher:
    def start(self, *args) -> None:
        pass

    def stop(self) -> None:
        pass


class FakeSocket:
    """Gives `incoming` to the first recv(), then EOF; keeps what is sent."""

    def __init__(self, incoming: bytes) -> None:
        self.incoming = incoming
        self.sent = b""
        self._read_event = _Watcher()
        self.timeout = None

    def recv(self, size: int) -> bytes:
        data, self.incoming = self.incoming, b""
        return data

    def send(self, data: bytes) -> int:
        self.sent += bytes(data)
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.sent += bytes(data)

    def settimeout(self, timeout) -> None:
        self.timeout = timeout

    def gettimeout(self):
        return self.timeout

    def getsockname(self):
        return ("127.0.0.1", 1)

    def close(self) -> None:
        pass


def exchange(request: bytes, response: bytes = RESPONSE) -> tuple[bytes, bytes]:
    """One request from client 192.0.2.7 answered by `response`: (what the
    server got, what the client got)."""
    proxy = Gproxy(load_string(CONFIG))
    server = FakeSocket(response)
    client = FakeSocket(request)
    session = hp.HttpSession(proxy.ctx, proxy.frontends["app"], client, ("192.0.2.7", 5555), None)
    session._server_connection = lambda srv, replayable, out_head: (server, False, 0)
    session.serve_request(True)
    return server.sent, client.sent


def forwarded(request: bytes) -> bytes:
    """The bytes the server got for `request` from client 192.0.2.7."""
    to_server, to_client = exchange(request)
    assert to_client.startswith(b"HTTP/1.1 200 OK\r\n")
    return to_server


def test_unchanged_head_goes_out_as_received_plus_xff():
    request = b"GET /a?b HTTP/1.1\r\nHost: example.org\r\nX-Odd:   spaced  \r\nAccept: */*\r\n\r\n"
    assert forwarded(request) == request[:-2] + b"X-Forwarded-For: 192.0.2.7\r\n\r\n"


def test_hop_by_hop_header_is_dropped():
    request = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n"
    assert forwarded(request) == b"GET / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nX-Forwarded-For: 192.0.2.7\r\n\r\n"


def test_persistence_cookie_is_rewritten():
    request = b"GET / HTTP/1.1\r\nHost: h\r\nCookie: JSESSIONID=s1~abc\r\n\r\n"
    assert forwarded(request) == b"GET / HTTP/1.1\r\nHost: h\r\nCookie: JSESSIONID=abc\r\nX-Forwarded-For: 192.0.2.7\r\n\r\n"


def test_bare_lf_line_ends_are_normalised_to_crlf():
    request = b"GET / HTTP/1.1\nHost: h\r\nAccept: */*\n\n"
    out = forwarded(request)
    assert out == b"GET / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nX-Forwarded-For: 192.0.2.7\r\n\r\n"
    assert out.count(b"\n") == out.count(b"\r\n")


def test_http10_client_without_keep_alive_closes_the_server_side():
    request = b"GET / HTTP/1.0\r\nHost: h\r\n\r\n"
    assert forwarded(request) == request[:-2] + b"X-Forwarded-For: 192.0.2.7\r\nConnection: close\r\n\r\n"


def test_append_headers():
    head = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
    assert append_headers(head, []) is head
    assert append_headers(head, [(b"A", b"1"), (b"B", b"2")]) == b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n"
    with pytest.raises(ValueError):
        append_headers(head, [(b"A", b"1\r\nEvil: 1")])


def test_forwardfor_except_network_is_answered_the_same_from_the_cache():
    from ipaddress import ip_network
    net = ip_network("192.0.2.0/24")
    for _ in range(2):  # parsed, then cached
        assert hp._in_network("192.0.2.7", net) is True
        assert hp._in_network("198.51.100.1", net) is False
        assert hp._in_network("not an address", net) is False
    assert hp._in_network("192.0.2.7", ip_network("10.0.0.0/8")) is False  # keyed by network too
