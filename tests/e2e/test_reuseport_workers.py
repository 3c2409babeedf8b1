"""Several workers on SO_REUSEPORT, with a real gproxy: both workers take
connections (told apart by the pid in their syslog lines), a worker's
replacement serves its slot, and a reload that lowers `workers` leaves no
listening socket without a worker (a request that reaches an orphaned
socket would hang: every request below has a short timeout)."""

from __future__ import annotations

import os
import re
import signal
import socket
from collections import Counter

import tomli_w

from harness import http_get, wait_port
from test_reload import Load, children, reload_config, server, wait_until

REQUESTS = 120  # connection per request: the odds that one worker gets none are 2**-119
REQUEST_TIMEOUT = 3.0
PID_RE = re.compile(r"gproxy\[(\d+)\]: \S+ \[")  # an access log line (httplog), not a server message


def logged_requests(syslog, port: int, count: int, pattern: re.Pattern) -> list[re.Match]:
    """Make `count` requests, each on its own connection; return the matches
    of `pattern` (an access log line) in what was logged for them. Call it
    once the workers to count are the only ones alive: what older ones
    logged is read (and skipped) first."""
    seen = len(syslog.collect(0.1))
    for _ in range(count):
        status, headers, _ = http_get(port, "/", timeout=REQUEST_TIMEOUT)
        assert status == 200, headers
    wait_until(lambda: len([line for line in syslog.collect(0.05)[seen:] if pattern.search(line)]) >= count,
               what=f"{count} access log lines")
    return [m for line in syslog.lines[seen:] if (m := pattern.search(line))]


def served_by(syslog, port: int, count: int) -> Counter[int]:
    """The pids of the workers that logged `count` requests (logged_requests)."""
    return Counter(int(m.group(1)) for m in logged_requests(syslog, port, count, PID_RE))


def listening_inodes(port: int) -> set[int]:
    """Inodes of the sockets listening on 127.0.0.1:`port` (/proc/net/tcp, state 0A)."""
    found = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
            found.add(int(fields[9]))
    return found


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def start(tmp_path, start_backend, start_gproxy, syslog, port, workers: int):
    a = start_backend("a")
    config = reload_config(port, tmp_path / "admin.sock", tmp_path / "g.pid", [server("a", a)], workers=workers)
    config["global"]["log"] = [{"target": syslog.target, "facility": "local0"}]
    config["defaults"]["log"] = "global"
    config["defaults"]["httplog"] = True
    process = start_gproxy(config, [port])
    wait_until(lambda: (tmp_path / "g.pid").exists(), what="the pid file")
    wait_until(lambda: len(children(process.proc.pid)) == workers, what=f"{workers} workers")
    return process, config


def test_two_workers_both_take_connections(tmp_path, start_backend, start_gproxy, syslog, port):
    process, _ = start(tmp_path, start_backend, start_gproxy, syslog, port, 2)
    workers = children(process.proc.pid)
    # Two listening sockets on the port (one SO_REUSEPORT group), one in each worker.
    group = listening_inodes(port)
    assert len(group) == 2
    assert sorted(len(socket_inodes(pid) & group) for pid in workers) == [1, 1]
    assert set.union(*(socket_inodes(pid) & group for pid in workers)) == group
    pids = served_by(syslog, port, REQUESTS)
    assert set(pids) == workers, pids  # the kernel gave each socket its share
    assert "Traceback" not in process.stderr()


def test_a_replaced_worker_takes_over_its_slot(tmp_path, start_backend, start_gproxy, syslog, port):
    process, _ = start(tmp_path, start_backend, start_gproxy, syslog, port, 2)
    first = min(children(process.proc.pid))  # slot 0: spawned first
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: len(children(process.proc.pid) - {first}) == 2, what="a replacement worker")
    replacement = children(process.proc.pid)
    wait_until(lambda: "exited unexpectedly" in process.stderr(), what="the master noticed")
    wait_port(port)
    # None reaches slot 0's socket without a worker behind it (it would time out).
    assert set(served_by(syslog, port, REQUESTS)) == replacement


def test_a_reload_to_fewer_workers_under_load_loses_nothing(tmp_path, start_backend, start_gproxy, syslog, port):
    process, config = start(tmp_path, start_backend, start_gproxy, syslog, port, 3)
    with Load(port) as load:
        load.wait_requests(50)
        config["global"]["workers"] = 1
        process.path.write_text(tomli_w.dumps(config))
        os.kill(process.proc.pid, signal.SIGHUP)
        wait_until(lambda: "reload complete: generation 2 serving" in process.stderr(), what="the reload")
        load.wait_requests(50)
    assert load.counts["refused"] == 0, load.errors
    assert load.counts["failed"] + load.counts["status"] + load.counts["connect_error"] == 0, load.errors
    wait_until(lambda: len(children(process.proc.pid)) == 1, what="one worker left")
    [only] = children(process.proc.pid)
    assert set(served_by(syslog, port, REQUESTS)) == {only}  # it serves the three sockets
    # And back up: the kept sockets are reused, a fourth one is bound.
    config["global"]["workers"] = 4
    process.path.write_text(tomli_w.dumps(config))
    os.kill(process.proc.pid, signal.SIGHUP)
    wait_until(lambda: "reload complete: generation 3 serving" in process.stderr(), what="the second reload")
    wait_until(lambda: len(children(process.proc.pid)) == 4, what="four workers")
    assert set(served_by(syslog, port, REQUESTS)) == children(process.proc.pid)
    assert "Traceback" not in process.stderr()


def test_one_worker_binds_without_reuseport(tmp_path, start_backend, start_gproxy, syslog, port):
    """workers = 1 as before: another process cannot bind the same port."""
    start(tmp_path, start_backend, start_gproxy, syslog, port, 1)
    with socket.socket() as intruder:
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            intruder.bind(("127.0.0.1", port))
        except OSError:
            return
    raise AssertionError("a second SO_REUSEPORT socket could bind gproxy's port with workers = 1")



def test_an_upgrade_hands_the_same_groups_to_the_new_master(tmp_path, start_backend, start_gproxy, syslog, port):
    process, _ = start(tmp_path, start_backend, start_gproxy, syslog, port, 2)
    old_master = process.proc.pid
    group = listening_inodes(port)
    assert len(group) == 2
    with Load(port) as load:
        load.wait_requests(30)
        os.kill(old_master, signal.SIGUSR2)
        new_master = wait_until(lambda: (pid := int((tmp_path / "g.pid").read_text())) != old_master and pid,
                                what="the new master's pid file")
        wait_until(lambda: not children(old_master), what="the old workers' exit")
        load.wait_requests(30)
    assert load.counts["refused"] == 0, load.errors
    assert load.counts["failed"] + load.counts["status"] + load.counts["connect_error"] == 0, load.errors
    assert listening_inodes(port) == group  # the very same sockets: nothing re-bound, nothing orphaned
    workers = children(new_master)
    assert len(workers) == 2
    assert sorted(len(socket_inodes(pid) & group) for pid in workers) == [1, 1]
    assert set(served_by(syslog, port, REQUESTS)) == workers
