"""Slow and resource attacks on a real gproxy: each is bounded, others are served.

Every attack runs while a normal client keeps sending requests; the tests
assert behaviour (the attacker is cut off with the right answer, the normal
client is served every time, memory does not follow the attack's size), not
timings. The figures (RSS per idle connection, bytes a never-reading client
pinned) are printed with `-s` and kept in docs/reliability.md.
"""

from __future__ import annotations

import resource
import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import http_config
from harness import http_get, recv_all

IDLE_CONNECTIONS = 2000  # the machine allows ~20000 descriptors per process
BIG_RESPONSE = 64 * 1024 * 1024  # what a never-reading client asks for
RSS_BOUND_BIG = 16 * 1024 * 1024  # gproxy may not grow anywhere near the response's size
RSS_BOUND_PER_CONN = 64 * 1024  # generous: a greenlet, a socket and a parser per idle connection
SLOWLORIS_CLIENTS = 20


def rss(pid: int) -> int:
    """Resident bytes of `pid` and its descendants (a master and its workers)."""
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except FileNotFoundError:
            continue
        total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
        for task in Path(f"/proc/{p}/task").iterdir():
            children = (task / "children").read_text().split()
            pids.extend(int(c) for c in children)
    return total


class Served:
    """A normal client sending requests in a loop for the whole attack."""

    def __init__(self, port: int):
        self.port = port
        self.results: list[int | str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.results.append(http_get(self.port, "/", timeout=5)[0])
            except OSError as exc:
                self.results.append(repr(exc))
            self._stop.wait(0.05)

    def __enter__(self) -> "Served":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def assert_served(self, at_least: int = 3) -> None:
        assert len(self.results) >= at_least, self.results
        assert set(self.results) == {200}, self.results


@pytest.fixture
def proxy(start_backend, start_gproxy, port):
    """gproxy in front of the demo backend: client 1s, http_request 1s."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 3 * IDLE_CONNECTIONS + 1000)
    if soft < want:  # gproxy inherits the limit: room for both ends of every connection
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    backend = start_backend("web")
    config = http_config([{"name": "web", "address": backend.address}], port=port)
    config["global"]["maxconn"] = 3 * IDLE_CONNECTIONS
    config["defaults"]["timeout"].update({"client": "1s", "http_request": "1s"})
    proc = start_gproxy(config, [port])
    http_get(port, "/")  # warmed up: first-request allocations are not counted as attack
    return port, proc


def test_slowloris_gets_408_and_others_are_served(proxy):
    port, _ = proxy
    head = b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X-Pad: " + b"a" * 100 + b"\r\n\r\n"
    outcomes: list[tuple[int, bytes]] = []

    def slowloris() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sent = 0
            try:
                for i in range(len(head)):
                    sock.sendall(head[i : i + 1])  # one byte per 100 ms
                    sent += 1
                    time.sleep(0.1)
            except OSError:
                pass  # gproxy closed: the answer is still readable
            outcomes.append((sent, recv_all(sock)))

    threads = [threading.Thread(target=slowloris) for _ in range(SLOWLORIS_CLIENTS)]
    with Served(port) as served:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    served.assert_served()
    assert len(outcomes) == SLOWLORIS_CLIENTS
    for sent, answer in outcomes:
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:60]
        assert sent < len(head)  # cut off before the head was complete


def test_stalled_body_is_cut_and_a_slow_one_is_served(proxy):
    port, _ = proxy
    with Served(port) as served:
        # A body that stops coming: cut after timeout.client of silence.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
            stalled = recv_all(sock)
        # A body trickling in (a byte per 100 ms, inside timeout.client) is a slow client, not an attack.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 12\r\n\r\n")
            for byte in b"hello, world":
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
            slow = recv_all(sock)
    served.assert_served()
    assert b"HTTP/1.1 200" not in stalled  # the request never reached completion
    assert slow.startswith(b"HTTP/1.1 200 "), slow[:60]


def test_client_that_never_reads_is_bounded_by_timeout_client(proxy):
    port, proc = proxy
    before = rss(proc.proc.pid)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    with Served(port) as served:
        sock.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" % BIG_RESPONSE)
        time.sleep(2.5)  # never read for longer than timeout.client (1s)
        peak = rss(proc.proc.pid)
    received = recv_all(sock)  # what was in flight, then gproxy's close
    sock.close()
    served.assert_served()
    assert received.startswith(b"HTTP/1.1 200 ")
    assert len(received) < BIG_RESPONSE  # cut off, not delivered in full
    assert peak - before < RSS_BOUND_BIG, (before, peak)
    print(f"\nnever-reading client: got {len(received)} of {BIG_RESPONSE} bytes; "
          f"gproxy RSS +{(peak - before) // 1024} KiB")


def test_idle_connections_cost_bounded_memory_and_are_closed(proxy):
    port, proc = proxy
    before = rss(proc.proc.pid)
    socks = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        with Served(port) as served:
            time.sleep(0.3)  # every connection accepted and parked in its read
            during = rss(proc.proc.pid)
        served.assert_served(at_least=1)
        per_conn = (during - before) / IDLE_CONNECTIONS
        print(f"\n{IDLE_CONNECTIONS} idle connections: gproxy RSS {before // 1024} -> {during // 1024} KiB, "
              f"{per_conn / 1024:.1f} KiB per connection")
        assert per_conn < RSS_BOUND_PER_CONN
        # timeout http_request (1s) closes every one of them.
        for sock in socks:
            sock.settimeout(10)
            assert sock.recv(1) == b""
    finally:
        for sock in socks:
            sock.close()
    assert http_get(port, "/")[0] == 200


def _show_stat(path: str) -> list[dict[str, str]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(b"show stat\n")
        text = recv_all(sock).decode()
    lines = [line for line in text.splitlines() if line.strip()]
    names = lines[0].lstrip("# ").split(",")
    return [dict(zip(names, line.split(","))) for line in lines[1:]]


def test_limit_refusals_are_logged_and_counted(start_backend, start_gproxy, port, syslog, tmp_path):
    backend = start_backend("web")
    config = http_config([{"name": "web", "address": backend.address}], port=port, log_target=syslog.target)
    sock_path = str(tmp_path / "admin.sock")
    config["global"]["stats_socket"] = {"path": sock_path, "level": "admin"}
    start_gproxy(config, [port])
    refusals = {
        414: b"GET /" + b"u" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n",  # the URI length limit (8192)
        431: b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X-H: v\r\n" * 101 + b"\r\n",  # tune.maxhdr (101)
    }
    for status, raw in refusals.items():
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(raw)
            assert recv_all(sock).startswith(b"HTTP/1.1 %d " % status)
        syslog.wait_for(rf" {status} .*<BADREQ>")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # tune.max_header_bytes (16384)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 17000 + b"\r\n\r\n")
        assert recv_all(sock).startswith(b"HTTP/1.1 431 ")
    assert http_get(port, "/")[0] == 200
    frontend = next(row for row in _show_stat(sock_path) if row["svname"] == "FRONTEND")
    assert int(frontend["ereq"]) == 3
    assert int(frontend["hrsp_4xx"]) == 3
