"""Quorum: votes, the two-node ping tie-breaker, the policy's quorum flag,
the controller without quorum (no DC, local stop or freeze) and fencing."""

from __future__ import annotations

import pytest

from heartbeat import quorum
from heartbeat.config.loader import load_string
from heartbeat.controller import Controller
from heartbeat.errors import ConfigError
from heartbeat.model import (AgentSpec, Cib, ClusterConfig, ClusterStatus, FencingConfig, GroupConfig,
                             LocationConstraint, NodeConfig, ResourceConfig, ResourceState, ResourceStatus)
from heartbeat.policy import schedule

DUMMY = AgentSpec("ocf", "heartbeat", "Dummy")


def cluster(n: int, votes=None, **extra) -> ClusterConfig:
    votes = votes or [1] * n
    nodes = tuple(NodeConfig(f"n{i}", (f"10.0.0.{i}",), i, votes[i - 1]) for i in range(1, n + 1))
    return ClusterConfig(name="q", nodes=nodes, resources=(ResourceConfig("a", DUMMY), ResourceConfig("b", DUMMY)),
                         groups=(GroupConfig("g", ("a", "b")),), initdead=0, **extra)


# ---- votes ---------------------------------------------------------------------

@pytest.mark.parametrize("n, seen, have", [(3, 2, True), (3, 1, False), (5, 3, True), (5, 2, False),
                                           (8, 4, False), (8, 5, True), (16, 8, False), (16, 9, True)])
def test_majority_of_votes(n, seen, have):
    config = cluster(n)
    q = quorum.compute(config, frozenset(f"n{i}" for i in range(1, seen + 1)), "n1")
    assert (q.have, q.votes, q.expected) == (have, seen, n)


def test_votes_are_weighted():
    config = cluster(3, votes=[3, 1, 1])
    assert quorum.compute(config, frozenset({"n1"}), "n1").have  # 3 of 5
    assert not quorum.compute(config, frozenset({"n2", "n3"}), "n2").have  # 2 of 5


# ---- two nodes -------------------------------------------------------------------

def test_two_nodes_together_or_without_ping_have_quorum():
    config = cluster(2)
    assert quorum.compute(config, frozenset({"n1", "n2"}), "n1").have
    assert quorum.compute(config, frozenset({"n2"}), "n2").have  # Heartbeat's rule without targets


def test_ping_tie_breaker_more_targets_wins():
    config = cluster(2, ping=("192.0.2.1", "192.0.2.2"))
    assert quorum.compute(config, frozenset({"n2"}), "n2", reach=2, peer_reach={"n1": 1}).have
    assert not quorum.compute(config, frozenset({"n1"}), "n1", reach=1, peer_reach={"n2": 2}).have


def test_ping_tie_breaker_equal_goes_to_the_preferred_node():
    config = cluster(2, ping=("192.0.2.1",), constraints=(LocationConstraint("l", "g", "n2", 100),))
    assert quorum.preferred_node(config) == "n2"
    assert quorum.compute(config, frozenset({"n2"}), "n2", reach=1, peer_reach={"n1": 1}).have
    assert not quorum.compute(config, frozenset({"n1"}), "n1", reach=1, peer_reach={"n2": 1}).have
    plain = cluster(2, ping=("192.0.2.1",))
    assert quorum.preferred_node(plain) == "n1"  # no constraints: file order
    # A peer never heard counts as a tie: only the preferred node runs alone.
    assert quorum.compute(plain, frozenset({"n1"}), "n1", reach=1).have
    assert not quorum.compute(plain, frozenset({"n2"}), "n2", reach=1).have


# ---- configuration ---------------------------------------------------------------

CONFIG = """
[cluster]
name = "q"
no_quorum_policy = "freeze"
ping = ["192.0.2.1", "192.0.2.2:22"]
fencing = { command = ["/usr/sbin/fence", "{node}"], timeout = "5s" }
[[node]]
name = "n1"
addresses = ["10.0.0.1"]
votes = 2
[[node]]
name = "n2"
addresses = ["10.0.0.2"]
"""


def test_config_keys():
    config = load_string(CONFIG)
    assert config.no_quorum_policy == "freeze"
    assert config.ping == ("192.0.2.1", "192.0.2.2:22")
    assert config.fencing == FencingConfig(("/usr/sbin/fence", "{node}"), 5000)
    assert [n.votes for n in config.nodes] == [2, 1]
    defaults = load_string(CONFIG.replace('no_quorum_policy = "freeze"\n', "").replace("votes = 2\n", ""))
    assert defaults.no_quorum_policy == "stop" and defaults.nodes[0].votes == 1


def test_config_rejects_a_bad_policy_and_target():
    with pytest.raises(ConfigError) as info:
        load_string(CONFIG.replace('"freeze"', '"panic"').replace('"192.0.2.1"', '"nowhere"'))
    text = str(info.value)
    assert "cluster.no_quorum_policy" in text and "cluster.ping[0]" in text


# ---- the policy's quorum flag ----------------------------------------------------------

def running(node, *rids):
    return tuple(ResourceStatus(r, node, ResourceState.STARTED) for r in rids)


@pytest.mark.parametrize("policy, actions", [
    ("stop", ["stop b on n3", "stop a on n3"]), ("freeze", []), ("ignore", [])])
def test_policy_without_quorum(policy, actions):
    cib = Cib(cluster(3, no_quorum_policy=policy))
    status = ClusterStatus(online=frozenset({"n3"}), resources=running("n3", "a", "b"), quorum=False)
    transition = schedule(cib, status, 0.0)
    assert [str(a) for a in transition.actions] == actions
    if policy == "freeze":
        assert transition.target("a") == "n3" and "freeze" in transition.reasons[0]


def test_policy_frozen_partition_starts_nothing():
    cib = Cib(cluster(3, no_quorum_policy="freeze"))
    status = ClusterStatus(online=frozenset({"n3"}), quorum=False)
    assert schedule(cib, status, 0.0).actions == ()


def test_policy_blocks_resources_of_an_unclean_node():
    cib = Cib(cluster(3))
    status = ClusterStatus(online=frozenset({"n2", "n3"}), resources=running("n1", "a", "b"),
                           unclean=frozenset({"n1"}))
    transition = schedule(cib, status, 0.0)
    assert transition.actions == ()
    assert any("not fenced" in r for r in transition.reasons)
    fenced = ClusterStatus(online=frozenset({"n2", "n3"}), resources=running("n1", "a", "b"))
    assert [str(a) for a in schedule(cib, fenced, 0.0).actions] == ["start a on n2", "start b on n2"]


# ---- the controller ----------------------------------------------------------------------

class Harness:
    def __init__(self, config, local="n1"):
        self.now = 1000.0
        self.sent, self.executed, self.fenced, self.events = [], [], [], []
        self.controller = Controller(local, Cib(config), send=lambda *a: self.sent.append(a),
                                     execute=lambda *a: self.executed.append(a), clock=lambda: self.now,
                                     schedule=schedule, fence=self.fenced.append,
                                     publish=lambda kind, fields: self.events.append((kind, fields)))

    def finish(self, index=-1, rc=0):
        action_id, kind, resource = self.executed[index]
        state = ResourceState.STARTED if kind == "start" else ResourceState.STOPPED
        self.controller.action_done(action_id, kind, resource, rc, "ok", state, rc != 0)


def test_minority_has_no_dc_and_stops_its_resources_alone():
    h = Harness(cluster(3), local="n3")
    c = h.controller
    c.set_local_status(running("n3", "a", "b"))
    c.set_online(frozenset({"n1", "n2", "n3"}))
    assert c.quorum.have and c.dc == "n1"
    c.set_online(frozenset({"n3"}), lost=("n1", "n2"))
    assert not c.quorum.have and c.dc is None
    assert ("quorum", {"node": "n3", **c.quorum.as_dict()}) in h.events
    c.pulse()
    assert [e[1:] for e in h.executed] == [("stop", "b")]
    c.pulse()  # one step at a time
    assert len(h.executed) == 1
    h.finish()
    c.pulse()
    assert [e[1:] for e in h.executed] == [("stop", "b"), ("stop", "a")]
    assert not [s for s in h.sent if s[0] == "result"]  # no DC to report to


def test_frozen_minority_keeps_its_resources():
    h = Harness(cluster(3, no_quorum_policy="freeze"), local="n3")
    c = h.controller
    c.set_local_status(running("n3", "a", "b"))
    c.set_online(frozenset({"n3"}))
    c.pulse()
    assert h.executed == [] and c.dc is None


def test_two_node_loser_of_the_tie_breaker_stops():
    h = Harness(cluster(2, ping=("192.0.2.1",)), local="n2")
    c = h.controller
    c.set_local_status(running("n2", "a", "b"))
    c.set_online(frozenset({"n1", "n2"}))
    c.set_reach(1)
    c.on_message("hb", "n1", {"lrm_seq": 1, "reach": 1, "resources": []})
    c.set_online(frozenset({"n2"}), lost=("n1",))
    assert not c.quorum.have  # equal reach, n1 preferred (file order)
    c.pulse()
    assert [e[1:] for e in h.executed] == [("stop", "b")]
    c.set_reach(0)
    c.on_message("hb", "n1", {"lrm_seq": 2, "reach": 0})
    assert not c.quorum.have
    c.set_reach(1)  # we reach more than the peer said: we win
    assert c.quorum.have and c.dc == "n2"


def test_fencing_before_takeover_and_its_failure_blocks():
    config = cluster(3, fencing=FencingConfig(("fence", "{node}")))
    h = Harness(config, local="n2")
    c = h.controller
    c.set_online(frozenset({"n1", "n2", "n3"}))
    h.now += 2  # past the settling time that follows gaining quorum
    c.on_message("hb", "n1", {"lrm_seq": 1, "resources": [{"resource": "a", "state": "started"},
                                                          {"resource": "b", "state": "started"}]})
    c.set_online(frozenset({"n2", "n3"}), lost=("n1",))
    assert c.dc == "n2" and "n1" in c.unclean
    c.pulse()
    assert h.fenced == ["n1"] and h.executed == []  # nothing taken before the hook answers
    c.fence_done("n1", False, "fence exited 1")
    c.pulse()
    assert h.executed == [] and c.fencing["n1"]["state"] == "failed"
    assert ("fencing", {"node": "n1", "ok": False, "reason": "fence exited 1", "at": h.now}) in h.events
    h.now += 11  # retried later
    c.pulse()
    assert h.fenced == ["n1", "n1"]
    c.fence_done("n1", False, "fence exited 1")  # the same failure again: logged, not announced again
    assert [e for e in h.events if e[0] == "fencing"] == [
        ("fencing", {"node": "n1", "ok": False, "reason": "fence exited 1", "at": h.now - 11})]
    assert ("fencing-retry-failed", {"node": "n1", "ok": False, "reason": "fence exited 1", "at": h.now,
                                     "failures": 2}) in h.events
    h.now += 11
    c.pulse()
    assert h.fenced == ["n1", "n1", "n1"] and h.executed == []
    c.fence_done("n1", True, "fence exited 0")
    assert ("fencing", {"node": "n1", "ok": True, "reason": "fence exited 0", "at": h.now}) in h.events
    c.pulse()
    assert [e[1:] for e in h.executed] == [("start", "a")]
    assert c.fencing["n1"]["state"] == "done"


def test_no_fencing_configured_takes_over_at_once():
    h = Harness(cluster(3), local="n2")
    c = h.controller
    c.set_online(frozenset({"n1", "n2", "n3"}))
    h.now += 2
    c.on_message("hb", "n1", {"lrm_seq": 1, "resources": [{"resource": "a", "state": "started"}]})
    c.set_online(frozenset({"n2", "n3"}), lost=("n1",))
    c.pulse()
    assert h.fenced == [] and [e[1:] for e in h.executed] == [("start", "a")]


def test_status_reports_quorum_and_fencing():
    from heartbeat.status import build_status, render_text
    config = cluster(3, fencing=FencingConfig(("fence", "{node}")))
    h = Harness(config, local="n3")
    h.controller.set_online(frozenset({"n3"}))
    h.controller.fencing["n1"] = {"state": "failed", "at": 5.0, "reason": "fence exited 1"}
    doc = build_status(h.controller, lambda node: {}, {}, now=1.0)
    assert doc["quorum"] == {"have": False, "votes": 1, "expected": 3, "reason": "1 of 3 votes: no majority"}
    assert doc["dc"] is None and doc["no_quorum_policy"] == "stop"
    assert doc["fencing"] == {"n1": {"state": "failed", "at": 5.0, "reason": "fence exited 1"}}
    text = render_text(doc)
    assert "Partition WITHOUT quorum: 1 of 3 votes" in text and "Fencing of n1: failed (fence exited 1)" in text


def test_a_dc_that_just_gained_quorum_waits_to_hear_the_rejoining_nodes():
    h = Harness(cluster(3, keepalive=200), local="n1")
    c = h.controller
    c.set_online(frozenset({"n1", "n2"}))  # 2 of 3: quorum regained
    c.pulse()
    assert h.executed == []  # n3 may still report that it runs the group
    h.now += 0.2
    c.on_message("hb", "n3", {"lrm_seq": 1, "resources": [{"resource": "a", "state": "started"},
                                                          {"resource": "b", "state": "started"}]})
    c.set_online(frozenset({"n1", "n2", "n3"}))
    h.now += 0.2
    c.pulse()
    assert h.executed == [] and c.last_transition is not None and c.last_transition.actions == ()


def test_a_node_alone_after_start_waits_initdead_before_stopping():
    config = ClusterConfig(**{**cluster(3).__dict__, "initdead": 3000})
    h = Harness(config, local="n3")
    c = h.controller
    c.set_local_status(running("n3", "a", "b"))  # found running by the start-up probe
    c.pulse()
    assert h.executed == [] and not c.quorum.have
    h.now += 3
    c.pulse()
    assert [e[1:] for e in h.executed] == [("stop", "b")]


def test_probes_run_reach_and_fencing():
    from heartbeat import probes
    assert probes.run_fencing(("sh", "-c", "echo fenced {node}"), "n2", 5000) == (True, "sh exited 0: fenced n2")
    assert probes.run_fencing(("sh", "-c", "yes | head -c 200000; exit 3"), "n2", 5000)[0] is False
    ok, reason = probes.run_fencing(("sleep", "5"), "n2", 200)
    assert not ok and "timed out after 200 ms" in reason
    ok, reason = probes.run_fencing(("/nonexistent/fence",), "n2", 200)
    assert not ok and reason.startswith("/nonexistent/fence exited 127: cannot run")
    assert probes.reach(("127.0.0.1", "127.0.0.1:1")) == 2  # ICMP echo, and a TCP refusal that answers
