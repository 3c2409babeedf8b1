"""max_body_size: the codec refuses a body over the limit with 413 whatever
the framing and however the bytes are split, and the setting loads."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gproxy.config.loader import load_string
from gproxy.config.types import Size
from gproxy.errors import ConfigError, ProtocolError
from gproxy.protocol.http import (
    NEED_DATA,
    BodyTooLarge,
    Data,
    EndOfMessage,
    RequestHead,
    RequestParser,
)

LIMIT = 10


def _cl(length: int, body: bytes = b"") -> bytes:
    return b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % length + body


def _chunked(*chunks: bytes) -> bytes:
    out = b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    for chunk in chunks:
        out += b"%x\r\n%s\r\n" % (len(chunk), chunk)
    return out + b"0\r\n\r\n"


def events(parser: RequestParser, data: bytes, step: int | None = None) -> list:
    """Feed `data` (in pieces of `step`) and collect events up to NEED_DATA;
    a ProtocolError is appended as the last item."""
    out: list = []
    pieces = [data] if step is None else [data[i:i + step] for i in range(0, len(data), step)]
    try:
        for piece in pieces:
            parser.receive_data(piece)
            while (event := parser.next_event()) is not NEED_DATA:
                out.append(event)
    except ProtocolError as exc:
        out.append(exc)
    return out


def test_a_content_length_over_the_limit_is_refused_with_the_head_before_any_body() -> None:
    found = events(RequestParser(max_body_size=LIMIT), _cl(LIMIT + 1, b"x" * (LIMIT + 1)))
    assert len(found) == 1
    error = found[0]
    assert isinstance(error, BodyTooLarge) and error.status == 413
    assert error.head is not None and error.head.target == b"/up" and error.head.content_length == LIMIT + 1


def test_the_parser_stays_broken_after_a_refusal() -> None:
    parser = RequestParser(max_body_size=LIMIT)
    events(parser, _cl(LIMIT + 1))
    with pytest.raises(BodyTooLarge):
        parser.next_event()


def test_a_body_of_exactly_the_limit_passes_both_framings() -> None:
    for data in (_cl(LIMIT, b"x" * LIMIT), _chunked(b"x" * 4, b"y" * 6)):
        found = events(RequestParser(max_body_size=LIMIT), data)
        assert isinstance(found[0], RequestHead)
        assert found[-1] is EndOfMessage
        assert not any(isinstance(e, ProtocolError) for e in found)


def test_without_a_limit_a_large_body_passes() -> None:
    found = events(RequestParser(), _cl(10_000_000))
    assert isinstance(found[0], RequestHead)


@pytest.mark.parametrize("step", [None, 1, 3, 7])
def test_a_chunked_body_growing_past_the_limit_is_refused_after_the_valid_chunks(step) -> None:
    data = _chunked(b"a" * 6, b"b" * 5, b"c")
    found = events(RequestParser(max_body_size=LIMIT), data, step)
    assert isinstance(found[0], RequestHead)
    error = found[-1]
    assert isinstance(error, BodyTooLarge) and error.status == 413 and error.head is None
    forwarded = b"".join(e.data for e in found if isinstance(e, Data))
    # Only the first chunk (6 bytes declared) is handed out; never the one that crosses.
    assert forwarded == b"6\r\naaaaaa\r\n"
    assert EndOfMessage not in found


def test_the_limit_counts_per_message_on_a_kept_alive_connection() -> None:
    data = _chunked(b"x" * 8) + _chunked(b"y" * 8) + _cl(8, b"z" * 8)
    found = events(RequestParser(max_body_size=LIMIT), data)
    assert sum(1 for e in found if isinstance(e, RequestHead)) == 3
    assert sum(1 for e in found if e is EndOfMessage) == 3
    assert not any(isinstance(e, ProtocolError) for e in found)


def test_buffered_chunks_over_the_limit_are_seen_before_anything_is_consumed() -> None:
    parser = RequestParser(max_body_size=LIMIT)
    parser.receive_data(_chunked(b"a" * 6, b"b" * 6))
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.refuses_buffered_body()
    assert parser.refuses_buffered_body()  # asking twice changes nothing
    # The parser is untouched: it hands out the first chunk, then refuses.
    event = parser.next_event()
    assert isinstance(event, Data) and event.data == b"6\r\naaaaaa\r\n"
    with pytest.raises(BodyTooLarge):
        parser.next_event()


def test_buffered_chunks_within_the_limit_or_incomplete_are_not_refused() -> None:
    parser = RequestParser(max_body_size=LIMIT)
    whole = _chunked(b"a" * 6)
    parser.receive_data(whole[:-4])  # the last chunk not there yet
    assert isinstance(parser.next_event(), RequestHead)
    assert not parser.refuses_buffered_body()
    found = events(parser, whole[-4:])
    assert b"".join(e.data for e in found if isinstance(e, Data)).startswith(b"6\r\naaaaaa\r\n")
    assert found[-1] is EndOfMessage


def test_refuses_buffered_body_is_false_without_a_limit_or_a_chunked_body() -> None:
    parser = RequestParser()
    parser.receive_data(_chunked(b"a" * 100))
    parser.next_event()
    assert not parser.refuses_buffered_body()
    parser = RequestParser(max_body_size=LIMIT)
    parser.receive_data(_cl(5, b"abcde"))
    parser.next_event()
    assert not parser.refuses_buffered_body()


def test_another_framing_error_in_buffered_chunks_is_left_to_the_relay() -> None:
    parser = RequestParser(max_body_size=LIMIT)
    parser.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    parser.next_event()
    assert not parser.refuses_buffered_body()
    with pytest.raises(ProtocolError) as info:
        parser.next_event()
    assert info.value.status == 400


@pytest.mark.parametrize("text, expected", [
    (1, 1), (4096, 4096), ("512", 512), ("10k", 10240), ("10m", 10 * 1024**2), ("1G", 1024**3), (" 2k ", 2048),
])
def test_sizes(text, expected) -> None:
    assert Size().parse(text) == expected


@pytest.mark.parametrize("text", [0, -1, "", "10 m", "10mb", "1.5m", True, 1.5, "k"])
def test_bad_sizes(text) -> None:
    with pytest.raises(ValueError):
        Size().parse(text)


LISTEN = """
[defaults]
mode = "http"
{defaults}
[listen.web]
bind = ["127.0.0.1:8080"]
{listen}
[[listen.web.server]]
name = "a"
address = "127.0.0.1:8001"
"""


def test_limits_are_off_by_default() -> None:
    fe = load_string(LISTEN.format(defaults="", listen="")).frontends["web"]
    assert fe.max_body_size is None and fe.maxconn_per_client is None


def test_limits_load_from_defaults_and_the_frontend_wins() -> None:
    config = load_string(LISTEN.format(defaults='max_body_size = "1m"\nmaxconn_per_client = 5',
                                       listen="maxconn_per_client = 2"))
    fe = config.frontends["web"]
    assert fe.max_body_size == 1024**2 and fe.maxconn_per_client == 2


def test_bad_limits_are_reported_with_their_path() -> None:
    with pytest.raises(ConfigError) as info:
        load_string(LISTEN.format(defaults="", listen='max_body_size = "lots"\nmaxconn_per_client = 0'))
    paths = {path for path, _ in info.value.problems}
    assert paths == {"listen.web.max_body_size", "listen.web.maxconn_per_client"}


def test_max_body_size_is_http_only() -> None:
    text = LISTEN.format(defaults="", listen="max_body_size = 100").replace('mode = "http"', 'mode = "tcp"')
    with pytest.raises(ConfigError) as info:
        load_string(text)
    assert [path for path, _ in info.value.problems] == ["listen.web.max_body_size"]


# ---- properties (hypothesis): the verdict depends on the sizes only -------------------

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, derandomize=True)


@PROPERTY_SETTINGS
@given(sizes=st.lists(st.integers(1, 40), max_size=6), limit=st.integers(0, 120),
       cuts=st.lists(st.integers(1, 400), max_size=8))
def test_a_chunked_body_is_refused_exactly_when_its_sizes_exceed_the_limit(sizes, limit, cuts) -> None:
    data = _chunked(*(b"x" * size for size in sizes))
    found = _cut_events(limit, data, cuts)
    refused = isinstance(found[-1], BodyTooLarge)
    assert refused == (sum(sizes) > limit)
    assert (found[-1] is EndOfMessage) == (not refused)
    # What was handed out never holds more chunk data than the limit allows.
    handed = b"".join(e.data for e in found if isinstance(e, Data))
    assert handed.count(b"x") <= limit


@PROPERTY_SETTINGS
@given(length=st.integers(0, 200), limit=st.integers(0, 200))
def test_a_content_length_is_refused_exactly_when_it_exceeds_the_limit(length, limit) -> None:
    found = events(RequestParser(max_body_size=limit), _cl(length, b"y" * length))
    if length > limit:
        assert len(found) == 1 and isinstance(found[0], BodyTooLarge)
    else:
        assert isinstance(found[0], RequestHead) and found[-1] is EndOfMessage


def _cut_events(limit: int, data: bytes, cuts: list[int]) -> list:
    """events() with the bytes split at the given (sorted, deduplicated) offsets."""
    parser = RequestParser(max_body_size=limit)
    points = sorted({c for c in cuts if c < len(data)})
    pieces = [data[a:b] for a, b in zip([0] + points, points + [len(data)])]
    out: list = []
    try:
        for piece in pieces:
            parser.receive_data(piece)
            while (event := parser.next_event()) is not NEED_DATA:
                out.append(event)
    except ProtocolError as exc:
        out.append(exc)
    return out
