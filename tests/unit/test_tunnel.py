"""gproxy.tunnel: the two-way relay of TCP mode (event-loop callbacks, splice
for bulk transfers) on real loopback TCP connections inside one gevent hub."""

from __future__ import annotations

import hashlib
import os

import gevent
import pytest
from gevent import socket

from gproxy import tunnel
from gproxy.tunnel import relay

BULK = 8 * 1024 * 1024 + 123  # several full buffers, then a short read


def _pair() -> tuple[socket.socket, socket.socket]:
    """A connected loopback TCP pair (gevent sockets): (outer end, proxy end)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        outer = socket.create_connection(listener.getsockname())
        inner, _ = listener.accept()
    return outer, inner


@pytest.fixture
def ends():
    """(client app, proxy's client side, proxy's server side, server app)."""
    client_app, proxy_client = _pair()
    server_app, proxy_server = _pair()
    yield client_app, proxy_client, proxy_server, server_app
    for sock in (client_app, proxy_client, proxy_server, server_app):
        sock.close()


def _read_all(sock) -> bytes:
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def test_relays_both_ways_with_half_close(ends):
    client_app, proxy_client, proxy_server, server_app = ends
    job = gevent.spawn(relay, proxy_client, proxy_server, 5.0)
    client_app.sendall(b"request")
    assert server_app.recv(100) == b"request"
    client_app.shutdown(socket.SHUT_WR)
    assert server_app.recv(100) == b""  # the client's EOF is passed on as a half-close
    server_app.sendall(b"answer after the client's EOF")
    server_app.close()
    assert _read_all(client_app) == b"answer after the client's EOF"
    result = job.get(timeout=5)
    assert (result.up, result.down) == (7, 29)
    assert not result.timed_out and result.error_side == ""
    assert result.client_closed_first


def test_leftovers_go_first(ends):
    client_app, proxy_client, proxy_server, server_app = ends
    job = gevent.spawn(relay, proxy_client, proxy_server, 5.0, b"early-up ", b"early-down ")
    client_app.sendall(b"up")
    client_app.shutdown(socket.SHUT_WR)
    assert _read_all(server_app) == b"early-up up"
    server_app.sendall(b"down")
    server_app.close()
    assert _read_all(client_app) == b"early-down down"
    result = job.get(timeout=5)
    assert (result.up, result.down) == (11, 15)
    assert not result.client_closed_first  # the server had already spoken (leftover)


@pytest.mark.parametrize("splice", [True, False])
def test_bulk_download_to_a_slow_reader_arrives_intact(ends, monkeypatch, splice):
    """Full reads move the direction to splice (or not, where there is none);
    a reader slower than the sender makes writes partial: nothing is lost."""
    monkeypatch.setattr(tunnel, "SPLICE", splice and hasattr(os, "splice"))
    client_app, proxy_client, proxy_server, server_app = ends
    payload = os.urandom(BULK)
    job = gevent.spawn(relay, proxy_client, proxy_server, 5.0)

    def serve():
        server_app.sendall(payload)
        server_app.close()

    sender = gevent.spawn(serve)
    gevent.sleep(0.1)  # the client reads nothing yet: its buffer fills, the proxy's writes stay partial
    received = hashlib.sha256()
    size = 0
    while True:
        data = client_app.recv(1000)  # small reads: the proxy's writes stay partial
        if not data:
            break
        received.update(data)
        size += len(data)
        if size % 7 == 0:
            gevent.sleep(0)
    sender.get(timeout=5)
    client_app.close()
    result = job.get(timeout=10)
    assert size == BULK and received.digest() == hashlib.sha256(payload).digest()
    assert result.down == BULK and result.up == 0
    assert result.error_side == ""


def test_bulk_upload_arrives_intact(ends):
    client_app, proxy_client, proxy_server, server_app = ends
    payload = os.urandom(BULK)
    job = gevent.spawn(relay, proxy_client, proxy_server, 5.0)
    uploader = gevent.spawn(lambda: (client_app.sendall(payload), client_app.shutdown(socket.SHUT_WR)))
    gevent.sleep(0.1)  # the server reads nothing yet: the proxy's writes stay partial
    assert hashlib.sha256(_read_all(server_app)).digest() == hashlib.sha256(payload).digest()
    uploader.get(timeout=5)
    server_app.close()
    result = job.get(timeout=5)
    assert result.up == BULK


def test_inactivity_ends_the_tunnel(ends):
    client_app, proxy_client, proxy_server, server_app = ends
    job = gevent.spawn(relay, proxy_client, proxy_server, 0.2)
    client_app.sendall(b"x")
    assert server_app.recv(10) == b"x"
    result = job.get(timeout=5)  # nothing more either way: the timeout, not a hang
    assert result.timed_out and result.up == 1
    assert not result.client_closed_first


def test_activity_keeps_the_tunnel_open_past_the_timeout(ends):
    client_app, proxy_client, proxy_server, server_app = ends
    job = gevent.spawn(relay, proxy_client, proxy_server, 0.3)
    for _ in range(8):  # 8 x 0.1 s of traffic: well past one timeout in all
        client_app.sendall(b"ping")
        assert server_app.recv(10) == b"ping"
        server_app.sendall(b"pong")
        assert client_app.recv(10) == b"pong"
        gevent.sleep(0.1)
    assert not job.ready()
    client_app.close()
    server_app.close()
    result = job.get(timeout=5)
    assert not result.timed_out and (result.up, result.down) == (32, 32)


def test_server_reset_is_the_servers_error(ends):
    client_app, proxy_client, proxy_server, server_app = ends
    job = gevent.spawn(relay, proxy_client, proxy_server, 5.0)
    client_app.sendall(b"hello")
    assert server_app.recv(10) == b"hello"
    # SO_LINGER 0: close sends a RST instead of a FIN.
    server_app.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    server_app.close()
    result = job.get(timeout=5)
    assert result.error_side == "server"
    assert _read_all(client_app) == b""


def test_a_killed_session_stops_its_watchers(ends):
    """`shutdown sessions` or a hard stop kills the session greenlet: the relay's
    watchers go with it and the sockets can be closed."""
    client_app, proxy_client, proxy_server, server_app = ends
    job = gevent.spawn(relay, proxy_client, proxy_server, 5.0)
    gevent.sleep(0.01)
    job.kill(block=True, timeout=5)
    assert job.dead
    proxy_client.close()
    proxy_server.close()
    client_app.sendall(b"after")  # nothing reads it any more, nothing fails either
    assert _read_all(server_app) == b""
