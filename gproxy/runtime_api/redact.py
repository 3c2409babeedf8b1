"""Credentials masked out of captured traffic before an operator sees it.

`show errors` prints an invalid request as it came in, and HAProxy prints it
verbatim, Basic credentials included: anyone with an operator-level socket
would read the stats page's passwords there. gproxy masks the value of every
credential header with `*`, byte for byte, so that the dump keeps its
offsets and "error at position" still points at the same byte.
"""

from __future__ import annotations

import re

# Header names whose values are credentials (RFC 9110 section 11).
CREDENTIAL_HEADERS = (b"authorization", b"proxy-authorization")

# A header line that starts at the beginning of the buffer or after a LF: its
# name, the colon, optional blanks, then the value up to CR or LF.
_CREDENTIAL_LINE = re.compile(
    rb"(?:^|(?<=\n))(?P<name>" + b"|".join(re.escape(n) for n in CREDENTIAL_HEADERS)
    + rb")[ \t]*:[ \t]*(?P<value>[^\r\n]*)",
    re.IGNORECASE,
)

MASK = 0x2A  # "*"


def mask_credentials(data: bytes) -> bytes:
    """`data` with the value of every credential header replaced by as many
    `*`; everything else, and every offset, unchanged."""
    out = bytearray(data)
    for match in _CREDENTIAL_LINE.finditer(data):
        start, end = match.span("value")
        out[start:end] = bytes((MASK,)) * (end - start)
    return bytes(out)
