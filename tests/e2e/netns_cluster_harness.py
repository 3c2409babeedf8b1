"""Heartbeat clusters in network namespaces, shared by the partition and scale tests.

`MiniCluster`: N nodes n0..n{N-1}, one per namespace of a `netns.Lab`, sharing a group `svc` =
[vip (IPaddr2 on eth0), app (Dummy)], with partitions cut by nftables inside the namespaces.
`make_cluster` is the fixture that makes them (lab and nodes), stopped and deleted after the test
even when it fails. `MARKS`: the skips of every test using them (root and namespaces, nft).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tomli_w

from cluster_harness import HeartbeatNodes, cluster_doc, write_authkey
from netns import Lab, can_use_netns

OK, WHY = can_use_netns()
MARKS = [pytest.mark.skipif(not OK, reason=WHY),
         pytest.mark.skipif(shutil.which("nft") is None, reason="nftables (nft) is not installed")]
CUT_TABLE = "hbcut"


class MiniCluster(HeartbeatNodes):
    """N heartbeat nodes n0..n{N-1}, one per namespace of `lab`, sharing a
    group `svc` = [vip (IPaddr2), app (Dummy)]."""

    def __init__(self, tmp: Path, lab: Lab, *, keepalive: str = "200ms", deadtime: str = "1s",
                 initdead: str = "2s", resources: bool = True, **cluster_options):
        super().__init__(tmp, [f"n{i}" for i in range(len(lab.namespaces))], tmp / "cluster.toml", lab)
        self.vip = lab.address_for(100)
        write_authkey(tmp / "authkey", "e2e-quorum-secret")
        doc = cluster_doc(tmp, "quorum-e2e", dict(zip(self.names, lab.addresses)), keepalive=keepalive,
                          deadtime=deadtime, initdead=initdead, state_dir=f"{tmp}/state", **cluster_options)
        if resources:
            doc["resource"] = [
                {"id": "vip", "agent": "ocf:heartbeat:IPaddr2",
                 "params": {"ip": self.vip, "cidr_netmask": "24", "nic": "eth0"},
                 "monitor": {"interval": "1s", "timeout": "10s"}},
                {"id": "app", "agent": "ocf:heartbeat:Dummy", "params": {"state": f"{tmp}/app-{{node}}.state"},
                 "monitor": {"interval": "1s", "timeout": "10s"}},
            ]
            doc["group"] = [{"id": "svc", "resources": ["vip", "app"]}]
        self.path.write_text(tomli_w.dumps(doc))

    def vip_holders(self) -> list[str]:
        """Names of the nodes whose eth0 carries the VIP, from `ip addr` in each namespace."""
        holders = []
        for index, name in enumerate(self.names):
            out = self.lab.run(index, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
            if f" {self.vip}/" in out:
                holders.append(name)
        return holders

    def starts(self, index: int, resource: str) -> int:
        """How many times `resource` was started on node `index` (its log)."""
        return self.log(index).count(f"start {resource}: rc=0")

    # ---- partitions -----------------------------------------------------------------
    def cut(self, index: int, peers: list[int]) -> None:
        """Drop every packet between node `index` and `peers`, in node `index`'s namespace."""
        addresses = ", ".join(self.lab.addresses[p] for p in peers)
        script = (f"table inet {CUT_TABLE} {{\n"
                  f"  chain input {{ type filter hook input priority 0; ip saddr {{ {addresses} }} drop; }}\n"
                  f"  chain output {{ type filter hook output priority 0; ip daddr {{ {addresses} }} drop; }}\n"
                  f"}}\n")
        result = self.lab.run(index, ["nft", "-f", "-"], input=script)
        assert result.returncode == 0, result.stderr

    def heal(self, index: int) -> None:
        self.lab.run(index, ["nft", "delete", "table", "inet", CUT_TABLE])


@pytest.fixture
def make_cluster(tmp_path):
    """make(nodes, **MiniCluster options) -> a MiniCluster in a new Lab (nothing started)."""
    made: list[tuple[Lab, MiniCluster]] = []

    def make(nodes: int, **options) -> MiniCluster:
        lab = Lab(nodes)
        made.append((lab, None))
        cluster = MiniCluster(tmp_path, lab, **options)
        made[-1] = (lab, cluster)
        return cluster

    yield make
    for lab, cluster in made:
        try:
            if cluster is not None:
                cluster.stop()
        finally:
            lab.close()
