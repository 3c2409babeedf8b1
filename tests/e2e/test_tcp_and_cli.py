"""TCP mode through a real gproxy, and the `gproxy` command line."""

from __future__ import annotations

import subprocess
import sys

from conftest import http_config
from harness import REPO, SPEC_DIR, http_get, recv_all


def test_tcp_mode_relays_and_logs_tcplog(start_backend, start_gproxy, port, syslog):
    a, b = start_backend("a"), start_backend("b")
    config = http_config([{"name": "a", "address": a.address}, {"name": "b", "address": b.address}],
                         port=port, log_target=syslog.target, mode="tcp")
    start_gproxy(config, [port])
    seen = {http_get(port, "/")[1]["x-backend"][0] for _ in range(4)}
    assert seen == {"a", "b"}
    line = syslog.wait_for(r" app app/[ab] ")
    # tcplog: Tw/Tc/Tt, bytes, 2-char state, connection counts, queues.
    assert __import__("re").search(r" app app/[ab] \d+/\d+/\d+ \d+ -- \d+/\d+/\d+/\d+/\d+ \d+/\d+", line), line


def test_tcp_tunnel_timeout_closes_idle_connection(start_backend, start_gproxy, port):
    a = start_backend("a")
    config = http_config([{"name": "a", "address": a.address}], port=port, mode="tcp")
    config["defaults"]["timeout"]["tunnel"] = "300ms"
    start_gproxy(config, [port])
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert recv_all(sock) == b""  # idle: closed by gproxy after the tunnel timeout


def test_tcp_mode_retries_on_dead_server(start_backend, start_gproxy, port):
    alive = start_backend("alive")
    dead = start_backend("dead")
    dead.kill()
    config = http_config([{"name": "dead", "address": dead.address}, {"name": "alive", "address": alive.address}],
                         port=port, mode="tcp")
    config["defaults"]["retries"] = 1
    start_gproxy(config, [port])
    for _ in range(4):
        status, headers, _ = http_get(port, "/")
        assert status == 200 and headers["x-backend"] == ["alive"]


def _gproxy(*args):
    return subprocess.run([sys.executable, "-m", "gproxy", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=30)


def test_check_accepts_the_spec():
    result = _gproxy("check", str(SPEC_DIR / "esup-proxy.toml"))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_check_reports_every_error_with_its_path(tmp_path):
    bad = (SPEC_DIR / "esup-proxy.toml").read_text()
    bad = bad.replace("weight = 128", "weight = 300").replace('balance = "roundrobin"', 'balancee = "roundrobin"')
    path = tmp_path / "bad.toml"
    path.write_text(bad)
    result = _gproxy("check", str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert any("listen.esup-proxy.server[1].weight: 300 is out of range 0..256" in line for line in lines)
    assert any("listen.esup-proxy.balancee" in line and "balance" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_run_with_bad_config_exits_1_without_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[global]\nmaxconn = -1\n")
    result = _gproxy("run", str(path), "--foreground")
    assert result.returncode == 1
    assert "global.maxconn" in result.stderr and "Traceback" not in result.stderr


def test_run_with_port_in_use_exits_1(tmp_path, port):
    import socket
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen(1)
    try:
        path = tmp_path / "c.toml"
        import tomli_w
        path.write_text(tomli_w.dumps(http_config([{"name": "a", "address": "127.0.0.1:9"}], port=port)))
        result = _gproxy("run", str(path), "--foreground")
        assert result.returncode == 1
        assert f"cannot bind 127.0.0.1:{port}" in result.stderr
    finally:
        holder.close()


def test_convert_spec_haproxy_cfg_loads():
    result = _gproxy("convert", str(SPEC_DIR / "esup-proxy.haproxy2.cfg"))
    assert result.returncode == 0, result.stderr
    assert "[listen.esup-proxy]" in result.stdout or "[listen.\"esup-proxy\"]" in result.stdout
