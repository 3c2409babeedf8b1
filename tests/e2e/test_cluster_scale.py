"""Clusters of 3, 8 and 16 nodes in network namespaces.

For each size: membership converges (every node sees every node online),
one DC everywhere, the same placement everywhere; then the DC, which runs
the group, crashes (processes killed, link down) and every survivor
declares it dead within deadtime + keepalive (read from the NodeDown line
in each survivor's log, against the crash time), the new DC is the same
everywhere and every node shows the group on it.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime

import pytest

from netns_cluster_harness import MARKS, MiniCluster, make_cluster  # noqa: F401 (make_cluster: the fixture)

pytestmark = MARKS

KEEPALIVE_MS = 300
DEADTIME_MS = 1500
NODE_DOWN_RE = re.compile(r"^(\S+) heartbeat\[\S+\]: NodeDown\(NodeDown\(node='(\S+)'", re.M)


def _stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f").timestamp()  # local time, as the daemon logs


def _views(cluster: MiniCluster, indexes) -> list[dict] | None:
    docs = [cluster.try_status(i) for i in indexes]
    return None if any(d is None for d in docs) else docs


def _converged(cluster: MiniCluster, indexes, online: set[str], dc: str, holder: str):
    docs = _views(cluster, indexes)
    if docs is None:
        return None
    for doc in docs:
        states = {n["name"]: n["state"] for n in doc["nodes"]}
        if {n for n, s in states.items() if s == "online"} != online or doc["dc"] != dc:
            return None
        if {(r["state"], r["node"]) for r in doc["resources"]} != {("started", holder)}:
            return None
    placements = {json.dumps([(r["id"], r["node"]) for r in d["resources"]]) for d in docs}
    return docs if len(placements) == 1 else None


@pytest.mark.parametrize("size", [3, 8, 16])
def test_membership_dc_loss_detection_and_placement(make_cluster, size):
    cluster = make_cluster(size, keepalive=f"{KEEPALIVE_MS}ms", deadtime=f"{DEADTIME_MS}ms",
                           initdead=f"{2 * DEADTIME_MS}ms")
    names = set(cluster.names)
    started = time.monotonic()
    cluster.start_all()
    cluster.wait(f"{size} nodes converged", lambda: _converged(cluster, range(size), names, "n0", "n0"),
                 timeout=20, interval=0.2)
    converged_s = time.monotonic() - started

    crashed_at = time.time()
    cluster.lab.crash(0)
    survivors = range(1, size)
    docs = cluster.wait("the survivors agree on the new DC and placement",
                        lambda: _converged(cluster, survivors, names - {"n0"}, "n1", "n1"),
                        timeout=15, interval=0.2)
    detected = {}
    for index in survivors:
        stamps = [_stamp(t) for t, node in NODE_DOWN_RE.findall(cluster.log(index)) if node == "n0"]
        assert stamps, f"n{index} logged no NodeDown for n0\n{cluster.log(index)[-2000:]}"
        detected[cluster.names[index]] = stamps[0] - crashed_at
    bound = (DEADTIME_MS + KEEPALIVE_MS) / 1000.0
    print(f"\n{size} nodes: converged in {converged_s:.2f} s; n0 declared dead after "
          f"min {min(detected.values()):.2f} s, max {max(detected.values()):.2f} s (bound {bound:.2f} s)")
    assert max(detected.values()) <= bound, detected
    assert all(doc["quorum"]["have"] for doc in docs)
    assert {doc["quorum"]["votes"] for doc in docs} == {size - 1}
