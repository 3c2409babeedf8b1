"""The stats socket server (gevent, in process): binding rules, the bounds
on each connection, and a daemon that survives bad clients."""

from __future__ import annotations

import os
import socket as stdsocket
import stat

import gevent
import pytest
from gevent import socket

from gproxy.config.model import StatsSocket
from gproxy.runtime_api.server import StatsSocketError, StatsSocketServer, bind_unix
from runtime_api_support import START, facts, golden_state

READ_LIMIT = 5.0  # seconds a test waits for an answer (never a timing assertion)


@pytest.fixture
def sock_path(tmp_path):
    return str(tmp_path / "admin.sock")


def _server(path, state=None, level="admin", timeout_ms=10_000, mode=0o600):
    spec = StatsSocket(path=path, mode=mode, level=level)
    server = StatsSocketServer(spec, state or golden_state(), lambda: START, timeout_ms, facts)
    server.start()
    return server


def _talk(path: str, data: bytes, shut: bool = False) -> bytes:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(READ_LIMIT)
    client.connect(path)
    try:
        try:
            client.sendall(data)
        except OSError:
            pass  # the server may already have closed (oversized input)
        if shut:
            client.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = client.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        client.close()


def test_bind_applies_the_mode(sock_path):
    sock = bind_unix(StatsSocket(path=sock_path, mode=0o640))
    try:
        info = os.stat(sock_path)
        assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o640
        assert not [name for name in os.listdir(os.path.dirname(sock_path)) if name.endswith(".tmp")]
    finally:
        sock.close()


def test_bind_applies_the_owner_by_name(sock_path):
    import grp
    import pwd
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    sock = bind_unix(StatsSocket(path=sock_path, user=user, group=group))
    try:
        info = os.stat(sock_path)
        assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid())
    finally:
        sock.close()


def test_a_stale_socket_file_is_replaced(sock_path):
    dead = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    dead.bind(sock_path)
    dead.close()  # the file stays, nobody listens: what a crashed daemon leaves
    server = _server(sock_path)
    try:
        assert _talk(sock_path, b"show cli level\n") == b"admin\n\n"
    finally:
        server.stop()


def test_a_socket_held_by_a_live_process_is_an_error(sock_path):
    live = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    live.bind(sock_path)
    live.listen(1)
    try:
        with pytest.raises(StatsSocketError, match="in use by a running process"):
            bind_unix(StatsSocket(path=sock_path))
    finally:
        live.close()


def test_a_regular_file_is_not_replaced(sock_path):
    with open(sock_path, "w") as handle:
        handle.write("data")
    with pytest.raises(StatsSocketError, match="not a socket"):
        bind_unix(StatsSocket(path=sock_path))
    assert open(sock_path).read() == "data"


def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(StatsSocketError, match="directory .*/missing does not exist"):
        bind_unix(StatsSocket(path=str(tmp_path / "missing" / "admin.sock")))


def test_an_unknown_owner_is_an_error(sock_path):
    with pytest.raises(StatsSocketError, match="unknown user"):
        bind_unix(StatsSocket(path=sock_path, user="no-such-user-gproxy"))


def test_level_comes_from_the_socket(sock_path):
    server = _server(sock_path, level="user")
    try:
        assert _talk(sock_path, b"show cli level\n") == b"user\n\n"
        assert _talk(sock_path, b"disable server app/web1\n") == b"Permission denied\n\n"
    finally:
        server.stop()


def test_one_mebibyte_without_newline_is_cut_off(sock_path):
    server = _server(sock_path)
    try:
        assert _talk(sock_path, b"x" * (1024 * 1024)) == b""
        assert _talk(sock_path, b"show cli level\n") == b"admin\n\n"  # still serving
    finally:
        server.stop()


def test_a_silent_client_is_disconnected_after_the_timeout(sock_path):
    server = _server(sock_path, timeout_ms=100)
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.settimeout(READ_LIMIT)
        client.connect(sock_path)
        assert client.recv(100) == b""  # closed by the server, long before READ_LIMIT
        client.close()
        assert _talk(sock_path, b"show cli level\n") == b"admin\n\n"
    finally:
        server.stop()


def test_interactive_session(sock_path):
    server = _server(sock_path)
    try:
        answer = _talk(sock_path, b"prompt\nget weight app/web1\nquit\n")
        assert answer == b"\n> 10 (initial 10)\n\n> "
    finally:
        server.stop()


class BrokenState:
    """A state whose every attribute fails: stands for a bug in a command."""

    def __getattr__(self, name):
        raise RuntimeError("boom")


def test_a_failing_command_closes_that_connection_only(sock_path, capsys):
    server = _server(sock_path, state=BrokenState())
    try:
        assert _talk(sock_path, b"show stat\n") == b""
        assert _talk(sock_path, b"show cli level\n") == b"admin\n\n"
    finally:
        server.stop()
    assert "boom" in capsys.readouterr().err


def test_concurrent_clients(sock_path):
    server = _server(sock_path)
    try:
        jobs = [gevent.spawn(_talk, sock_path, b"show stat\n") for _ in range(8)]
        gevent.joinall(jobs, timeout=READ_LIMIT)
        answers = [job.value for job in jobs]
        assert all(a.startswith(b"# pxname,") and a.endswith(b",\n\n") for a in answers)
    finally:
        server.stop()


def test_stop_removes_the_file_but_not_a_newer_one(sock_path, tmp_path):
    server = _server(sock_path)
    server.stop()
    assert not os.path.exists(sock_path)
    server = _server(sock_path)
    os.unlink(sock_path)
    newer = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    newer.bind(sock_path)  # another process took the path over
    try:
        server.stop()
        assert os.path.exists(sock_path)
    finally:
        newer.close()
