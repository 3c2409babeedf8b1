"""Tests for gproxy.protocol.http: every input is fed whole, byte by byte, in
random chunks, with trailing data and cut short by EOF, and must give the same
events each time (h11's tr(), gunicorn's treq send_* helpers)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable, Iterable

import pytest

from gproxy.errors import IllegalTransition, ProtocolError
from gproxy.protocol.http import (
    NEED_DATA,
    REASONS,
    ConnectionClosed,
    Data,
    EndOfMessage,
    RequestHead,
    RequestParser,
    ResponseHead,
    ResponseParser,
    serialize_request_head,
    serialize_response_head,
)

CORPUS = Path(__file__).parent / "http_corpus"
TRAILER_GARBAGE = b"GARBAGE-WITHOUT-NEWLINE"

# ---------------------------------------------------------------------------
# Harness
# ---------------------------------------------------------------------------


def summarize(event: object) -> object:
    """A comparable, readable form of one event."""
    if isinstance(event, RequestHead):
        return (
            "req", event.method, event.target, event.version, tuple(event.headers), event.keep_alive,
            event.body_kind, event.content_length, event.expect_continue, event.upgrade,
        )  # fmt: skip
    if isinstance(event, ResponseHead):
        return (
            "resp", event.version, event.status, event.reason, tuple(event.headers), event.keep_alive,
            event.body_kind, event.content_length, event.tunnel,
        )  # fmt: skip
    if type(event) is Data:
        return ("data", event.data)
    if event is EndOfMessage:
        return "eom"
    if event is ConnectionClosed:
        return "closed"
    raise AssertionError(f"unexpected event {event!r}")


def drain(parser, out: list) -> None:
    while True:
        event = parser.next_event()
        if event is NEED_DATA:
            return
        out.append(event)
        if event is ConnectionClosed:
            return


def merge(events: list) -> list:
    """Summaries with consecutive Data events joined (chunking must not matter)."""
    merged: list = []
    for event in events:
        s = summarize(event)
        if s[0] == "data" and merged and merged[-1][0] == "data":
            merged[-1] = ("data", merged[-1][1] + s[1])
        else:
            merged.append(s)
    return merged


def feed(make: Callable, pieces: Iterable[bytes], eof: bool = True):
    """Feed pieces to a fresh parser: (merged events, ProtocolError or None, parser)."""
    parser = make()
    events: list = []
    error = None
    try:
        for piece in pieces:
            if not piece:
                continue  # b"" would mean EOF
            parser.receive_data(piece)
            drain(parser, events)
        if eof:
            parser.receive_data(b"")
            drain(parser, events)
    except ProtocolError as exc:
        error = exc
    return merge(events), error, parser


def chunkings(data: bytes) -> dict[str, list[bytes]]:
    ways = {"whole": [data], "bytewise": [data[i : i + 1] for i in range(len(data))]}
    for seed in range(3):
        rng = random.Random(seed)
        pieces, i = [], 0
        while i < len(data):
            n = rng.randint(1, max(1, len(data) // 4))
            pieces.append(data[i : i + n])
            i += n
        ways[f"random{seed}"] = pieces
    return ways


def check(make: Callable, data: bytes, expected: list | None = None, *, status: int | None = None,
          eof_status: int = 400, trailing: bool = True, truncation: bool = True) -> list:
    """Feed `data` every way and assert one outcome; return the merged events.

    With `status`, every feeding must raise ProtocolError with that status.
    """
    results = {name: feed(make, pieces) for name, pieces in chunkings(data).items()}
    events, error, _ = results["whole"]
    for name, (ev, err, _) in results.items():
        assert ev == events, name
        assert (err is None) == (error is None), (name, err)
        if err is not None:
            assert err.status == error.status, name
    if status is not None:
        assert error is not None, f"expected ProtocolError({status}), got {events}"
        assert error.status == status, str(error)
        return events
    assert error is None, str(error)
    if expected is not None:
        assert events == expected
    if trailing:
        # (d) trailing data: an incomplete next head stays buffered untouched.
        ev, err, parser = feed(make, [data + TRAILER_GARBAGE], eof=False)
        assert err is None
        assert ev == [e for e in events if e != "closed"]
        assert parser.trailing_data == TRAILER_GARBAGE
        assert parser.take_trailing_data() == TRAILER_GARBAGE
        assert parser.trailing_data == b""
    if truncation:
        check_truncations(make, data, events, eof_status)
    return events


def check_truncations(make: Callable, data: bytes, full: list, eof_status: int) -> None:
    """(e) EOF after every prefix: an error with eof_status, or a clean prefix of the events."""
    for cut in range(len(data)):
        ev, err, _ = feed(make, [data[:cut]])
        if err is not None:
            assert err.status == eof_status, (cut, str(err))
        else:
            assert ev and ev[-1] == "closed", (cut, ev)
            ev = ev[:-1]
        assert len(ev) <= len(full), cut
        for i, got in enumerate(ev):
            want = full[i]
            if got[0] == "data" and i == len(ev) - 1:
                assert want[0] == "data" and want[1].startswith(got[1]), cut
            else:
                assert got == want, (cut, i)


def check_close_delimited_truncations(make: Callable, data: bytes, full: list) -> None:
    """EOF ends a close-delimited body: every cut past the head is a shorter, valid message."""
    head_len = data.index(b"\r\n\r\n") + 4
    for cut in range(len(data)):
        ev, err, _ = feed(make, [data[:cut]])
        if cut == 0:
            assert (ev, err) == (["closed"], None)
        elif cut < head_len:
            assert ev == [] and err is not None and err.status == 502, cut
        else:
            body = [("data", data[head_len:cut])] if cut > head_len else []
            assert (ev, err) == ([full[0], *body, "eom", "closed"], None), cut


def request_parser(**kw) -> Callable[[], RequestParser]:
    return lambda: RequestParser(**kw)


def response_parser(*methods: bytes, **kw) -> Callable[[], ResponseParser]:
    def make() -> ResponseParser:
        p = ResponseParser(**kw)
        for m in methods:
            p.expect_response_to(m)
        return p

    return make


def req(method, target, headers, keep_alive=True, body_kind="none", length=None, expect=False,
        upgrade=False, version=b"HTTP/1.1"):
    return ("req", method, target, version, tuple(headers), keep_alive, body_kind, length, expect, upgrade)


def resp(status, reason, headers, keep_alive=True, body_kind="none", length=None, tunnel=False,
         version=b"HTTP/1.1"):
    return ("resp", version, status, reason, tuple(headers), keep_alive, body_kind, length, tunnel)


# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------


def test_simple_get():
    data = b"GET /a?b HTTP/1.1\r\nHost: example.com\r\nUser-Agent:   curl/8 \t\r\n\r\n"
    events = check(request_parser(), data, [
        req(b"GET", b"/a?b", [(b"Host", b"example.com"), (b"User-Agent", b"curl/8")]),
        "eom",
        "closed",
    ])  # fmt: skip
    assert events[0][4][1] == (b"User-Agent", b"curl/8")


def test_head_raw_and_lookups():
    data = b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nX-Y: 1\r\ncookie: b=2\r\n\r\n"
    p = RequestParser()
    p.receive_data(data)
    head = p.next_event()
    assert isinstance(head, RequestHead)
    assert head.raw == data
    assert head.header(b"cookie") == b"a=1"
    assert head.header_values(b"cookie") == [b"a=1", b"b=2"]
    assert head.header(b"x-y") == b"1"
    assert head.header(b"missing") is None
    assert head.header_values(b"missing") == []
    assert head.has_header(b"host")


def test_post_with_content_length():
    data = b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"
    check(request_parser(), data, [
        req(b"POST", b"/form", [(b"Host", b"h"), (b"Content-Length", b"11")], body_kind="length", length=11),
        ("data", b"hello world"),
        "eom",
        "closed",
    ])  # fmt: skip


def test_get_with_body_and_zero_length():
    data = (
        b"GET /q HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        b"PUT /z HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    )
    check(request_parser(), data, [
        req(b"GET", b"/q", [(b"Content-Length", b"3")], body_kind="length", length=3),
        ("data", b"abc"),
        "eom",
        req(b"PUT", b"/z", [(b"Content-Length", b"0")], body_kind="length", length=0),
        "eom",
        "closed",
    ])  # fmt: skip


CHUNKED_BODY = (
    b"5;name=value\r\nhello\r\n"
    b"6 ; ext ; other=\"q\"\r\n world\r\n"
    b"1A\r\n" + b"z" * 26 + b"\r\n"
    b"0\r\n"
    b"X-Checksum: abc\r\n"
    b"X-Other: 1\r\n"
    b"\r\n"
)


def test_chunked_with_extensions_and_trailers_is_passed_verbatim():
    data = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_BODY
    check(request_parser(), data, [
        req(b"POST", b"/up", [(b"Host", b"h"), (b"Transfer-Encoding", b"chunked")], body_kind="chunked"),
        ("data", CHUNKED_BODY),
        "eom",
        "closed",
    ])  # fmt: skip


def test_chunked_codings_list_and_bare_lf_only_from_servers():
    body = b"3\r\nabc\r\n0\r\n\r\n"
    data = b"POST / HTTP/1.1\nTransfer-Encoding: gzip, Chunked\n\n" + body
    events = check(request_parser(), data)
    assert events[0][6] == "chunked"
    assert events[1] == ("data", body)
    # A request's chunked body is forwarded verbatim, so its framing must be
    # CRLF-only; a server's response may use bare LFs (the client re-parses).
    check(request_parser(), b"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n", status=400)
    lf_body = b"3\nabc\n0\n\n"
    events = check(response_parser(), b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n" + lf_body, eof_status=502)
    assert events[1] == ("data", lf_body)


def test_large_chunk_is_streamed_not_buffered():
    size = 200_000
    data = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % size + b"x" * size + b"\r\n0\r\n\r\n"
    p = RequestParser()
    got = []
    for i in range(0, len(data), 1000):
        p.receive_data(data[i : i + 1000])
        drain(p, got)
        # Nothing beyond a partial framing line is ever held back.
        assert len(p.trailing_data) < 16
    datas = [e for e in got if type(e) is Data]
    assert len(datas) > 150
    assert b"".join(d.data for d in datas) == data[data.index(b"\r\n\r\n") + 4 :]
    assert got[-1] is EndOfMessage


def test_large_length_body_is_streamed():
    p = RequestParser()
    p.receive_data(b"PUT / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"a" * 10)
    assert isinstance(p.next_event(), RequestHead)
    assert p.next_event() == Data(b"a" * 10)
    piece = b"b" * 50_000
    p.receive_data(piece)
    event = p.next_event()
    assert event.data is piece  # passed through without a copy
    p.receive_data(b"c" * 49_990 + b"GET")
    assert p.next_event() == Data(b"c" * 49_990)
    assert p.next_event() is EndOfMessage
    assert p.next_event() is NEED_DATA
    assert p.trailing_data == b"GET"


def test_pipelined_requests_in_one_buffer():
    data = (
        b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab"
        b"\r\n"  # stray CRLF after a body, tolerated (RFC 9112 2.2)
        b"POST /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
        b"GET /4 HTTP/1.0\r\n\r\n"
    )
    events = check(request_parser(), data)
    heads = [e for e in events if e[0] == "req"]
    assert [h[2] for h in heads] == [b"/1", b"/2", b"/3", b"/4"]
    assert events.count("eom") == 4
    assert [e for e in events if e[0] == "data"] == [("data", b"ab"), ("data", b"1\r\nx\r\n0\r\n\r\n")]
    assert events[-1] == "closed"


@pytest.mark.parametrize(
    "version, connection, keep_alive",
    [
        (b"HTTP/1.1", None, True),
        (b"HTTP/1.1", b"close", False),
        (b"HTTP/1.1", b"Keep-Alive", True),
        (b"HTTP/1.1", b"keep-alive, CLOSE", False),
        (b"HTTP/1.0", None, False),
        (b"HTTP/1.0", b"Keep-Alive", True),
        (b"HTTP/1.0", b"foo,  keep-alive ", True),
        (b"HTTP/1.0", b"close", False),
        (b"HTTP/1.2", None, True),  # unknown 1.x minor: treated as 1.1
    ],
)
def test_keep_alive_rules(version, connection, keep_alive):
    headers = [(b"Connection", connection)] if connection is not None else []
    data = serialize_request_head(b"GET", b"/", version, headers)
    events = check(request_parser(), data, truncation=False)
    assert events[0][3] == version
    assert events[0][5] is keep_alive


def test_http10_with_transfer_encoding_is_chunked_then_closed():
    data = b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    events = check(request_parser(), data)
    assert events[0][5:7] == (False, "chunked")


@pytest.mark.parametrize(
    "version, value, expected",
    [
        (b"HTTP/1.1", b"100-continue", True),
        (b"HTTP/1.1", b"100-Continue", True),
        (b"HTTP/1.1", b"something-else", False),
        (b"HTTP/1.0", b"100-continue", False),  # RFC 9110 10.1.1: ignored from 1.0 clients
    ],
)
def test_expect_continue(version, value, expected):
    data = serialize_request_head(b"PUT", b"/f", version, [(b"Expect", value), (b"Content-Length", b"4")])
    events = check(request_parser(), data + b"data")
    assert events[0][8] is expected
    assert events[1] == ("data", b"data")


def test_websocket_upgrade_leaves_following_bytes_for_the_tunnel():
    head = (
        b"GET /chat HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    events = check(request_parser(), head)
    assert events[0][9] is True
    p = RequestParser()
    p.receive_data(head + b"\x81\x05hello")
    assert p.next_event().upgrade
    assert p.next_event() is EndOfMessage
    assert p.take_trailing_data() == b"\x81\x05hello"
    assert p.next_event() is NEED_DATA


def test_upgrade_needs_both_headers():
    for headers in ([(b"Upgrade", b"websocket")], [(b"Connection", b"upgrade")]):
        events = check(request_parser(), serialize_request_head(b"GET", b"/", b"HTTP/1.1", headers),
                       truncation=False)
        assert events[0][9] is False


def test_leading_empty_lines_and_bare_lf():
    data = b"\r\n\n\r\nOPTIONS * HTTP/1.1\nHost: h\r\n\n"
    check(request_parser(), data, [req(b"OPTIONS", b"*", [(b"Host", b"h")]), "eom", "closed"])


def test_only_empty_lines_then_eof_is_a_clean_close():
    check(request_parser(), b"\r\n\r\n", ["closed"], trailing=False)


def test_repeated_identical_content_length_is_one():
    for headers in (
        [(b"Content-Length", b"5, 5")],
        [(b"Content-Length", b"5"), (b"content-length", b"5")],
        [(b"Content-Length", b"05")],
    ):
        data = serialize_request_head(b"POST", b"/", b"HTTP/1.1", headers) + b"12345"
        events = check(request_parser(), data)
        assert events[0][6:8] == ("length", 5)


def test_connect_and_absolute_targets():
    for target in (b"example.com:443", b"http://example.com/x?y=%20"):
        data = serialize_request_head(b"CONNECT", target, b"HTTP/1.1", [(b"Host", b"example.com")])
        events = check(request_parser(), data, truncation=False)
        assert events[0][2] == target


def test_extension_method_token():
    events = check(request_parser(), b"M-SEARCH * HTTP/1.1\r\n\r\n", truncation=False)
    assert events[0][1] == b"M-SEARCH"


# ---------------------------------------------------------------------------
# Bad requests
# ---------------------------------------------------------------------------

BAD_REQUESTS = {
    # request line
    "no version": (b"GET /\r\n\r\n", 400),
    "two spaces": (b"GET  / HTTP/1.1\r\n\r\n", 400),
    "trailing space": (b"GET / HTTP/1.1 \r\n\r\n", 400),
    "http2": (b"GET / HTTP/2.0\r\n\r\n", 400),
    "http09": (b"GET / HTTP/0.9\r\n\r\n", 400),
    "lowercase version": (b"GET / http/1.1\r\n\r\n", 400),
    "garbage version": (b"GET / HTTP/1.1x\r\n\r\n", 400),
    "bad method": (b"G(T / HTTP/1.1\r\n\r\n", 400),
    "ctl in target": (b"GET /a\tb HTTP/1.1\r\n\r\n", 400),
    "tls hello": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    # header names and lines
    "bad header name": (b"GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", 400),
    "space before colon": (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),
    "empty header name": (b"GET / HTTP/1.1\r\n: h\r\n\r\n", 400),
    "no colon": (b"GET / HTTP/1.1\r\nHost\r\n\r\n", 400),
    "obs-fold": (b"GET / HTTP/1.1\r\nX-A: a\r\n  continued\r\n\r\n", 400),
    "leading whitespace": (b"GET / HTTP/1.1\r\n\tX-A: a\r\n\r\n", 400),
    "NUL in value": (b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n", 400),
    "bare CR in value": (b"GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400),
    "bare CR line end": (b"GET / HTTP/1.1\rX-A: a\r\n\r\n", 400),
    "bare CR before request": (b"\rGET / HTTP/1.1\r\n\r\n", 400),
    # Content-Length
    "CL letters": (b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
    "CL negative": (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    "CL plus": (b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400),
    "CL hex": (b"POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n", 400),
    "CL inner space": (b"POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", 400),
    "CL empty": (b"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400),
    "CL empty item": (b"POST / HTTP/1.1\r\nContent-Length: 5,\r\n\r\n", 400),
    "CL huge": (b"POST / HTTP/1.1\r\nContent-Length: 9999999999999999999\r\n\r\n", 400),
    "CL unicode digit": ("POST / HTTP/1.1\r\nContent-Length: \u0663\r\n\r\n".encode(), 400),
    "CL conflicting headers": (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
    "CL conflicting list": (b"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n", 400),
    # Transfer-Encoding
    "CL and TE": (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    "TE not chunked": (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    "TE chunked not last": (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
    "TE chunked twice": (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    "TE empty": (b"POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n", 400),
    "TE with params": (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 400),
}

CHUNK_PREFIX = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
BAD_CHUNKS = {
    "not hex": b"zz\r\nab\r\n0\r\n\r\n",
    "0x prefix": b"0x5\r\nhello\r\n0\r\n\r\n",
    "empty size": b"\r\nhello\r\n0\r\n\r\n",
    "leading space": b" 5\r\nhello\r\n0\r\n\r\n",
    "sign": b"+5\r\nhello\r\n0\r\n\r\n",
    "underscore": b"1_0\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n",
    "too many digits": b"1" * 17 + b"\r\n",
    "bare CR in size line": b"5;a\rb\r\nhello\r\n0\r\n\r\n",
    "data longer than size": b"3\r\nhello\r\n0\r\n\r\n",
    "bad trailer": b"0\r\nno colon here\r\n\r\n",
    "folded trailer": b"0\r\nX: a\r\n b\r\n\r\n",
    "size line too long": b"5;" + b"e" * 5000 + b"\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_bad_request(name):
    data, status = BAD_REQUESTS[name]
    check(request_parser(), data, status=status)


@pytest.mark.parametrize("name", sorted(BAD_CHUNKS))
def test_bad_chunked_body(name):
    events = check(request_parser(), CHUNK_PREFIX + BAD_CHUNKS[name], status=400)
    assert events[0][6] == "chunked"


def test_oversized_head_is_431():
    p = request_parser(max_head_bytes=100)
    long_value = b"x" * 100
    check(p, b"GET / HTTP/1.1\r\nX-Long: " + long_value + b"\r\n\r\n", status=431)
    # Never terminated: the error comes as soon as the limit is passed.
    parser = p()
    parser.receive_data(b"GET / HTTP/1.1\r\nX-Long: " + long_value)
    with pytest.raises(ProtocolError) as info:
        parser.next_event()
    assert info.value.status == 431


def test_head_exactly_at_the_limit_is_accepted():
    head = b"GET / HTTP/1.1\r\nX: " + b"y" * 50 + b"\r\n\r\n"
    check(request_parser(max_head_bytes=len(head)), head, truncation=False)
    check(request_parser(max_head_bytes=len(head) - 1), head, status=431)
    bare = head.replace(b"\r\n", b"\n")
    check(request_parser(max_head_bytes=len(bare)), bare, truncation=False)
    check(request_parser(max_head_bytes=len(bare) - 1), bare, status=431)


def test_too_many_headers_is_431():
    headers = [(b"X-%d" % i, b"v") for i in range(4)]
    data = serialize_request_head(b"GET", b"/", b"HTTP/1.1", headers)
    check(request_parser(max_headers=4), data, truncation=False)
    check(request_parser(max_headers=3), data, status=431)


def test_trailer_section_too_large():
    data = CHUNK_PREFIX + b"0\r\n" + b"X-T: " + b"t" * 200 + b"\r\n\r\n"
    check(request_parser(max_head_bytes=100), data, status=431)


def test_error_is_sticky():
    p = RequestParser()
    p.receive_data(b"GET / HTTP/9.9\r\n\r\n")
    for _ in range(2):
        with pytest.raises(ProtocolError) as info:
            p.next_event()
        assert info.value.status == 400


def test_data_after_eof_is_an_illegal_transition():
    p = RequestParser()
    p.receive_data(b"")
    assert p.next_event() is ConnectionClosed
    assert p.next_event() is ConnectionClosed
    with pytest.raises(IllegalTransition):
        p.receive_data(b"GET")


def test_eof_in_body_is_400():
    p = RequestParser()
    p.receive_data(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
    p.receive_data(b"")
    assert isinstance(p.next_event(), RequestHead)
    assert p.next_event() == Data(b"abc")  # what arrived is still returned first
    with pytest.raises(ProtocolError) as info:
        p.next_event()
    assert info.value.status == 400


# ---------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------


def test_response_with_content_length():
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
    check(response_parser(b"GET"), data, [
        resp(200, b"OK", [(b"Content-Length", b"5"), (b"Content-Type", b"text/plain")], body_kind="length",
             length=5),
        ("data", b"hello"),
        "eom",
        "closed",
    ], eof_status=502)  # fmt: skip


def test_chunked_response_passed_verbatim():
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_BODY
    events = check(response_parser(b"GET"), data, eof_status=502)
    assert events[0][6] == "chunked"
    assert events[1] == ("data", CHUNKED_BODY)


def test_response_te_wins_over_content_length():
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    events = check(response_parser(b"GET"), data, eof_status=502)
    assert events[0][6:8] == ("chunked", None)
    assert events[1] == ("data", b"2\r\nok\r\n0\r\n\r\n")


def test_response_te_not_chunked_reads_until_close():
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nsome bytes"
    events = check(response_parser(b"GET"), data, trailing=False, truncation=False)
    assert events[0][5:7] == (False, "close")
    assert events[1:] == [("data", b"some bytes"), "eom", "closed"]
    check_close_delimited_truncations(response_parser(b"GET"), data, events)


def test_close_delimited_response():
    data = b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nbody until the end"
    events = check(response_parser(b"GET"), data, [
        resp(200, b"OK", [(b"Server", b"old")], keep_alive=False, body_kind="close", version=b"HTTP/1.0"),
        ("data", b"body until the end"),
        "eom",
        "closed",
    ], trailing=False, truncation=False)  # fmt: skip
    check_close_delimited_truncations(response_parser(b"GET"), data, events)


def test_informational_then_final_response():
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    )
    check(response_parser(b"POST"), data, [
        resp(100, b"Continue", []),
        resp(103, b"Early Hints", [(b"Link", b"</s.css>; rel=preload")]),
        resp(201, b"Created", [(b"Content-Length", b"2")], body_kind="length", length=2),
        ("data", b"ok"),
        "eom",
        "closed",
    ], eof_status=502)  # fmt: skip


def test_eof_after_informational_response_is_502():
    p = response_parser(b"GET")()
    p.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n")
    p.receive_data(b"")
    assert p.next_event().status == 100
    with pytest.raises(ProtocolError) as info:
        p.next_event()
    assert info.value.status == 502


def test_no_body_for_head_204_304_and_methods_queue():
    data = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"  # answers HEAD
        b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"
        b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    )
    events = check(response_parser(b"HEAD", b"GET", b"GET", b"GET"), data, eof_status=502)
    heads = [e for e in events if e[0] == "resp"]
    assert [(h[2], h[6], h[7]) for h in heads] == [
        (200, "none", None), (204, "none", None), (304, "none", None), (200, "length", 3)
    ]
    assert events.count("eom") == 4 and ("data", b"abc") in events


def test_switching_protocols_then_tunnel():
    data = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    events = check(response_parser(b"GET"), data, trailing=False, eof_status=502)
    assert events[0][2] == 101 and events[0][8] is True and events[1] == "eom"
    p = response_parser(b"GET")()
    p.receive_data(data + b"\x81\x02hi")
    assert p.next_event().tunnel
    assert p.next_event() is EndOfMessage
    assert p.take_trailing_data() == b"\x81\x02hi"
    # A caller may also keep reading the tunnel through the parser.
    p.receive_data(b"more")
    assert p.next_event() == Data(b"more")
    assert p.next_event() is NEED_DATA
    p.receive_data(b"")
    assert p.next_event() is ConnectionClosed


def test_connect_2xx_is_a_tunnel_but_4xx_is_not():
    data = b"HTTP/1.1 200 Connection established\r\n\r\n"
    events = check(response_parser(b"CONNECT"), data, trailing=False, eof_status=502)
    assert events[0][6:9] == ("none", None, True)
    events = check(response_parser(b"CONNECT"), b"HTTP/1.1 407 Auth\r\nContent-Length: 1\r\n\r\nx",
                   eof_status=502)
    assert events[0][6:9] == ("length", 1, False)


def test_response_without_reason_phrase():
    for line in (b"HTTP/1.1 200\r\n", b"HTTP/1.1 200 \r\n"):
        events = check(response_parser(), line + b"Content-Length: 0\r\n\r\n", truncation=False)
        assert events[0][2:4] == (200, b"")


@pytest.mark.parametrize(
    "version, connection, body, keep_alive",
    [
        (b"HTTP/1.1", None, b"Content-Length: 0", True),
        (b"HTTP/1.1", b"close", b"Content-Length: 0", False),
        (b"HTTP/1.0", None, b"Content-Length: 0", False),
        (b"HTTP/1.0", b"keep-alive", b"Content-Length: 0", True),
        (b"HTTP/1.1", None, b"X-No-Length: 1", False),  # close-delimited
    ],
)
def test_response_keep_alive(version, connection, body, keep_alive):
    data = version + b" 200 OK\r\n" + body + b"\r\n"
    if connection:
        data += b"Connection: " + connection + b"\r\n"
    events = check(response_parser(), data + b"\r\n", trailing=False, truncation=False)
    assert events[0][5] is keep_alive


BAD_RESPONSES = {
    "garbage": b"garbage\r\n\r\n",
    "no status": b"HTTP/1.1\r\n\r\n",
    "four digit status": b"HTTP/1.1 2000 OK\r\n\r\n",
    "letters status": b"HTTP/1.1 abc OK\r\n\r\n",
    "status below 100": b"HTTP/1.1 099 Low\r\n\r\n",
    "icy": b"ICY 200 OK\r\n\r\n",
    "http2": b"HTTP/2 200 OK\r\n\r\n",
    "bad CL": b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    "conflicting CL": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    "space before colon": b"HTTP/1.1 200 OK\r\nX : a\r\nContent-Length: 0\r\n\r\n",
    "bad chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
    "chunked twice": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "EOF in length body": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    "EOF in chunked body": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
}


@pytest.mark.parametrize("name", sorted(BAD_RESPONSES))
def test_bad_response_is_502(name):
    check(response_parser(b"GET"), BAD_RESPONSES[name], status=502)


def test_oversized_response_head_and_too_many_headers_are_502():
    check(response_parser(max_head_bytes=64), b"HTTP/1.1 200 OK\r\nX: " + b"v" * 64 + b"\r\n\r\n", status=502)
    data = serialize_response_head(b"HTTP/1.1", 200, b"OK", [(b"X-%d" % i, b"v") for i in range(5)])
    check(response_parser(max_headers=4), data, status=502)


def test_idle_server_close_is_connection_closed():
    check(response_parser(b"GET"), b"", ["closed"], trailing=False)


# ---------------------------------------------------------------------------
# Sentinels, serialization, corpus
# ---------------------------------------------------------------------------


def test_sentinels_are_their_own_instances():
    for sentinel in (NEED_DATA, EndOfMessage, ConnectionClosed):
        assert sentinel() is sentinel
        assert isinstance(sentinel, sentinel)
        assert type(sentinel) is sentinel
        assert repr(sentinel) == sentinel.__name__
    assert not isinstance(EndOfMessage, ConnectionClosed)
    assert Data(b"x") == Data(b"x") and Data(b"x") != Data(b"y")


def test_serialize_request_round_trip():
    headers = [(b"Host", b"example.com"), (b"X-Empty", b""), (b"Content-Length", b"3")]
    raw = serialize_request_head(b"POST", b"/p?q=1", b"HTTP/1.1", headers)
    assert raw == b"POST /p?q=1 HTTP/1.1\r\nHost: example.com\r\nX-Empty: \r\nContent-Length: 3\r\n\r\n"
    p = RequestParser()
    p.receive_data(raw)
    head = p.next_event()
    assert (head.method, head.target, head.version, head.headers, head.raw) == (
        b"POST", b"/p?q=1", b"HTTP/1.1", headers, raw
    )
    # Parsing then serializing a parsed head gives the same bytes back.
    assert serialize_request_head(head.method, head.target, head.version, head.headers) == raw


def test_serialize_response_round_trip():
    headers = [(b"Content-Type", b"text/html"), (b"Set-Cookie", b"SRV=a; path=/")]
    raw = serialize_response_head(b"HTTP/1.1", 503, REASONS[503], headers)
    assert raw.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    p = ResponseParser()
    p.receive_data(raw)
    head = p.next_event()
    assert (head.version, head.status, head.reason, head.headers, head.raw) == (
        b"HTTP/1.1", 503, b"Service Unavailable", headers, raw
    )
    assert serialize_response_head(b"HTTP/1.1", 200, b"", []) == b"HTTP/1.1 200 \r\n\r\n"


def test_serialize_refuses_header_injection():
    with pytest.raises(ValueError):
        serialize_request_head(b"GET", b"/", b"HTTP/1.1", [(b"X", b"a\r\nEvil: 1")])
    with pytest.raises(ValueError):
        serialize_request_head(b"GET", b"/ x", b"HTTP/1.1", [])
    with pytest.raises(ValueError):
        serialize_response_head(b"HTTP/1.1", 200, b"OK\r\nEvil: 1", [])
    with pytest.raises(ValueError):
        serialize_response_head(b"HTTP/1.1", 200, b"OK", [(b"X\n", b"a")])


def test_reasons_cover_the_statuses_gproxy_answers():
    for status in (200, 400, 403, 404, 408, 431, 500, 502, 503, 504):
        assert REASONS[status]


def _corpus(kind: str) -> list[Path]:
    return sorted((CORPUS / kind).glob("*.http"))


@pytest.mark.parametrize("path", _corpus("valid"), ids=lambda p: p.stem)
def test_corpus_valid_requests(path):
    """Each .http holds one or more requests; the .expect file lists method, target, body length."""
    events = check(request_parser(), path.read_bytes())
    got = []
    for e in events:
        if e[0] == "req":
            got.append([e[1].decode(), e[2].decode(), 0])
        elif e[0] == "data":
            got[-1][2] += len(e[1])
    want = [line.split() for line in path.with_suffix(".expect").read_text().splitlines() if line.strip()]
    assert got == [[m, t, int(n)] for m, t, n in want]


@pytest.mark.parametrize("path", _corpus("invalid"), ids=lambda p: p.stem)
def test_corpus_invalid_requests(path):
    """File names end with the expected status: NAME.STATUS.http."""
    status = int(path.stem.rsplit(".", 1)[1])
    check(request_parser(), path.read_bytes(), status=status)
