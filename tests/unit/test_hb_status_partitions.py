"""heartbeat.status: what the status document tells about partitions and clones (quorum, fencing,
split brain, the nodes eligible for each clone), for check_heartbeat."""

from __future__ import annotations

from heartbeat.controller import Controller
from heartbeat.model import (INFINITY, AgentSpec, Cib, ClusterConfig, ClusterStatus, FailRecord, GroupConfig,
                             LocationConstraint, NodeConfig, ResourceConfig, ResourceState, ResourceStatus)
from heartbeat.policy import schedule
from heartbeat.status import build_status, clone_eligible, render_text

DUMMY = AgentSpec("ocf", "heartbeat", "Dummy")


def config(clone_max=2, group=False, **extra) -> ClusterConfig:
    nodes = tuple(NodeConfig(f"n{i}", (f"10.0.0.{i}",), i) for i in range(1, 4))
    if group:
        resources = (ResourceConfig("a", DUMMY), ResourceConfig("b", DUMMY), ResourceConfig("vip", DUMMY))
        groups = (GroupConfig("g", ("a", "b"), clone_max=clone_max),)
    else:
        resources = (ResourceConfig("a", DUMMY, clone_max=clone_max), ResourceConfig("vip", DUMMY))
        groups = ()
    return ClusterConfig(name="c", nodes=nodes, resources=resources, groups=groups, initdead=0, **extra)


def every(*names: str) -> ClusterStatus:
    return ClusterStatus(online=frozenset(names))


def test_eligible_nodes_are_the_policys_candidates_uncapped():
    assert clone_eligible(Cib(config()), every("n1", "n2", "n3"), 0.0) == {"a": ("n1", "n2", "n3")}
    assert clone_eligible(Cib(config()), every("n1", "n3"), 0.0) == {"a": ("n1", "n3")}
    assert clone_eligible(Cib(config(), standby=frozenset({"n2"})), every("n1", "n2", "n3"), 0.0) == {
        "a": ("n1", "n3")}
    banned = config(constraints=(LocationConstraint("l", "a", "n1", -INFINITY),))
    assert clone_eligible(Cib(banned), every("n1", "n2", "n3"), 0.0) == {"a": ("n2", "n3")}
    failed = Cib(config(), failures=(FailRecord("a", "n3", INFINITY, 0.0),))
    assert clone_eligible(failed, every("n1", "n2", "n3"), 0.0) == {"a": ("n1", "n2")}
    # A group clone: every member has the group's nodes.
    assert clone_eligible(Cib(config(group=True)), every("n1", "n2"), 0.0) == {"a": ("n1", "n2"),
                                                                                 "b": ("n1", "n2")}
    # No clone, nothing to compute; a partition without quorum (policy stop) may run nothing.
    plain = ClusterConfig(name="c", nodes=config().nodes, resources=(ResourceConfig("vip", DUMMY),), initdead=0)
    assert clone_eligible(Cib(plain), every("n1"), 0.0) == {}
    inquorate = ClusterStatus(online=frozenset({"n1"}), quorum=False)
    assert clone_eligible(Cib(config()), inquorate, 0.0) == {"a": ()}


def controller(cfg: ClusterConfig, online: tuple[str, ...], **where: list[str]) -> Controller:
    c = Controller("n1", Cib(cfg), send=lambda *a: None, execute=lambda *a: None, clock=lambda: 100.0,
                   schedule=schedule)
    c.set_local_status(tuple(ResourceStatus(rid, "n1", ResourceState.STARTED) for rid in where.get("n1", ())))
    c.set_online(frozenset(online))
    for node in online:
        if node != "n1":
            c.on_message("hb", node, {"lrm_seq": 1, "resources": [
                {"resource": rid, "state": "started"} for rid in where.get(node, ())]})
    return c


def test_status_document_has_clone_eligible_and_split_brain():
    c = controller(config(), ("n1", "n2", "n3"), n1=["a", "vip"], n3=["a"])
    doc = build_status(c, lambda node: {}, {}, now=100.0)
    a = next(r for r in doc["resources"] if r["id"] == "a")
    assert a["clone"] == {"max": 2, "nodes": ["n1", "n3"], "failed": []}
    assert a["clone_eligible"] == ["n1", "n2", "n3"]
    assert next(r for r in doc["resources"] if r["id"] == "vip")["clone_eligible"] is None
    assert doc["split_brain"] == {"detected": False}
    assert a["running_on"] == ["n1", "n3"]
    assert next(r for r in doc["resources"] if r["id"] == "vip")["running_on"] == ["n1"]
    assert doc["quorum"]["have"] is True and doc["quorum"]["expected"] == 3
    c.split_brain = {"detected": True, "at": 99.0, "nodes": ["n1", "n2"], "resources": ["vip"]}
    doc = build_status(c, lambda node: {}, {}, now=100.0)
    assert doc["split_brain"]["nodes"] == ["n1", "n2"] and doc["split_brain"]["detected"] is True
    assert "*** SPLIT BRAIN: vip ran on n1 and n2 at once ***" in render_text(doc)


def test_status_document_without_quorum():
    c = controller(config(), ("n1",), n1=["a"])
    doc = build_status(c, lambda node: {}, {}, now=100.0)
    assert doc["quorum"] == {"have": False, "votes": 1, "expected": 3, "reason": "1 of 3 votes: no majority"}
    assert doc["no_quorum_policy"] == "stop"
    assert next(r for r in doc["resources"] if r["id"] == "a")["clone_eligible"] == []


def test_a_primitive_running_twice_shows_both_nodes():
    c = controller(config(), ("n1", "n2", "n3"), n1=["vip"], n2=["vip"])
    doc = build_status(c, lambda node: {}, {}, now=100.0)
    vip = next(r for r in doc["resources"] if r["id"] == "vip")
    assert vip["node"] == "n1" and vip["running_on"] == ["n1", "n2"]
