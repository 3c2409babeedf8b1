"""The master's plumbing: the control framing (fed in random chunks), the
socket inventory, the pid file, privileges and sd_notify."""

from __future__ import annotations

import json
import os
import random
import socket

import pytest

from gproxy import control
from gproxy.config.loader import load_string
from gproxy.config.model import GlobalConfig
from gproxy.daemon import (
    PrivilegeError,
    check_privileges,
    read_pidfile,
    remove_pidfile,
    resolve_credentials,
    sd_notify,
    write_pidfile,
)
from gproxy.listeners import BindError
from gproxy.master_sockets import SocketSet, tcp_key


def chunks(data: bytes, rng: random.Random) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 7)
        out.append(data[i:i + n])
        i += n
    return out


# -- control framing ---------------------------------------------------------------------------------

def test_requests_come_out_whole_whatever_the_chunks():
    data = control.encode_request("show servers state") + control.encode_request("show info")
    for seed in range(20):
        reader = control.RequestReader()
        lines = [line for part in chunks(data, random.Random(seed)) for line in reader.feed(part)]
        assert lines == ["show servers state", "show info"]


def test_an_answer_may_hold_empty_lines_and_arrives_whole():
    text = "1\n# header\n\n2 app 1 a\n\n"
    data = control.encode_answer(text)
    for seed in range(20):
        reader = control.AnswerReader()
        answers = [a for part in chunks(data, random.Random(seed)) if (a := reader.feed(part)) is not None]
        assert answers == [text]


def test_broken_framing_is_a_channel_error():
    with pytest.raises(control.ChannelError):
        control.AnswerReader().feed(b"12x\nabc")
    with pytest.raises(control.ChannelError):
        control.AnswerReader().feed(b"3\nabcd")
    with pytest.raises(control.ChannelError):
        control.RequestReader().feed(b"x" * control.MAX_REQUEST)
    with pytest.raises(ValueError):
        control.encode_request("two\nlines")


def test_beats_and_ready():
    assert control.read_beats(b"R..") == (True, 2)
    assert control.read_beats(b"...") == (False, 3)


# -- sockets -----------------------------------------------------------------------------------------

def two_listeners(port_a: int, port_b: int, sock_path: str = ""):
    stats = f'stats_socket = {{ path = "{sock_path}" }}' if sock_path else ""
    return load_string(f"""
[global]
{stats}
[defaults]
mode = "tcp"
[listen.a]
bind = ["127.0.0.1:{port_a}"]
server = [{{ name = "s", address = "127.0.0.1:9" }}]
[listen.b]
bind = ["*:{port_b}"]
server = [{{ name = "s", address = "127.0.0.1:9" }}]
""")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_tcp_keys_name_the_address_as_bound():
    from gproxy.config.model import Address
    assert tcp_key(Address("*", 80)) == "0.0.0.0:80"
    assert tcp_key(Address("::1", 443)) == "[::1]:443"


def test_sockets_are_bound_without_listening_until_a_worker_listens():
    held = SocketSet()
    port_a = free_port()
    held.update(two_listeners(port_a, free_port()))
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port_a), timeout=1).close()
        held.tcp[f"127.0.0.1:{port_a}"].listen(8)
        socket.create_connection(("127.0.0.1", port_a), timeout=1).close()
    finally:
        held.close_all(unlink=True)


def test_update_keeps_what_is_held_binds_what_is_new_and_prune_closes_the_rest(tmp_path):
    held = SocketSet()
    a, b, c = free_port(), free_port(), free_port()
    first = two_listeners(a, b, str(tmp_path / "s.sock"))
    assert sorted(held.update(first)) == sorted([f"127.0.0.1:{a}", f"0.0.0.0:{b}", str(tmp_path / "s.sock")])
    kept = held.tcp[f"127.0.0.1:{a}"]
    second = two_listeners(a, c)
    assert held.update(second) == [f"0.0.0.0:{c}"]
    assert held.tcp[f"127.0.0.1:{a}"] is kept  # the very same socket: nothing queued is lost
    assert sorted(held.prune([second])) == sorted([f"0.0.0.0:{b}", str(tmp_path / "s.sock")])
    assert not (tmp_path / "s.sock").exists()
    tcp, unix = held.for_config(second)
    assert set(tcp) == {f"127.0.0.1:{a}", f"0.0.0.0:{c}"} and unix == {}
    held.close_all(unlink=True)


def test_a_failed_bind_undoes_the_whole_update():
    held = SocketSet()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        fresh = free_port()
        with pytest.raises(BindError):
            held.update(two_listeners(fresh, taken))
        assert held.tcp == {}
        with socket.socket() as again:
            again.bind(("127.0.0.1", fresh))  # released


def test_sockets_survive_the_trip_through_the_environment(tmp_path):
    held = SocketSet()
    held.update(two_listeners(free_port(), free_port(), str(tmp_path / "s.sock")))
    passed = json.loads(held.to_env())
    # As if exec'd: the next master gets the same sockets under fds of its own.
    text = json.dumps({kind: {key: os.dup(fd) for key, fd in socks.items()} for kind, socks in passed.items()})
    adopted = SocketSet.from_env(text)
    assert set(adopted.tcp) == set(held.tcp) and set(adopted.unix) == set(held.unix)
    for key, sock in adopted.tcp.items():
        assert sock.getsockname() == held.tcp[key].getsockname()
    adopted.close_all(unlink=False)
    assert (tmp_path / "s.sock").exists()  # a handover leaves the files to the next master
    held.close_all(unlink=True)
    assert not (tmp_path / "s.sock").exists()


# -- pid file, privileges, systemd ---------------------------------------------------------------------

def test_pidfile_round_trip_and_removal_only_by_its_owner(tmp_path):
    path = str(tmp_path / "g.pid")
    assert read_pidfile(path) is None
    write_pidfile(path, 4242)
    assert read_pidfile(path) == 4242
    remove_pidfile(path, 1)
    assert read_pidfile(path) == 4242  # another master's
    remove_pidfile(path, 4242)
    assert not os.path.exists(path)


def test_credentials_from_names_and_ids():
    nobody = resolve_credentials("nobody", None)
    assert nobody.uid == 65534 and nobody.gid == 65534 and 65534 in nobody.groups
    bare = resolve_credentials(99, 99)
    assert (bare.uid, bare.gid, bare.groups) == (99, 99, (99,))
    with pytest.raises(PrivilegeError, match="unknown user 'no-such-user'"):
        resolve_credentials("no-such-user", None)
    with pytest.raises(PrivilegeError, match="unknown group"):
        resolve_credentials(None, "no-such-group")


def test_privileges_need_root_unless_nothing_changes(tmp_path):
    asks = GlobalConfig(user=99, group=99)
    with pytest.raises(PrivilegeError, match="user 99 and group 99 need root: gproxy runs as uid 1000"):
        check_privileges(asks, euid=1000)
    assert check_privileges(asks, euid=0).uid == 99
    assert check_privileges(GlobalConfig(), euid=1000).uid is None
    with pytest.raises(PrivilegeError, match="is not a directory"):
        check_privileges(GlobalConfig(chroot=str(tmp_path / "missing")), euid=0)


def test_sd_notify_sends_one_datagram(tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        assert sd_notify("READY=1", {"NOTIFY_SOCKET": path})
        assert server.recv(100) == b"READY=1"
    assert not sd_notify("READY=1", {})
    assert not sd_notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})
