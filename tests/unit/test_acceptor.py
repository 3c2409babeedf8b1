"""gproxy.acceptor: accepting in the hub with maxconn backpressure, and
connections parked (no greenlet) until readable or timed out."""

from __future__ import annotations

import gevent
from gevent import socket
from gevent.event import AsyncResult

from gproxy.acceptor import Acceptor, Parked


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def test_parked_fires_once_when_readable():
    left, right = socket.socketpair()
    calls: list[bool] = []
    parked = Parked(right, 5.0, calls.append)
    gevent.sleep(0.01)
    assert calls == [] and parked.waiting
    left.sendall(b"x")
    gevent.sleep(0.01)
    left.sendall(b"y")  # still readable: no second call
    gevent.sleep(0.01)
    assert calls == [False] and not parked.waiting
    assert right.recv(10) == b"xy"
    left.close()
    right.close()


def test_parked_fires_on_eof_as_readable():
    left, right = socket.socketpair()
    done = AsyncResult()
    Parked(right, 5.0, done.set)
    left.close()
    assert done.get(timeout=2) is False
    assert right.recv(10) == b""
    right.close()


def test_parked_times_out():
    left, right = socket.socketpair()
    done = AsyncResult()
    Parked(right, 0.05, done.set)
    assert done.get(timeout=2) is True
    left.close()
    right.close()


def test_cancelled_wait_never_fires():
    left, right = socket.socketpair()
    calls: list[bool] = []
    parked = Parked(right, 0.05, calls.append)
    parked.cancel()
    left.sendall(b"x")
    gevent.sleep(0.1)
    assert calls == []
    left.close()
    right.close()


def test_acceptor_hands_connections_over_and_stops_at_full():
    listener = _listener()
    accepted: list[socket.socket] = []
    limit = {"n": 2}

    def on_accept(sock, address):
        assert gevent.getcurrent() is gevent.get_hub()  # in the hub: no greenlet per connection
        accepted.append(sock)

    server = Acceptor(listener, on_accept, lambda: len(accepted) >= limit["n"])
    server.start()
    clients = [socket.create_connection(listener.getsockname()) for _ in range(4)]
    gevent.sleep(0.1)
    assert len(accepted) == 2  # full: the other two wait in the backlog
    accepted[0].sendall(b"still open")  # not closed when on_accept returned
    assert clients[0].recv(20) == b"still open"
    limit["n"] = 4
    server.resume()
    gevent.sleep(0.1)
    assert len(accepted) == 4
    server.stop()
    for sock in accepted + clients:
        sock.close()


def test_resume_does_nothing_while_full_or_stopped():
    listener = _listener()
    server = Acceptor(listener, lambda sock, address: sock.close(), lambda: True)
    server.start()
    gevent.sleep(0.01)
    server.resume()  # still full: no accepting
    client = socket.create_connection(listener.getsockname())
    gevent.sleep(0.05)
    client.settimeout(0.05)
    try:
        data = client.recv(1)
    except socket.timeout:
        data = None
    assert data is None  # not accepted, so not closed either
    server.stop()
    server.resume()  # stopped: nothing happens
    client.close()


def test_parked_timeout_counts_from_now_even_after_the_hub_blocked():
    """The loop's clock is stale after the hub blocked (here 0.5 s of
    time.sleep): a 0.3 s wait must still last 0.3 s from now, not expire at once."""
    import time

    gevent.sleep(0.01)  # the loop runs: its clock is now
    time.sleep(0.5)  # blocks the hub: its cached clock falls behind
    left, right = socket.socketpair()
    calls: list[bool] = []
    parked = Parked(right, 0.3, calls.append)
    gevent.sleep(0.01)
    assert calls == [] and parked.waiting
    parked.cancel()
    left.close()
    right.close()


def test_accepted_connection_is_a_gevent_socket_like_gevents_own():
    listener = _listener()
    accepted: list = []
    server = Acceptor(listener, lambda sock, address: accepted.append((sock, address)), lambda: False)
    server.start()
    client = socket.create_connection(listener.getsockname())
    gevent.sleep(0.05)
    assert len(accepted) == 1
    sock, address = accepted[0]
    assert isinstance(sock, socket.socket)  # gevent's: waits in the hub
    assert (sock.family, sock.type) == (socket.AF_INET, socket.SOCK_STREAM)
    assert sock.gettimeout() is None
    assert address == client.getsockname()
    client.sendall(b"ping")
    sock.settimeout(2)
    assert sock.recv(10) == b"ping"
    server.stop()
    sock.close()
    client.close()


def test_a_failing_callback_pauses_accepting_then_it_goes_on(monkeypatch):
    """As gevent's accept loop: the error is reported, accepting pauses for
    `delay` and starts again; the other connections are served."""
    listener = _listener()
    accepted: list = []
    errors: list = []

    def on_accept(sock, address):
        if not errors:
            errors.append(address)
            sock.close()
            raise RuntimeError("callback failed")
        accepted.append(sock)

    server = Acceptor(listener, on_accept, lambda: False)
    server.min_delay = server.delay = 0.05
    # the loop reports through the hub
    monkeypatch.setattr(gevent.get_hub(), "handle_error", lambda context, *exc_info: errors.append(exc_info[0]))
    server.start()
    clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
    gevent.sleep(0.3)
    assert errors[1] is RuntimeError  # reported to the hub's handle_error
    assert len(accepted) == 2  # accepting resumed after the pause
    assert server.delay == server.min_delay  # a success resets the back-off
    server.stop()
    for sock in accepted + clients:
        sock.close()
