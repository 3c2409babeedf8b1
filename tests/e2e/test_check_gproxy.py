"""check_gproxy against live load balancers: Debian's haproxy and gproxy, each with a
stats socket and real demo backends. Servers are killed and drained for real; the
plugin is run as Nagios runs it (the console script, in its own process)."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import BackendProcess, free_port, http_get, wait_port

BIN = Path(sys.executable).parent
DETECT_SECONDS = 10.0  # checks every 200 ms: a state change shows well within this


def check(*argv: str) -> tuple[int, str]:
    done = subprocess.run([str(BIN / "check_gproxy"), *argv], capture_output=True, text=True, timeout=30)
    assert done.stderr == "" and "Traceback" not in done.stdout
    return done.returncode, done.stdout


def wait_check(expected_rc: int, *argv: str, contains: str = "") -> str:
    """Run the plugin until it exits `expected_rc` (with `contains` on its first line)."""
    deadline = time.monotonic() + DETECT_SECONDS
    while True:
        rc, out = check(*argv)
        if rc == expected_rc and contains in out.splitlines()[0]:
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"expected rc {expected_rc} with {contains!r}, last: rc {rc}\n{out}")
        time.sleep(0.1)


def socket_command(path: str, command: str) -> str:
    import socket
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


@pytest.fixture
def backends():
    started = [BackendProcess(name).start() for name in ("ents3", "ents2", "ents1", "ent-maintenance")]
    yield started
    for backend in started:
        backend.stop()


HAPROXY_CFG = """global
    stats socket {sock} mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen esup-proxy
    bind 127.0.0.1:{port}
    balance roundrobin
    option httpchk OPTIONS /
    default-server inter 200 fastinter 200 downinter 200 rise 1 fall 1
    server ents3 {a0} check weight 256
    server ents2 {a1} check weight 128
    server ents1 {a2} check weight 1
    server ent-maintenance {a3} check backup
frontend stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
    stats auth admin:secret
"""


@pytest.fixture
def haproxy(tmp_path, backends):
    if subprocess.run(["which", "haproxy"], capture_output=True).returncode != 0:
        pytest.fail("Debian's haproxy is missing: run scripts/install-debian-deps.sh")
    sock = tmp_path / "admin.sock"
    port, stats_port = free_port(), free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(sock=sock, port=port, stats_port=stats_port,
                                      **{f"a{i}": b.address for i, b in enumerate(backends)}))
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, proc=proc)
        wait_port(stats_port, proc=proc)
        yield {"socket": str(sock), "port": port, "stats": f"http://127.0.0.1:{stats_port}/stats",
               "backends": backends}
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()


def gproxy_toml(sock: Path, port: int, backends: list[BackendProcess]) -> str:
    servers = ""
    for backend, weight in zip(backends, (256, 128, 1, 0)):
        servers += (f'\n[[listen.esup-proxy.server]]\nname = "{backend.name}"\naddress = "{backend.address}"\n'
                    'check = true\ninter = "200ms"\nrise = 1\nfall = 1\n'
                    + ("backup = true\n" if weight == 0 else f"weight = {weight}\n"))
    return (f'[global]\nmaxconn = 1000\nstats_socket = {{ path = "{sock}", level = "admin" }}\n\n'
            '[defaults]\nmode = "http"\ntimeout = { connect = "1s", client = "5s", server = "5s" }\n\n'
            f'[listen.esup-proxy]\nbind = ["127.0.0.1:{port}"]\nbalance = "roundrobin"\n'
            f'httpchk = {{ method = "OPTIONS", path = "/" }}\n{servers}')


@pytest.fixture
def gproxy(tmp_path, backends, start_gproxy):
    sock = tmp_path / "gproxy-admin.sock"
    port = free_port()
    start_gproxy(gproxy_toml(sock, port, backends), wait_ports=[port])
    deadline = time.monotonic() + 5
    while not sock.exists():
        assert time.monotonic() < deadline, "gproxy made no stats socket within 5 s"
        time.sleep(0.05)
    return {"socket": str(sock), "port": port, "backends": backends}


@pytest.mark.parametrize("balancer", ["haproxy", "gproxy"])
def test_backends_kill_servers_then_recover(request, balancer):
    lb = request.getfixturevalue(balancer)
    sock = lb["socket"]
    ents3, ents2, ents1, maintenance = lb["backends"]
    out = wait_check(0, "-s", sock, contains="esup-proxy: 3/3 active servers up")
    assert "'esup-proxy_up'=3;3:;1:;0;3" in out

    ents1.kill()
    out = wait_check(1, "-s", sock, contains="esup-proxy: 2/3 active servers up (ents1 DOWN)")
    assert out.splitlines()[0] == "GPROXY BACKENDS WARNING - esup-proxy: 2/3 active servers up (ents1 DOWN)"
    assert "'esup-proxy_up'=2;3:;1:;0;3" in out

    ents3.kill()
    ents2.kill()
    out = wait_check(2, "-s", sock, contains="no active server up")
    assert out.splitlines()[0] == ("GPROXY BACKENDS CRITICAL - esup-proxy: no active server up, "
                                   "backup ent-maintenance serving")
    assert "  ent-maintenance (backup) UP" in out
    rc, out = check("server", "-s", sock, "-b", "esup-proxy", "-S", "ents3")
    assert rc == 2 and out.startswith("GPROXY SERVER CRITICAL - esup-proxy/ents3 DOWN for ")

    revived = []
    try:
        for backend in (ents3, ents2, ents1):
            revived.append(BackendProcess(backend.name, backend.port).start())  # same port: found again
        wait_check(0, "-s", sock, contains="esup-proxy: 3/3 active servers up")
    finally:
        for backend in revived:
            backend.stop()


@pytest.mark.parametrize("balancer", ["haproxy", "gproxy"])
def test_drain_maint_server_mode_and_sessions(request, balancer):
    lb = request.getfixturevalue(balancer)
    sock = lb["socket"]
    wait_check(0, "-s", sock)
    socket_command(sock, "set server esup-proxy/ents2 state drain")
    socket_command(sock, "disable server esup-proxy/ents1")
    out = wait_check(1, "-s", sock, contains="(ents2 DRAIN, ents1 MAINT)")
    assert out.splitlines()[0] == "GPROXY BACKENDS WARNING - esup-proxy: 1/3 active servers up (ents2 DRAIN, ents1 MAINT)"
    rc, out = check("-s", sock, "--maint-ok")
    assert rc == 0 and out.splitlines()[0] == ("GPROXY BACKENDS OK - esup-proxy: 1/1 active servers up, "
                                               "2 drained or in maintenance")
    rc, out = check("server", "-s", sock, "-b", "esup-proxy", "-S", "ents2")
    assert rc == 1 and out.startswith("GPROXY SERVER WARNING - esup-proxy/ents2 DRAIN for ")
    rc, out = check("server", "-s", sock, "-b", "esup-proxy", "-S", "ents3")
    assert rc == 0 and ", check L7OK/200 in " in out
    rc, out = check("sessions", "-s", sock)
    assert rc == 0 and out.startswith("GPROXY SESSIONS OK - ")
    assert "\nglobal 0/" in out and "\nfrontend esup-proxy 0/" in out and "'esup-proxy_scur'=0;" in out


@pytest.mark.parametrize("balancer", ["haproxy", "gproxy"])
def test_rates_between_two_runs(request, balancer, tmp_path):
    lb = request.getfixturevalue(balancer)
    state = tmp_path / "rates.json"
    wait_check(0, "-s", lb["socket"])
    rc, out = check("rates", "-s", lb["socket"], "--state-file", str(state))
    assert rc == 0 and "first run" in out
    for _ in range(6):
        http_get(lb["port"], "/")
    for _ in range(4):
        http_get(lb["port"], "/status/503")
    rc, out = check("rates", "-s", lb["socket"], "--state-file", str(state))
    assert rc == 2, out  # 4 of 10 responses were 5xx: 40% > 20%
    assert "esup-proxy: 40% 5xx" in out.splitlines()[0]
    assert "'esup-proxy_5xx'=40.0%;5;20;0;100" in out


def test_haproxy_stats_page_with_basic_auth(haproxy):
    wait_check(0, "-s", haproxy["socket"])
    rc, out = check("-U", haproxy["stats"], "-a", "admin:secret")
    assert rc == 0 and out.startswith("GPROXY BACKENDS OK - esup-proxy: 3/3 active servers up")
    rc, out = check("-U", haproxy["stats"], "-a", "admin:wrong")
    assert rc == 3 and "HTTP 401" in out
    token = base64.b64encode(b"admin:secret").decode()
    status, _, body = http_get(int(haproxy["stats"].split(":")[2].split("/")[0]), "/stats;csv",
                               headers={"Authorization": f"Basic {token}"})
    assert status == 200 and body.startswith(b"# pxname,svname,")


def test_haproxy_socket_errors(haproxy, tmp_path):
    rc, out = check("-s", str(tmp_path / "nope.sock"))
    assert rc == 3 and "no such socket" in out
    rc, out = check("server", "-s", haproxy["socket"], "-b", "esup-proxy", "-S", "nope")
    assert rc == 3 and "no server esup-proxy/nope" in out
