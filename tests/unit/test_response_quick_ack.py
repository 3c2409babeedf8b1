"""Quick ACKs on a reused server connection are asked for only when the
response comes in pieces (a Nagle server holds its second send until the
first is ACKed): never for a response read whole."""

from __future__ import annotations

import socket

import pytest

import gproxy.http_proxy as hp
from gproxy.config.loader import load_string
from gproxy.netio import _QUICKACK
from gproxy.proxy import Gproxy

from test_request_head_forwarding import CONFIG, FakeSocket


class PiecesSocket(FakeSocket):
    """A server connection that answers `pieces`, one per recv(), and keeps
    the options set on it."""

    def __init__(self, pieces: list[bytes]) -> None:
        super().__init__(b"")
        self.pieces = list(pieces)
        self.options: list[tuple[int, int, int]] = []

    def recv(self, size: int) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""

    def setsockopt(self, level: int, name: int, value: int) -> None:
        self.options.append((level, name, value))


def served(pieces: list[bytes], reused: bool = True) -> tuple[bytes, list]:
    proxy = Gproxy(load_string(CONFIG))
    server = PiecesSocket(pieces)
    client = FakeSocket(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    session = hp.HttpSession(proxy.ctx, proxy.frontends["app"], client, ("192.0.2.7", 5555), None)
    session._server_connection = lambda srv, replayable, out_head: (server, reused, 0)
    session.serve_request(True)
    return client.sent, server.options


QUICK_ACK = (socket.IPPROTO_TCP, _QUICKACK, 1)
WHOLE = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n"


def test_a_response_read_whole_asks_for_no_quick_ack():
    sent, options = served([WHOLE])
    assert sent.endswith(b"\r\n\r\nhello\n")
    assert options == []


@pytest.mark.parametrize("cut", [len(WHOLE) - 6, 20], ids=["head, then body", "head in two pieces"])
def test_a_response_in_pieces_asks_for_a_quick_ack_once(cut):
    sent, options = served([WHOLE[:cut], WHOLE[cut:]])
    assert sent.endswith(b"\r\n\r\nhello\n")
    assert options == [QUICK_ACK]


def test_a_new_connection_needs_no_quick_ack():
    # A new connection is still in the kernel's quick-ACK mode.
    sent, options = served([WHOLE[:20], WHOLE[20:]], reused=False)
    assert sent.endswith(b"\r\n\r\nhello\n")
    assert options == []
