"""Pooled server connections through a real gproxy: an idle connection the
server closes, or on which it sends a stray answer before closing (a 408 on
its own idle timeout), leaves the pool; the next request goes out on a fresh
connection and gets its own answer, even with `retries = 0`."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from conftest import http_config
from harness import free_port

IDLE_CLOSE_SECONDS = 0.1  # the backend drops a kept-alive connection after this long
STRAY_408 = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class ClosingBackend:
    """Answers each request `200 conn-<n>` (n counts connections), keeps the
    connection, and after IDLE_CLOSE_SECONDS of silence closes it, first
    sending a stray 408 when `stray` is set."""

    def __init__(self, stray: bool):
        self.stray = stray
        self.listener = socket.create_server(("127.0.0.1", free_port()))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        buf = b""
        with conn:
            while True:
                conn.settimeout(IDLE_CLOSE_SECONDS)
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    if self.stray:
                        conn.sendall(STRAY_408)
                    return
                if not data:
                    return
                buf += data
                while b"\r\n\r\n" in buf:
                    _, _, buf = buf.partition(b"\r\n\r\n")
                    body = b"conn-%d" % number
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    def close(self) -> None:
        self.stopped = True
        self.listener.close()


def _get(port: int) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@pytest.mark.parametrize("stray", [False, True], ids=["silent-close", "stray-408"])
def test_a_connection_the_server_dropped_is_not_reused(start_gproxy, port, stray):
    backend = ClosingBackend(stray)
    try:
        config = http_config([{"name": "s1", "address": f"127.0.0.1:{backend.port}"}], port=port)
        config["defaults"]["retries"] = 0  # no retry budget to hide a bad reuse
        start_gproxy(config, [port])
        assert _get(port) == (200, b"conn-1")
        assert _get(port) == (200, b"conn-1")  # reused while fresh
        time.sleep(IDLE_CLOSE_SECONDS * 4)  # the server drops it (after a 408 with `stray`)
        assert _get(port) == (200, b"conn-2")
        assert _get(port) == (200, b"conn-2")
        assert backend.connections == 2
    finally:
        backend.close()
