"""Faults under load (loopback part): clients keep sending while servers fail.

A load driver (threads on raw sockets, a request every few ms each) runs for
the whole test; each test injects one fault and checks what the clients saw.
Failed requests and the time to recovery are printed (pytest -s) and kept
in docs/reliability.md; assertions are on behaviour: which requests may fail
(only those in flight at the fault) and that service resumes.
"""

from __future__ import annotations

import socket
import threading
import time

from conftest import http_config
from harness import http_get, recv_all

CLIENTS = 4  # concurrent load threads


class Load:
    """CLIENTS threads sending GET / in a loop; every outcome timestamped."""

    def __init__(self, port: int):
        self.port = port
        self.outcomes: list[tuple[float, float, object, str | None]] = []  # start, end, status, server
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                status, headers, _ = http_get(self.port, "/", timeout=10)
                server = (headers.get("x-backend") or [None])[0]
            except OSError as exc:
                status, server = repr(exc), None
            with self._lock:
                self.outcomes.append((start, time.monotonic(), status, server))
            self._stop.wait(0.005)

    def __enter__(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(20)

    def wait_count(self, n: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.outcomes) < n and time.monotonic() < deadline:
            time.sleep(0.02)

    def failures(self) -> list:
        return [o for o in self.outcomes if o[2] != 200]


class SwitchableServer:
    """Answers 200 with `x-backend: <name>` until `hang()`; then accepts and never answers."""

    def __init__(self, name: str):
        self.name = name
        self.hung = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        body = f"hello from {self.name}\n".encode()
        answer = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nx-backend: %s\r\n\r\n" % (len(body), self.name.encode())
                  + body)
        buf = b""
        conn.settimeout(30)
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                buf += data
                while b"\r\n\r\n" in buf:
                    _, buf = buf.split(b"\r\n\r\n", 1)
                    if self.hung.is_set():
                        self._held.append(conn)  # accepted and read, never answered
                        return
                    conn.sendall(answer)
        except OSError:
            pass
        conn.close()

    def hang(self) -> None:
        self.hung.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()


def server_status(sock_path: str, server: str) -> str:
    """The status column of `show stat` for one server (the syslog receiver
    cannot be used under load: traffic lines never let it time out)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(sock_path)
        sock.sendall(b"show stat\n")
        lines = [line for line in recv_all(sock).decode().splitlines() if line.strip()]
    names = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(names, line.split(","))) for line in lines[1:]]
    return next(row["status"] for row in rows if row["svname"] == server)


def wait_status(sock_path: str, server: str, prefix: str, timeout: float = 20) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server_status(sock_path, server).startswith(prefix):
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"{server} not {prefix} within {timeout}s")


def _checked(name: str, address: str, **extra) -> dict:
    return {"name": name, "address": address, "check": True, "inter": "200ms", "rise": 2, "fall": 2, **extra}


def test_hung_server_costs_only_its_in_flight_requests(start_gproxy, port, tmp_path):
    good, bad = SwitchableServer("good"), SwitchableServer("bad")
    try:
        config = http_config([_checked("good", good.address), _checked("bad", bad.address)], port=port,
                             balance="roundrobin", httpchk={"method": "OPTIONS", "path": "/"})
        sock_path = str(tmp_path / "admin.sock")
        config["global"]["stats_socket"] = {"path": sock_path, "level": "admin"}
        config["defaults"]["timeout"].update({"server": "1s", "check": "300ms"})
        start_gproxy(config, [port])
        with Load(port) as load:
            load.wait_count(100)
            hung_at = time.monotonic()
            bad.hang()
            down_at = wait_status(sock_path, "bad", "DOWN")
            after_down = len(load.outcomes)
            load.wait_count(after_down + 300)
        failures = load.failures()
        # Only requests sent to the hung server before it was marked DOWN
        # fail, each after timeout server, with 504; none started after DOWN.
        assert all(f[2] == 504 for f in failures), failures
        assert all(f[0] < down_at for f in failures), (down_at, failures)
        late = [o for o in load.outcomes if o[0] > down_at + 0.05]
        assert late and all(o[2] == 200 and o[3] == "good" for o in late)
        print(f"\nhung server: {len(failures)} of {len(load.outcomes)} requests failed (504 after timeout server 1s); "
              f"marked DOWN {down_at - hung_at:.2f}s after it hung")
    finally:
        good.close()
        bad.close()


def test_all_active_servers_down_backup_serves(start_backend, start_gproxy, port, tmp_path):
    a, b, spare = start_backend("a"), start_backend("b"), start_backend("spare")
    config = http_config([_checked("a", a.address), _checked("b", b.address),
                          _checked("spare", spare.address, backup=True)], port=port, balance="roundrobin")
    sock_path = str(tmp_path / "admin.sock")
    config["global"]["stats_socket"] = {"path": sock_path, "level": "admin"}
    start_gproxy(config, [port])
    with Load(port) as load:
        load.wait_count(100)
        killed_at = time.monotonic()
        a.kill()
        b.kill()
        a_down = wait_status(sock_path, "a", "DOWN")
        b_down = wait_status(sock_path, "b", "DOWN")
        load.wait_count(len(load.outcomes) + 300)
    failures = load.failures()
    down_at = max(a_down, b_down)
    first_spare = min((o[1] for o in load.outcomes if o[3] == "spare"), default=None)
    # Until the checks mark both actives DOWN (fall 2 x inter 200ms) the
    # backup is not eligible, as in HAProxy: requests in that window fail
    # fast with 503 once retries and redispatch found no active server up.
    # After it, every request is served by the backup.
    assert all(f[2] == 503 and f[0] < down_at for f in failures), failures
    late = [o for o in load.outcomes if o[0] > down_at + 0.05]
    assert late and all(o[2] == 200 and o[3] == "spare" for o in late)
    print(f"\nall active servers killed: {len(failures)} of {len(load.outcomes)} requests failed (503), all in the "
          f"{down_at - killed_at:.2f}s before the checks marked both DOWN; the backup served "
          f"{first_spare - killed_at:.2f}s after the kill")
