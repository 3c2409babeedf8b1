"""Kept-alive client connections silent for a while wait parked, without
their greenlet (gproxy.http_proxy.PARK_AFTER_MS): the next request is still
served on the same connection, and `timeout.http_keep_alive` still counts
from the end of the previous response, not from the parking."""

from __future__ import annotations

import socket
import time

from conftest import http_config

KEEP_ALIVE_SECONDS = 3.0  # longer than PARK_AFTER_MS (1 s): the connection gets parked
PARK_AFTER_SECONDS = 1.0


def _request(sock: socket.socket) -> bytes:
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length")][0])
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n")[0]


def _proxy(start_backend, start_gproxy, port) -> None:
    backend = start_backend("web")
    config = http_config([{"name": "web", "address": backend.address}], port=port)
    config["defaults"]["timeout"]["http_keep_alive"] = f"{int(KEEP_ALIVE_SECONDS * 1000)}ms"
    start_gproxy(config, [port])


def test_a_parked_connection_serves_its_next_requests(start_backend, start_gproxy, port):
    _proxy(start_backend, start_gproxy, port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert _request(sock) == b"HTTP/1.1 200 OK"
        time.sleep(PARK_AFTER_SECONDS * 1.5)  # parked meanwhile
        assert _request(sock) == b"HTTP/1.1 200 OK"
        time.sleep(PARK_AFTER_SECONDS * 1.5)  # parked again
        assert _request(sock) == b"HTTP/1.1 200 OK"
        assert _request(sock) == b"HTTP/1.1 200 OK"  # and straight away


def test_keep_alive_timeout_counts_from_the_response(start_backend, start_gproxy, port):
    _proxy(start_backend, start_gproxy, port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert _request(sock) == b"HTTP/1.1 200 OK"
        answered = time.monotonic()
        assert sock.recv(100) == b""  # closed by gproxy once the keep-alive timeout expired
        idle = time.monotonic() - answered
    # Not earlier than the timeout; not the timeout plus the time spent before parking.
    assert KEEP_ALIVE_SECONDS - 0.1 <= idle < KEEP_ALIVE_SECONDS + PARK_AFTER_SECONDS * 0.8, idle
