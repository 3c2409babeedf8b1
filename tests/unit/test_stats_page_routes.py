"""The page and the metrics served through a real HttpSession over a socket
pair: the frontend hook, bodies (length, chunked, 100-continue, too large,
too slow), keep-alive, HEAD, the access-log record and the counters."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import gevent
import pytest
from gevent import socket

from gproxy.context import Clock, ProxyContext
from gproxy.http_proxy import HttpSession
from gproxy.stats_page.routes import MAX_BODY_BYTES, LocalRoutes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_api_support import START, build_state, facts  # noqa: E402

CONFIG = """
[listen.app]
bind = ["127.0.0.1:1"]
timeout = { client = "300ms" }
stats = { uri = "/st", auth = ["admin:secret"], admin = true }
prometheus = { uri = "/metrics" }
server = [{ name = "web1", address = "127.0.0.1:2" }, { name = "web2", address = "127.0.0.1:3" }]
"""
AUTH = "Authorization: Basic " + base64.b64encode(b"admin:secret").decode() + "\r\n"
READ_TIMEOUT = 5.0


class Conversation:
    """An HttpSession on one end of a socket pair, the test on the other."""

    def __init__(self) -> None:
        self.state = build_state(CONFIG)
        fe = self.state.frontends["app"]
        fe.local_routes = LocalRoutes.for_frontend(fe.cfg, self.state, lambda: START, facts)
        ctx = ProxyContext(bus=self.state.bus, process=self.state.process, tune=self.state.config.global_.tune,
                           clock=Clock(wall=lambda: START))
        self.ours, self.peer = socket.socketpair()
        self.peer.settimeout(READ_TIMEOUT)
        self.logged = []
        self.session = HttpSession(ctx, fe, self.ours, ("127.0.0.1", 40000), self.logged.append)
        self.fe = fe
        self.buffer = b""

    def serve(self, raw: bytes) -> bool:
        """Send `raw`, let the session serve one request; True if it keeps the connection."""
        if raw:
            self.peer.sendall(raw)
        return self.session.serve_request(first=not self.logged)

    def response(self, to_head: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(lines[0].split(" ")[1])
        length = int(headers.get("content-length", "0"))
        if lines[0].startswith("HTTP/1.1 100 ") or to_head:
            length = 0
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]
        return status, headers, rest[:length]

    def _recv(self) -> bytes:
        data = self.peer.recv(65536)
        if not data:
            raise EOFError("the session closed the connection")
        return data

    def close(self) -> None:
        self.ours.close()
        self.peer.close()


@pytest.fixture
def conv():
    conversation = Conversation()
    yield conversation
    conversation.close()


def test_page_keep_alive_then_next_request(conv) -> None:
    assert conv.serve(b"GET /st HTTP/1.1\r\nHost: x\r\n" + AUTH.encode() + b"\r\n")
    status, headers, body = conv.response()
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert int(headers["content-length"]) == len(body) and b'id="app/web1"' in body
    assert "connection" not in headers
    assert conv.serve(b"GET /st;csv HTTP/1.1\r\nHost: x\r\n" + AUTH.encode() + b"\r\n")
    assert conv.response()[2].startswith(b"# pxname,svname,")
    record = conv.logged[0]
    assert (record.server, record.status, record.termination) == ("<STATS>", 200, "LR--")
    assert record.request_line == "GET /st HTTP/1.1" and record.bytes_out > len(body)
    assert conv.fe.counters.hrsp[1] == 2 and conv.fe.counters.req_tot == 2
    assert conv.fe.counters.bytes_out == sum(r.bytes_out for r in conv.logged)


def test_unauthenticated_gets_401_and_the_connection_stays(conv) -> None:
    assert conv.serve(b"GET /st HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = conv.response()
    assert status == 401 and headers["www-authenticate"] == 'Basic realm="gproxy Statistics"'
    assert conv.fe.counters.hrsp[3] == 1


def test_post_with_length_then_pipelined_get(conv) -> None:
    form = b"b=app&s=web2&action=maint"
    request = (b"POST /st HTTP/1.1\r\nHost: x\r\n" + AUTH.encode()
               + b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(form) + form)
    assert conv.serve(request + b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = conv.response()
    assert status == 303 and headers["location"] == "/st;st=DONE"
    assert conv.state.backends["app"].by_name["web2"].status == "MAINT"
    assert conv.serve(b"")
    status, headers, body = conv.response()
    assert status == 200 and headers["content-type"] == "text/plain; version=0.0.4"
    assert b'gproxy_server_status{proxy="app",server="web2",state="MAINT"} 1' in body
    assert [r.status for r in conv.logged] == [303, 200]


def test_chunked_post_and_expect_continue(conv) -> None:
    head = (b"POST /st;norefresh HTTP/1.1\r\nHost: x\r\n" + AUTH.encode()
            + b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
    conv.peer.sendall(head)
    done = []
    worker = gevent.spawn(lambda: done.append(conv.session.serve_request(first=True)))
    status, _, _ = conv.response()
    assert status == 100
    conv.peer.sendall(b"d\r\nb=app&s=web1&\r\nc\r\naction=drain\r\n0\r\n\r\n")
    worker.join(READ_TIMEOUT)
    status, headers, _ = conv.response()
    assert done == [True] and status == 303 and headers["location"] == "/st;norefresh;st=DONE"
    assert conv.state.backends["app"].by_name["web1"].status == "DRAIN"


def test_head_has_no_body(conv) -> None:
    assert conv.serve(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = conv.response(to_head=True)
    assert status == 200 and int(headers["content-length"]) > 0
    assert conv.serve(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n") is False
    status, headers, body = conv.response()
    assert headers["connection"] == "close" and len(body) == int(headers["content-length"])


def test_too_large_body_is_refused_and_closes(conv) -> None:
    request = (b"POST /st HTTP/1.1\r\nHost: x\r\n" + AUTH.encode()
               + b"Content-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1))
    assert conv.serve(request) is False
    status, headers, _ = conv.response()
    assert status == 413 and headers["connection"] == "close"
    assert conv.state.backends["app"].by_name["web1"].status == "no check"


def test_chunked_body_over_the_bound_is_refused(conv) -> None:
    request = (b"POST /st HTTP/1.1\r\nHost: x\r\n" + AUTH.encode() + b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (40000, b"a" * 40000)
    conv.peer.sendall(request + chunk + chunk)
    assert conv.session.serve_request(first=True) is False
    assert conv.response()[0] == 413


def test_a_body_too_slow_gets_408(conv) -> None:
    request = b"POST /st HTTP/1.1\r\nHost: x\r\n" + AUTH.encode() + b"Content-Length: 30\r\n\r\nb=app"
    assert conv.serve(request) is False  # `timeout client` (300 ms) runs out waiting for 25 more bytes
    status, headers, _ = conv.response()
    assert status == 408 and headers["connection"] == "close"


def test_a_client_gone_mid_body_is_logged(conv) -> None:
    conv.peer.sendall(b"POST /st HTTP/1.1\r\nHost: x\r\n" + AUTH.encode() + b"Content-Length: 30\r\n\r\nb=a")
    conv.peer.shutdown(socket.SHUT_WR)
    assert conv.session.serve_request(first=True) is False
    assert conv.logged[-1].termination == "CR--" and conv.logged[-1].server == "<STATS>"
