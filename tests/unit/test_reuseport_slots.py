"""Several workers on SO_REUSEPORT: which sockets each worker slot accepts
from (master_sockets.slot_indices), the groups SocketSet binds and keeps,
and the arbiter giving a replacement worker its predecessor's slot."""

from __future__ import annotations

import json
import os
import signal
import socket
from dataclasses import replace

import pytest

from gproxy.errors import GproxyError
from gproxy.master_sockets import SocketSet, slot_indices
from gproxy.worker import WORKER_BOOT_ERROR
from test_master import Harness, serving
from test_master_channels import free_port, two_listeners


# -- slot_indices: pure logic --------------------------------------------------------------------------

@pytest.mark.parametrize("held, workers", [(1, 1), (2, 2), (4, 4), (4, 2), (5, 2), (6, 4), (3, 1), (1, 3),
                                           (2, 3), (3, 8)])
def test_every_socket_has_a_worker_and_every_worker_a_socket(held, workers):
    slots = [slot_indices(held, workers, i) for i in range(workers)]
    assert all(slots), "a worker with nothing to accept from"
    assert set().union(*slots) == set(range(held)), "a socket nobody accepts from"


def test_one_socket_per_worker_is_one_each_in_order():
    assert [slot_indices(3, 3, i) for i in range(3)] == [(0,), (1,), (2,)]


def test_after_workers_shrank_the_sockets_are_dealt_round_robin():
    assert [slot_indices(5, 2, i) for i in range(2)] == [(0, 2, 4), (1, 3)]
    assert slot_indices(4, 1, 0) == (0, 1, 2, 3)


def test_fewer_sockets_than_workers_are_shared_without_overlap_beyond_need():
    assert [slot_indices(2, 5, i) for i in range(5)] == [(0,), (1,), (0,), (1,), (0,)]


@pytest.mark.parametrize("held, workers, index", [(0, 1, 0), (2, 2, 2), (2, 2, -1), (1, 0, 0)])
def test_impossible_slots_are_refused(held, workers, index):
    with pytest.raises(ValueError):
        slot_indices(held, workers, index)


# -- SocketSet groups: real sockets on loopback ---------------------------------------------------------

def with_workers(config, workers: int):
    return replace(config, global_=replace(config.global_, workers=workers))


def reuses_port(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT))


def accepted_per_socket(socks: list[socket.socket], connections: int, port: int) -> list[int]:
    clients = [socket.create_connection(("127.0.0.1", port), timeout=2) for _ in range(connections)]
    counts = []
    for sock in socks:
        sock.setblocking(False)
        count = 0
        while True:
            try:
                conn, _ = sock.accept()
            except BlockingIOError:
                break
            conn.close()
            count += 1
        counts.append(count)
    for client in clients:
        client.close()
    return counts


def test_one_worker_binds_one_socket_without_reuseport():
    held = SocketSet()
    port = free_port()
    held.update(two_listeners(port, free_port()))
    try:
        key = f"127.0.0.1:{port}"
        assert held.sizes()[key] == 1 and held.more == {}
        assert not reuses_port(held.tcp[key])
    finally:
        held.close_all(unlink=True)


def test_two_workers_get_a_group_of_two_and_the_kernel_spreads_connections():
    held = SocketSet()
    port = free_port()
    two = with_workers(two_listeners(port, free_port()), 2)
    held.update(two)
    try:
        key = f"127.0.0.1:{port}"
        group = held.group(key)
        assert len(group) == 2 and all(reuses_port(sock) for sock in group)
        for sock in group:
            sock.listen(64)
        counts = accepted_per_socket(group, 40, port)
        assert sum(counts) == 40 and min(counts) > 0  # 2**-39 odds of a false failure
        mine0, _, shared = held.for_worker(two, 0)
        assert mine0[key] == [group[0]] and not shared
    finally:
        held.close_all(unlink=True)


def test_growing_from_one_worker_keeps_the_first_socket_and_joins_it_to_the_group():
    held = SocketSet()
    port, other = free_port(), free_port()
    one = two_listeners(port, other)
    held.update(one)
    key = f"127.0.0.1:{port}"
    first = held.tcp[key]
    first.listen(64)
    waiting = socket.create_connection(("127.0.0.1", port), timeout=2)  # queued in the first socket
    try:
        held.update(with_workers(one, 3))
        group = held.group(key)
        assert group[0] is first and len(group) == 3
        for sock in group[1:]:
            sock.listen(64)
        counts = accepted_per_socket(group, 60, port)
        assert sum(counts) == 61 and min(counts) > 0  # the queued one was not lost
    finally:
        waiting.close()
        held.close_all(unlink=True)


def test_shrinking_keeps_every_socket_and_deals_them_to_the_remaining_workers():
    held = SocketSet()
    port = free_port()
    three = with_workers(two_listeners(port, free_port()), 3)
    held.update(three)
    key = f"127.0.0.1:{port}"
    group = held.group(key)
    one = with_workers(three, 1)
    try:
        assert held.update(one) == [] and held.prune([one]) == []
        assert held.group(key) == group  # the same three sockets, none closed
        tcp, _, shared = held.for_worker(one, 0)
        assert tcp[key] == group and not shared
    finally:
        held.close_all(unlink=True)


def test_trim_closes_what_a_rolled_back_reload_added():
    held = SocketSet()
    port = free_port()
    one = two_listeners(port, free_port())
    held.update(one)
    before = held.sizes()
    held.update(with_workers(one, 4))
    added = held.more[f"127.0.0.1:{port}"]
    assert held.trim(before) == 6  # three more on each of the two listeners
    assert held.sizes() == before and held.more == {}
    assert all(sock.fileno() == -1 for sock in added)
    held.close_all(unlink=True)


def test_a_failed_bind_undoes_the_group_growth_too():
    held = SocketSet()
    port = free_port()
    one = two_listeners(port, free_port())
    held.update(one)
    key = f"127.0.0.1:{port}"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        grown = with_workers(two_listeners(port, taken), 2)
        with pytest.raises(GproxyError):
            held.update(grown)
    assert held.sizes()[key] == 1 and held.more == {}
    assert not reuses_port(held.tcp[key])  # as it was: no other process may join it
    held.close_all(unlink=True)


def test_groups_survive_the_trip_through_the_environment():
    held = SocketSet()
    port = free_port()
    held.update(with_workers(two_listeners(port, free_port()), 2))
    passed = json.loads(held.to_env())
    dup = {"tcp": {k: os.dup(fd) for k, fd in passed["tcp"].items()},
           "more": {k: [os.dup(fd) for fd in fds] for k, fds in passed["more"].items()},
           "unix": {k: os.dup(fd) for k, fd in passed["unix"].items()}}
    adopted = SocketSet.from_env(json.dumps(dup))
    try:
        assert adopted.sizes() == held.sizes()
        key = f"127.0.0.1:{port}"
        assert [s.getsockname() for s in adopted.group(key)] == [s.getsockname() for s in held.group(key)]
        # A master that predates the groups passes no "more": still understood.
        older = SocketSet.from_env(json.dumps({"tcp": {key: os.dup(passed["tcp"][key])}, "unix": {}}))
        assert older.sizes() == {key: 1}
        older.close_all(unlink=False)
    finally:
        adopted.close_all(unlink=False)
        held.close_all(unlink=True)


def test_more_sockets_for_an_unknown_listener_are_refused():
    with pytest.raises(GproxyError):
        SocketSet.from_env(json.dumps({"tcp": {}, "more": {"127.0.0.1:80": [3]}}))


# -- the arbiter: slots survive a worker's death ----------------------------------------------------------

def test_a_replacement_worker_takes_the_slot_of_the_one_that_died():
    h = Harness(workers=3)
    h.turn()
    h.ready(101, 102, 103)
    slots = {pid: w.index for pid, w in h.arbiter.workers.items()}
    assert sorted(slots.values()) == [0, 1, 2]
    dead = next(pid for pid, index in slots.items() if index == 1)
    h.exit(dead, -signal.SIGKILL)
    [new] = [pid for pid in h.arbiter.workers if pid not in slots]
    assert h.arbiter.workers[new].index == 1  # not 2: slot 1's sockets would have nobody
    assert h.spawner.spawned[-1][0] == new


def test_a_rolled_back_reload_trims_the_groups_to_what_the_old_workers_serve():
    h = Harness()
    h.turn()
    serving(h)
    started_with = dict(h.arbiter.current.sockets)
    h.signal(signal.SIGHUP)
    [new] = h.pids(generation=2)
    assert h.arbiter.current.sockets != started_with  # the fake's groups grew
    h.exit(new, WORKER_BOOT_ERROR)
    assert h.sockets.trimmed == [started_with]
    assert h.sockets.pruned[-1] == [h.arbiter.current.config]
