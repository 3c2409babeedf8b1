"""Parsing of one complete HTTP/1.x message head (RFC 9112 sections 2-6).

The parsers in `http.py` cut a head out of their buffer (request or status
line through the empty line) and hand it here whole. Everything below works on
the whole head with C-level bytes methods (count, replace, split, translate)
instead of per-byte or per-header regex work: this runs once per request.

Strictness follows HAProxy rather than Postel: smuggling vectors (obs-fold,
space before colon, conflicting or malformed Content-Length, Content-Length
with Transfer-Encoding, a request whose last coding is not chunked) are
refused. Bare LF line endings are accepted, bare CR never is.
"""

from __future__ import annotations

from gproxy.errors import ProtocolError
from gproxy.protocol.http_events import RequestHead, ResponseHead

# RFC 9110 5.6.2 token characters.
TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Bytes that may not appear in a request-target: controls and space.
CTL_OR_SP = bytes(range(0x21)) + b"\x7f"
# Control characters other than HTAB are invalid in field values (RFC 9110
# 5.5); HAProxy refuses them, and so do we, as parsers disagree about them.
CTL_NO_HTAB = bytes(range(0x09)) + bytes(range(0x0A, 0x20)) + b"\x7f"
# A request-target longer than this gets 414 (well below the head size limit,
# as in common servers; long URIs are mostly scans and cache-busting attacks).
DEFAULT_MAX_URI_LENGTH = 8192
# Content-Length beyond 18 digits (about 1 EB) is nonsense and would not fit
# the peer's 64-bit counters: refuse it rather than carry a huge int around.
MAX_CONTENT_LENGTH_DIGITS = 18

KNOWN_METHODS = frozenset(
    (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH")
)
# Headers whose values decide framing or connection handling.
# Host is here as RFC 9112 3.2 asks for a 400 on more than one Host line.
_FRAMING = frozenset(
    (b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade", b"host")
)

_V10 = b"HTTP/1.0"
_V11 = b"HTTP/1.1"


def split_head(
    head: bytes, max_headers: int, bad_status: int, big_status: int
) -> tuple[bytes, list[tuple[bytes, bytes]], list[bytes], dict[bytes, list[bytes]]]:
    """Split a head into (first line, headers, lowercase names, framing headers).

    `head` ends with its empty line. Header values have their surrounding
    whitespace stripped; names are kept as received.
    """
    if b"\x00" in head:
        raise ProtocolError("NUL byte in message head", bad_status)
    lines = head.split(b"\r\n")
    crlfs = len(lines) - 1
    if head.count(b"\r") != crlfs or head.count(b"\n") != crlfs:
        # Not pure CRLF (the usual case): bare LF line ends are tolerated,
        # but every CR must start a CRLF, as a lone CR is how requests get
        # split differently by two parsers.
        if head.count(b"\r") != head.count(b"\r\n"):
            raise ProtocolError("bare CR in message head", bad_status)
        lines = head.replace(b"\r\n", b"\n").split(b"\n")
    del lines[-2:]  # the final empty line leaves two empty strings
    first = lines[0]
    del lines[0]
    if len(lines) > max_headers:
        raise ProtocolError(f"more than {max_headers} header lines", big_status)
    # Comprehensions rather than a loop with a check per header: this is the
    # hottest code of a request. Validation is done on the whole result (one
    # translate over all names catches obs-fold, spaces before the colon and
    # any other non-token byte); _diagnose() explains a failure, off the fast path.
    try:
        pairs = [line.split(b":", 1) for line in lines]
        headers = [(name, value.strip(b" \t")) for name, value in pairs]
    except ValueError:  # a line without a colon
        raise ProtocolError(_diagnose(lines), bad_status) from None
    lnames = [name.lower() for name, _ in headers]
    if lnames and (b"".join(lnames).translate(None, TCHAR) or b"" in lnames):
        raise ProtocolError(_diagnose(lines), bad_status)
    joined = b"".join(lines)  # one C-level pass over every value for controls
    if len(joined.translate(None, CTL_NO_HTAB)) != len(joined):
        raise ProtocolError("control character in header value", bad_status)
    framing: dict[bytes, list[bytes]] = {}
    for lname in _FRAMING.intersection(lnames):
        if lnames.count(lname) == 1:  # the usual case, found at C speed
            framing[lname] = [headers[lnames.index(lname)][1]]
        else:
            framing[lname] = [hv[1] for n, hv in zip(lnames, headers) if n == lname]
    return first, headers, lnames, framing


def _diagnose(lines: list[bytes]) -> str:
    """Name the first malformed header line (only called once parsing failed)."""
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            return "obsolete line folding in header"
        name, sep, _ = line.partition(b":")
        if not sep or not name:
            return "header line without a name and colon"
        if name[-1:] in (b" ", b"\t"):
            return "whitespace between header name and colon"
        if name.translate(None, TCHAR):
            return f"invalid character in header name {name[:40]!r}"
    return "malformed header"


def _is_http1(version: bytes) -> bool | None:
    """True for HTTP/1.1 semantics, False for HTTP/1.0, None if unsupported."""
    if version == _V11:
        return True
    if version == _V10:
        return False
    # RFC 9112 2.3: an unknown 1.x minor version is handled as the highest we know.
    if len(version) == 8 and version.startswith(b"HTTP/1.") and version[7:].isdigit():
        return True
    return None


def _connection_tokens(framing: dict[bytes, list[bytes]]) -> list[bytes]:
    values = framing.get(b"connection")
    if not values:
        return []
    return [t.strip(b" \t") for t in b",".join(values).lower().split(b",")]


def _keep_alive(v11: bool, tokens: list[bytes]) -> bool:
    if b"close" in tokens:
        return False
    return v11 or b"keep-alive" in tokens


def parse_content_length(values: list[bytes], status: int) -> int:
    """The one length several Content-Length values agree on ("5, 5" is 5)."""
    length = -1
    for value in values:
        for item in value.split(b","):
            item = item.strip(b" \t")
            # isdigit() on bytes is ASCII-only: no sign, no spaces, no "0x".
            if not item.isdigit() or len(item) > MAX_CONTENT_LENGTH_DIGITS:
                raise ProtocolError(f"invalid Content-Length {value!r}", status)
            n = int(item)
            if length < 0:
                length = n
            elif n != length:
                raise ProtocolError("conflicting Content-Length values", status)
    if length < 0:
        raise ProtocolError("empty Content-Length", status)
    return length


def _codings(values: list[bytes]) -> list[bytes]:
    return [c for c in (t.strip(b" \t") for t in b",".join(values).lower().split(b",")) if c]


# A module constant, not a literal in the loop: Cython (setup.py) iterates a
# literal tuple of one-byte strings as the bytes' integer values.
_AUTHORITY_ENDS = (b"/", b"?", b"#")


def _authority(target: bytes) -> bytes | None:
    """The authority of an absolute-form target (RFC 9112 3.2.2), else None."""
    lower = target[:8].lower()
    if lower.startswith(b"http://"):
        rest = target[7:]
    elif lower.startswith(b"https://"):
        rest = target[8:]
    else:
        return None
    for sep in _AUTHORITY_ENDS:
        rest = rest.split(sep, 1)[0]
    return rest.rpartition(b"@")[2]


def parse_request_head(
    head: bytes, max_headers: int, max_uri_length: int = DEFAULT_MAX_URI_LENGTH
) -> RequestHead:
    """Parse a complete request head; raise ProtocolError (400/414/431) if invalid."""
    first, headers, lnames, framing = split_head(head, max_headers, 400, 431)
    parts = first.split(b" ")
    if len(parts) != 3:
        # Also HTTP/0.9's "GET /": it has no headers to frame a body with.
        raise ProtocolError("malformed request line")
    method, target, version = parts
    if method not in KNOWN_METHODS and (not method or method.translate(None, TCHAR)):
        raise ProtocolError("invalid request method")
    if not target or len(target.translate(None, CTL_OR_SP)) != len(target):
        raise ProtocolError("invalid request target")
    if len(target) > max_uri_length:
        raise ProtocolError(f"request target longer than {max_uri_length} bytes", 414)
    host = framing.get(b"host")
    if host is not None:
        if len(host) > 1:
            raise ProtocolError("more than one Host header")
        # RFC 9112 3.2.2 lets a proxy replace Host by the authority of an
        # absolute-form target; refusing a mismatch (as HAProxy does) leaves
        # no room for a backend to route on the other one.
        authority = _authority(target)
        if authority is not None and authority.lower() != host[0].lower():
            raise ProtocolError("Host header does not match the request target's authority")
    v11 = _is_http1(version)
    if v11 is None:
        raise ProtocolError("unsupported HTTP version")
    tokens = _connection_tokens(framing)
    keep_alive = _keep_alive(v11, tokens)

    body_kind = "none"
    content_length = None
    te = framing.get(b"transfer-encoding")
    cl = framing.get(b"content-length")
    if te is not None:
        if cl is not None:
            raise ProtocolError("both Content-Length and Transfer-Encoding")
        codings = _codings(te)
        if not codings or codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
            raise ProtocolError("Transfer-Encoding must end with a single chunked")
        body_kind = "chunked"
        if not v11:
            # RFC 9112 6.1: framing of an HTTP/1.0 message with TE is suspect;
            # process it, then close.
            keep_alive = False
    elif cl is not None:
        content_length = parse_content_length(cl, 400)
        body_kind = "length"

    expect_continue = False
    expect = framing.get(b"expect")
    if expect is not None and v11:  # RFC 9110 10.1.1: ignored in HTTP/1.0
        expect_continue = any(v.lower() == b"100-continue" for v in expect)
    upgrade = b"upgrade" in tokens and any(framing.get(b"upgrade", ()))
    return RequestHead(
        method, target, version, headers, head, keep_alive, body_kind, content_length,
        expect_continue, upgrade, lnames,
    )  # fmt: skip


def parse_response_head(head: bytes, max_headers: int, method: bytes) -> ResponseHead:
    """Parse a complete response head to a `method` request; ProtocolError(502) if invalid."""
    first, headers, lnames, framing = split_head(head, max_headers, 502, 502)
    parts = first.split(b" ", 2)
    if len(parts) < 2:
        raise ProtocolError("malformed status line", 502)
    version = parts[0]
    code = parts[1]
    v11 = _is_http1(version)
    if v11 is None:
        raise ProtocolError("unsupported HTTP version in response", 502)
    if len(code) != 3 or not code.isdigit() or code[0] == 0x30:
        raise ProtocolError("invalid status code", 502)
    status = int(code)
    reason = parts[2] if len(parts) == 3 else b""
    keep_alive = _keep_alive(v11, _connection_tokens(framing))

    body_kind = "none"
    content_length = None
    tunnel = False
    if status == 101 or (method == b"CONNECT" and 200 <= status < 300):
        tunnel = True
    elif status < 200 or status == 204 or status == 304 or method == b"HEAD":
        pass
    elif (te := framing.get(b"transfer-encoding")) is not None:
        # RFC 9112 6.3: Transfer-Encoding overrides Content-Length.
        codings = _codings(te)
        if codings.count(b"chunked") > 1:
            raise ProtocolError("chunked applied twice", 502)
        if codings and codings[-1] == b"chunked":
            body_kind = "chunked"
        else:
            body_kind = "close"  # RFC 9112 6.3 rule 4: read until the server closes
        if not v11 or body_kind == "close":
            keep_alive = False
    elif (cl := framing.get(b"content-length")) is not None:
        content_length = parse_content_length(cl, 502)
        body_kind = "length"
    else:
        body_kind = "close"
        keep_alive = False
    return ResponseHead(
        version, status, reason, headers, head, keep_alive, body_kind, content_length, tunnel, lnames
    )
