"""Partitions with real processes: heartbeat nodes in network namespaces,
links cut with nftables inside the namespaces.

- Two nodes with a ping tie-breaker (the target: the root namespace's bridge
  address): when the link between them is cut, exactly one holds the VIP
  (IPaddr2, checked with `ip addr` in every namespace).
- Five nodes split 3/2: the resources run only on the 3 side; healing gives
  one CIB (the highest version) everywhere and restarts nothing that did
  not need it.

The cluster (`MiniCluster`: N nodes, a group of an IPaddr2 VIP and a Dummy)
is netns_cluster_harness.py's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from netns_cluster_harness import MARKS, MiniCluster, make_cluster  # noqa: F401 (make_cluster: the fixture)

pytestmark = MARKS


def _all_on(cluster: MiniCluster, index: int, node: str):
    placement = cluster.placement(index)
    return placement if placement and set(placement.values()) == {node} else None


def test_two_node_cut_leaves_exactly_one_vip(make_cluster):
    cluster = make_cluster(2, ping=[])
    # The ping target is the root namespace's bridge address: both nodes reach it
    # through their own veth, whatever happens between them.
    cluster.path.write_text(cluster.path.read_text().replace("ping = []", f'ping = ["{cluster.lab.gateway}"]'))
    cluster.start_all()
    cluster.wait("svc on n0", lambda: _all_on(cluster, 0, "n0"))
    cluster.wait("both nodes online on both", lambda: all(
        (d := cluster.try_status(i)) and {n["state"] for n in d["nodes"]} == {"online"} for i in (0, 1)))
    time.sleep(1.5)  # a probe round: each node has heard the other's reach
    assert cluster.vip_holders() == ["n0"]
    assert cluster.status(1)["quorum"]["have"] is True

    # Cut the link between the nodes only: equal reach (1 target each), n0 is preferred.
    cluster.cut(0, [1])
    cluster.wait("n1 to lose the peer and quorum",
                 lambda: (doc := cluster.try_status(1)) and doc["quorum"]["have"] is False and doc["dc"] is None)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # several deadtimes: the loser never takes the VIP
        assert cluster.vip_holders() == ["n0"], cluster.logs()
        time.sleep(0.2)
    doc0 = cluster.status(0)
    assert doc0["quorum"]["have"] and doc0["dc"] == "n0"
    assert "tie-breaker won" in doc0["quorum"]["reason"]

    # Heal, then move the group to n1 (the non-preferred node) and cut again:
    # the tie goes to n0, which takes the group; n1 stops it.
    cluster.heal(0)
    cluster.wait("one DC again", lambda: all((d := cluster.try_status(i)) and d["dc"] == "n0" for i in (0, 1)))
    assert cluster.ask(0, {"cmd": "move", "resource": "svc", "node": "n1"}) == {"ok": True}
    cluster.wait("svc on n1", lambda: _all_on(cluster, 0, "n1"))
    cluster.wait("the VIP on n1 only", lambda: cluster.vip_holders() == ["n1"])
    cluster.cut(1, [0])
    cluster.wait("the VIP on n0 only", lambda: cluster.vip_holders() == ["n0"], timeout=15)
    cluster.wait("n0 running svc", lambda: _all_on(cluster, 0, "n0"))
    cluster.wait("n1 stopped svc", lambda: (p := cluster.placement(1)) is not None and set(p.values()) == {None})
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        assert cluster.vip_holders() == ["n0"], cluster.logs()
        time.sleep(0.2)


def _same_everywhere(cluster: MiniCluster, indexes):
    docs = [cluster.try_status(i) for i in indexes]
    if any(d is None for d in docs):
        return None
    versions = {json.dumps(d["cib_version"], sort_keys=True) for d in docs}
    placements = {json.dumps({r["id"]: (r["state"], r["node"]) for r in d["resources"]}, sort_keys=True)
                  for d in docs}
    dcs = {d["dc"] for d in docs}
    return docs if len(versions) == 1 and len(placements) == 1 and len(dcs) == 1 else None


def test_five_nodes_split_three_two_then_heal(make_cluster):
    cluster = make_cluster(5)
    cluster.start_all()
    everyone = range(5)
    cluster.wait("everyone online everywhere", lambda: all(
        (d := cluster.try_status(i)) and {n["state"] for n in d["nodes"]} == {"online"} for i in everyone))
    cluster.wait("svc on n0 seen everywhere", lambda: all(_all_on(cluster, i, "n0") for i in everyone))
    assert cluster.vip_holders() == ["n0"]

    minority, majority = [0, 1], [2, 3, 4]
    for index in minority:
        cluster.cut(index, majority)
    cluster.wait("the minority without quorum", lambda: all(
        (d := cluster.try_status(i)) and not d["quorum"]["have"] and d["dc"] is None for i in minority))
    cluster.wait("svc on the majority side", lambda: all(_all_on(cluster, i, "n2") for i in majority))
    cluster.wait("the VIP only on n2", lambda: cluster.vip_holders() == ["n2"])
    for index in minority:
        doc = cluster.status(index)
        assert doc["quorum"] == {"have": False, "votes": 2, "expected": 5, "reason": "2 of 5 votes: no majority"}
    assert cluster.status(2)["quorum"]["have"] and cluster.status(2)["dc"] == "n2"
    # An administrator's change on the majority side: its CIB version goes up.
    assert cluster.ask(3, {"cmd": "standby", "node": "n4"}) == {"ok": True}
    cluster.wait("the standby known to the majority",
                 lambda: all(any(n["name"] == "n4" and n["state"] == "standby" for n in cluster.status(i)["nodes"])
                             for i in majority))
    version = cluster.status(2)["cib_version"]
    starts_before = {i: cluster.starts(i, "app") for i in everyone}

    for index in minority:
        cluster.heal(index)
    docs = cluster.wait("one CIB, one DC, one placement everywhere",
                        lambda: _same_everywhere(cluster, everyone), timeout=20)
    assert docs[0]["cib_version"] == version  # the highest version won
    assert docs[0]["dc"] == "n0"
    assert {r["node"] for r in docs[0]["resources"]} == {"n2"}
    time.sleep(2)  # a few keepalives: nothing moves afterwards either
    assert _same_everywhere(cluster, everyone)
    assert cluster.vip_holders() == ["n2"]
    assert {i: cluster.starts(i, "app") for i in everyone} == starts_before, cluster.logs()


def test_three_node_clone_placement_everywhere_and_replaced_on_loss(make_cluster):
    cluster = make_cluster(3)
    text = cluster.path.read_text()
    # `app` leaves the group and becomes a clone on two nodes; the VIP stays a single resource.
    text = text.replace('resources = [\n    "vip",\n    "app",\n]', 'resources = [\n    "vip",\n]')
    text = text.replace('id = "app"', 'id = "app"\nclone_max = 2')
    cluster.path.write_text(text)
    cluster.start_all()

    def clone_on(indexes, nodes):
        docs = [cluster.try_status(i) for i in indexes]
        if any(d is None for d in docs):
            return None
        apps = [next(r for r in d["resources"] if r["id"] == "app") for d in docs]
        return all(a["clone"] == {"max": 2, "nodes": nodes, "failed": []} for a in apps) or None

    cluster.wait("the clone on n0 and n1, seen everywhere", lambda: clone_on(range(3), ["n0", "n1"]))
    assert cluster.vip_holders() == ["n0"]
    for index, name in enumerate(cluster.names):
        state = Path(cluster.tmp / f"app-{name}.state")
        assert state.exists() == (name in ("n0", "n1")), name
    cluster.lab.crash(1)
    cluster.wait("the n1 copy replaced on n2", lambda: clone_on([0, 2], ["n0", "n2"]))
    assert cluster.vip_holders() == ["n0"]
    assert cluster.starts(0, "app") == 1  # the surviving copy was not restarted


def test_failed_fencing_blocks_the_takeover_until_it_succeeds(make_cluster, tmp_path):
    flag = tmp_path / "fence-allowed"
    record = tmp_path / "fenced"
    cluster = make_cluster(3, fencing={"command": ["sh", "-c", f'test -e {flag} && echo "{{node}}" >> {record}'],
                                       "timeout": "5s"})
    cluster.start_all()
    cluster.wait("svc on n0 seen everywhere", lambda: all(_all_on(cluster, i, "n0") for i in range(3)))
    cluster.wait("everyone online everywhere", lambda: all(
        (d := cluster.try_status(i)) and {n["state"] for n in d["nodes"]} == {"online"} for i in range(3)))

    cluster.lab.crash(0)
    cluster.wait("the failed fencing reported by the new DC",
                 lambda: (d := cluster.try_status(1)) and d["dc"] == "n1"
                 and d["fencing"].get("n0", {}).get("state") == "failed")
    doc = cluster.status(1)
    assert "exited 1" in doc["fencing"]["n0"]["reason"]
    # Blocked: still shown where last seen (n0 may run them: nobody knows), not taken.
    assert {(r["state"], r["node"]) for r in doc["resources"]} == {("started", "n0")}
    assert [h for h in cluster.vip_holders() if h != "n0"] == []  # the crashed namespace keeps its address
    assert not (cluster.tmp / "app-n1.state").exists() and not (cluster.tmp / "app-n2.state").exists()
    assert "fencing: node=n0, ok=False" in cluster.log(1)

    flag.write_text("")
    cluster.wait("fenced on the retry, then taken over", lambda: _all_on(cluster, 1, "n1"), timeout=25)
    assert record.read_text() == "n0\n"
    assert cluster.status(1)["fencing"]["n0"]["state"] == "done"
    assert [h for h in cluster.vip_holders() if h != "n0"] == ["n1"]
