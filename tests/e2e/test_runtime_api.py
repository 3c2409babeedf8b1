"""The stats socket on a real gproxy: drain and maintenance seen by clients,
levels, counters, concurrency with traffic, bad input, `gproxy ctl`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import REPO, GproxyProcess, free_port, http_get, read_response, wait_for

WAIT = 10.0  # seconds a condition may take (never a speed assertion)


def cli(path, line: str, timeout: float = WAIT) -> str:
    """One non-interactive exchange; the answer without its final empty line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(line.encode() + b"\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    text = b"".join(chunks).decode("latin-1")
    assert text.endswith("\n"), text
    return text[:-1]


def stat_rows(path) -> dict[str, dict[str, str]]:
    lines = cli(path, "show stat").splitlines()
    names = lines[0][2:].split(",")
    return {f"{f[0]}/{f[1]}": dict(zip(names, f)) for f in (line.split(",") for line in lines[1:])}


def wait_status(path, key: str, status: str):
    return wait_for(lambda: stat_rows(path)[key]["status"] == status, f"{key} {status}")


@pytest.fixture
def cluster(start_backend, start_gproxy, tmp_path, syslog):
    """Two checked servers a and b behind cookie persistence, three sockets."""
    a, b = start_backend("a"), start_backend("b")
    port = free_port()
    sockets = {level: tmp_path / f"{level}.sock" for level in ("admin", "operator", "user")}
    config = {
        "global": {"maxconn": 1000, "stats_timeout": "1s",
                   "stats_socket": [{"path": str(p), "level": level} for level, p in sockets.items()],
                   "log": [{"target": syslog.target}]},
        "defaults": {"mode": "http", "log": "global", "httplog": True,
                     "timeout": {"connect": "1s", "client": "10s", "server": "10s"}},
        "listen": {"app": {
            "bind": [f"127.0.0.1:{port}"], "balance": "roundrobin", "httpchk": True,
            "cookie": {"name": "SRV", "mode": "insert"},
            "server": [{"name": s.name, "address": s.address, "cookie": s.name, "check": True, "inter": "200ms"}
                       for s in (a, b)],
        }},
    }
    proxy = start_gproxy(config, [port])
    wait_for(lambda: all(sock.exists() for sock in sockets.values()), "the stats sockets")
    wait_status(sockets["admin"], "app/a", "UP")
    wait_status(sockets["admin"], "app/b", "UP")
    return {"port": port, "a": a, "b": b, "proxy": proxy, "syslog": syslog, **sockets}


def served_by(port, cookie: str | None = None, path: str = "/") -> str:
    headers = {"Cookie": f"SRV={cookie}"} if cookie else None
    status, hdrs, _ = http_get(port, path, headers=headers)
    assert status == 200
    return hdrs["x-backend"][0]


def test_drain_keeps_persistent_clients_and_sends_no_new_ones(cluster):
    port, admin = cluster["port"], cluster["admin"]
    assert cli(admin, "set server app/b state drain") == ""
    assert stat_rows(admin)["app/b"]["status"] == "DRAIN"
    assert {served_by(port) for _ in range(8)} == {"a"}  # new clients: never the drained server
    assert {served_by(port, cookie="b") for _ in range(4)} == {"b"}  # persistent ones: still b
    cluster["syslog"].wait_for(r"Server app/b enters drain state\.")
    assert cli(admin, "set server app/b state ready") == ""
    wait_status(admin, "app/b", "UP")
    assert {served_by(port) for _ in range(8)} == {"a", "b"}


def test_maint_stops_all_traffic_and_checks(cluster):
    port, admin, b = cluster["port"], cluster["admin"], cluster["b"]
    assert cli(admin, "set server app/b state maint") == ""
    assert stat_rows(admin)["app/b"]["status"] == "MAINT"
    assert {served_by(port, cookie="b") for _ in range(4)} == {"a"}  # the cookie is ignored
    cluster["syslog"].wait_for(r"Server app/b is going DOWN for maintenance\.")
    checks = b.stats()["methods"].get("OPTIONS", 0)
    time.sleep(0.8)  # four check intervals: paused checks send nothing
    assert b.stats()["methods"].get("OPTIONS", 0) == checks
    assert cli(admin, "set server app/b state ready") == ""
    wait_for(lambda: b.stats()["methods"].get("OPTIONS", 0) > checks, "checks to resume")
    wait_status(admin, "app/b", "UP")


def test_an_established_slow_request_finishes_in_maint(cluster):
    port, admin = cluster["port"], cluster["admin"]
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(http_get, port, "/?sleep=1", {"Cookie": "SRV=b"})
        wait_for(lambda: stat_rows(admin)["app/b"]["scur"] == "1", "the slow request on b")
        assert cli(admin, "set server app/b state maint") == ""
        status, headers, _ = slow.result(WAIT)
    assert status == 200 and headers["x-backend"] == ["b"]


def test_shutdown_sessions_closes_what_remains(cluster):
    port, admin = cluster["port"], cluster["admin"]
    outcome: list = []

    def slow_request():
        try:
            outcome.append(http_get(port, "/?sleep=3", {"Cookie": "SRV=b"})[0])
        except OSError as exc:
            outcome.append(exc)

    client = threading.Thread(target=slow_request, daemon=True)
    client.start()
    wait_for(lambda: stat_rows(admin)["app/b"]["scur"] == "1", "the slow request on b")
    assert cli(admin, "shutdown sessions server app/b") == ""
    client.join(2.0)  # the request would take 3 s: it must end well before
    assert outcome and outcome[0] != 200


def test_commands_on_a_socket_of_too_low_a_level(cluster):
    for level in ("user", "operator"):
        path = cluster[level]
        assert cli(path, "show cli level") == level + "\n"
        assert cli(path, "set server app/b state maint") == "Permission denied\n"
        assert cli(path, "disable server app/b") == "Permission denied\n"
        assert cli(path, "set weight app/b 0") == "Permission denied\n"
    assert cli(cluster["user"], "clear counters") == "Permission denied\n"
    assert cli(cluster["user"], "show sess") == "Permission denied\n"
    assert cli(cluster["operator"], "clear counters all") == "Permission denied\n"
    row = stat_rows(cluster["admin"])["app/b"]
    assert (row["status"], row["weight"]) == ("UP", "1")
    assert stat_rows(cluster["user"])["app/b"]["addr"] == ""  # hidden below operator
    assert stat_rows(cluster["operator"])["app/b"]["addr"] == cluster["b"].address


def test_counters_cleared(cluster):
    port, admin = cluster["port"], cluster["admin"]
    for _ in range(6):
        served_by(port)
    rows = stat_rows(admin)
    assert int(rows["app/FRONTEND"]["stot"]) >= 6 and int(rows["app/a"]["stot"]) >= 3
    assert cli(cluster["operator"], "clear counters") == ""
    rows = stat_rows(admin)
    assert rows["app/a"]["smax"] == "0" and int(rows["app/a"]["stot"]) >= 3  # max values only
    assert cli(admin, "clear counters all") == ""
    rows = stat_rows(admin)
    assert rows["app/a"]["stot"] == "0" and rows["app/FRONTEND"]["stot"] in ("0", "1")
    served_by(port)
    assert int(stat_rows(admin)["app/FRONTEND"]["stot"]) >= 1  # counting goes on


def test_concurrent_show_stat_while_traffic_flows(cluster):
    port, admin = cluster["port"], cluster["admin"]
    stop = threading.Event()
    failures: list = []
    served = []

    def traffic():
        while not stop.is_set():
            try:
                status, _, _ = http_get(port, "/")
                (served if status == 200 else failures).append(status)
            except OSError as exc:
                failures.append(repr(exc))

    def stats():
        answers = 0
        while not stop.is_set():
            text = cli(admin, "show stat")
            lines = text.splitlines()
            if not (lines[0].startswith("# pxname,svname,") and len(lines) == 5
                    and all(line.endswith(",") for line in lines)):
                failures.append(text[:200])
            answers += 1
        return answers

    with ThreadPoolExecutor(8) as pool:
        clients = [pool.submit(traffic) for _ in range(4)]
        readers = [pool.submit(stats) for _ in range(4)]
        time.sleep(1.0)
        stop.set()
        answers = sum(r.result(WAIT) for r in readers)
        for c in clients:
            c.result(WAIT)
    assert not failures, failures[:5]
    assert served and answers >= 4


def test_bad_input_changes_nothing_and_harms_nothing(cluster):
    admin, port = cluster["admin"], cluster["port"]
    before = cli(admin, "show servers state").splitlines()
    assert cli(admin, "set server nosuch/b state maint") == "No such backend.\n"
    assert cli(admin, "set server app/nosuch state maint") == "No such server.\n"
    assert cli(admin, "set weight app/b 300") == "Absolute weight can only be between 0 and 256 inclusive.\n"
    assert cli(admin, "set server app/b addr 300.1.1.1") == "Invalid addr '300.1.1.1' by 'stats socket command'\n"
    assert cli(admin, "set server app/b addr 127.0.0.1 port 70000").endswith("out of range (1-65535) by "
                                                                             "'stats socket command'\n")
    assert cli(admin, "set server app/b state sleepy") == \
        "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
    # A client sending 1 MiB without a newline is cut off.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT)
        sock.connect(str(admin))
        try:
            sock.sendall(b"x" * (1024 * 1024))
        except OSError:
            pass  # already closed by gproxy: that is the point
        try:
            assert sock.recv(100) == b""
        except ConnectionResetError:
            pass
    # A silent client is dropped after stats_timeout (1s here).
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT)
        sock.connect(str(admin))
        assert sock.recv(100) == b""
    after = cli(admin, "show servers state").splitlines()
    assert _without_times(after) == _without_times(before)
    assert served_by(port) in ("a", "b")
    assert cluster["proxy"].proc.poll() is None
    assert "Traceback" not in cluster["proxy"].stderr()


def _without_times(rows: list[str]) -> list[list[str]]:
    """`show servers state` rows without what a running check or the clock
    changes: ids, names, address, op and admin states, weights, health, port."""
    return [[row.split()[i] for i in (0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 18)] if not row.startswith("#") and " " in row
            else [row] for row in rows]


def _ctl(*args):
    return subprocess.run([sys.executable, "-m", "gproxy", "ctl", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=30)


def test_gproxy_ctl(cluster):
    result = _ctl("-s", str(cluster["admin"]), "show", "stat", "-1", "2", "-1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("app,BACKEND,") and result.stdout.endswith(",\n\n")
    result = _ctl("-c", str(cluster["proxy"].path), "get weight app/a; show cli level")
    assert (result.returncode, result.stdout) == (0, "1 (initial 1)\n\nadmin\n\n")
    result = _ctl("-s", str(cluster["admin"].parent / "missing.sock"), "show", "info")
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot connect" in result.stderr


def test_a_socket_in_use_is_an_error_and_a_stale_one_is_replaced(tmp_path, start_backend):
    a = start_backend("a")
    path = tmp_path / "admin.sock"
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(str(path))
    live.listen(1)
    port = free_port()
    config = {"global": {"stats_socket": {"path": str(path), "level": "admin"}},
              "listen": {"app": {"bind": [f"127.0.0.1:{port}"], "server": [{"name": "a", "address": a.address}]}}}
    first = GproxyProcess(config, tmp_path)
    first.start()
    assert first.proc.wait(WAIT) == 1
    assert "in use by a running process" in first.stderr() and "Traceback" not in first.stderr()
    live.close()  # the file stays behind: a stale socket
    second = GproxyProcess(config, tmp_path)
    second.stderr_path = tmp_path / "second.stderr"
    second.start([port])
    try:
        wait_for(lambda: os.path.exists(path) and _connects(path), "the stats socket")
        assert cli(path, "show cli level") == "admin\n"
    finally:
        second.stop()
    assert not path.exists()  # removed at exit


def _connects(path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _info(path) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in cli(path, "show info").splitlines() if ": " in line)


RATE_FIELDS = {"app/FRONTEND": ("rate", "req_rate", "conn_rate"), "app/BACKEND": ("rate",),
               "app/a": ("rate",), "app/b": ("rate",)}
INFO_RATES = ("ConnRate", "SessRate")
EXPECTED_SEEN = sum(len(names) for names in RATE_FIELDS.values()) + len(INFO_RATES)


def test_rates_while_loaded_and_back_to_zero_after(cluster):
    """A few hundred requests (a new connection each): every rate > 0 while
    they flow, 0 about two seconds after; each *_max at least the highest
    rate seen; ttime_max at least ttime."""
    port, admin = cluster["port"], cluster["admin"]
    stop = threading.Event()
    statuses: list = []
    seen: dict[str, int] = {}

    def traffic():
        while not stop.is_set():
            status, _, _ = http_get(port, "/")
            statuses.append(status)

    def look():
        rows = stat_rows(admin)
        for key, names in RATE_FIELDS.items():
            for name in names:
                seen[f"{key}/{name}"] = max(seen.get(f"{key}/{name}", 0), int(rows[key][name]))
        info = _info(admin)
        for name in INFO_RATES:
            seen[name] = max(seen.get(name, 0), int(info[name]))

    with ThreadPoolExecutor(3) as pool:
        clients = [pool.submit(traffic) for _ in range(3)]
        try:
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                look()
                if len(statuses) >= 300 and len(seen) == EXPECTED_SEEN and all(seen.values()):
                    break
                time.sleep(0.1)
        finally:
            stop.set()
            for client in clients:
                client.result(WAIT)
    assert len(statuses) >= 300 and set(statuses) == {200}
    assert all(value > 0 for value in seen.values()), seen

    def all_zero() -> bool:
        rows = stat_rows(admin)
        info = _info(admin)
        return (all(rows[key][name] == "0" for key, names in RATE_FIELDS.items() for name in names)
                and all(info[name] == "0" for name in INFO_RATES))

    wait_for(all_zero, "every rate back to 0")
    rows, info = stat_rows(admin), _info(admin)
    for key, names in RATE_FIELDS.items():
        for name in names:
            assert int(rows[key][f"{name}_max"]) >= seen[f"{key}/{name}"] > 0, (key, name)
    assert int(info["MaxConnRate"]) >= seen["ConnRate"] and int(info["MaxSessRate"]) >= seen["SessRate"]
    for key in ("app/BACKEND", "app/a", "app/b"):
        for phase in ("qtime", "ctime", "rtime", "ttime"):
            assert int(rows[key][f"{phase}_max"]) >= int(rows[key][phase]) >= 0, (key, phase)
    assert cli(admin, "clear counters") == ""
    rows = stat_rows(admin)
    assert rows["app/FRONTEND"]["rate_max"] == rows["app/FRONTEND"]["req_rate_max"] == "0"
    assert _info(admin)["MaxConnRate"] == "0"
    # After the clear: a response that takes 300 ms: the response and total times see it, on its server and the backend.
    assert http_get(port, "/?sleep=0.3")[0] == 200
    rows = stat_rows(admin)
    slow = [key for key in ("app/a", "app/b") if int(rows[key]["rtime_max"]) >= 300]
    assert len(slow) == 1, {key: rows[key]["rtime_max"] for key in ("app/a", "app/b")}
    for key in (slow[0], "app/BACKEND"):
        assert int(rows[key]["rtime_max"]) >= 300 and int(rows[key]["ttime_max"]) >= 300, key


def test_set_maxconn_global(cluster):
    admin, port = cluster["admin"], cluster["port"]
    assert cli(cluster["operator"], "set maxconn global 5") == "Permission denied\n"
    assert cli(admin, "set maxconn global 5") == ""
    info = _info(admin)
    assert (info["Maxconn"], info["Hard_maxconn"]) == ("5", "1000")
    served_by(port)  # below the new limit: served
    assert cli(admin, "set maxconn global 1001") == "Value out of range.\n"
    assert cli(admin, "set maxconn global 0") == ""  # HAProxy: back to the hard limit
    assert _info(admin)["Maxconn"] == "1000"


def _open_request(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return sock


def _answered(sock: socket.socket, wait: float) -> bool:
    """A whole 200 response (head and Content-Length body) within `wait`."""
    sock.settimeout(wait)
    try:
        _, head, _, _ = read_response(sock)
    except (socket.timeout, EOFError):
        return False
    return head.startswith(b"HTTP/1.1 200")


def test_set_maxconn_global_holds_new_connections_until_raised(cluster):
    """At the limit, a new connection waits (accepting stops); raising the
    limit lets it in at once, without any other connection ending."""
    admin, port = cluster["admin"], cluster["port"]
    assert cli(admin, "set maxconn global 1") == ""
    first = _open_request(port)  # kept alive: holds the only slot
    second = None
    try:
        assert _answered(first, WAIT)
        wait_for(lambda: _info(admin)["CurrConns"] == "1", "one connection held")
        second = _open_request(port)
        assert not _answered(second, 1.0)  # not accepted while the first is open
        assert cli(admin, "set maxconn global 0") == ""
        assert _answered(second, WAIT)
        # The first connection is still there: the raise let the second in,
        # not the end of the first (its keep-alive timeout would do that).
        first.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _answered(first, WAIT)
    finally:
        first.close()
        if second is not None:
            second.close()
