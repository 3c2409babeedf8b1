"""What a client receives for a response head: the server's lines as received
when its line ends are CRLF, with only the dropped (hop-by-hop) and rewritten
(Set-Cookie prefix) lines changed; every line written anew with CRLF when the
server used bare LF line ends (never forwarded)."""

from __future__ import annotations

import pytest

from gproxy.protocol.http import join_head_lines

from test_request_head_forwarding import exchange


def answered(response: bytes, request: bytes = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") -> bytes:
    """The bytes the client got for `response` (the server's, whole)."""
    return exchange(request, response)[1]


def test_crlf_lines_go_out_as_received_but_the_dropped_and_rewritten_ones():
    response = (b"HTTP/1.1 200 Fine Thanks\r\nServer:  nginx/1.22 \r\nConnection: keep-alive\r\n"
                b"Keep-Alive: timeout=5\r\nSet-Cookie: JSESSIONID=abc; Path=/\r\nX-Other:x\r\n"
                b"Content-Length: 3\r\n\r\nok\n")
    assert answered(response) == (
        b"HTTP/1.1 200 Fine Thanks\r\nServer:  nginx/1.22 \r\n"
        b"Set-Cookie: JSESSIONID=s1~abc; Path=/\r\nX-Other:x\r\nContent-Length: 3\r\n\r\nok\n")


def test_bare_lf_line_ends_are_written_anew_with_crlf():
    response = (b"HTTP/1.1 200 OK\nServer: nginx\nConnection: keep-alive\n"
                b"Set-Cookie: JSESSIONID=abc\r\nContent-Length: 3\n\nok\n")
    sent = answered(response)
    head, _, body = sent.partition(b"\r\n\r\n")
    assert head == b"HTTP/1.1 200 OK\r\nServer: nginx\r\nSet-Cookie: JSESSIONID=s1~abc\r\nContent-Length: 3"
    assert body == b"ok\n"
    assert sent.count(b"\n") == sent.count(b"\r\n") + 1  # the body's own LF only


@pytest.mark.parametrize(("request_head", "added"), [
    (b"GET / HTTP/1.0\r\nHost: a\r\n\r\n", b"Connection: close\r\n"),  # 1.0 without keep-alive
    (b"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", b"Connection: keep-alive\r\n"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", b"Connection: close\r\n"),
])
def test_the_connection_line_added_for_the_client(request_head, added):
    response = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nok\n"
    assert answered(response, request_head) == b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n" + added + b"\r\nok\n"


def test_join_head_lines_refuses_a_cr_or_lf_inside_a_line():
    assert join_head_lines([b"HTTP/1.1 200 OK", b"A: b"]) == b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n"
    for bad in (b"A: b\r\nInjected: 1", b"A: b\nInjected: 1", b"A: b\r"):
        with pytest.raises(ValueError):
            join_head_lines([b"HTTP/1.1 200 OK", bad])
