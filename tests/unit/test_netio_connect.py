"""gproxy.netio's server connects: connect() and connect_sending() (the
request sent with the connect), on loopback: success, refused, timed out,
a host name, and what the socket is left with."""

from __future__ import annotations

import socket as stdsocket

import gevent
import pytest
from gevent import socket

from gproxy import netio
from gproxy.netio import ConnectFailed, connect, connect_sending


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


def closed_port() -> tuple[int, stdsocket.socket]:
    """A loopback port nothing listens on (bound, never listening: refused)."""
    holder = stdsocket.socket()
    holder.bind(("127.0.0.1", 0))
    return holder.getsockname()[1], holder


@pytest.fixture
def full_listener():
    """A listener whose accept queue is full: the next SYNs are dropped, so a
    connect to it stays in progress (the kernel retries its SYN after 1 s)."""
    sock = stdsocket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    filler = stdsocket.socket()
    filler.connect(sock.getsockname())  # takes the one place in the queue
    yield sock
    filler.close()
    sock.close()


def test_connect_sending_sends_with_the_connect(listener):
    port = listener.getsockname()[1]
    sock, sent = connect_sending("127.0.0.1", port, 2000, b"GET / HTTP/1.1\r\n\r\n")
    assert sent == len(b"GET / HTTP/1.1\r\n\r\n")  # loopback: the handshake is over at once
    peer, _ = listener.accept()
    peer.settimeout(2)
    assert peer.recv(100) == b"GET / HTTP/1.1\r\n\r\n"
    assert sock.getsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_NODELAY)
    assert sock.gettimeout() == 2.0
    peer.sendall(b"answer")
    assert sock.recv(100) == b"answer"  # a gevent socket that reads as usual
    peer.close()
    sock.close()


def test_connect_waits_for_the_handshake(listener):
    port = listener.getsockname()[1]
    sock = connect("127.0.0.1", port, 2000)
    assert sock.gettimeout() == 2.0  # a PROXY header or a TLS handshake follows within it
    assert sock.getsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_NODELAY)
    peer, _ = listener.accept()
    sock.sendall(b"hello")
    peer.settimeout(2)
    assert peer.recv(100) == b"hello"
    peer.close()
    sock.close()


@pytest.mark.parametrize("sending", [False, True])
def test_refused_connect_fails_and_is_not_a_timeout(sending):
    port, holder = closed_port()
    with pytest.raises(ConnectFailed) as info:
        if sending:
            connect_sending("127.0.0.1", port, 2000, b"GET / HTTP/1.1\r\n\r\n")
        else:
            connect("127.0.0.1", port, 2000)
    holder.close()
    assert info.value.timed_out is False
    assert "refused" in str(info.value).lower()


@pytest.mark.parametrize("sending", [False, True])
def test_connect_times_out_within_the_connect_timeout(full_listener, sending):
    port = full_listener.getsockname()[1]
    other = gevent.spawn(lambda: "the hub kept running")
    with pytest.raises(ConnectFailed) as info:
        if sending:
            connect_sending("127.0.0.1", port, 50, b"GET / HTTP/1.1\r\n\r\n")
        else:
            connect("127.0.0.1", port, 50)
    assert info.value.timed_out is True
    assert other.dead and other.value == "the hub kept running"  # the wait was the hub's, not blocking


def test_a_deadline_left_from_a_timed_out_connect_does_not_fire_later(full_listener, listener):
    port = full_listener.getsockname()[1]
    with pytest.raises(ConnectFailed):
        connect("127.0.0.1", port, 20)
    sock = connect("127.0.0.1", listener.getsockname()[1], 2000)
    gevent.sleep(0.05)  # past the first connect's deadline: nothing is thrown here
    sock.close()


def test_a_host_name_is_resolved(listener):
    port = listener.getsockname()[1]
    sock, sent = connect_sending("localhost", port, 2000, b"x")
    assert sent == 0  # the caller sends it
    sock.sendall(b"x")
    peer, _ = listener.accept()
    peer.settimeout(2)
    assert peer.recv(10) == b"x"
    peer.close()
    sock.close()


def test_literal_families_are_cached():
    assert netio._literal_family("127.0.0.1") == stdsocket.AF_INET
    assert netio._literal_family("::1") == stdsocket.AF_INET6
    assert netio._literal_family("localhost") is None
    assert netio._FAMILIES["::1"] == stdsocket.AF_INET6


def test_connect_sending_waits_for_a_handshake_still_on(full_listener):
    """The SYN is dropped while the accept queue is full: the send gets EAGAIN,
    the connect is waited for (the kernel resends its SYN after about 1 s),
    and nothing was sent: the caller sends the head."""
    port = full_listener.getsockname()[1]
    pending = gevent.spawn(connect_sending, "127.0.0.1", port, 5000, b"GET / HTTP/1.1\r\n\r\n")
    gevent.sleep(0.05)
    assert not pending.dead  # waiting in the hub for the handshake
    first, _ = full_listener.accept()  # the filler: room for the resent SYN
    sock, sent = pending.get(timeout=5)
    assert sent == 0
    sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
    peer, _ = full_listener.accept()
    peer.settimeout(2)
    assert peer.recv(100) == b"GET / HTTP/1.1\r\n\r\n"
    for one in (first, peer, sock):
        one.close()


def test_connect_sending_to_an_ipv6_literal():
    try:
        listener = socket.socket(socket.AF_INET6)
        listener.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    listener.listen(4)
    sock, sent = connect_sending("::1", listener.getsockname()[1], 2000, b"hi")
    assert sent == 2 and sock.family == socket.AF_INET6
    peer, _ = listener.accept()
    peer.settimeout(2)
    assert peer.recv(10) == b"hi"
    for one in (peer, sock, listener):
        one.close()
