"""gproxy.netio: waiting before reading, and idle pooled connections watched
while they wait (gevent sockets, one hub)."""

from __future__ import annotations

import gevent
import pytest
from gevent import socket

from gproxy.netio import IdleConnection, recv_when_readable


def test_recv_when_readable_waits_then_reads():
    left, right = socket.socketpair()
    gevent.spawn_later(0.02, left.sendall, b"late")
    right.settimeout(5)
    assert recv_when_readable(right, 100) == b"late"
    left.sendall(b"already there")
    assert recv_when_readable(right, 100) == b"already there"
    left.close()
    right.close()


def test_recv_when_readable_keeps_the_socket_timeout():
    left, right = socket.socketpair()
    right.settimeout(0.05)
    with pytest.raises(socket.timeout):
        recv_when_readable(right, 100)
    left.close()
    right.close()


def test_idle_connection_taken_back_is_usable():
    left, right = socket.socketpair()
    pool: list = []
    pool.append(IdleConnection(right, pool))
    sock = pool.pop().take()
    left.sendall(b"answer")
    sock.settimeout(5)
    assert sock.recv(100) == b"answer"  # gevent can wait on its watcher again
    left.close()
    right.close()


@pytest.mark.parametrize("event", ["close", "stray bytes"])
def test_idle_connection_leaves_the_pool_when_the_server_moves(event):
    left, right = socket.socketpair()
    pool: list = []
    pool.append(IdleConnection(right, pool))
    if event == "close":
        left.close()
    else:
        left.sendall(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    gevent.sleep(0.05)
    assert pool == []
    assert right.fileno() == -1  # closed
    left.close()


def test_a_reusable_deadline_bounds_each_wait_and_raises_socket_timeout():
    from gproxy.netio import reusable_deadline

    left, right = socket.socketpair()
    deadline = reusable_deadline(0.05)
    for _ in range(3):  # the same timer, started and cancelled at each wait
        with pytest.raises(socket.timeout):
            recv_when_readable(right, 100, deadline)
    left.sendall(b"in time")
    assert recv_when_readable(right, 100, deadline) == b"in time"
    gevent.sleep(0.1)  # cancelled after the wait: nothing fires later
    deadline.close()
    left.close()
    right.close()


def test_send_all_sends_what_fits_at_once_and_the_rest_through_gevents_wait():
    from gproxy.netio import send_all

    left, right = socket.socketpair()
    send_all(left, b"small")  # one send() on the socket underneath
    assert right.recv(100) == b"small"
    left._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = bytes(range(256)) * 4096  # 1 MiB: far more than the buffers hold
    got = bytearray()

    def read_all():
        while len(got) < len(big):
            got.extend(right.recv(65536))

    reader = gevent.spawn(read_all)
    send_all(left, big, 5.0)  # a partial send, then gevent's sendall waits for the rest
    reader.join(5)
    assert bytes(got) == big
    assert left.gettimeout() == 5.0  # the timeout given is the one the wait used
    left.close()
    right.close()


def test_send_all_on_a_full_buffer_waits_within_the_timeout_given():
    from gproxy.netio import send_all

    left, right = socket.socketpair()
    left._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    with pytest.raises(socket.timeout):  # nobody reads: EAGAIN, then a bounded wait
        for _ in range(1000):
            send_all(left, b"x" * 65536, 0.05)
    left.close()
    right.close()


def test_send_all_on_a_closed_socket_raises_oserror():
    from gproxy.netio import send_all

    left, right = socket.socketpair()
    left.close()
    with pytest.raises(OSError):
        send_all(left, b"data")
    right.close()


def test_recv_when_readable_with_a_deadline_reads_eof():
    from gproxy.netio import reusable_deadline

    left, right = socket.socketpair()
    deadline = reusable_deadline(5)
    gevent.spawn_later(0.02, left.close)
    assert recv_when_readable(right, 100, deadline) == b""  # the peer closed: readable, empty
    deadline.close()
    right.close()
