"""HAProxy's canned error responses, prebuilt once as bytes.

Clients and monitoring that match HAProxy's bodies keep working; each answer
closes the connection (the request stream may be out of sync after an error).
"""

from __future__ import annotations

_PAGES = {
    400: (b"Bad request", b"Your browser sent an invalid request."),
    403: (b"Forbidden", b"Request forbidden by administrative rules."),
    408: (b"Request Time-out", b"Your browser didn't send a complete request in time."),
    413: (b"Payload Too Large", b"The request entity exceeds the maximum allowed."),
    414: (b"URI Too Long", b"The requested URI is longer than this server accepts."),
    431: (b"Request Header Fields Too Large", b"Your browser sent a request with too large headers."),
    500: (b"Internal Server Error", b"An internal server error occurred."),
    502: (b"Bad Gateway", b"The server returned an invalid or incomplete response."),
    503: (b"Service Unavailable", b"No server is available to handle this request."),
    504: (b"Gateway Time-out", b"The server didn't respond in time."),
}


def _build(status: int, reason: bytes, text: bytes) -> bytes:
    body = b"<html><body><h1>%d %s</h1>\n%s\n</body></html>\n" % (status, reason, text)
    head = (b"HTTP/1.1 %d %s\r\ncontent-length: %d\r\ncache-control: no-cache\r\n"
            b"content-type: text/html\r\nconnection: close\r\n\r\n") % (status, reason, len(body))
    return head + body


ERROR_RESPONSES: dict[int, bytes] = {code: _build(code, *page) for code, page in _PAGES.items()}


def error_response(status: int) -> bytes:
    return ERROR_RESPONSES.get(status) or ERROR_RESPONSES[500]
