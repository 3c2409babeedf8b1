"""Sans-IO HTTP/1.x codec: bytes in, events out (RFC 9112 framing).

Theory of operation
-------------------
The caller owns the socket. It passes whatever it read to `receive_data()`
(b"" for EOF) and calls `next_event()` until it returns `NEED_DATA`. Events:

    RequestHead / ResponseHead   a parsed head (its exact bytes are in `.raw`)
    Data                         body bytes exactly as on the wire; for chunked
                                 bodies that includes sizes, CRLFs, the last
                                 chunk and trailers, so a proxy forwards them
                                 verbatim and never re-encodes
    EndOfMessage                 the message is complete
    ConnectionClosed             EOF between messages

After EndOfMessage the parser goes on with the next message already buffered
(pipelining). Bodies are never buffered whole: each Data event carries what has
arrived so far. A framing violation raises `ProtocolError` whose `status` is
what to answer (400 or 431 for requests, 502 for responses); the parser then
stays broken and raises the same error on every call.

An optional body limit (`max_body_size`) refuses a request whose body would
exceed it with `BodyTooLarge` (status 413): at once after the head when its
Content-Length says so (the error carries the head, so the caller can log the
request line, and nothing of the request has been handed out), or, for a
chunked body, when a chunk-size line makes the declared total exceed it
(after the valid bytes before that line were returned, as for any framing
error). `refuses_buffered_body()` lets a caller ask, before forwarding
anything, whether the chunked body bytes already buffered are over the limit.

Each parser is a small state machine: `_READERS` maps its state to the reader
that makes progress in it, following h11's reader contract (return an event,
or NEED_DATA when the buffer holds too little). A tunnel (after a 101 or a 2xx
answer to CONNECT) is left by `take_trailing_data()`; a request parser is not
paused after an upgrade request, so the caller must not ask it for more events
before it knows whether the server switched protocols.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, ClassVar, Union

from gproxy.errors import IllegalTransition, ProtocolError
from gproxy.protocol.http_events import (
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    RequestHead,
    ResponseHead,
)
from gproxy.protocol.http_head import (
    CTL_NO_HTAB,
    DEFAULT_MAX_URI_LENGTH,
    TCHAR,
    parse_request_head,
    parse_response_head,
)
from gproxy.protocol.http_serialize import (
    REASONS,
    append_headers,
    join_head_lines,
    serialize_request_head,
    serialize_response_head,
)

__all__ = [
    "NEED_DATA",
    "BodyTooLarge",
    "REASONS",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "ProtocolError",
    "RequestHead",
    "RequestParser",
    "ResponseHead",
    "ResponseParser",
    "append_headers",
    "join_head_lines",
    "serialize_request_head",
    "serialize_response_head",
]

DEFAULT_MAX_HEAD_BYTES = 16384  # HAProxy's tune.bufsize
DEFAULT_MAX_HEADERS = 101  # HAProxy's tune.http.maxhdr
# A chunk-size line (size + extensions + CRLF) longer than this is an attack,
# not a body: refuse it instead of buffering.
MAX_CHUNK_LINE = 4096
# Hex digits in a chunk size: 16 is the full 64-bit range.
MAX_CHUNK_SIZE_DIGITS = 16
# Largest chunk size forwarded: a size a signed 64-bit counter in the next
# server cannot hold would be read there as negative or wrapped (smuggling).
MAX_CHUNK_SIZE = 2**63 - 1
_HEXDIG = b"0123456789abcdefABCDEF"

BODY_TOO_LARGE_STATUS = 413  # RFC 9110 15.5.14 Content Too Large


class BodyTooLarge(ProtocolError):
    """A request body larger than the parser's `max_body_size`. `head` is the
    request whose Content-Length announced it (None for a chunked body that
    grew past the limit: part of it may already have been handed out)."""

    def __init__(self, message: str, head: RequestHead | None = None):
        super().__init__(message, BODY_TOO_LARGE_STATUS)
        self.head = head


Event = Union[RequestHead, ResponseHead, Data, type[EndOfMessage], type[ConnectionClosed], type[NEED_DATA]]

# Parser states.
HEAD = "head"  # between messages, or in the middle of a head
BODY_LENGTH = "body-length"
BODY_CHUNKED = "body-chunked"
BODY_CLOSE = "body-close"  # response delimited by EOF
END = "end"  # the message's last byte was returned; EndOfMessage is next
TUNNEL = "tunnel"  # opaque bytes after 101 / CONNECT 2xx
CLOSED = "closed"
ERROR = "error"

# Sub-states of a chunked body.
_SIZE = 0  # expecting a chunk-size line
_CHUNK = 1  # inside chunk data
_CHUNK_END = 2  # expecting the CRLF after chunk data
_TRAILER = 3  # expecting trailer lines until an empty one
_DONE = 4


class _Parser:
    """Buffering, EOF and body framing shared by both directions."""

    _READERS: ClassVar[dict[str, Callable[[_Parser], Event]]]
    _BAD_STATUS: ClassVar[int]  # answer to a malformed message
    _BIG_STATUS: ClassVar[int]  # answer to an oversized head
    # Whether chunk framing may end its lines with a bare LF. Chunked bodies
    # are forwarded verbatim, so a request's must be CRLF-only: a server that
    # does not read a bare LF as a line end would frame it differently.
    _CHUNK_BARE_LF: ClassVar[bool]

    __slots__ = (
        "_buf", "_pos", "_scan", "_eof", "_state", "_error", "_after", "_remaining",
        "_chunk_state", "_trailer_room", "_max_head", "_max_headers", "_max_body", "_body_left",
    )  # fmt: skip

    def __init__(self, max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES, max_headers: int = DEFAULT_MAX_HEADERS):
        self._buf = b""  # unconsumed bytes start at _pos
        self._pos = 0
        self._scan = 0  # where to resume looking for the end of a head
        self._eof = False
        self._state = HEAD
        self._error: ProtocolError | None = None
        self._after = HEAD  # state after the current message's EndOfMessage
        self._remaining = 0  # body or chunk bytes still expected
        self._chunk_state = _SIZE
        self._trailer_room = 0
        self._max_head = max_head_bytes
        self._max_headers = max_headers
        self._max_body: int | None = None  # request bodies only (RequestParser)
        self._body_left = 0  # chunk data bytes the limit still allows in this message

    # -- input ---------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes read from the peer; b"" means the peer closed (EOF)."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise IllegalTransition("data received after EOF")
        if type(data) is not bytes:
            data = bytes(data)
        pos = self._pos
        if pos >= len(self._buf):
            self._buf = data  # common case: everything was consumed, no copy
            self._scan = 0
        else:
            self._buf = self._buf[pos:] + data
            self._scan = self._scan - pos if self._scan > pos else 0
        self._pos = 0

    @property
    def trailing_data(self) -> bytes:
        """Bytes received but not consumed by any event yet."""
        return self._buf[self._pos :] if self._pos else self._buf

    def take_trailing_data(self) -> bytes:
        """Return the unconsumed bytes and forget them (to start a tunnel)."""
        data = self.trailing_data
        self._buf = b""
        self._pos = self._scan = 0
        return data

    @property
    def eof(self) -> bool:
        return self._eof

    @property
    def state(self) -> str:
        return self._state

    # -- events --------------------------------------------------------------

    def next_event(self) -> Event:
        """The next event, or NEED_DATA; raises ProtocolError on bad framing."""
        try:
            return self._READERS[self._state](self)
        except ProtocolError as exc:
            self._state = ERROR
            self._error = exc
            raise

    def _read_error(self) -> Event:
        assert self._error is not None
        raise self._error

    def _read_closed(self) -> Event:
        return ConnectionClosed

    def _read_end(self) -> Event:
        self._state = self._after
        return EndOfMessage

    def _need_data(self) -> Event:
        if self._eof:
            raise ProtocolError("connection closed in the middle of a message", self._BAD_STATUS)
        return NEED_DATA

    def _take_head(self) -> bytes | None:
        """Cut the next complete head out of the buffer, or return None."""
        buf = self._buf
        pos = self._pos
        end = len(buf)
        # RFC 9112 2.2: ignore empty lines before a message (clients send a
        # stray CRLF after a POST body). Usually this loop does not run.
        while pos < end:
            c = buf[pos]
            if c == 10:
                pos += 1
            elif c == 13:
                if pos + 1 == end:
                    break
                if buf[pos + 1] != 10:
                    raise ProtocolError("bare CR before message", self._BAD_STATUS)
                pos += 2
            else:
                break
        self._pos = pos
        if pos == end:
            return None
        # The head ends at the first empty line: "\n\r\n" or "\n\n" (bare LF
        # tolerated). Only matches lying wholly within max_head bytes count, so
        # the size limit gives the same verdict however the bytes were split.
        limit = pos + self._max_head
        scan = self._scan if self._scan > pos else pos
        crlf = buf.find(b"\n\r\n", scan, limit)
        lf = buf.find(b"\n\n", scan, limit if crlf < 0 else crlf + 1)
        if lf >= 0:
            head_end = lf + 2
        elif crlf >= 0:
            head_end = crlf + 3
        else:
            if end >= limit:
                raise ProtocolError(f"message head larger than {self._max_head} bytes", self._BIG_STATUS)
            self._scan = end - 2 if end - 2 > pos else pos
            return None
        self._pos = self._scan = head_end
        return buf[pos:head_end]

    def _idle_or_eof(self, in_message: bool = False) -> Event:
        """No complete head is buffered: wait, or report the peer's EOF."""
        if not self._eof:
            return NEED_DATA
        if self._pos >= len(self._buf) and not in_message:
            self._state = CLOSED
            return ConnectionClosed
        raise ProtocolError("connection closed in the middle of a message head", self._BAD_STATUS)

    def _start_body(self, body_kind: str, content_length: int | None) -> None:
        if body_kind == "none":
            self._state = END
        elif body_kind == "length":
            assert content_length is not None
            self._remaining = content_length
            self._state = BODY_LENGTH if content_length else END
        elif body_kind == "chunked":
            self._chunk_state = _SIZE
            self._trailer_room = self._max_head
            if self._max_body is not None:
                self._body_left = self._max_body
            self._state = BODY_CHUNKED
        else:
            self._state = BODY_CLOSE

    # -- bodies --------------------------------------------------------------

    def _read_length(self) -> Event:
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if not avail:
            return self._need_data()
        remaining = self._remaining
        if avail < remaining:
            self._remaining = remaining - avail
            self._pos = len(buf)
            return Data(buf[pos:] if pos else buf)
        self._pos = pos + remaining
        self._remaining = 0
        self._state = END
        return Data(buf[pos : pos + remaining] if pos or avail != remaining else buf)

    def _read_close(self) -> Event:
        buf = self._buf
        pos = self._pos
        if pos < len(buf):
            self._pos = len(buf)
            return Data(buf[pos:] if pos else buf)
        if self._eof:
            self._state = CLOSED
            return EndOfMessage
        return NEED_DATA

    def _read_chunked(self) -> Event:
        """Validate chunk framing as far as the buffer goes; return it raw.

        `pos` only moves past a unit (size line, data, CRLF, trailer line)
        once that unit is valid, so on a framing error the valid bytes before
        it are still returned as Data and the error comes on the next call:
        the outcome does not depend on how the bytes were split.
        """
        buf = self._buf
        start = pos = self._pos
        end = len(buf)
        state = self._chunk_state
        remaining = self._remaining
        bad = self._BAD_STATUS
        try:
            while True:
                if state == _CHUNK:
                    avail = end - pos
                    if avail < remaining:
                        remaining -= avail
                        pos = end
                        break
                    pos += remaining
                    remaining = 0
                    state = _CHUNK_END
                elif state == _SIZE:
                    nl = buf.find(b"\n", pos, pos + MAX_CHUNK_LINE)
                    if nl < 0:
                        if end - pos >= MAX_CHUNK_LINE:
                            raise ProtocolError("chunk-size line too long", bad)
                        break
                    line = buf[pos:nl]
                    if not self._CHUNK_BARE_LF and line[-1:] != b"\r":
                        raise ProtocolError("chunk-size line not ended by CRLF", bad)
                    semi = line.find(b";")
                    size = (line[:semi] if semi >= 0 else line).rstrip(b" \t\r")
                    body = line[:-1] if line[-1:] == b"\r" else line
                    if (
                        not size
                        or len(size) > MAX_CHUNK_SIZE_DIGITS
                        or size.translate(None, _HEXDIG)
                        or len(body.translate(None, CTL_NO_HTAB)) != len(body)
                    ):
                        raise ProtocolError(f"invalid chunk-size line {line[:40]!r}", bad)
                    remaining = int(size, 16)
                    if remaining > MAX_CHUNK_SIZE:
                        raise ProtocolError("chunk size beyond 2^63-1", bad)
                    if self._max_body is not None:
                        # The declared size counts, not what has arrived: the
                        # verdict does not depend on how the bytes were split.
                        if remaining > self._body_left:
                            raise BodyTooLarge(f"chunked body larger than {self._max_body} bytes")
                        self._body_left -= remaining
                    pos = nl + 1
                    state = _CHUNK if remaining else _TRAILER
                elif state == _CHUNK_END:
                    if pos == end:
                        break
                    c = buf[pos]
                    if c == 13:
                        if pos + 1 == end:
                            break
                        c = buf[pos + 1]
                        pos += 1
                    elif not self._CHUNK_BARE_LF:
                        raise ProtocolError("chunk data not followed by CRLF", bad)
                    if c != 10:
                        raise ProtocolError("chunk data not followed by CRLF", bad)
                    pos += 1
                    state = _SIZE
                else:  # _TRAILER
                    room = self._trailer_room
                    nl = buf.find(b"\n", pos, pos + room)
                    if nl < 0:
                        if end - pos >= room:
                            raise ProtocolError("trailer section too large", self._BIG_STATUS)
                        break
                    line = buf[pos:nl]
                    if line[-1:] == b"\r":
                        line = line[:-1]
                    elif not self._CHUNK_BARE_LF:
                        raise ProtocolError("trailer line not ended by CRLF", bad)
                    if line:
                        colon = line.find(b":")
                        if colon <= 0 or b"\r" in line or b"\x00" in line or line[:colon].translate(None, TCHAR):
                            raise ProtocolError("malformed trailer line", bad)
                    self._trailer_room = room - (nl + 1 - pos)
                    pos = nl + 1
                    if not line:
                        state = _DONE
                        break
        except ProtocolError as exc:
            if pos == start:
                raise
            # Return what was valid now; the error is raised by the next call.
            self._pos = pos
            self._state = ERROR
            self._error = exc
            return Data(buf[start:pos])
        self._pos = pos
        self._chunk_state = state
        self._remaining = remaining
        if state == _DONE:
            self._state = END
        if pos > start:
            return Data(buf[start:pos])
        return self._need_data()


class RequestParser(_Parser):
    """Parses what a client sends: requests, possibly pipelined."""

    __slots__ = ("_max_uri",)
    _BAD_STATUS = 400
    _BIG_STATUS = 431
    _CHUNK_BARE_LF = False

    def __init__(
        self,
        max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_uri_length: int = DEFAULT_MAX_URI_LENGTH,
        max_body_size: int | None = None,
    ):
        super().__init__(max_head_bytes, max_headers)
        self._max_uri = max_uri_length
        self._max_body = max_body_size  # None: no limit

    @property
    def max_body_size(self) -> int | None:
        return self._max_body

    def _read_head(self) -> Event:
        if self._pos >= len(self._buf) and not self._eof:
            return NEED_DATA  # nothing buffered: the usual wait between requests
        head = self._take_head()
        if head is None:
            return self._idle_or_eof()
        req = parse_request_head(head, self._max_headers, self._max_uri)
        limit = self._max_body
        if limit is not None and req.body_kind == "length" and req.content_length > limit:
            raise BodyTooLarge(f"Content-Length {req.content_length} larger than {limit} bytes", req)
        self._after = HEAD
        self._start_body(req.body_kind, req.content_length)
        return req

    def refuses_buffered_body(self) -> bool:
        """Whether the chunked body bytes buffered now already declare more
        than `max_body_size` (False without a limit or a chunked body in
        progress). Nothing is consumed: the parser's state is put back."""
        if self._max_body is None or self._state != BODY_CHUNKED:
            return False
        saved = (self._pos, self._chunk_state, self._remaining, self._trailer_room, self._body_left)
        try:
            while self._state == BODY_CHUNKED and self._read_chunked() is not NEED_DATA:
                pass
            # A framing error after valid bytes is kept for the next call.
            return isinstance(self._error, BodyTooLarge)
        except BodyTooLarge:
            return True
        except ProtocolError:
            return False  # another framing error: the body relay reports it
        finally:
            self._pos, self._chunk_state, self._remaining, self._trailer_room, self._body_left = saved
            self._state = BODY_CHUNKED
            self._error = None

    _READERS = {
        HEAD: _read_head,
        BODY_LENGTH: _Parser._read_length,
        BODY_CHUNKED: _Parser._read_chunked,
        END: _Parser._read_end,
        CLOSED: _Parser._read_closed,
        ERROR: _Parser._read_error,
    }


class ResponseParser(_Parser):
    """Parses what a server sends, given the method of each request it answers.

    `expect_response_to(method)` queues the method of one request sent to the
    server; each final (non-1xx) response consumes one. Without any queued,
    a response is read as an answer to GET.
    """

    __slots__ = ("_methods", "_informational")
    _BAD_STATUS = 502
    _BIG_STATUS = 502
    _CHUNK_BARE_LF = True  # HAProxy-like leniency towards servers; clients re-parse anyway

    def __init__(self, max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES, max_headers: int = DEFAULT_MAX_HEADERS):
        super().__init__(max_head_bytes, max_headers)
        self._methods: deque[bytes] = deque()
        self._informational = False  # a 1xx was returned; the final response is due

    def expect_response_to(self, method: bytes) -> None:
        """Declare the method of the request the next response answers."""
        self._methods.append(method)

    def _read_head(self) -> Event:
        if self._pos >= len(self._buf) and not self._eof:
            return NEED_DATA  # nothing buffered: the request was just sent
        head = self._take_head()
        if head is None:
            return self._idle_or_eof(self._informational)
        methods = self._methods
        resp = parse_response_head(head, self._max_headers, methods[0] if methods else b"GET")
        if resp.status < 200 and resp.status != 101:
            # Interim response: no body, no EndOfMessage; the final one follows.
            self._informational = True
            return resp
        self._informational = False
        if methods:
            methods.popleft()
        self._after = TUNNEL if resp.tunnel else HEAD
        self._start_body(resp.body_kind, resp.content_length)
        return resp

    def _read_tunnel(self) -> Event:
        """Opaque bytes after a protocol switch, for callers that keep reading here."""
        buf = self._buf
        pos = self._pos
        if pos < len(buf):
            self._pos = len(buf)
            return Data(buf[pos:] if pos else buf)
        if self._eof:
            self._state = CLOSED
            return ConnectionClosed
        return NEED_DATA

    _READERS = {
        HEAD: _read_head,
        BODY_LENGTH: _Parser._read_length,
        BODY_CHUNKED: _Parser._read_chunked,
        BODY_CLOSE: _Parser._read_close,
        END: _Parser._read_end,
        TUNNEL: _read_tunnel,
        CLOSED: _Parser._read_closed,
        ERROR: _Parser._read_error,
    }
