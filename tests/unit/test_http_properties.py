"""Property-based tests of the HTTP codec (hypothesis).

For any byte stream, cut at any points, both parsers:
- raise nothing but ProtocolError (with a 4xx/5xx status);
- make progress: the number of events is bounded by the bytes fed, so a
  `while next_event() is not NEED_DATA` loop always ends;
- give the same events (Data merged) and the same verdict whether the bytes
  come whole or in pieces: one framing interpretation, however it arrives;
- never forward more body bytes than were received, and every byte is either
  in an event or still buffered.

Streams are built from HTTP fragments (request lines, framing headers, chunk
lines, stray CR/LF/NUL) mixed with random bytes, so the search reaches deep
states, not only "malformed request line". Example counts are bounded and
the search derandomized: the file runs in a few seconds, the same every time.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gproxy.errors import ProtocolError
from gproxy.protocol.http import (
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    RequestHead,
    RequestParser,
    ResponseHead,
    ResponseParser,
)

# A stream cannot yield more events than this per byte, plus a constant
# (a head, EndOfMessage and ConnectionClosed need no byte of their own).
EVENTS_PER_BYTE = 2
EVENTS_SLACK = 8
SETTINGS = settings(max_examples=400, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

REQUEST_FRAGMENTS = [
    b"GET / HTTP/1.1\r\n", b"POST /p HTTP/1.1\r\n", b"PUT http://h/ HTTP/1.0\r\n", b"GET /\r\n",
    b"Host: h\r\n", b"Host: h\r\n", b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: chunked \r\n",
    b"Transfer-Encoding : chunked\r\n", b"Transfer-Encoding: xchunked\r\n", b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n", b"Content-Length: 5, 6\r\n", b"Connection: close\r\n", b"Expect: 100-continue\r\n",
    b"Upgrade: websocket\r\nConnection: upgrade\r\n", b" folded\r\n",
    b"\r\n", b"\n", b"\r", b"\x00", b":", b" ", b"\t",
    b"5\r\nhello\r\n", b"0\r\n\r\n", b"0\r\nX: y\r\n\r\n", b"5;ext=1\r\n", b"ffffffffffffffff\r\n", b"hello",
]
RESPONSE_FRAGMENTS = [
    b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 204 No Content\r\n", b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 101 Switching\r\n", b"HTTP/1.1 304 Not Modified\r\n",
] + REQUEST_FRAGMENTS[6:]


HEADER_LINES = [f for f in REQUEST_FRAGMENTS if f.endswith(b"\r\n") and b":" in f and b"Host" not in f] + [
    b"X: a\x01\r\n", b"X: y\n", b"Transfer-Encoding: gzip, chunked\r\n", b"Content-Length: 005\r\n"]
BODY_PIECES = [b"5\r\nhello\r\n", b"0\r\n\r\n", b"0\r\nX: y\r\n\r\n", b"3;a=b\r\nabc\r\n", b"hello",
               b"1\nx\n", b"\r\n", b"8000000000000000\r\n"]


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Apply (position, bytes to delete, bytes to insert) edits."""
    for pos, delete, insert in edits:
        pos = pos % (len(data) + 1)
        data = data[:pos] + insert + data[pos + delete :]
    return data


def _frame(first: bytes, kind: str, body: bytes, sizes: list[int]) -> bytes:
    if kind == "length":
        return first + b"Content-Length: %d\r\n\r\n" % len(body) + body
    if kind == "chunked":
        wire = b""
        for i in range(0, len(body), max(sizes[0], 1)):
            piece = body[i : i + max(sizes[0], 1)]
            wire += b"%x\r\n" % len(piece) + piece + b"\r\n"
        return first + b"Transfer-Encoding: chunked\r\n\r\n" + wire + b"0\r\n\r\n"
    return first + b"\r\n"


def framed(first_lines: list[bytes]) -> st.SearchStrategy[bytes]:
    """A consistent message: its framing header matches its body."""
    return st.builds(_frame, st.sampled_from(first_lines), st.sampled_from(["none", "length", "chunked"]),
                     st.binary(max_size=40), st.lists(st.integers(1, 16), min_size=1, max_size=1))


def messages(first_lines: list[bytes], header_lines: list[bytes]) -> st.SearchStrategy[bytes]:
    """Message-shaped streams (first line, header lines, end of head, body pieces,
    possibly pipelined), then a few random edits: valid framing is reached
    often, and so is every way of breaking it."""
    loose = st.tuples(
        st.sampled_from(first_lines), st.lists(st.sampled_from(header_lines), max_size=4),
        st.sampled_from([b"\r\n", b"\r\n", b"\n", b""]), st.lists(st.sampled_from(BODY_PIECES), max_size=4),
    ).map(lambda t: t[0] + b"".join(t[1]) + t[2] + b"".join(t[3]))
    one = st.one_of(loose, framed(first_lines))
    edit = st.tuples(st.integers(0, 400), st.integers(0, 3),
                     st.one_of(st.sampled_from([b"\r", b"\n", b"\x00", b" ", b":", b"0", b";"]), st.binary(max_size=4)))
    return st.builds(mutate, st.lists(one, min_size=1, max_size=3).map(b"".join), st.lists(edit, max_size=3))


def streams(fragments: list[bytes]) -> st.SearchStrategy[bytes]:
    first_lines = [f + b"Host: h\r\n" if f.startswith((b"GET", b"POST", b"PUT")) else f
                   for f in fragments if f.startswith((b"GET", b"POST", b"PUT", b"HTTP/"))]
    return st.one_of(messages(first_lines, HEADER_LINES), st.binary(max_size=64))


def cuts(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({min(p, len(data)) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in zip(edges, edges[1:]) if b > a]


def run(parser, pieces: list[bytes], eof: bool) -> tuple[list, int | None, int]:
    """Feed pieces (then EOF); return (events, error status, unconsumed bytes)."""
    fed = sum(map(len, pieces))
    budget = EVENTS_PER_BYTE * fed + EVENTS_SLACK
    events: list = []
    body = 0
    try:
        for piece in pieces + ([b""] if eof else []):
            parser.receive_data(piece)
            while True:
                event = parser.next_event()
                if event is NEED_DATA:
                    break
                budget -= 1
                assert budget >= 0, "parser does not make progress"
                if isinstance(event, (RequestHead, ResponseHead)):
                    events.append(("head", event.raw, event.body_kind, event.content_length))
                elif isinstance(event, Data):
                    body += len(event.data)
                    if events and events[-1][0] == "data":
                        events[-1] = ("data", events[-1][1] + event.data)
                    else:
                        events.append(("data", event.data))
                elif event is EndOfMessage:
                    events.append(("eom",))
                elif event is ConnectionClosed:
                    events.append(("closed",))
                    break
                else:
                    raise AssertionError(f"unexpected event {event!r}")
            if events and events[-1][0] == "closed":
                break
    except ProtocolError as exc:
        assert 400 <= exc.status < 600
        return events, exc.status, len(parser.trailing_data)
    consumed = sum(len(e[1]) for e in events if e[0] in ("head", "data"))
    assert consumed <= fed
    return events, None, len(parser.trailing_data)


@SETTINGS
@given(data=streams(REQUEST_FRAGMENTS), points=st.lists(st.integers(0, 200), max_size=6), eof=st.booleans())
def test_request_parser_any_stream_any_cut(data, points, eof):
    whole = run(RequestParser(), [data] if data else [], eof)
    pieces = run(RequestParser(), cuts(data, points), eof)
    assert pieces[:2] == whole[:2]
    bytewise = run(RequestParser(), [data[i : i + 1] for i in range(len(data))], eof)
    assert bytewise[:2] == whole[:2]


@SETTINGS
@given(data=streams(REQUEST_FRAGMENTS))
def test_request_framing_is_never_ambiguous(data):
    events, _, _ = run(RequestParser(), [data] if data else [], eof=True)
    for event in events:
        if event[0] == "head":
            head = event[1].lower()
            # A head that came through has exactly one framing.
            assert not (b"\ncontent-length:" in head and b"\ntransfer-encoding:" in head)
            assert event[2] in ("none", "length", "chunked")


@SETTINGS
@given(data=streams(RESPONSE_FRAGMENTS), points=st.lists(st.integers(0, 200), max_size=6),
       methods=st.lists(st.sampled_from([b"GET", b"HEAD", b"CONNECT", b"POST"]), max_size=3), eof=st.booleans())
def test_response_parser_any_stream_any_cut(data, points, methods, eof):
    def parser() -> ResponseParser:
        p = ResponseParser()
        for m in methods:
            p.expect_response_to(m)
        return p

    whole = run(parser(), [data] if data else [], eof)
    pieces = run(parser(), cuts(data, points), eof)
    assert pieces[:2] == whole[:2]


@SETTINGS
@given(body=st.binary(max_size=300), sizes=st.lists(st.integers(1, 64), min_size=1, max_size=8),
       points=st.lists(st.integers(0, 500), max_size=5))
def test_well_formed_chunked_body_round_trips(body, sizes, points):
    # Any body, chunked any way and cut anywhere, is returned verbatim and whole.
    wire = b""
    rest, i = body, 0
    while rest:
        n = sizes[i % len(sizes)]
        wire += b"%x\r\n" % len(rest[:n]) + rest[:n] + b"\r\n"
        rest, i = rest[n:], i + 1
    wire += b"0\r\n\r\n"
    raw = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + wire
    events, status, left = run(RequestParser(), cuts(raw, points), eof=False)
    assert status is None and left == 0
    assert [e[0] for e in events] == ["head", "data", "eom"]
    assert events[1][1] == wire
