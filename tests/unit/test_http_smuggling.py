"""Request-smuggling vectors against the sans-IO request parser.

Each vector is fed whole and one byte at a time: the verdict (the status of
the ProtocolError, or the framing the parser chose) must not depend on how
the bytes arrived. The same vectors run against a real gproxy and an
independent backend in tests/e2e/test_smuggling.py.
"""

from __future__ import annotations

import pytest

from gproxy.errors import ProtocolError
from gproxy.protocol.http import NEED_DATA, Data, EndOfMessage, RequestHead, RequestParser
from gproxy.protocol.http_head import DEFAULT_MAX_URI_LENGTH

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
CHUNKED_SMUGGLE = b"0\r\n\r\n" + SMUGGLED


def _post(headers: bytes, body: bytes = CHUNKED_SMUGGLE) -> bytes:
    return b"POST / HTTP/1.1\r\nHost: h\r\n" + headers + b"\r\n" + body


def outcome(pieces: list[bytes], parser: RequestParser | None = None) -> tuple[list, int | None]:
    """Events as (kind, detail) and the error status, feeding `pieces` in turn."""
    parser = parser or RequestParser()
    events: list = []
    try:
        for piece in pieces + [b""]:
            parser.receive_data(piece)
            while (event := parser.next_event()) is not NEED_DATA:
                if isinstance(event, RequestHead):
                    events.append(("head", event.target, event.body_kind, event.content_length))
                elif isinstance(event, Data):
                    if events and events[-1][0] == "data":
                        events[-1] = ("data", events[-1][1] + event.data)
                    else:
                        events.append(("data", event.data))
                elif event is EndOfMessage:
                    events.append(("eom",))
                else:
                    events.append(("closed",))
                    return events, None
    except ProtocolError as exc:
        return events, exc.status
    return events, None


def verdict(raw: bytes) -> tuple[list, int | None]:
    whole = outcome([raw])
    assert outcome([raw[i : i + 1] for i in range(len(raw))]) == whole
    return whole


REFUSED = {
    "cl_te": (_post(b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n"), 400),
    "te_cl": (_post(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n"), 400),
    "te_xchunked": (_post(b"Transfer-Encoding: xchunked\r\n"), 400),
    "te_space_before_colon": (_post(b"Transfer-Encoding : chunked\r\n"), 400),
    "te_chunked_identity": (_post(b"Transfer-Encoding: chunked, identity\r\n"), 400),
    "te_duplicated": (_post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400),
    "te_vertical_tab": (_post(b"Transfer-Encoding: \x0bchunked\r\n"), 400),
    "te_obs_fold": (_post(b"Transfer-Encoding:\r\n chunked\r\n"), 400),
    "te_bare_cr": (_post(b"X: y\rTransfer-Encoding: chunked\r\n"), 400),
    "cl_different": (_post(b"Content-Length: 1\r\nContent-Length: 2\r\n", b"ab"), 400),
    "cl_list_different": (_post(b"Content-Length: 1, 2\r\n", b"ab"), 400),
    "cl_negative": (_post(b"Content-Length: -1\r\n", b""), 400),
    "nul_in_value": (_post(b"X: a\x00b\r\n", b""), 400),
    "soh_in_value": (_post(b"X: a\x01b\r\n", b""), 400),
    "esc_in_value": (_post(b"X: a\x1b[2Jb\r\n", b""), 400),
    "del_in_value": (_post(b"X: a\x7fb\r\n", b""), 400),
    "nul_in_name": (_post(b"X\x00: a\r\n", b""), 400),
    "chunk_size_0x": (_post(b"Transfer-Encoding: chunked\r\n", b"0x1\r\na\r\n" + CHUNKED_SMUGGLE), 400),
    "chunk_size_17_digits": (_post(b"Transfer-Encoding: chunked\r\n", b"00000000000000001\r\n"), 400),
    "chunk_size_2_64": (_post(b"Transfer-Encoding: chunked\r\n", b"10000000000000000\r\n"), 400),
    "chunk_size_2_63": (_post(b"Transfer-Encoding: chunked\r\n", b"8000000000000000\r\n"), 400),
    "chunk_size_max_u64": (_post(b"Transfer-Encoding: chunked\r\n", b"ffffffffffffffff\r\n"), 400),
    "chunk_size_space_before": (_post(b"Transfer-Encoding: chunked\r\n", b" 1\r\na\r\n0\r\n\r\n"), 400),
    "chunk_ext_ctl": (_post(b"Transfer-Encoding: chunked\r\n", b"1;a\x01\r\na\r\n0\r\n\r\n"), 400),
    "chunk_ext_bare_cr": (_post(b"Transfer-Encoding: chunked\r\n", b"1;a\rb\r\na\r\n0\r\n\r\n"), 400),
    "chunk_ext_nul": (_post(b"Transfer-Encoding: chunked\r\n", b"1;\x00\r\na\r\n0\r\n\r\n"), 400),
    "chunk_line_bare_lf": (_post(b"Transfer-Encoding: chunked\r\n", b"1\na\r\n0\r\n\r\n"), 400),
    "chunk_data_bare_lf": (_post(b"Transfer-Encoding: chunked\r\n", b"1\r\na\n0\r\n\r\n"), 400),
    "last_chunk_bare_lf": (_post(b"Transfer-Encoding: chunked\r\n", b"0\n\n" + SMUGGLED), 400),
    "chunk_data_too_long": (_post(b"Transfer-Encoding: chunked\r\n", b"1\r\nab\r\n0\r\n\r\n"), 400),
    "trailer_bare_lf": (_post(b"Transfer-Encoding: chunked\r\n", b"0\r\nX: y\n\r\n"), 400),
    "trailer_obs_fold": (_post(b"Transfer-Encoding: chunked\r\n", b"0\r\nX: y\r\n z\r\n\r\n"), 400),
    "absolute_uri_other_host": (b"GET http://evil/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    "absolute_uri_userinfo_trick": (b"GET http://h@evil/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    "two_hosts": (b"GET / HTTP/1.1\r\nHost: h\r\nhost: h\r\n\r\n", 400),
    "bad_method": (b"G\"T / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    "empty_method": (b" / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    "http_0_9": (b"GET /\r\n\r\n", 400),
    "http_0_9_eof": (b"GET /\r\n", 400),
    "http_2": (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 400),
    "lowercase_version": (b"GET / http/1.1\r\nHost: h\r\n\r\n", 400),
    "tab_in_request_line": (b"GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    "two_spaces_in_request_line": (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    "uri_too_long": (b"GET /" + b"a" * DEFAULT_MAX_URI_LENGTH + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_vector_is_refused_however_it_arrives(name):
    raw, status = REFUSED[name]
    events, got = verdict(raw)
    assert got == status
    # Nothing after the offending unit was ever returned: no /smuggled head.
    assert not any(e[0] == "head" and e[1] == b"/smuggled" for e in events)


NORMALISED = {
    # (raw, body kind, content length): the one framing gproxy forwards.
    "te_trailing_space": (_post(b"Transfer-Encoding: chunked \r\n"), "chunked", None),
    "te_mixed_case": (_post(b"Transfer-Encoding: cHuNkEd\r\n"), "chunked", None),
    "te_list_ends_chunked": (_post(b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), "chunked", None),
    "cl_same_twice": (_post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello" + SMUGGLED), "length", 5),
    "cl_same_list": (_post(b"Content-Length: 5, 5\r\n", b"hello" + SMUGGLED), "length", 5),
    "cl_leading_zeros": (_post(b"Content-Length: 005\r\n", b"hello" + SMUGGLED), "length", 5),
}


@pytest.mark.parametrize("name", sorted(NORMALISED))
def test_normalised_vector_has_one_framing(name):
    raw, kind, length = NORMALISED[name]
    events, status = verdict(raw)
    assert status is None
    heads = [e for e in events if e[0] == "head"]
    assert heads[0][2:] == (kind, length)
    # The pipelined request after the body is parsed as a separate request,
    # exactly once, and never inside the first one's body.
    assert [h[1] for h in heads] == [b"/", b"/smuggled"]
    assert not any(e[0] == "data" and b"smuggled" in e[1] for e in events)


def test_absolute_form_with_its_own_host_is_accepted():
    events, status = verdict(b"GET http://Example.com:8080/p?q HTTP/1.1\r\nHost: example.com:8080\r\n\r\n")
    assert status is None
    assert events[0][1] == b"http://Example.com:8080/p?q"


def test_uri_limit_is_a_parameter():
    raw = b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: h\r\n\r\n"
    assert outcome([raw], RequestParser(max_uri_length=100))[1] == 414
    assert outcome([raw], RequestParser(max_uri_length=101))[1] is None


def test_headers_after_the_body_are_the_next_request():
    # Bytes after a complete body start the next request: garbage there is a
    # 400 for that request, never part of the previous one.
    raw = _post(b"Content-Length: 2\r\n", b"ok") + b"X-Late: header\r\n\r\n"
    events, status = verdict(raw)
    assert status == 400
    assert events == [("head", b"/", "length", 2), ("data", b"ok"), ("eom",)]


def test_htab_in_value_is_allowed():
    events, status = verdict(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\tb\r\n\r\n")
    assert status is None
