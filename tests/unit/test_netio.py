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
