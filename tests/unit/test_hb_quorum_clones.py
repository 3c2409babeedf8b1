"""Clones: a resource or group on N nodes at once (policy, config, status)."""

from __future__ import annotations

import pytest

from heartbeat.config.loader import load_string
from heartbeat.errors import ConfigError
from heartbeat.model import (INFINITY, AgentSpec, Cib, ClusterConfig, ClusterStatus, FailRecord, GroupConfig,
                             LocationConstraint, NodeConfig, ResourceConfig, ResourceState, ResourceStatus)
from heartbeat.policy import schedule

DUMMY = AgentSpec("ocf", "heartbeat", "Dummy")


def config(n=3, clone_max=2, group=False, **extra) -> ClusterConfig:
    nodes = tuple(NodeConfig(f"n{i}", (f"10.0.0.{i}",), i) for i in range(1, n + 1))
    if group:
        resources = (ResourceConfig("a", DUMMY), ResourceConfig("b", DUMMY), ResourceConfig("vip", DUMMY))
        groups = (GroupConfig("g", ("a", "b"), clone_max=clone_max),)
    else:
        resources = (ResourceConfig("a", DUMMY, clone_max=clone_max), ResourceConfig("vip", DUMMY))
        groups = ()
    return ClusterConfig(name="c", nodes=nodes, resources=resources, groups=groups, initdead=0, **extra)


def up(*names):
    return frozenset(names)


def started(**where):
    return tuple(ResourceStatus(rid, node, ResourceState.STARTED) for node, rids in where.items() for rid in rids)


def test_clone_starts_on_clone_max_nodes_and_the_rest_as_usual():
    t = schedule(Cib(config()), ClusterStatus(online=up("n1", "n2", "n3")), 0.0)
    assert sorted(map(str, t.actions)) == ["start a on n1", "start a on n2", "start vip on n1"]
    assert dict(t.clones) == {"a": ("n1", "n2")}
    assert t.target("a") == "n1"


def test_clone_max_zero_means_every_node():
    t = schedule(Cib(config(clone_max=0)), ClusterStatus(online=up("n1", "n2", "n3")), 0.0)
    assert dict(t.clones) == {"a": ("n1", "n2", "n3")}


def test_running_copies_stay_and_a_lost_copy_is_replaced():
    cib = Cib(config())
    status = ClusterStatus(online=up("n1", "n2", "n3"), resources=started(n2=["a"], n3=["a"], n1=["vip"]))
    assert schedule(cib, status, 0.0).actions == ()  # no needless moves
    status = ClusterStatus(online=up("n1", "n3"), resources=started(n3=["a"], n1=["vip"]))
    t = schedule(cib, status, 0.0)
    assert list(map(str, t.actions)) == ["start a on n1"] and dict(t.clones) == {"a": ("n1", "n3")}


def test_location_and_bans_choose_the_nodes():
    cib = Cib(config(constraints=(LocationConstraint("l1", "a", "n3", 50),
                                  LocationConstraint("l2", "a", "n1", -INFINITY))))
    t = schedule(cib, ClusterStatus(online=up("n1", "n2", "n3")), 0.0)
    assert dict(t.clones) == {"a": ("n2", "n3")}
    failed = Cib(config(), failures=(FailRecord("a", "n2", INFINITY, 0.0),))
    t = schedule(failed, ClusterStatus(online=up("n1", "n2", "n3")), 0.0)
    assert dict(t.clones) == {"a": ("n1", "n3")}


def test_group_clone_starts_in_order_and_stops_in_reverse():
    cib = Cib(config(group=True))
    t = schedule(cib, ClusterStatus(online=up("n1", "n2", "n3")), 0.0)
    steps = [sorted(map(str, step)) for step in t.steps]
    assert ["start a on n1", "start a on n2"] in steps and ["start b on n1", "start b on n2"] in steps
    assert steps.index(["start a on n1", "start a on n2"]) < steps.index(["start b on n1", "start b on n2"])
    status = ClusterStatus(online=up("n1", "n2"), resources=started(n1=["a", "b", "vip"], n2=["a", "b"]))
    standby = Cib(config(group=True, clone_max=1), standby=frozenset({"n2"}))
    steps = [list(map(str, step)) for step in schedule(standby, status, 0.0).steps]
    assert steps == [["stop b on n2"], ["stop a on n2"]]


def test_failed_member_restarts_the_members_after_it_on_that_node():
    status = ClusterStatus(online=up("n1", "n2"), resources=(
        *started(n1=["b", "vip"], n2=["a", "b"]), ResourceStatus("a", "n1", ResourceState.FAILED, 1)))
    t = schedule(Cib(config(group=True)), status, 0.0)
    assert [list(map(str, s)) for s in t.steps] == [["stop b on n1"], ["stop a on n1"], ["start a on n1"],
                                                   ["start b on n1"]]


def test_no_quorum_stops_clones_too():
    status = ClusterStatus(online=up("n3"), resources=started(n3=["a"]), quorum=False)
    assert list(map(str, schedule(Cib(config()), status, 0.0).actions)) == ["stop a on n3"]


BASE = """
[cluster]
name = "c"
[[node]]
name = "n1"
addresses = ["10.0.0.1"]
[[node]]
name = "n2"
addresses = ["10.0.0.2"]
[[resource]]
id = "proxy"
agent = "ocf:heartbeat:Dummy"
clone_max = 0
[[resource]]
id = "vip"
agent = "ocf:heartbeat:Dummy"
"""


def test_config_clone_max_and_its_rules():
    config = load_string(BASE)
    assert config.clone_max_of("proxy") == 2 and config.clone_max_of("vip") is None
    load_string(BASE + '[[constraint]]\nkind = "colocation"\nresource = "vip"\nwith = "proxy"\n')  # clone_links
    with pytest.raises(ConfigError) as info:
        load_string(BASE + '[[constraint]]\nkind = "colocation"\nresource = "proxy"\nwith = "vip"\n')
    assert "constraint[0].resource" in str(info.value) and "colocating a clone" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_string(BASE + '[[group]]\nid = "g"\nresources = ["proxy", "vip"]\n')
    assert "set clone_max on the group" in str(info.value)


def test_status_shows_clone_placement():
    from heartbeat.controller import Controller
    from heartbeat.status import build_status, render_text
    c = Controller("n1", Cib(load_string(BASE)), send=lambda *a: None, execute=lambda *a: None,
                   clock=lambda: 0.0, schedule=schedule)
    c.set_local_status(started(n1=["proxy"]))
    c.set_online(up("n1", "n2"))
    c.on_message("hb", "n2", {"lrm_seq": 1, "resources": [{"resource": "proxy", "state": "started"}]})
    doc = build_status(c, lambda node: {}, {}, now=0.0)
    proxy = next(r for r in doc["resources"] if r["id"] == "proxy")
    assert proxy["clone"] == {"max": 2, "nodes": ["n1", "n2"], "failed": []} and proxy["state"] == "started"
    assert next(r for r in doc["resources"] if r["id"] == "vip")["clone"] is None
    assert "proxy\t(ocf:heartbeat:Dummy):\t Started [ n1 n2 ] (2 of 2)" in render_text(doc)
