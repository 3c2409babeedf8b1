"""checks.statesock against real unix sockets: answers, EOF, one-line mode, and every failure as words."""

from __future__ import annotations

import errno
import os
import socket
import threading
from pathlib import Path
from typing import Callable

import pytest

from checks import statesock
from checks.statesock import SocketQueryError

Handler = Callable[[socket.socket, bytes], None]


class FakeSocketServer:
    """A unix socket in a thread that answers each connection with `handler(conn, request)`.

    `answers` maps a request line (without its newline) to the bytes sent back
    before closing, like HAProxy's non-interactive runtime API. Shared by the
    other test_check_* files.
    """

    def __init__(self, path: Path, answers: dict[str, bytes] | None = None, handler: Handler | None = None):
        self.path = str(path)
        self.answers = dict(answers or {})
        self.handler = handler or self._answer
        self.requests: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _answer(self, conn: socket.socket, request: bytes) -> None:
        line = request.split(b"\n", 1)[0].decode()
        conn.sendall(self.answers.get(line, b"Unknown command.\n\n"))

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    request = conn.recv(65536)
                    self.requests.append(request)
                    self.handler(conn, request)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() at once
        except OSError:
            pass
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def server_factory(tmp_path):
    servers: list[FakeSocketServer] = []

    def make(name: str = "s.sock", **kwargs) -> FakeSocketServer:
        server = FakeSocketServer(tmp_path / name, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_reads_to_eof(server_factory):
    big = b"x" * 300_000 + b"\n\n"
    server = server_factory(answers={"show stat": big})
    assert statesock.query(server.path, b"show stat\n", timeout=2) == big
    assert server.requests == [b"show stat\n"]


def test_one_line_mode_stops_at_newline_even_if_the_peer_keeps_the_connection(server_factory):
    def answer_then_linger(conn, request):
        conn.sendall(b'{"a": 1}\n{"ignored": true}')
        threading.Event().wait(0.4)

    server = server_factory(handler=answer_then_linger)
    assert statesock.query(server.path, b'{"cmd": "status"}\n', timeout=3, one_line=True) == b'{"a": 1}'


def test_missing_socket(tmp_path):
    with pytest.raises(SocketQueryError, match=r"nope\.sock: no such socket \(is the daemon running"):
        statesock.query(str(tmp_path / "nope.sock"), b"x\n", timeout=1)


def test_refused_when_nobody_listens(tmp_path):
    path = tmp_path / "stale.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()  # the file stays, nobody listens: a daemon that died
    with pytest.raises(SocketQueryError, match="connection refused"):
        statesock.query(str(path), b"x\n", timeout=1)


def test_not_a_socket(tmp_path):
    path = tmp_path / "plain"
    path.write_text("hello")
    with pytest.raises(SocketQueryError, match="connection refused|not a socket"):
        statesock.query(str(path), b"x\n", timeout=1)


def test_permission_denied_is_explained(monkeypatch, tmp_path):
    # Tests run as root, whom file modes do not stop: make connect() fail as it would for `nagios`.
    def deny(self, address):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(socket.socket, "connect", deny)
    with pytest.raises(SocketQueryError, match="permission denied .*plugin's user"):
        statesock.query(str(tmp_path / "admin.sock"), b"x\n", timeout=1)


def test_silent_daemon_times_out(server_factory):
    gate = threading.Event()
    server = server_factory(handler=lambda conn, request: gate.wait(2))
    try:
        with pytest.raises(SocketQueryError, match=r"no complete answer within 0\.2s"):
            statesock.query(server.path, b"show stat\n", timeout=0.2)
    finally:
        gate.set()


def test_answer_size_is_bounded(server_factory):
    server = server_factory(handler=lambda conn, request: conn.sendall(b"y" * 5000))
    with pytest.raises(SocketQueryError, match="larger than 1000 bytes"):
        statesock.query(server.path, b"x\n", timeout=2, limit=1000)


def test_tcp_address(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(100)
            conn.sendall(b"Name: HAProxy\n\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert statesock.query(f"127.0.0.1:{port}", b"show info\n", timeout=2) == b"Name: HAProxy\n\n"
    finally:
        thread.join(2)
        listener.close()


def test_bad_tcp_port():
    with pytest.raises(SocketQueryError, match="bad address"):
        statesock.query("localhost:http", b"x\n", timeout=1)
