"""Writing HTTP/1.x heads, and the standard reason phrases.

Only heads are written: bodies are forwarded as the parser returned them
(chunk framing included), so nothing here ever re-encodes a body.
"""

from __future__ import annotations

REASONS: dict[int, bytes] = {
    100: b"Continue",
    101: b"Switching Protocols",
    102: b"Processing",
    103: b"Early Hints",
    200: b"OK",
    201: b"Created",
    202: b"Accepted",
    203: b"Non-Authoritative Information",
    204: b"No Content",
    205: b"Reset Content",
    206: b"Partial Content",
    207: b"Multi-Status",
    208: b"Already Reported",
    226: b"IM Used",
    300: b"Multiple Choices",
    301: b"Moved Permanently",
    302: b"Found",
    303: b"See Other",
    304: b"Not Modified",
    305: b"Use Proxy",
    307: b"Temporary Redirect",
    308: b"Permanent Redirect",
    400: b"Bad Request",
    401: b"Unauthorized",
    402: b"Payment Required",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    406: b"Not Acceptable",
    407: b"Proxy Authentication Required",
    408: b"Request Timeout",
    409: b"Conflict",
    410: b"Gone",
    411: b"Length Required",
    412: b"Precondition Failed",
    413: b"Content Too Large",
    414: b"URI Too Long",
    415: b"Unsupported Media Type",
    416: b"Range Not Satisfiable",
    417: b"Expectation Failed",
    421: b"Misdirected Request",
    422: b"Unprocessable Content",
    423: b"Locked",
    424: b"Failed Dependency",
    425: b"Too Early",
    426: b"Upgrade Required",
    428: b"Precondition Required",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    451: b"Unavailable For Legal Reasons",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
    505: b"HTTP Version Not Supported",
    506: b"Variant Also Negotiates",
    507: b"Insufficient Storage",
    508: b"Loop Detected",
    510: b"Not Extended",
    511: b"Network Authentication Required",
}

_CRLF = b"\r\n"
_SEP = b": "


def _header_block(headers: list[tuple[bytes, bytes]]) -> bytes:
    parts = []
    for name, value in headers:
        parts += (name, _SEP, value, _CRLF)
    block = b"".join(parts)
    # Header injection guard: a CR or LF in a name or value would let it
    # write extra header lines. Each header adds exactly one CRLF.
    if block.count(b"\n") != len(headers) or block.count(b"\r") != len(headers):
        raise ValueError("CR or LF inside a header name or value")
    return block


def serialize_request_head(
    method: bytes, target: bytes, version: bytes, headers: list[tuple[bytes, bytes]]
) -> bytes:
    """b"METHOD target VERSION\\r\\n" + headers + b"\\r\\n"."""
    line = b"%s %s %s\r\n" % (method, target, version)
    if line.count(b"\n") != 1 or b"\r" in line[:-2] or line.count(b" ") != 2:
        raise ValueError("invalid request line component")
    return line + _header_block(headers) + _CRLF


def serialize_response_head(
    version: bytes, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
) -> bytes:
    """b"VERSION status reason\\r\\n" + headers + b"\\r\\n" (the space stays if reason is empty)."""
    if not 100 <= status <= 999:
        raise ValueError(f"invalid status code {status}")
    if b"\r" in reason or b"\n" in reason:
        raise ValueError("CR or LF inside a reason phrase")
    return b"%s %d %s\r\n" % (version, status, reason) + _header_block(headers) + _CRLF


def append_headers(head: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """A received head (validated, CRLF line ends only) with `headers` added
    before its empty line: what a proxy sends when it changes nothing else,
    without re-serialising the client's lines."""
    if not headers:
        return head
    return head[:-2] + _header_block(headers) + _CRLF


def join_head_lines(lines: list[bytes]) -> bytes:
    """A head from its start line and header lines (each without its CRLF):
    what a proxy sends when it forwards most lines of a received head as
    they came and writes only the ones it changes or adds."""
    lines.append(b"")
    lines.append(b"")
    head = b"\r\n".join(lines)
    # Header injection guard, as in _header_block: each line adds exactly one
    # CRLF, so a CR or LF inside a line (a rewritten value) is caught.
    crlfs = len(lines) - 1
    if head.count(b"\n") != crlfs or head.count(b"\r") != crlfs:
        raise ValueError("CR or LF inside a header line")
    return head
