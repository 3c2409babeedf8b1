"""Reloads and upgrades of a real gproxy (master and workers) under real traffic.

A client loop runs keep-alive and one-request-per-connection clients against
the proxy while the master is reloaded (SIGHUP) or re-executed (SIGUSR2);
every request must succeed and no connection may be refused. The other
tests reload with a broken file, a changed server list and runtime state
set on the stats socket, and kill a worker.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import tomli_w

from conftest import http_config
from harness import http_get, wait_port

WAIT = 15.0
RELOADS = 20


# -- helpers ------------------------------------------------------------------------------------------

def wait_until(predicate, timeout: float = WAIT, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def cli(path: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode()


def worker_pid(stats: Path) -> int:
    """The pid of the worker serving the stats socket (`show info`)."""
    for line in cli(stats, "show info").splitlines():
        if line.startswith("Pid: "):
            return int(line.split()[1])
    raise AssertionError("no Pid in show info")


def children(pid: int) -> set[int]:
    try:
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


class Load:
    """Clients hammering the proxy from threads until stopped: keep-alive ones
    (a new connection only when the proxy says `Connection: close`) and
    close ones (a connection per request). Every outcome is counted."""

    def __init__(self, port: int, keepalive: int = 2, close: int = 2):
        self.port = port
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self.backends: Counter[str] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._keepalive, daemon=True) for _ in range(keepalive)]
        self._threads += [threading.Thread(target=self._close, daemon=True) for _ in range(close)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def wait_requests(self, count: int) -> None:
        target = self.counts["ok"] + count
        wait_until(lambda: self.counts["ok"] >= target, what=f"{count} more requests")

    def _count(self, outcome: str, detail: str = "", backend: str = "") -> None:
        with self._lock:
            self.counts[outcome] += 1
            if backend:
                self.backends[backend] += 1
            if outcome != "ok" and len(self.errors) < 20:
                self.errors.append(f"{outcome}: {detail}")

    def _connect(self) -> socket.socket | None:
        try:
            return socket.create_connection(("127.0.0.1", self.port), timeout=10)
        except ConnectionRefusedError as exc:
            self._count("refused", str(exc))
        except OSError as exc:
            self._count("connect_error", repr(exc))
        return None

    def _exchange(self, sock: socket.socket, keepalive: bool) -> bool | None:
        """One request; True if the connection may be reused, None on failure."""
        connection = "keep-alive" if keepalive else "close"
        try:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: t\r\nConnection: {connection}\r\n\r\n".encode())
            status, headers = _read_response(sock)
        except (OSError, ValueError) as exc:
            self._count("failed", repr(exc))
            return None
        if status != 200:
            self._count("status", str(status))
            return None
        self._count("ok", backend=headers.get("x-backend", ""))
        return headers.get("connection", "").lower() != "close"

    def _keepalive(self) -> None:
        sock = None
        while not self._stop.is_set():
            if sock is None:
                sock = self._connect()
                if sock is None:
                    time.sleep(0.01)
                    continue
            if not self._exchange(sock, keepalive=True):
                sock.close()
                sock = None
                self._count("reconnect")
        if sock is not None:
            sock.close()

    def _close(self) -> None:
        while not self._stop.is_set():
            sock = self._connect()
            if sock is None:
                time.sleep(0.01)
                continue
            with sock:
                self._exchange(sock, keepalive=False)


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str]]:
    """Status and headers of one response with a Content-Length body (read whole)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ValueError(f"connection closed before a response ({len(data)} bytes)")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ValueError("connection closed in the body")
        body += chunk
    return status, headers


# -- fixtures -----------------------------------------------------------------------------------------

def reload_config(port: int, stats: Path, pidfile: Path, servers: list[dict], **extra) -> dict:
    config = http_config(servers, port=port)
    config["global"].update(stats_socket={"path": str(stats), "level": "admin"}, pidfile=str(pidfile),
                            hard_stop_after="5s", **extra)
    config["defaults"]["timeout"]["http_keep_alive"] = "1s"
    return config


def server(name: str, backend, **settings) -> dict:
    return {"name": name, "address": backend.address, **settings}


@pytest.fixture
def proxy(request, tmp_path, start_backend, start_gproxy, port):
    """A gproxy with two demo backends, its stats socket and pid file, and a
    way to rewrite its configuration and reload it. Parametrised indirectly,
    the parameter is its number of workers (1 by default)."""
    workers = getattr(request, "param", 1)
    a, b = start_backend("a"), start_backend("b")
    stats, pidfile = tmp_path / "admin.sock", tmp_path / "gproxy.pid"

    class Proxy:
        def __init__(self) -> None:
            self.port, self.stats, self.pidfile, self.a, self.b = port, stats, pidfile, a, b
            self.workers = workers
            self.process = start_gproxy(reload_config(port, stats, pidfile, [server("a", a), server("b", b)],
                                                      workers=workers), [port])
            wait_until(pidfile.exists, what="the pid file")  # written once the workers serve
            self.master = self.process.proc.pid
            self.reloads = 0

        def write(self, config: dict | str) -> None:
            text = config if isinstance(config, str) else tomli_w.dumps(config)
            self.process.path.write_text(text)

        def reload(self, wait: bool = True) -> None:
            self.reloads += 1
            os.kill(self.master, signal.SIGHUP)
            if wait:
                self.wait_log(f"reload complete: generation {self.reloads + 1} serving")

        def wait_log(self, text: str) -> None:
            wait_until(lambda: text in self.process.stderr(), what=repr(text))

    return Proxy()


# -- tests ----------------------------------------------------------------------------------------------

# workers = 2: each worker has its own SO_REUSEPORT sockets, kept by the master across reloads.
@pytest.mark.parametrize("proxy", [1, 2], indirect=True, ids=["1worker", "2workers"])
def test_twenty_reloads_under_load_lose_nothing(proxy):
    workers_seen = set()
    with Load(proxy.port) as load:
        load.wait_requests(50)
        for _ in range(RELOADS):
            workers_seen.add(worker_pid(proxy.stats))
            proxy.reload()
            load.wait_requests(20)  # traffic flows on the new workers before the next reload
        load.wait_requests(50)
    assert load.counts["refused"] == 0, load.errors
    assert load.counts["failed"] + load.counts["status"] + load.counts["connect_error"] == 0, load.errors
    assert load.counts["ok"] > 40 * RELOADS
    assert len(workers_seen) == RELOADS  # every reload brought a new worker
    assert alive(proxy.master)
    assert "Traceback" not in proxy.process.stderr()


def test_a_broken_configuration_is_refused_and_the_old_one_keeps_serving(proxy):
    before = worker_pid(proxy.stats)
    proxy.write('[global]\nmaxconn = "many"\n[listen.app]\nbind = ["127.0.0.1:1"]\n')
    proxy.reload(wait=False)
    proxy.wait_log("reload refused")
    assert "global.maxconn" in proxy.process.stderr()  # the reason, as `gproxy check` says it
    assert worker_pid(proxy.stats) == before  # nothing was replaced
    assert {http_get(proxy.port, "/")[1]["x-backend"][0] for _ in range(6)} == {"a", "b"}


def test_a_new_server_list_and_weight_take_effect(proxy, start_backend):
    c = start_backend("c")
    config = reload_config(proxy.port, proxy.stats, proxy.pidfile,
                           [server("b", proxy.b, weight=1), server("c", c, weight=3)])
    proxy.write(config)
    proxy.reload()
    seen = Counter(http_get(proxy.port, "/")[1]["x-backend"][0] for _ in range(40))
    assert set(seen) == {"b", "c"}
    assert seen["c"] == 3 * seen["b"]  # round-robin by the new weights


def test_drain_maint_and_weight_set_at_runtime_survive_a_reload(proxy, start_backend):
    c = start_backend("c")
    proxy.write(reload_config(proxy.port, proxy.stats, proxy.pidfile,
                              [server("a", proxy.a), server("b", proxy.b), server("c", c)]))
    proxy.reload()
    assert cli(proxy.stats, "set server app/a state drain") == "\n"
    assert cli(proxy.stats, "set server app/b state maint") == "\n"
    assert cli(proxy.stats, "set server app/c weight 7") == "\n"
    before = worker_pid(proxy.stats)
    proxy.reload()
    # The old worker closes its stats socket when the master retires it, just after the master logs
    # "reload complete": a command sent in between may still reach it.
    wait_until(lambda: worker_pid(proxy.stats) != before, what="the new worker on the stats socket")
    rows = {line.split()[3]: line.split() for line in cli(proxy.stats, "show servers state").splitlines()[2:]
            if line.strip()}
    assert rows["a"][6] == "8"  # FDRAIN
    assert rows["b"][6] == "1"  # FMAINT
    assert rows["c"][7] == "7"  # the weight set on the CLI
    assert {http_get(proxy.port, "/")[1]["x-backend"][0] for _ in range(5)} == {"c"}
    assert "server state restored: app/a: drain" in proxy.process.stderr()


@pytest.mark.parametrize("proxy", [1, 2], indirect=True, ids=["1worker", "2workers"])
def test_an_upgrade_under_load_loses_nothing_and_changes_the_master(proxy):
    assert cli(proxy.stats, "set server app/a state drain") == "\n"
    if proxy.workers > 1:  # relayed to the other worker a moment later (it must be there before the upgrade)
        wait_until(lambda: all(cli(proxy.stats, "show servers state app").splitlines()[2].split()[6] == "8"
                               for _ in range(10)), what="the drain in every worker")
    old_master = proxy.master
    with Load(proxy.port) as load:
        load.wait_requests(50)
        os.kill(old_master, signal.SIGUSR2)
        new_master = wait_until(lambda: (pid := int(proxy.pidfile.read_text())) != old_master and pid,
                                what="the new master's pid file")
        wait_until(lambda: not alive(old_master), what="the old master's exit")
        load.wait_requests(100)
    assert load.counts["refused"] == 0, load.errors
    assert load.counts["failed"] + load.counts["status"] + load.counts["connect_error"] == 0, load.errors
    assert alive(new_master) and children(new_master)
    assert worker_pid(proxy.stats) in children(new_master)
    rows = {line.split()[3]: line.split() for line in cli(proxy.stats, "show servers state").splitlines()[2:]
            if line.strip()}
    assert rows["a"][6] == "8"  # carried through the upgrade too
    # The new master reloads like the old one did.
    os.kill(new_master, signal.SIGHUP)
    proxy.wait_log(f"master {new_master}: reload complete: generation 2 serving")
    os.kill(new_master, signal.SIGTERM)
    wait_until(lambda: not alive(new_master), what="the new master's exit")
    assert not proxy.pidfile.exists() and not proxy.stats.exists()


def test_a_killed_worker_is_replaced(proxy):
    worker = worker_pid(proxy.stats)
    os.kill(worker, signal.SIGKILL)
    proxy.wait_log(f"worker {worker} exited unexpectedly (killed by SIGKILL): starting another")
    replacement = wait_until(lambda: children(proxy.master) - {worker}, what="a new worker")
    wait_until(lambda: worker_pid(proxy.stats) in replacement, what="the new worker serving")
    assert http_get(proxy.port, "/")[0] == 200


def test_sigusr1_stops_gracefully_finishing_a_request_in_flight(proxy):
    result = {}

    def slow():
        result["response"] = http_get(proxy.port, "/?sleep=0.7")

    client = threading.Thread(target=slow)
    client.start()
    time.sleep(0.2)  # the request is at the backend
    os.kill(proxy.master, signal.SIGUSR1)
    client.join(10)
    assert result["response"][0] == 200
    proxy.process.proc.wait(10)
    assert proxy.process.proc.returncode == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()


def test_workers_share_the_listeners(tmp_path, start_backend, start_gproxy, port):
    a = start_backend("a")
    stats = tmp_path / "admin.sock"
    process = start_gproxy(reload_config(port, stats, tmp_path / "g.pid", [server("a", a)], workers=3), [port])
    wait_until(lambda: len(children(process.proc.pid)) == 3, what="three workers")
    wait_port(port)
    with Load(port, keepalive=0, close=4) as load:
        load.wait_requests(300)
    assert load.counts["ok"] >= 300 and load.counts["failed"] == 0


def test_state_file_carries_runtime_state_across_a_restart(tmp_path, start_backend, start_gproxy, port):
    a, b = start_backend("a"), start_backend("b")
    stats, state = tmp_path / "admin.sock", tmp_path / "servers.state"
    config = reload_config(port, stats, tmp_path / "g.pid", [server("a", a), server("b", b)],
                           state_file=str(state))
    first = start_gproxy(config, [port])
    wait_until((tmp_path / "g.pid").exists, what="the pid file")
    assert cli(stats, "set server app/a state maint") == "\n"
    first.stop()  # SIGTERM: the master saves the state before stopping its workers
    assert " a 127.0.0.1 0 1 " in state.read_text()
    second = start_gproxy(config, [port])
    wait_until(lambda: "server state restored: app/a: maint" in second.stderr(), what="the state re-applied")
    assert {http_get(port, "/")[1]["x-backend"][0] for _ in range(4)} == {"b"}
