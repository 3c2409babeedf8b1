"""netio.quick_ack: a reused server connection ACKs at once (no 40 ms
delayed ACK holding a Nagle server's response body)."""

import socket

from gproxy.netio import _QUICKACK, quick_ack


def test_quick_ack_sets_the_option_on_a_tcp_socket():
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    try:
        client.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 0)
        assert client.getsockopt(socket.IPPROTO_TCP, _QUICKACK) == 0
        quick_ack(client)
        assert client.getsockopt(socket.IPPROTO_TCP, _QUICKACK) == 1
    finally:
        for sock in (client, server, listener):
            sock.close()


def test_quick_ack_ignores_sockets_without_tcp():
    left, right = socket.socketpair()
    try:
        quick_ack(left)  # AF_UNIX: no TCP options; nothing raised
        left.close()
        quick_ack(left)  # closed: nothing raised either
    finally:
        right.close()
