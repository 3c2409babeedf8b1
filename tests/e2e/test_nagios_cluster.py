"""A real nagios4 follows a live two-node heartbeat cluster (on loopback)
with the shipped commands and templates: all OK, the active node stopped ->
nodes CRITICAL and resources WARNING (a failover happened), the node back
-> OK again after the failback."""

from __future__ import annotations

import time

import tomli_w

from cluster_harness import HeartbeatNodes, cluster_doc, dummies, udp_port, write_authkey
from nagios_harness import Nagios, lb1_objects, require_nagios, service

TRANSITION_SECONDS = 20.0  # check interval + deadtime + the group's start, with room

def test_real_nagios_follows_a_live_cluster(tmp_path):
    require_nagios()
    write_authkey(tmp_path / "authkey", "nagios-e2e")
    nodes = HeartbeatNodes(tmp_path, ["esup-proxy-1", "esup-proxy-2"], tmp_path / "cluster.toml")
    doc = cluster_doc(tmp_path, "nagios-e2e", {name: f"127.0.0.1:{udp_port()}" for name in nodes.names},
                      keepalive="200ms", warntime="500ms", deadtime="1s", initdead="2s")
    nodes.path.write_text(tomli_w.dumps(doc | dummies(tmp_path, ["vip", "proxy"], "esup-proxy-1", "1s", group="esup")))
    nodes.start_all()
    nagios = None
    try:
        workdir = tmp_path / "nagios"
        workdir.mkdir()
        sock = nodes.socket("esup-proxy-2")
        nagios = Nagios(workdir, lb1_objects(
            service("gproxy-cluster-service", "cluster nodes", f"check_heartbeat_nodes!{sock}!"),
            service("gproxy-cluster-service", "cluster resources", f"check_heartbeat_resources!{sock}!")))

        assert nagios.wait_state("cluster nodes", 0, timeout=TRANSITION_SECONDS)["plugin_output"].startswith(
            "HEARTBEAT NODES OK")
        ok = nagios.wait_state("cluster resources", 0, timeout=TRANSITION_SECONDS)
        assert ok["plugin_output"].startswith("HEARTBEAT RESOURCES OK")

        stopped_at = time.time()
        nodes.kill("esup-proxy-1")  # the active node's heartbeat dies
        block = nagios.wait_state("cluster nodes", 2, since=stopped_at, timeout=TRANSITION_SECONDS)
        assert "esup-proxy-1" in block["plugin_output"]
        block = nagios.wait_state("cluster resources", 1, since=stopped_at, timeout=TRANSITION_SECONDS)
        assert "esup-proxy-2" in block["plugin_output"] and "esup-proxy-1" in block["plugin_output"]

        returned_at = time.time()
        nodes.start("esup-proxy-1")
        nagios.wait_state("cluster nodes", 0, since=returned_at, timeout=TRANSITION_SECONDS)
        nagios.wait_state("cluster resources", 0, since=returned_at, timeout=TRANSITION_SECONDS)
        log = (workdir / "nagios.log").read_text()
        assert "SERVICE ALERT: lb1;cluster nodes;CRITICAL;HARD" in log
        assert "SERVICE ALERT: lb1;cluster resources;WARNING;HARD" in log
    finally:
        if nagios is not None:
            nagios.stop()
        nodes.stop()
