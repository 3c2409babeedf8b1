"""Servers dying, failing checks, filling up: what clients see."""

from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import http_config
from harness import http_get


def _server(name, backend, **extra):
    return {"name": name, "address": backend.address, "check": True, "inter": "200ms",
            "rise": 2, "fall": 3, **extra}


def test_server_killed_under_load_costs_no_request(start_backend, start_gproxy, port, syslog):
    backends = [start_backend(f"s{i}") for i in range(3)]
    config = http_config([_server(b.name, b) for b in backends], port=port, log_target=syslog.target,
                         balance="roundrobin")
    start_gproxy(config, [port])
    failures: list = []
    served = []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                status, headers, _ = http_get(port, "/?sleep=0.01")
            except OSError as exc:
                failures.append(repr(exc))
                continue
            if status != 200:
                failures.append(status)
            else:
                served.append(headers["x-backend"][0])

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 10
        while len(served) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        backends[1].kill()
        before = len(served)
        deadline = time.monotonic() + 10
        while len(served) < before + 400 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert failures == []
    assert len(served) >= 600
    after_kill = served[before + 100:]
    assert "s1" not in after_kill  # the dead server is out of rotation
    assert {"s0", "s2"} <= set(after_kill)


def test_rise_and_fall_counts(start_backend, start_gproxy, port, syslog):
    backend = start_backend("web")
    other = start_backend("other")
    config = http_config([_server("web", backend), _server("other", other)], port=port,
                         log_target=syslog.target, httpchk={"method": "OPTIONS", "path": "/"})
    start_gproxy(config, [port])
    syslog.collect(0.5)
    base = backend.stats()["methods"].get("OPTIONS", 0)
    backend.post("/health/fail")
    syslog.wait_for(r"Server app/web is DOWN, reason: Layer7 wrong status, code: 503")
    failed_checks = backend.stats()["methods"].get("OPTIONS", 0) - base
    # fall = 3 consecutive failures, not fewer (one more may be in flight).
    assert 3 <= failed_checks <= 4
    # Down: no client traffic reaches it.
    for _ in range(6):
        assert http_get(port, "/")[1]["x-backend"] == ["other"]
    base = backend.stats()["methods"].get("OPTIONS", 0)
    backend.post("/health/ok")
    syslog.wait_for(r"Server app/web is UP, reason: Layer7 check passed, code: 200")
    passed_checks = backend.stats()["methods"].get("OPTIONS", 0) - base
    assert 2 <= passed_checks <= 3  # rise = 2


def test_queue_at_server_maxconn(start_backend, start_gproxy, port, syslog):
    backend = start_backend("slow")
    config = http_config([{"name": "slow", "address": backend.address, "maxconn": 1}], port=port,
                         log_target=syslog.target)
    config["defaults"]["timeout"]["queue"] = "5s"
    start_gproxy(config, [port])
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda i: http_get(port, f"/echo?sleep=0.3&i={i}"), range(3)))
    assert [r[0] for r in results] == [200, 200, 200]
    lines = [syslog.wait_for(rf'"GET /echo\?sleep=0.3&i={i} ') for i in range(3)]
    waits = sorted(int(re.search(r"\] \S+ \S+ -?\d+/(-?\d+)/", line).group(1)) for line in lines)  # Tw
    assert waits[0] < 100 <= waits[1] and waits[2] >= 500  # served one at a time, FIFO


def test_queue_timeout_gives_503(start_backend, start_gproxy, port, syslog):
    backend = start_backend("slow")
    config = http_config([{"name": "slow", "address": backend.address, "maxconn": 1}], port=port,
                         log_target=syslog.target)
    config["defaults"]["timeout"]["queue"] = "200ms"
    start_gproxy(config, [port])
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(http_get, port, "/?sleep=1")
        time.sleep(0.2)
        second = pool.submit(http_get, port, "/?second")
        assert second.result()[0] == 503
        assert first.result()[0] == 200
    line = syslog.wait_for(r'"GET /\?second ')
    assert " app/<NOSRV> " in line and " 503 " in line and " sQ-- " in line


def test_all_servers_down_gives_503(start_backend, start_gproxy, port, syslog):
    backend = start_backend("only")
    config = http_config([_server("only", backend)], port=port, log_target=syslog.target)
    start_gproxy(config, [port])
    backend.kill()
    syslog.wait_for("backend app has no server available!")
    status, _, body = http_get(port, "/")
    assert status == 503
    assert b"No server is available" in body


def test_leastconn_prefers_idle_server(start_backend, start_gproxy, port):
    a, b = start_backend("a"), start_backend("b")
    config = http_config([{"name": "a", "address": a.address}, {"name": "b", "address": b.address}],
                         port=port, balance="leastconn")
    start_gproxy(config, [port])
    with ThreadPoolExecutor(4) as pool:
        slow = pool.submit(http_get, port, "/?sleep=1")
        time.sleep(0.3)
        busy = slow  # one server holds the slow request
        quick = [http_get(port, "/")[1]["x-backend"][0] for _ in range(4)]
        slow_server = busy.result()[1]["x-backend"][0]
    assert slow_server not in quick


def test_source_hash_is_sticky(start_backend, start_gproxy, port):
    servers = [start_backend(n) for n in ("a", "b", "c")]
    config = http_config([{"name": s.name, "address": s.address} for s in servers], port=port,
                         balance="source")
    start_gproxy(config, [port])
    seen = {http_get(port, "/")[1]["x-backend"][0] for _ in range(10)}
    assert len(seen) == 1


def test_uri_hash_same_path_same_server(start_backend, start_gproxy, port):
    servers = [start_backend(n) for n in ("a", "b", "c")]
    config = http_config([{"name": s.name, "address": s.address} for s in servers], port=port,
                         balance="uri")
    start_gproxy(config, [port])
    for path in ("/x", "/y/z", "/static/app.js"):
        seen = {http_get(port, f"{path}?v={i}")[1]["x-backend"][0] for i in range(5)}
        assert len(seen) == 1
    spread = {http_get(port, f"/p{i}")[1]["x-backend"][0] for i in range(30)}
    assert len(spread) >= 2


def test_insert_cookie_persistence(start_backend, start_gproxy, port):
    a, b = start_backend("a"), start_backend("b")
    config = http_config([{"name": "a", "address": a.address, "cookie": "A"},
                          {"name": "b", "address": b.address, "cookie": "B"}], port=port,
                         cookie={"name": "SRV", "mode": "insert", "indirect": True, "nocache": True})
    start_gproxy(config, [port])
    status, headers, _ = http_get(port, "/")
    server = headers["x-backend"][0]
    assert headers["set-cookie"] == [f"SRV={server.upper()}; path=/"]
    assert headers["cache-control"] == ["private"]
    for _ in range(4):
        status, headers, body = http_get(port, "/echo", headers={"Cookie": f"SRV={server.upper()}; x=1"})
        assert headers["x-backend"] == [server]
        assert "set-cookie" not in headers  # indirect: the client already has it
        seen = [v for k, v in json.loads(body)["headers"] if k.lower() == "cookie"]
        assert seen == ["x=1"]  # indirect: the server never sees the persistence cookie
