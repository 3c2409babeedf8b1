"""The values the HTTP/1.x codec hands to its caller: sentinels, heads, body data.

Heads are plain `__slots__` classes rather than frozen dataclasses: one is built
per message on the hot path, and a slots class with a hand-written `__init__`
costs a fraction of a frozen dataclass. Treat them as read-only all the same.

`NEED_DATA`, `EndOfMessage` and `ConnectionClosed` are sentinel classes (as in
h11): the class is its own type and calling it returns itself, so callers may
write `ev is EndOfMessage`, `isinstance(ev, EndOfMessage)` or `EndOfMessage()`,
and all three agree.
"""

from __future__ import annotations

from typing import Any


class _Sentinel(type):
    """Metaclass for event/marker singletons that are their own instance."""

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> Any:
        cls = super().__new__(mcls, name, bases, namespace)
        cls.__class__ = cls  # isinstance(cls, cls) is True; type(cls) is cls
        return cls

    def __call__(cls) -> Any:  # EndOfMessage() is EndOfMessage
        return cls

    def __repr__(cls) -> str:
        return cls.__name__


class NEED_DATA(_Sentinel, metaclass=_Sentinel):
    """next_event() has nothing to return until more bytes (or EOF) arrive."""


class EndOfMessage(_Sentinel, metaclass=_Sentinel):
    """The current message is complete (its last body byte has been returned)."""


class ConnectionClosed(_Sentinel, metaclass=_Sentinel):
    """The peer closed cleanly between messages (EOF while idle)."""


class Data:
    """Body bytes exactly as they were on the wire (chunk framing included)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return type(other) is Data and other.data == self.data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Data({self.data[:40]!r}{'...' if len(self.data) > 40 else ''}, len={len(self.data)})"


class _Head:
    """What request and response heads share: headers and their lookups."""

    __slots__ = ("version", "headers", "raw", "keep_alive", "body_kind", "content_length", "_lnames")

    version: bytes
    headers: list[tuple[bytes, bytes]]
    raw: bytes
    keep_alive: bool
    body_kind: str
    content_length: int | None
    _lnames: list[bytes]

    def header(self, lname: bytes) -> bytes | None:
        """First value of the header named `lname` (lowercase), or None."""
        try:
            return self.headers[self._lnames.index(lname)][1]
        except ValueError:
            return None

    def header_values(self, lname: bytes) -> list[bytes]:
        """Every value of the header named `lname` (lowercase), in order."""
        return [hv[1] for n, hv in zip(self._lnames, self.headers) if n == lname]

    def has_header(self, lname: bytes) -> bool:
        return lname in self._lnames

    @property
    def lnames(self) -> list[bytes]:
        """The header names lowercased, in the order of `headers` (do not modify)."""
        return self._lnames


def _lowered(headers: list[tuple[bytes, bytes]], lnames: list[bytes] | None) -> list[bytes]:
    return lnames if lnames is not None else [n.lower() for n, _ in headers]


class RequestHead(_Head):
    """A parsed request line and header block.

    keep_alive follows the request alone (HTTP/1.1 unless "Connection: close",
    HTTP/1.0 only with "Connection: keep-alive"); body_kind is "none", "length"
    or "chunked"; upgrade means "Connection: upgrade" plus an Upgrade header.
    """

    __slots__ = ("method", "target", "expect_continue", "upgrade")

    def __init__(
        self,
        method: bytes,
        target: bytes,
        version: bytes,
        headers: list[tuple[bytes, bytes]],
        raw: bytes = b"",
        keep_alive: bool = True,
        body_kind: str = "none",
        content_length: int | None = None,
        expect_continue: bool = False,
        upgrade: bool = False,
        lnames: list[bytes] | None = None,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.raw = raw
        self.keep_alive = keep_alive
        self.body_kind = body_kind
        self.content_length = content_length
        self.expect_continue = expect_continue
        self.upgrade = upgrade
        self._lnames = _lowered(headers, lnames)

    def __repr__(self) -> str:
        return (
            f"RequestHead({self.method!r} {self.target!r} {self.version!r}, {len(self.headers)} headers, "
            f"body={self.body_kind}:{self.content_length}, keep_alive={self.keep_alive})"
        )


class ResponseHead(_Head):
    """A parsed status line and header block.

    body_kind is "none", "length", "chunked" or "close" (read until EOF).
    tunnel is True for 101 and for a 2xx answer to CONNECT: once its
    EndOfMessage is returned, the connection carries opaque bytes.
    """

    __slots__ = ("status", "reason", "tunnel")

    def __init__(
        self,
        version: bytes,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        raw: bytes = b"",
        keep_alive: bool = True,
        body_kind: str = "none",
        content_length: int | None = None,
        tunnel: bool = False,
        lnames: list[bytes] | None = None,
    ) -> None:
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.raw = raw
        self.keep_alive = keep_alive
        self.body_kind = body_kind
        self.content_length = content_length
        self.tunnel = tunnel
        self._lnames = _lowered(headers, lnames)

    @property
    def informational(self) -> bool:
        """1xx other than 101: the final response of the same request follows."""
        return self.status < 200 and self.status != 101

    def __repr__(self) -> str:
        return (
            f"ResponseHead({self.version!r} {self.status} {self.reason!r}, {len(self.headers)} headers, "
            f"body={self.body_kind}:{self.content_length}, keep_alive={self.keep_alive})"
        )
