"""A real nagios4 follows a live two-node heartbeat cluster (on loopback)
with the shipped commands and templates: all OK, the active node stopped ->
nodes CRITICAL and resources WARNING (a failover happened), the node back
-> OK again after the failback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import REPO
from test_nagios_config import CHECK_INTERVAL, Nagios, require_nagios

TRANSITION_SECONDS = 20.0  # check interval + deadtime + the group's start, with room

CLUSTER = """\
[cluster]
name = "nagios-e2e"
keepalive = "200ms"
warntime = "500ms"
deadtime = "1s"
initdead = "2s"
auth_key_file = "{d}/authkey"
status_socket = "{d}/{{node}}.sock"
state_dir = "{d}/state-{{node}}"

[[node]]
name = "esup-proxy-1"
addresses = ["127.0.0.1:{p1}"]

[[node]]
name = "esup-proxy-2"
addresses = ["127.0.0.1:{p2}"]

[[resource]]
id = "vip"
agent = "ocf:heartbeat:Dummy"
params = {{ state = "{d}/{{node}}-vip.state" }}
monitor = {{ interval = "1s", timeout = "10s" }}

[[resource]]
id = "proxy"
agent = "ocf:heartbeat:Dummy"
params = {{ state = "{d}/{{node}}-proxy.state" }}
monitor = {{ interval = "1s", timeout = "10s" }}

[[group]]
id = "esup"
resources = ["vip", "proxy"]

[[constraint]]
kind = "location"
resource = "esup"
node = "esup-proxy-1"
score = 100
"""

OBJECTS = """define command {{
    command_name    test-host-up
    command_line    /bin/true
}}

define contact {{
    use                     gproxy-contact
    contact_name            tester
    email                   root@localhost
}}

define host {{
    use                     gproxy-lb-node
    host_name               lb1
    address                 127.0.0.1
    check_command           test-host-up
}}

define service {{
    use                     gproxy-cluster-service
    host_name               lb1
    service_description     cluster nodes
    check_command           check_heartbeat_nodes!{socket}!
    check_interval          {interval}
    retry_interval          1
    max_check_attempts      1
}}

define service {{
    use                     gproxy-cluster-service
    host_name               lb1
    service_description     cluster resources
    check_command           check_heartbeat_resources!{socket}!
    check_interval          {interval}
    retry_interval          1
    max_check_attempts      1
}}
"""


def _udp_port() -> int:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(path: Path, node: str, log: Path) -> subprocess.Popen:
    out = open(log, "ab")
    return subprocess.Popen([sys.executable, "-m", "heartbeat", "run", str(path), "--node", node],
                            stdout=out, stderr=out, cwd=REPO)


def test_real_nagios_follows_a_live_cluster(tmp_path):
    require_nagios()
    authkey = tmp_path / "authkey"
    authkey.write_text("auth 1\n1 sha256 nagios-e2e\n")
    authkey.chmod(0o600)
    cluster = tmp_path / "cluster.toml"
    cluster.write_text(CLUSTER.format(d=tmp_path, p1=_udp_port(), p2=_udp_port()))
    nodes = {name: _start(cluster, name, tmp_path / f"{name}.log") for name in ("esup-proxy-1", "esup-proxy-2")}
    nagios = None
    try:
        workdir = tmp_path / "nagios"
        workdir.mkdir()
        sock = str(tmp_path / "esup-proxy-2.sock")
        nagios = Nagios(workdir, sock, objects=OBJECTS.format(socket=sock, interval=CHECK_INTERVAL))

        assert nagios.wait_state("cluster nodes", 0, timeout=TRANSITION_SECONDS)["plugin_output"].startswith(
            "HEARTBEAT NODES OK")
        ok = nagios.wait_state("cluster resources", 0, timeout=TRANSITION_SECONDS)
        assert ok["plugin_output"].startswith("HEARTBEAT RESOURCES OK")

        stopped_at = time.time()
        nodes["esup-proxy-1"].send_signal(signal.SIGKILL)  # the active node's heartbeat dies
        nodes["esup-proxy-1"].wait(10)
        block = nagios.wait_state("cluster nodes", 2, since=stopped_at, timeout=TRANSITION_SECONDS)
        assert "esup-proxy-1" in block["plugin_output"]
        block = nagios.wait_state("cluster resources", 1, since=stopped_at, timeout=TRANSITION_SECONDS)
        assert "esup-proxy-2" in block["plugin_output"] and "esup-proxy-1" in block["plugin_output"]

        returned_at = time.time()
        nodes["esup-proxy-1"] = _start(cluster, "esup-proxy-1", tmp_path / "esup-proxy-1.log")
        nagios.wait_state("cluster nodes", 0, since=returned_at, timeout=TRANSITION_SECONDS)
        nagios.wait_state("cluster resources", 0, since=returned_at, timeout=TRANSITION_SECONDS)
        log = (workdir / "nagios.log").read_text()
        assert "SERVICE ALERT: lb1;cluster nodes;CRITICAL;HARD" in log
        assert "SERVICE ALERT: lb1;cluster resources;WARNING;HARD" in log
    finally:
        if nagios is not None:
            nagios.stop()
        for proc in nodes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in nodes.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
