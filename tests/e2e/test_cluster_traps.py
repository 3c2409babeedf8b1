"""Partition traps and checks with real processes: a three-node heartbeat cluster on loopback whose
fencing command always fails, Debian's snmptrapd with GPROXY-SUITE-MIB loaded, and check_heartbeat
asked on the nodes' status sockets.

- The node running the resource is killed: the new DC runs the fencing hook, which exits 1; the DC
  sends heartbeatFencingFailed (v2c and v3) and `check_heartbeat nodes` on it is CRITICAL.
- A second node is killed: the last one has 1 vote of 3; it sends heartbeatQuorumLost, and
  `check_heartbeat nodes` on it is CRITICAL (no_quorum_policy stop) with the votes in its perfdata.
- The second node comes back: heartbeatQuorumRegained from the node that stayed.
- Two nodes without fencing or tie-breaker, the active one frozen (SIGSTOP) past deadtime, as a
  paused VM is: the other takes the resource over; thawed, the first still runs it. The node that
  hears it come back sends heartbeatSplitBrain, and `check_heartbeat` is CRITICAL (held with
  --split-brain-hold), then OK once one copy is stopped, the fact in its long output.

No trap, check output or status carries the fencing command's password or the cluster key.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import tomli_w

from cluster_harness import HeartbeatNodes, cluster_doc, dummies, require_dummy, write_authkey
from harness import free_port
from gsuite.snmp_config import DEFAULT_ENTERPRISE_OID, default_engine_id
from trap_receiver import Snmptrapd, check_pair, report_latencies, snmp_table

NODES = ("n1", "n2", "n3")
CHECK_HEARTBEAT = Path(sys.executable).parent / "check_heartbeat"
FENCE_PASSWORD = "fence-pw-must-not-leak"
CLUSTER_KEY = "traps-e2e-cluster-key"


class TrapCluster(HeartbeatNodes):
    """Nodes sharing 127.0.0.1, each on its own port; `d1` (Dummy) prefers n1."""

    def __init__(self, tmp: Path, snmp: dict, nodes: tuple[str, ...] = NODES, fencing: bool = True):
        super().__init__(tmp, list(nodes), tmp / "cluster.toml")
        write_authkey(tmp / "authkey", CLUSTER_KEY)
        # The hook's arguments carry a password, as fence agents' do: only the
        # program's name, exit status and last output line may be reported.
        fence = ["sh", "-c", 'echo "fence agent refused $1"; exit 1', "fence", "{node}",
                 "--password", FENCE_PASSWORD]
        options = {"fencing": {"command": fence, "timeout": "5s"}} if fencing else {}
        doc = cluster_doc(tmp, "traps-e2e", {name: f"127.0.0.1:{free_port()}" for name in nodes},
                          keepalive="200ms", warntime="600ms", deadtime="1500ms", initdead="2s", port=free_port(),
                          **options)
        doc |= dummies(tmp, ["d1"], "n1", "500ms", "5s")
        self.path.write_text(tomli_w.dumps(doc | {"snmp": snmp}))

    def check(self, node: str, mode: str = "nodes", *options: str) -> tuple[int, str]:
        done = subprocess.run([str(CHECK_HEARTBEAT), mode, "-s", self.socket(node), *options],
                              capture_output=True, text=True, timeout=30)
        return done.returncode, done.stdout


def sent_by(node: str):
    return lambda trap: trap.values["gproxySuiteSender"] == node


def _d1_on(cluster: TrapCluster, asked: str, node: str | None) -> bool:
    doc = cluster.try_status(asked)
    return bool(doc) and all(n["state"] == "online" for n in doc["nodes"]) and any(
        r["id"] == "d1" and r["state"] == "started" and r["node"] == node for r in doc["resources"])


def test_fencing_failure_and_quorum_loss_are_trapped_and_critical(tmp_path):
    require_dummy()
    receiver = Snmptrapd(tmp_path, [default_engine_id(DEFAULT_ENTERPRISE_OID, "heartbeat", n) for n in NODES])
    cluster = TrapCluster(tmp_path, snmp_table(receiver))
    try:
        for node in NODES:
            cluster.start(node)
        cluster.wait("d1 on n1, every node online, seen by n2 and n3",
                     lambda: _d1_on(cluster, "n2", "n1") and _d1_on(cluster, "n3", "n1"))
        rc, out = cluster.check("n2")
        assert rc == 0, out
        assert "quorum_votes=3;;;0;3" in out

        # n1 dies holding d1: the new DC (n2) must fence it first, and the hook fails.
        trigger = time.time()
        cluster.kill("n1")
        failed = check_pair(receiver.wait("heartbeatFencingFailed", trigger), trigger, gproxySuiteSender="n2",
                            heartbeatClusterName="traps-e2e", heartbeatNodeName="n1",
                            heartbeatReason="sh exited 1: fence agent refused n1")
        assert failed.values["gproxySuiteMessage"] == (
            "node n1 NOT fenced, takeover blocked: sh exited 1: fence agent refused n1")
        rc, out = cluster.check("n2")
        assert rc == 2, out
        assert "fencing of n1 FAILED at " in out.splitlines()[0]
        assert "quorum: yes, 2 of 3 votes" in out and "quorum_votes=2;;;0;3" in out
        doc = cluster.status("n2")
        assert doc["fencing"]["n1"]["state"] == "failed" and doc["quorum"]["have"] is True
        assert not (tmp_path / "n2-d1.state").exists() and not (tmp_path / "n3-d1.state").exists()  # blocked

        # n2 dies too: n3 is alone with 1 vote of 3.
        trigger = time.time()
        cluster.kill("n2")
        lost = check_pair(receiver.wait("heartbeatQuorumLost", trigger, sent_by("n3")),
                          trigger, heartbeatNodeName="n3", heartbeatQuorumVotes="1", heartbeatExpectedVotes="3",
                          heartbeatReason="1 of 3 votes: no majority")
        assert lost.values["gproxySuiteMessage"] == (
            "partition of n3 lost quorum: 1 of 3 votes (1 of 3 votes: no majority)")
        rc, out = cluster.check("n3")
        assert rc == 2, out
        assert ("partition WITHOUT quorum (1 of 3 votes: no majority): its resources are stopped "
                "(no_quorum_policy stop)") in out.splitlines()[0]
        assert "quorum_votes=1;;;0;3" in out and "expected_votes=3;;;0" in out

        # n2 comes back: n3's partition has 2 votes of 3 again.
        trigger = time.time()
        cluster.start("n2")
        check_pair(receiver.wait("heartbeatQuorumRegained", trigger, sent_by("n3")),
                   trigger, heartbeatNodeName="n3", heartbeatQuorumVotes="2", heartbeatExpectedVotes="3",
                   heartbeatReason="majority of votes")
        cluster.wait("n3 with quorum", lambda: (d := cluster.try_status("n3")) and d["quorum"]["have"])
        rc, out = cluster.check("n3")
        assert "partition WITHOUT quorum" not in out and "quorum_votes=2;;;0;3" in out

        # Nothing secret left the cluster: not in the traps, the checks, the status or the nodes' logs.
        logs = cluster.logs(tail=0)
        assert "fencing n1: running" in logs  # the fencing run is logged, without its arguments
        everything = receiver.log.read_text(errors="replace") + out + json.dumps(cluster.status("n3")) + logs
        assert FENCE_PASSWORD not in everything and CLUSTER_KEY not in everything
        report_latencies(receiver)
    finally:
        cluster.stop()
        receiver.stop()


def test_split_brain_after_a_frozen_node_is_trapped_and_critical(tmp_path):
    require_dummy()
    pair = ("n1", "n2")
    receiver = Snmptrapd(tmp_path, [default_engine_id(DEFAULT_ENTERPRISE_OID, "heartbeat", n) for n in pair])
    cluster = TrapCluster(tmp_path, snmp_table(receiver), nodes=pair, fencing=False)
    try:
        for node in pair:
            cluster.start(node)
        cluster.wait("d1 on n1, both online, seen by n2", lambda: _d1_on(cluster, "n2", "n1"))

        # n1 stops answering past deadtime (a paused VM): n2, alone and without a tie-breaker,
        # assumes it dead and starts d1 (Heartbeat's two-node rule); n1 still runs its copy.
        cluster.freeze("n1", True)
        cluster.wait("d1 taken over by n2", lambda: (tmp_path / "n2-d1.state").exists())
        assert (tmp_path / "n1-d1.state").exists()
        trigger = time.time()
        cluster.freeze("n1", False)
        trap = check_pair(receiver.wait("heartbeatSplitBrain", trigger), trigger, heartbeatClusterName="traps-e2e",
                          heartbeatNodes="n1,n2", heartbeatResources="d1")
        assert trap.values["gproxySuiteMessage"] == "split brain: d1 ran on n1 and n2 at once"
        # The DC stops one copy within a few keepalives: whether a check sees both copies is
        # a race, so the checks are asked to hold the split brain CRITICAL (as a site may).
        for node in pair:  # the fact is shared: both nodes report it
            cluster.wait(f"the split brain in {node}'s status",
                         lambda: (d := cluster.try_status(node)) and d["split_brain"]["detected"])
            rc, out = cluster.check(node, "resources", "--split-brain-hold", "10m")
            assert rc == 2, out
            assert out.startswith("HEARTBEAT RESOURCES CRITICAL - SPLIT BRAIN")
            assert "d1" in out.splitlines()[0] and "n1 and n2" in out.splitlines()[0]
        rc, out = cluster.check("n2", "nodes", "--split-brain-hold", "10m")
        assert rc == 2 and "SPLIT BRAIN" in out.splitlines()[0], out
        # One copy is stopped again: d1 ends up running once, and without a hold the checks
        # are OK again, the split brain left in their long output.
        cluster.wait("d1 on one node", lambda: [(tmp_path / f"{n}-d1.state").exists() for n in pair].count(True) == 1)
        cluster.wait("check_heartbeat nodes OK on n2", lambda: cluster.check("n2", "nodes")[0] == 0)
        assert "last split brain at " in cluster.check("n2", "nodes")[1]
        report_latencies(receiver)
    finally:
        cluster.stop()
        receiver.stop()
