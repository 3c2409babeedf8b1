"""Colocations with clones and orders after clones (heartbeat/policy/clone_links.py),
the loader's rules for them, and random clusters mixing clones and constraints."""

from __future__ import annotations

import random

import pytest

from heartbeat.config.loader import load_string
from heartbeat.errors import ConfigError
from heartbeat.model import (INFINITY, MINUS_INFINITY, AgentSpec, Cib, ClusterConfig, ClusterStatus,
                             ColocationConstraint, FailRecord, GroupConfig, LocationConstraint, NodeConfig,
                             OrderConstraint, ResourceConfig, ResourceState, ResourceStatus, Transition)
from heartbeat.policy import schedule
from heartbeat.policy.simulate import apply

DUMMY = AgentSpec("ocf", "heartbeat", "Dummy")
NOW = 10_000.0


def cluster(n: int = 2, constraints=(), clone_max: int = 0, **res_meta) -> ClusterConfig:
    """gproxy cloned, vip and app plain; `constraints` as given."""
    nodes = tuple(NodeConfig(f"n{i}", (f"10.0.0.{i}",), i) for i in range(1, n + 1))
    resources = (ResourceConfig("gproxy", DUMMY, clone_max=clone_max, **res_meta),
                 ResourceConfig("vip", DUMMY), ResourceConfig("app", DUMMY, target_role="stopped"))
    return ClusterConfig(name="c", nodes=nodes, resources=resources, constraints=tuple(constraints))


VIP_WITH_GPROXY = (ColocationConstraint("co", "vip", "gproxy"), OrderConstraint("o", "gproxy", "vip"),
                   LocationConstraint("pref", "vip", "n1", 100))


def status(online=("n1", "n2"), failed=(), **where) -> ClusterStatus:
    entries = [ResourceStatus(rid, node, ResourceState.STARTED) for node, rids in where.items() for rid in rids]
    entries += [ResourceStatus(rid, node, ResourceState.FAILED, rc=1) for rid, node in failed]
    return ClusterStatus(online=frozenset(online), resources=tuple(entries))


def steps(t: Transition) -> list[list[str]]:
    return [[str(a) for a in step] for step in t.steps]


def position(t: Transition, text: str) -> int:
    for index, step in enumerate(t.steps):
        if text in map(str, step):
            return index
    raise AssertionError(f"{text!r} not in {steps(t)}")


# ---- colocation ---------------------------------------------------------------

def test_infinity_colocation_keeps_the_resource_on_nodes_with_a_copy():
    config = cluster(3, VIP_WITH_GPROXY, clone_max=2,)
    config = ClusterConfig(**{**config.__dict__, "constraints": config.constraints
                              + (LocationConstraint("no-n1", "gproxy", "n1", MINUS_INFINITY),)})
    t = schedule(Cib(config), status(online=("n1", "n2", "n3")), NOW)
    assert dict(t.clones)["gproxy"] == ("n2", "n3")
    assert t.target("vip") == "n2"  # n1 is preferred (100) but has no copy
    assert position(t, "start gproxy on n2") < position(t, "start vip on n2")


def test_infinity_colocation_keeps_the_resources_own_preferences_among_copies():
    t = schedule(Cib(cluster(2, VIP_WITH_GPROXY)), status(n2=["gproxy", "vip"]), NOW)
    assert t.target("vip") == "n1"  # failback: both nodes have a copy, n1 scores 100
    assert steps(t) == [["start gproxy on n1"], ["stop vip on n2"], ["start vip on n1"]]


def test_clone_running_nowhere_stops_its_dependent():
    config = cluster(2, VIP_WITH_GPROXY, target_role="stopped")
    t = schedule(Cib(config), status(n1=["gproxy", "vip"], n2=["gproxy"]), NOW)
    assert t.target("vip") is None
    assert steps(t) == [["stop vip on n1"], ["stop gproxy on n1", "stop gproxy on n2"]]
    assert "vip: cannot run: gproxy runs on no node (colocation co)" in t.reasons


def test_minus_infinity_colocation_avoids_every_copy():
    config = cluster(3, (ColocationConstraint("apart", "vip", "gproxy", MINUS_INFINITY),), clone_max=2)
    t = schedule(Cib(config), status(online=("n1", "n2", "n3")), NOW)
    assert dict(t.clones)["gproxy"] == ("n1", "n2") and t.target("vip") == "n3"
    t = schedule(Cib(cluster(2, (ColocationConstraint("apart", "vip", "gproxy", MINUS_INFINITY),))),
                 status(), NOW)
    assert t.target("vip") is None  # a copy on every node


@pytest.mark.parametrize("score, expected", [(50, "n1"), (200, "n2")])
def test_finite_colocation_is_a_preference(score: int, expected: str):
    constraints = (ColocationConstraint("co", "vip", "gproxy", score), LocationConstraint("p", "vip", "n1", 100),
                   LocationConstraint("g", "gproxy", "n1", MINUS_INFINITY))
    t = schedule(Cib(cluster(2, constraints)), status(), NOW)
    assert dict(t.clones)["gproxy"] == ("n2",) and t.target("vip") == expected


def test_colocation_of_a_group_with_a_cloned_group_member():
    nodes = tuple(NodeConfig(f"n{i}", (f"10.0.0.{i}",), i) for i in (1, 2, 3))
    config = ClusterConfig(
        name="c", nodes=nodes,
        resources=tuple(ResourceConfig(r, DUMMY) for r in ("proxy", "tls", "vip", "web")),
        groups=(GroupConfig("front", ("proxy", "tls"), clone_max=2), GroupConfig("svc", ("vip", "web"))),
        constraints=(ColocationConstraint("co", "svc", "tls"), OrderConstraint("o", "front", "svc"),
                     LocationConstraint("p", "svc", "n3", 100)))
    t = schedule(Cib(config), status(online=("n1", "n2", "n3")), NOW)
    assert dict(t.clones)["tls"] == ("n1", "n2") and t.target("vip") == t.target("web") == "n1"
    # the group starts after every member of the copy on its node
    assert position(t, "start tls on n1") < position(t, "start vip on n1") < position(t, "start web on n1")
    assert again_nothing(Cib(config), status(online=("n1", "n2", "n3")), t)


# ---- order ----------------------------------------------------------------------

def test_order_after_a_clone_that_runs_nowhere_cannot_start():
    config = cluster(2, (OrderConstraint("o", "gproxy", "vip"),), target_role="stopped")
    t = schedule(Cib(config), status(n1=["vip"]), NOW)
    assert t.target("vip") is None and steps(t) == [["stop vip on n1"]]
    assert "vip: cannot start: gproxy runs on no node (order o)" in t.reasons


def test_order_without_a_local_copy_waits_for_every_copy():
    constraints = (OrderConstraint("o", "gproxy", "vip"), LocationConstraint("p", "vip", "n3", INFINITY),
                   LocationConstraint("g", "gproxy", "n3", MINUS_INFINITY))
    t = schedule(Cib(cluster(3, constraints, clone_max=2)), status(online=("n1", "n2", "n3")), NOW)
    assert steps(t) == [["start gproxy on n1", "start gproxy on n2"], ["start vip on n3"]]


def test_copy_recovering_under_the_resource_restarts_it_around_the_copy():
    t = schedule(Cib(cluster(2, VIP_WITH_GPROXY)),
                 status(failed=[("gproxy", "n1")], n1=["vip"], n2=["gproxy"]), NOW)
    assert steps(t) == [["stop vip on n1"], ["stop gproxy on n1"], ["start gproxy on n1"], ["start vip on n1"]]
    assert "vip: restart on n1: gproxy restarts there (order o)" in t.reasons


def test_copy_recovering_on_another_node_does_not_touch_the_resource():
    t = schedule(Cib(cluster(2, VIP_WITH_GPROXY)),
                 status(failed=[("gproxy", "n2")], n1=["gproxy", "vip"]), NOW)
    assert steps(t) == [["stop gproxy on n2"], ["start gproxy on n2"]]


def test_copy_leaving_the_node_moves_the_resource_before_the_copy_stops():
    config = cluster(2, VIP_WITH_GPROXY, migration_threshold=1)
    cib = Cib(config, failures=(FailRecord("gproxy", "n1", 1, NOW - 5),))
    t = schedule(cib, status(failed=[("gproxy", "n1")], n1=["vip"], n2=["gproxy"]), NOW)
    assert steps(t) == [["stop vip on n1"], ["start vip on n2"], ["stop gproxy on n1"]]


def test_optional_order_only_orders():
    config = cluster(2, (ColocationConstraint("co", "vip", "gproxy"),
                         OrderConstraint("o", "gproxy", "vip", kind="optional")))
    t = schedule(Cib(config), status(), NOW)
    assert steps(t) == [["start gproxy on n1", "start gproxy on n2"], ["start vip on n1"]]
    # a copy starting under the running VIP does not restart it
    t = schedule(Cib(config), status(n1=["vip"], n2=["gproxy"]), NOW)
    assert steps(t) == [["start gproxy on n1"]]


def test_unrelated_clone_actions_keep_their_old_places():
    """No link: clone stops first, clone starts last, as before clone_links."""
    config = cluster(3, (), clone_max=1)
    config = ClusterConfig(**{**config.__dict__, "constraints": (LocationConstraint("l", "gproxy", "n2", 10),)})
    t = schedule(Cib(config), status(online=("n1", "n2", "n3"), n1=["gproxy"], n3=["vip"]), NOW)
    assert steps(t) == [["stop gproxy on n1"], ["start gproxy on n2"]]


# ---- the reverse: a clone ordered after a resource --------------------------------

REVERSE = (OrderConstraint("rev", "vip", "gproxy"), LocationConstraint("pref", "vip", "n1", 100))


def test_clone_after_a_resource_starts_after_it():
    t = schedule(Cib(cluster(2, REVERSE)), status(), NOW)
    assert steps(t) == [["start vip on n1"], ["start gproxy on n1", "start gproxy on n2"]]
    assert not t.reasons  # nothing was running: no restart to explain


def test_clone_after_a_resource_that_cannot_run_runs_nowhere_and_stops_first():
    config = cluster(2, REVERSE + (LocationConstraint("ban1", "vip", "n1", MINUS_INFINITY),
                                   LocationConstraint("ban2", "vip", "n2", MINUS_INFINITY)))
    t = schedule(Cib(config), status(n1=["vip", "gproxy"], n2=["gproxy"]), NOW)
    assert dict(t.clones)["gproxy"] == ()
    assert steps(t) == [["stop gproxy on n1", "stop gproxy on n2"], ["stop vip on n1"]]
    assert "gproxy: cannot start: vip is not running (order rev)" in t.reasons


def test_clone_restarts_everywhere_when_the_resource_moves():
    t = schedule(Cib(cluster(2, REVERSE)), status(n1=["gproxy"], n2=["vip", "gproxy"]), NOW)
    assert steps(t) == [["stop gproxy on n1", "stop gproxy on n2"], ["stop vip on n2"], ["start vip on n1"],
                        ["start gproxy on n1", "start gproxy on n2"]]
    assert "gproxy: restart on every node: vip moves (order rev)" in t.reasons


def test_a_copy_failing_leaves_the_resource_alone_in_the_reverse_order():
    t = schedule(Cib(cluster(2, REVERSE)), status(failed=[("gproxy", "n2")], n1=["vip", "gproxy"]), NOW)
    assert steps(t) == [["stop gproxy on n2"], ["start gproxy on n2"]]


def test_both_directions_chain_a_resource_a_clone_and_a_dependent():
    """fs -> clone -> vip: vip starts after the copy on its node, which starts after fs."""
    nodes = tuple(NodeConfig(f"n{i}", (f"10.0.0.{i}",), i) for i in (1, 2))
    config = ClusterConfig(
        name="c", nodes=nodes,
        resources=(ResourceConfig("fs", DUMMY), ResourceConfig("gproxy", DUMMY, clone_max=0),
                   ResourceConfig("vip", DUMMY)),
        constraints=(OrderConstraint("a", "fs", "gproxy"), OrderConstraint("b", "gproxy", "vip"),
                     ColocationConstraint("co", "vip", "gproxy"), LocationConstraint("p", "vip", "n2", 10)))
    t = schedule(Cib(config), status(), NOW)
    assert steps(t) == [["start fs on n1"], ["start gproxy on n1", "start gproxy on n2"], ["start vip on n2"]]
    # fs moves: every copy restarts, so the VIP restarts around the copy on its node
    moved = schedule(Cib(config, standby=frozenset({"n1"})),
                     status(n1=["fs", "gproxy"], n2=["gproxy", "vip"]), NOW)
    order = [a for step in steps(moved) for a in step]
    assert order.index("stop vip on n2") < order.index("stop gproxy on n2") < order.index("stop fs on n1")
    assert order.index("start fs on n2") < order.index("start gproxy on n2") < order.index("start vip on n2")
    assert again_nothing(Cib(config, standby=frozenset({"n1"})), status(n1=["fs", "gproxy"],
                                                                         n2=["gproxy", "vip"]), moved)


# ---- the loader -----------------------------------------------------------------

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
[[resource]]
id = "tls"
agent = "ocf:heartbeat:Dummy"
[[resource]]
id = "vip"
agent = "ocf:heartbeat:Dummy"
[[resource]]
id = "other"
agent = "ocf:heartbeat:Dummy"
clone_max = 0
[[resource]]
id = "extra"
agent = "ocf:heartbeat:Dummy"
[[group]]
id = "front"
resources = ["proxy", "tls"]
clone_max = 0
"""


def constraint(kind: str, **keys: str) -> str:
    return "[[constraint]]\n" + f'kind = "{kind}"\n' + "".join(f'{k} = "{v}"\n' for k, v in keys.items())


@pytest.mark.parametrize("text", [
    constraint("colocation", resource="vip", **{"with": "front"}),
    constraint("colocation", resource="vip", **{"with": "tls"}),  # a member of the cloned group
    constraint("order", first="front", then="vip"),
    constraint("order", first="proxy", then="vip"),
    constraint("order", first="vip", then="front"),  # the reverse: a whole clone after a resource
    constraint("order", first="vip", then="other"),
])
def test_supported_forms_load(text: str):
    config = load_string(BASE + text)
    assert len(config.constraints) == 1


@pytest.mark.parametrize("text, key, words", [
    (constraint("colocation", resource="front", **{"with": "vip"}), "constraint[0].resource",
     '"front" is a clone: colocating a clone with a resource is not supported'),
    (constraint("colocation", resource="other", **{"with": "front"}), "constraint[0].resource",
     "colocating a clone with another clone is not supported"),
    (constraint("order", first="vip", then="tls"), "constraint[0].then",
     '"tls" is a member of the cloned group "front": order the whole clone ("front") after "vip"'),
    (constraint("order", first="front", then="other"), "constraint[0].then",
     "ordering a clone after another clone is not supported"),
    (constraint("colocation", resource="vip", **{"with": "front"}) + constraint("order", first="vip", then="front"),
     "constraint[1].then", '"vip" already follows "front" (constraint[0]), so each would wait for the other'),
    (constraint("order", first="front", then="vip") + '[[group]]\nid = "g"\nresources = ["vip", "extra"]\n'
     + constraint("order", first="extra", then="front"), "constraint[1].then", "so each would wait"),
    (constraint("colocation", resource="vip", **{"with": "tls"}) + constraint("order", first="vip", then="front"),
     "constraint[1].then", '"vip" already follows "front" (constraint[0])'),
])
def test_unsupported_forms_name_the_key_and_the_reason(text: str, key: str, words: str):
    with pytest.raises(ConfigError) as info:
        load_string(BASE + text)
    message = str(info.value)
    assert key in message and words in message


# ---- random clusters ----------------------------------------------------------------

def random_cluster(seed: int) -> tuple[Cib, ClusterStatus]:
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(1, rng.randint(2, 4) + 1)]
    nodes = tuple(NodeConfig(n, (f"10.0.0.{i}",), i) for i, n in enumerate(names, 1))
    clone_max = rng.choice((0, 1, 2))
    resources = [ResourceConfig("c", DUMMY, clone_max=clone_max, migration_threshold=rng.choice((0, 1))),
                 ResourceConfig("v", DUMMY), ResourceConfig("w", DUMMY), ResourceConfig("x", DUMMY)]
    groups = (GroupConfig("g", ("v", "w")),) if rng.random() < 0.3 else ()
    dependent = "g" if groups and rng.random() < 0.5 else rng.choice(("v", "w"))
    constraints = [LocationConstraint(f"l{i}", rng.choice(("c", "v", "w")), rng.choice(names),
                                      rng.choice((MINUS_INFINITY, -10, 50, 100, INFINITY))) for i in range(3)]
    if rng.random() < 0.8:
        constraints.append(ColocationConstraint("co", dependent, "c", rng.choice((INFINITY, INFINITY, 100,
                                                                                 MINUS_INFINITY))))
    if rng.random() < 0.8:
        constraints.append(OrderConstraint("o", "c", dependent, kind=rng.choice(("mandatory", "optional")),
                                           symmetrical=rng.random() < 0.8))
    free = ["x"] + [r for r in ("v", "w") if r != dependent and not groups]  # nothing that follows c
    if free and rng.random() < 0.4:  # the reverse: the clone after a resource that does not follow it
        constraints.append(OrderConstraint("rev", rng.choice(free), "c", kind=rng.choice(("mandatory", "optional")),
                                           symmetrical=rng.random() < 0.8))
    config = ClusterConfig(name="r", nodes=nodes, resources=tuple(resources), groups=groups,
                           constraints=tuple(constraints))
    online = [n for n in names if rng.random() < 0.85] or [names[0]]
    entries = []
    for rid in ("c", "v", "w", "x"):
        for node in names:
            if rng.random() < 0.3:
                state = ResourceState.FAILED if rng.random() < 0.2 else ResourceState.STARTED
                entries.append(ResourceStatus(rid, node, state, rc=1 if state == ResourceState.FAILED else 0))
    failures = tuple(FailRecord(e.resource, e.node, 1, NOW - 5) for e in entries if e.state == ResourceState.FAILED)
    standby = frozenset(n for n in names if rng.random() < 0.15)
    return (Cib(config, standby=standby, failures=failures),
            ClusterStatus(online=frozenset(online), resources=tuple(entries)))


def again_nothing(cib: Cib, st: ClusterStatus, t: Transition) -> bool:
    later = schedule(cib, apply(st, t), NOW)
    return later.actions == () and later.placement == t.placement


@pytest.mark.parametrize("seed", range(400))
def test_random_clusters_converge_and_honour_the_links(seed: int):
    cib, st = random_cluster(seed)
    t = schedule(cib, st, NOW)
    assert schedule(cib, st, NOW) == t
    assert again_nothing(cib, st, t), (seed, steps(t))
    copies = set(dict(t.clones).get("c", ()))
    for c in cib.config.constraints:
        if isinstance(c, ColocationConstraint):
            members = ("v", "w") if c.resource == "g" else (c.resource,)
            for rid in members:
                node = t.target(rid)
                if node is not None and c.score >= INFINITY:
                    assert node in copies, (seed, rid, node, copies)
                if node is not None and c.score <= MINUS_INFINITY:
                    assert node not in copies, (seed, rid, node, copies)
        if isinstance(c, OrderConstraint) and c.then == "c":
            if c.kind == "mandatory" and copies:
                assert t.target(c.first) is not None, seed
            for start in [a for a in t.actions if a.kind == "start" and a.resource == "c"]:
                for first in [a for a in t.actions if a.kind == "start" and a.resource == c.first]:
                    assert position(t, str(first)) < position(t, str(start)), (seed, steps(t))
            for stop in [a for a in t.actions if a.kind == "stop" and a.resource == c.first and c.symmetrical]:
                for copy in [a for a in t.actions if a.kind == "stop" and a.resource == "c"]:
                    assert position(t, str(copy)) < position(t, str(stop)), (seed, steps(t))
        elif isinstance(c, OrderConstraint):
            members = ("v", "w") if c.then == "g" else (c.then,)
            for rid in members:
                if c.kind == "mandatory" and not copies:
                    assert t.target(rid) is None, seed
                for action in t.actions:
                    if action.kind == "start" and action.resource == rid:
                        local = [a for a in t.actions if a.kind == "start" and a.resource == "c"
                                 and (a.node == action.node or action.node not in copies)]
                        for first in local:
                            assert position(t, str(first)) < position(t, str(action)), (seed, steps(t))
                    if action.kind == "stop" and action.resource == rid and c.symmetrical:
                        for stop in t.actions:
                            if stop.kind == "stop" and stop.resource == "c" and stop.node == action.node:
                                assert position(t, str(action)) < position(t, str(stop)), (seed, steps(t))
