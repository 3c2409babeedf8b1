"""gproxy.netio.Socket: gevent's socket with its write watcher made on first
use and a direct close; everything a connection does with it still works."""

from __future__ import annotations

import os
import socket as stdsocket

import gevent
import pytest
from gevent import socket

from gproxy.netio import Socket, _WRITE_WATCHER, recv_when_readable, send_all


def _pair() -> tuple[Socket, Socket]:
    left, right = stdsocket.socketpair()
    return (Socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM, 0, left.detach()),
            Socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM, 0, right.detach()))


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_no_write_watcher_until_one_is_needed():
    left, right = _pair()
    assert _WRITE_WATCHER.__get__(left) is None
    assert left._read_event is not None
    watcher = left._write_event
    assert watcher is not None and watcher.fd == left.fileno()
    assert left._write_event is watcher  # made once
    left.close()
    right.close()


def test_send_and_receive_through_gevent_and_the_fast_paths():
    left, right = _pair()
    left.settimeout(5)
    right.settimeout(5)
    left.sendall(b"ping")
    assert right.recv(10) == b"ping"
    send_all(right, b"pong")
    assert recv_when_readable(left, 10) == b"pong"
    assert _WRITE_WATCHER.__get__(left) is None  # nothing had to wait for writability
    left.close()
    right.close()


def test_a_full_send_buffer_waits_on_the_write_watcher():
    left, right = _pair()
    left.settimeout(5)
    right.settimeout(5)
    payload = b"x" * (4 << 20)  # more than the socket buffers: sendall must wait
    reader = gevent.spawn(lambda: b"".join(iter(lambda: right.recv(1 << 16), b"")))
    left.sendall(payload)
    assert _WRITE_WATCHER.__get__(left) is not None
    left.close()
    assert reader.get(timeout=5) == payload
    right.close()


def test_close_releases_the_descriptor_and_the_watchers():
    left, right = _pair()
    fd = left.fileno()
    left._write_event  # made, so that both are dropped
    left.close()
    assert left.closed
    assert not _fd_open(fd)
    assert left.fileno() == -1
    assert left._read_event is None and _WRITE_WATCHER.__get__(left) is None
    assert left._write_event is None  # not made again on a closed socket
    with pytest.raises(OSError):
        left.send(b"x")
    left.close()  # twice is fine, as with gevent's
    assert right.recv(10) == b""  # the peer sees EOF
    right.close()


def test_close_while_a_greenlet_waits_wakes_it():
    left, right = _pair()
    right.settimeout(5)
    reader = gevent.spawn(right.recv, 10)
    gevent.sleep(0.01)  # the reader waits on the read watcher
    right.close()  # gevent's way: the waiter is told
    with pytest.raises(OSError):
        reader.get(timeout=5)
    assert right.fileno() == -1
    left.close()


def test_detach_keeps_the_descriptor():
    left, right = _pair()
    fd = left.detach()
    assert _fd_open(fd)
    assert left.fileno() == -1
    plain = socket.socket(fileno=fd)
    plain.sendall(b"after detach")
    right.settimeout(5)
    assert right.recv(100) == b"after detach"
    plain.close()
    right.close()


def test_a_new_tcp_socket_connects_with_gevent():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    sock = Socket(stdsocket.AF_INET, stdsocket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(server.getsockname())  # gevent's connect: may wait for writability
    peer, _ = server.accept()
    peer.sendall(b"hello")
    assert sock.recv(10) == b"hello"
    sock.close()
    peer.close()
    server.close()
