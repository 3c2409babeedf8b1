"""Connections per client address: the `maxconn_per_client` bookkeeping.

A frontend with `maxconn_per_client = N` keeps one `ClientConnections`: the
process layer asks `admit(address)` when it accepts a connection and calls
`release(address)` when that connection ends. The (N+1)th concurrent
connection from one address is refused, which is what HAProxy does with a
stick-table storing `conn_cur` and `tcp-request connection reject if
{ src_conn_cur ge N+1 }`. The refusal itself (closing the socket, counting
`dcon`, logging) is the caller's.

Pure logic: no sockets, no clock. Addresses are the text the socket layer
gives; an IPv4 client seen through an IPv6 socket (`::ffff:192.0.2.1`) counts
as its IPv4 address, so a dual-stack listener cannot be used to double the
limit. Only addresses with live connections are remembered, so the table is
bounded by the frontend's `maxconn`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Admission", "ClientConnections", "client_key"]

_V4_MAPPED_PREFIX = "::ffff:"


def client_key(address: str) -> str:
    """The address connections are counted under (IPv4-mapped IPv6 -> IPv4)."""
    if address[:7].lower() == _V4_MAPPED_PREFIX and "." in address:
        return address[7:]
    return address


@dataclass(frozen=True)
class Admission:
    """The verdict on one new connection: `current` connections from its
    address once admitted (or the count that made it refused)."""

    admitted: bool
    current: int


class ClientConnections:
    """Live connection counts by client address, bounded by `limit` each."""

    __slots__ = ("limit", "_counts", "refused")

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self._counts: dict[str, int] = {}
        self.refused = 0  # connections refused since start (the frontend's dcon counts them too)

    def admit(self, address: str) -> Admission:
        """Count a new connection from `address`, or refuse it (not counted:
        the caller closes it and must not call `release`)."""
        key = client_key(address)
        current = self._counts.get(key, 0)
        if current >= self.limit:
            self.refused += 1
            return Admission(False, current)
        self._counts[key] = current + 1
        return Admission(True, current + 1)

    def release(self, address: str) -> None:
        """An admitted connection from `address` ended."""
        key = client_key(address)
        current = self._counts.get(key, 0)
        if current <= 1:
            self._counts.pop(key, None)
        else:
            self._counts[key] = current - 1

    def current(self, address: str) -> int:
        """Live connections from `address`."""
        return self._counts.get(client_key(address), 0)

    def __len__(self) -> int:
        """Addresses with at least one live connection."""
        return len(self._counts)
