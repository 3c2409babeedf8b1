"""How many idle keep-alive connections a server's pool keeps: as many as the
server ever had requests in flight at once (its smax), at least
MAX_IDLE_PER_SERVER; a connection beyond that is closed after its response."""

from __future__ import annotations

import pytest

import gproxy.http_proxy as hp
from gproxy.config.loader import load_string
from gproxy.netio import IdleConnection
from gproxy.proxy import Gproxy
from gproxy.runtime import MAX_IDLE_PER_SERVER

from test_request_head_forwarding import CONFIG, RESPONSE, FakeSocket


class ClosingSocket(FakeSocket):
    closed = False

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(("smax", "kept"), [
    (0, False),  # the floor: MAX_IDLE_PER_SERVER idle already
    (MAX_IDLE_PER_SERVER + 50, True),  # the server once had more in flight: room for it
])
def test_a_finished_connection_is_pooled_up_to_the_servers_peak(smax, kept):
    proxy = Gproxy(load_string(CONFIG))
    session = hp.HttpSession(proxy.ctx, proxy.frontends["app"], FakeSocket(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
                             ("192.0.2.7", 5555), None)
    server = session.be.servers[0]
    for _ in range(MAX_IDLE_PER_SERVER):
        server.idle.append(IdleConnection(FakeSocket(b""), server.idle))
    sock = ClosingSocket(RESPONSE)
    session._server_connection = lambda srv, replayable, out_head: (sock, True, 0)
    server.counters.max = smax
    assert session.serve_request(True)
    assert server.counters.cur == 0  # nothing in flight when the response ended
    assert (len(server.idle), sock.closed) == ((MAX_IDLE_PER_SERVER + 1, False) if kept
                                               else (MAX_IDLE_PER_SERVER, True))
