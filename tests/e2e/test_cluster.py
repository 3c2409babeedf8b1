"""The seed's failover scenarios with real processes: two heartbeat nodes in
network namespaces, Debian's IPaddr2 for the VIP, gproxy through its OCF
agent, a client in the root namespace talking to the VIP.

The cluster file is the spec (shared/spec/esup-cluster.toml) with its
addresses rewritten to the test's own subnet, short timers (keepalive
200 ms, deadtime 1 s), per-node paths, and the TLS terminator replaced by
ocf:heartbeat:Dummy (several stunnel4 init scripts cannot share one host's
/etc/stunnel; lsb:stunnel4 itself is tested in test_ocf_agents.py).
Failover and failback times are printed (pytest -s) and recorded in
docs/heartbeat.md, never asserted.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

from cluster_harness import ask_socket
from harness import REPO, SPEC_DIR, BackendProcess, free_port
from netns import Lab, can_use_netns

OK, WHY = can_use_netns()
pytestmark = pytest.mark.skipif(not OK, reason=WHY)

VENV_BIN = Path(sys.executable).parent
PROXY_PORT = 8080


class Cluster:
    def __init__(self, tmp: Path, lab: Lab, backends: list[BackendProcess], stickiness: int | None = None,
                 migration_threshold: int | None = None):
        self.tmp = tmp
        self.lab = lab
        self.vip = lab.address_for(100)
        self.names = ["esup-proxy-1", "esup-proxy-2"]
        self.procs: dict[int, subprocess.Popen] = {}
        authkey = tmp / "authkey"
        authkey.write_text("auth 1\n1 sha256 e2e-cluster-secret\n")
        authkey.chmod(0o600)
        gproxy_cfg = tmp / "gproxy.toml"
        gproxy_cfg.write_text(tomli_w.dumps({
            "global": {"stats_socket": {"path": str(tmp / "gproxy-{node}.sock"), "level": "admin"}},
            "defaults": {"mode": "http", "timeout": {"connect": "1s", "client": "5s", "server": "5s"},
                         "retries": 2, "redispatch": True},
            "listen": {"esup-proxy": {
                "bind": [f"0.0.0.0:{PROXY_PORT}"], "balance": "roundrobin",
                "server": [{"name": b.name, "address": b.address} for b in backends]}},
        }))
        text = (SPEC_DIR / "esup-cluster.toml").read_text()
        text = (text.replace('"192.0.2.11"', f'"{lab.addresses[0]}"')
                    .replace('"192.0.2.12"', f'"{lab.addresses[1]}"')
                    .replace('ip = "192.0.2.15"', f'ip = "{self.vip}", nic = "eth0"')
                    .replace('keepalive = "1s"', 'keepalive = "200ms"')
                    .replace('warntime = "3s"', 'warntime = "500ms"')
                    .replace('deadtime = "5s"', 'deadtime = "1s"')
                    .replace('initdead = "15s"', 'initdead = "2s"')
                    .replace('"/etc/heartbeat/authkey"', f'"{authkey}"')
                    .replace('"/run/heartbeat/status.sock"', f'"{tmp}/{{node}}.sock"\nstate_dir = "{tmp}/state-{{node}}"')
                    .replace('interval = "5s", timeout = "20s"', 'interval = "1s", timeout = "20s"')
                    .replace('interval = "5s", timeout = "10s"', 'interval = "1s", timeout = "10s"')
                    .replace('interval = "10s", timeout = "20s"', 'interval = "1s", timeout = "20s"'))
        # gproxy's own gproxy config, pid file and stats socket, per node.
        text = text.replace(
            'params = { config = "/etc/gproxy/esup-proxy.toml" }',
            f'params = {{ config = "{tmp}/gproxy-{{node}}.toml", gproxy = "{VENV_BIN}/gproxy", '
            f'pidfile = "{tmp}/gproxy-{{node}}.pid", socket = "{tmp}/gproxy-{{node}}.sock" }}')
        text = text.replace('agent = "lsb:stunnel4"',
                            f'agent = "ocf:heartbeat:Dummy"\nparams = {{ state = "{tmp}/tls-{{node}}.state" }}')
        if stickiness is not None:
            text = text.replace("auto_failback = true", f"auto_failback = true\nresource_stickiness = {stickiness}")
        if migration_threshold is not None:
            text = text.replace("auto_failback = true", f"auto_failback = true\nmigration_threshold = {migration_threshold}")
        for name in self.names:
            (tmp / f"gproxy-{name}.toml").write_text(gproxy_cfg.read_text().replace("{node}", name))
        self.path = tmp / "cluster.toml"
        self.path.write_text(text)

    def start(self, index: int) -> None:
        log = open(self.tmp / f"{self.names[index]}.log", "ab")
        self.procs[index] = self.lab.popen(index, [str(VENV_BIN / "python"), "-m", "heartbeat", "run",
                                                  str(self.path), "--node", self.names[index]],
                                           stdout=log, stderr=log, cwd=REPO)

    def socket(self, index: int) -> str:
        return str(self.tmp / f"{self.names[index]}.sock")

    def ask(self, index: int, payload: dict, timeout: float = 15) -> dict:
        return ask_socket(self.socket(index), payload, timeout)

    def status(self, index: int) -> dict:
        return self.ask(index, {"cmd": "status"})

    def where(self, index: int) -> dict[str, str | None]:
        return {r["id"]: (r["node"] if r["state"] == "started" else None) for r in self.status(index)["resources"]}

    def wait_placed(self, index: int, node: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.where(index)
                if set(last.values()) == {node}:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"resources not all started on {node}: {last}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join((self.tmp / f"{n}.log").read_text(errors="replace")[-3000:]
                         for n in self.names if (self.tmp / f"{n}.log").exists())

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def vip_get(vip: str, timeout: float = 1.0) -> str | None:
    """GET / on the VIP; the backend's name, or None if it does not answer."""
    try:
        with socket.create_connection((vip, PROXY_PORT), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    if not data.startswith(b"HTTP/1.1 200"):
        return None
    return data.rsplit(b"hello from ", 1)[-1].strip().decode()


def wait_served(vip: str, timeout: float = 30) -> float:
    """Seconds until the VIP serves a request again."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if vip_get(vip, timeout=0.3):
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"the VIP {vip} did not serve within {timeout}s")


@pytest.fixture
def cluster(tmp_path):
    lab = Lab(2)
    backends = []
    made = None
    try:
        for name in ("ents1", "ents2"):
            backends.append(BackendProcess(name, free_port(), host=lab.gateway).start())
        made = Cluster(tmp_path, lab, backends)
        yield made
    finally:
        if made is not None:
            made.stop()
        for backend in backends:
            backend.stop()
        lab.close()


def test_cold_start_places_everything_on_the_preferred_node(cluster):
    cluster.start(0)
    cluster.start(1)
    cluster.wait_placed(1, "esup-proxy-1")
    assert vip_get(cluster.vip) in ("ents1", "ents2")
    status = cluster.status(1)
    assert status["dc"] == "esup-proxy-1"
    assert [n["state"] for n in status["nodes"]] == ["online", "online"]
    assert all(r["preferred_node"] == "esup-proxy-1" for r in status["resources"])
    # The VIP is on the active node's interface only.
    assert cluster.vip in cluster.lab.run(0, ["ip", "-4", "addr", "show", "eth0"]).stdout
    assert cluster.vip not in cluster.lab.run(1, ["ip", "-4", "addr", "show", "eth0"]).stdout


def test_active_node_crash_fails_over_then_back(cluster):
    cluster.start(0)
    cluster.start(1)
    cluster.wait_placed(1, "esup-proxy-1")
    assert vip_get(cluster.vip)
    crashed = time.monotonic()
    cluster.lab.crash(0)  # all its processes killed, its link down
    failover = wait_served(cluster.vip)
    cluster.wait_placed(1, "esup-proxy-2")
    status = cluster.status(1)
    assert status["nodes"][0]["state"] == "offline"
    assert status["last_failover"]["from"] == "esup-proxy-1"
    assert status["last_failover"]["to"] == "esup-proxy-2"
    assert "lost" in status["last_failover"]["reason"]
    print(f"\nfailover: VIP served again {failover:.2f}s after the active node crashed "
          f"({time.monotonic() - crashed:.2f}s until all placed)")
    # The preferred node comes back: with stickiness 0 (auto_failback) it takes everything back.
    cluster.lab.reboot(0)  # a fresh machine: no VIP, no old sockets or queued heartbeats
    returned = time.monotonic()
    cluster.start(0)
    cluster.wait_placed(1, "esup-proxy-1")
    failback = wait_served(cluster.vip)
    print(f"failback: all resources back on esup-proxy-1 {time.monotonic() - returned:.2f}s after it "
          f"restarted (VIP then served within {failback:.2f}s)")


def test_manual_migrations_back_and_forth(cluster):
    cluster.start(0)
    cluster.start(1)
    cluster.wait_placed(0, "esup-proxy-1")
    for i in range(10):
        target = "esup-proxy-2" if i % 2 == 0 else "esup-proxy-1"
        answer = cluster.ask(i % 2, {"cmd": "move", "resource": "esup", "node": target})
        assert answer == {"ok": True}
        cluster.wait_placed(0, target)
        assert vip_get(cluster.vip, timeout=2) in ("ents1", "ents2")
    status = cluster.status(0)
    assert status["resources"][0]["move"]["node"] == "esup-proxy-1"
    assert cluster.ask(1, {"cmd": "clear", "resource": "esup"}) == {"ok": True}
    assert cluster.status(1)["resources"][0]["move"] is None


def test_killed_gproxy_is_restarted_in_place(cluster):
    cluster.start(0)
    cluster.start(1)
    cluster.wait_placed(1, "esup-proxy-1")
    pid = int((cluster.tmp / "gproxy-esup-proxy-1.pid").read_text())
    os.kill(pid, 9)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        proxy = next(r for r in cluster.status(1)["resources"] if r["id"] == "proxy")
        if proxy["fail_counts"]["esup-proxy-1"] >= 1 and proxy["state"] == "started":
            break
        time.sleep(0.1)
    assert proxy["fail_counts"]["esup-proxy-1"] == 1
    assert proxy["node"] == "esup-proxy-1"  # restarted in place (no migration_threshold set)
    wait_served(cluster.vip, timeout=20)
    new_pid = int((cluster.tmp / "gproxy-esup-proxy-1.pid").read_text())
    assert new_pid != pid


def test_forged_and_replayed_packets_change_nothing(cluster):
    cluster.start(0)
    cluster.start(1)
    cluster.wait_placed(1, "esup-proxy-1")
    before = cluster.status(1)
    target = (cluster.lab.addresses[1], 694)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for _ in range(5):
            udp.sendto(b"GHB1\x01" + b"\x00" * 60, target)  # a bad HMAC
    time.sleep(0.5)
    after = cluster.status(1)
    assert after["packets_rejected"]["bad-hmac"] >= before["packets_rejected"]["bad-hmac"] + 5
    assert after["dc"] == before["dc"]
    assert [n["state"] for n in after["nodes"]] == ["online", "online"]
    assert cluster.where(1) == {"vip": "esup-proxy-1", "proxy": "esup-proxy-1", "tls": "esup-proxy-1"}


@pytest.fixture
def make_cluster(tmp_path):
    made = []

    def make(**options) -> Cluster:
        lab = Lab(2)
        backends = [BackendProcess(n, free_port(), host=lab.gateway).start() for n in ("ents1", "ents2")]
        cluster = Cluster(tmp_path, lab, backends, **options)
        made.append((cluster, lab, backends))
        return cluster

    yield make
    for cluster, lab, backends in made:
        cluster.stop()
        for backend in backends:
            backend.stop()
        lab.close()


def test_sticky_resources_stay_where_they_run(make_cluster):
    cluster = make_cluster(stickiness=200)  # more than the location preference (100)
    cluster.start(0)
    cluster.start(1)
    cluster.wait_placed(1, "esup-proxy-1")
    cluster.lab.crash(0)
    cluster.wait_placed(1, "esup-proxy-2")
    cluster.lab.reboot(0)  # a fresh machine: no VIP, no old sockets or queued heartbeats
    cluster.start(0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        nodes = cluster.status(1)["nodes"]
        if nodes[0]["state"] == "online":
            break
        time.sleep(0.1)
    assert nodes[0]["state"] == "online"
    time.sleep(2)  # several DC decisions later, nothing moved back
    assert set(cluster.where(1).values()) == {"esup-proxy-2"}
    assert vip_get(cluster.vip)


def test_repeated_failures_move_after_migration_threshold(make_cluster):
    cluster = make_cluster(migration_threshold=2)
    cluster.start(0)
    cluster.start(1)
    cluster.wait_placed(1, "esup-proxy-1")
    for failure in (1, 2):
        pid = int((cluster.tmp / "gproxy-esup-proxy-1.pid").read_text())
        os.kill(pid, 9)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            proxy = next(r for r in cluster.status(1)["resources"] if r["id"] == "proxy")
            if proxy["fail_counts"]["esup-proxy-1"] >= failure and proxy["state"] == "started":
                break
            time.sleep(0.1)
        if failure == 1:
            assert proxy["node"] == "esup-proxy-1"  # first failure: restarted in place
            wait_served(cluster.vip)
    # Second failure reaches the threshold: the whole group moves.
    cluster.wait_placed(1, "esup-proxy-2")
    wait_served(cluster.vip, timeout=20)
    status = cluster.status(1)
    assert status["last_failover"]["from"] == "esup-proxy-1"
    assert status["last_failover"]["to"] == "esup-proxy-2"
    # cleanup forgets the failures; with stickiness 0 the group returns to its preferred node.
    assert cluster.ask(0, {"cmd": "cleanup", "resource": "proxy"}) == {"ok": True}
    cluster.wait_placed(1, "esup-proxy-1")
