"""Unit tests of the policy engine's steps (unpack, scores, placement,
actions, notes) and of schedule()'s contract; whole scenarios live in the
golden corpus (test_policy_cases.py), random ones in test_policy_properties.py."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from heartbeat.model import (
    INFINITY,
    MINUS_INFINITY,
    AgentSpec,
    Action,
    Cib,
    ClusterConfig,
    ClusterStatus,
    ColocationConstraint,
    FailRecord,
    GroupConfig,
    LocationConstraint,
    MoveConstraint,
    NodeConfig,
    OrderConstraint,
    ResourceConfig,
    ResourceState,
    ResourceStatus,
)
from heartbeat.policy import schedule
from heartbeat.policy.actions import order_pairs
from heartbeat.policy.notes import Note, select
from heartbeat.policy.placement import score_text, units
from heartbeat.policy.scores import node_scores
from heartbeat.policy.unpack import stickiness, unpack

NOW = 10_000.0
DUMMY = AgentSpec("ocf", "heartbeat", "Dummy")
STARTED = ResourceState.STARTED
FAILED = ResourceState.FAILED


def res(rid: str, **meta) -> ResourceConfig:
    return ResourceConfig(rid, DUMMY, **meta)


def cluster(*resources: ResourceConfig, nodes: int = 2, groups=(), constraints=(), **options) -> ClusterConfig:
    return ClusterConfig(name="t", nodes=tuple(NodeConfig(f"n{i}", (f"192.0.2.{i}",), i) for i in range(1, nodes + 1)),
                         resources=resources, groups=tuple(groups), constraints=tuple(constraints), **options)


def running(*entries: tuple[str, str], online=("n1", "n2"), state=STARTED) -> ClusterStatus:
    return ClusterStatus(frozenset(online), tuple(ResourceStatus(r, n, state) for r, n in entries))


def esup(**options) -> ClusterConfig:
    return cluster(res("vip"), res("proxy"), res("tls"), groups=[GroupConfig("esup", ("vip", "proxy", "tls"))],
                   constraints=[LocationConstraint("pref", "esup", "n1", 100)], **options)


ON_N2 = (("vip", "n2"), ("proxy", "n2"), ("tls", "n2"))


# ---- unpack -------------------------------------------------------------------

def test_failure_expires_exactly_at_failure_timeout_but_fatal_never_does():
    config = cluster(res("a", failure_timeout=60_000), res("b", failure_timeout=60_000))
    cib = Cib(config, failures=(FailRecord("a", "n1", 3, NOW - 60), FailRecord("a", "n2", 1, NOW - 59.9),
                                FailRecord("b", "n1", 1, NOW - 3600, last_rc=6, hard=True)))
    view = unpack(cib, running(), NOW)
    assert [(f.resource, f.node) for f in view.failures] == [("a", "n2"), ("b", "n1")]
    assert [n.text for n in view.notes] == ["a: failure on n1 expired (failure-timeout 1m)"]


def test_cluster_failure_timeout_applies_when_the_resource_has_none():
    cib = Cib(cluster(res("a"), failure_timeout=10_000), failures=(FailRecord("a", "n1", 1, NOW - 11),))
    assert unpack(cib, running(), NOW).failures == ()
    cib = Cib(cluster(res("a", failure_timeout=0), failure_timeout=10_000),
              failures=(FailRecord("a", "n1", 1, NOW - 11),))
    assert len(unpack(cib, running(), NOW).failures) == 1  # the resource's 0 = never


def test_moves_expire_at_their_time_and_the_last_one_wins():
    cib = Cib(esup(), moves=(MoveConstraint("esup", "n2"), MoveConstraint("esup", "n1", expires=NOW + 1),
                             MoveConstraint("vip", "n2", expires=NOW)))
    view = unpack(cib, running(), NOW)
    assert view.moves == {"esup": MoveConstraint("esup", "n1", expires=NOW + 1)}
    assert [n.text for n in view.notes] == ["vip: move to n2 expired"]


def test_reports_from_offline_nodes_are_ignored_and_orphans_kept_apart():
    status = ClusterStatus(frozenset({"n2"}), (ResourceStatus("a", "n1", STARTED), ResourceStatus("a", "n2", FAILED),
                                               ResourceStatus("gone", "n2", STARTED),
                                               ResourceStatus("a", "n2", ResourceState.STOPPED)))
    view = unpack(Cib(cluster(res("a"))), status, NOW)
    assert view.active == {"a": ("n2",)}
    assert view.recover == {("a", "n2")}
    assert view.orphans == (("gone", "n2"),)


def test_unmanaged_group_means_its_members_and_lrm_unmanaged_counts():
    cib = Cib(esup(), unmanaged=frozenset({"esup"}))
    assert unpack(cib, running(), NOW).unmanaged == {"vip", "proxy", "tls"}
    status = running(("tls", "n1"), state=ResourceState.UNMANAGED)
    assert unpack(Cib(esup()), status, NOW).unmanaged == {"tls"}


def test_standby_and_offline_nodes_are_not_eligible_and_unknown_nodes_ignored():
    cib = Cib(cluster(res("a"), nodes=3), standby=frozenset({"n2"}))
    view = unpack(cib, running(online=("n1", "n2", "ghost")), NOW)
    assert view.online == {"n1", "n2"} and view.eligible == {"n1"}


def test_stickiness_defaults_follow_auto_failback():
    assert stickiness(cluster(), res("a")) == 0
    assert stickiness(cluster(auto_failback=False), res("a")) == INFINITY
    assert stickiness(cluster(auto_failback=False, resource_stickiness=200), res("a")) == 200
    assert stickiness(cluster(resource_stickiness=50), res("a", resource_stickiness=7)) == 7


# ---- scores ---------------------------------------------------------------------

def test_scores_add_location_move_stickiness_and_bans():
    config = cluster(res("a", resource_stickiness=30, migration_threshold=2), res("b"), res("c"), nodes=3,
                     constraints=[LocationConstraint("l1", "a", "n1", 50), LocationConstraint("l2", "a", "n1", 25),
                                  LocationConstraint("l3", "b", "n2", MINUS_INFINITY)])
    cib = Cib(config, moves=(MoveConstraint("b", "n3"),),
              failures=(FailRecord("a", "n3", 2, NOW), FailRecord("c", "n2", 1, NOW, last_rc=6, hard=True)))
    scores = node_scores(unpack(cib, running(("a", "n2"), online=("n1", "n2", "n3")), NOW))
    assert scores.own["a"] == {"n1": 75, "n2": 30, "n3": MINUS_INFINITY}
    assert scores.own["b"] == {"n1": 0, "n2": MINUS_INFINITY, "n3": INFINITY}
    assert scores.own["c"] == {"n1": MINUS_INFINITY, "n2": MINUS_INFINITY, "n3": MINUS_INFINITY}
    assert scores.prefs["a"] == {"n1": 75, "n2": 0, "n3": 0}  # no stickiness, no bans
    assert [n.text for n in scores.notes] == ["a: migration-threshold 2 reached on n3",
                                              "c: fatal error (rc 6) on n2: stopped everywhere until cleanup"]


def test_threshold_zero_never_bans_and_hard_errors_ban_at_once():
    config = cluster(res("a"), res("b", migration_threshold=5))
    cib = Cib(config, failures=(FailRecord("a", "n1", 100, NOW), FailRecord("b", "n1", 1, NOW, last_rc=5, hard=True)))
    scores = node_scores(unpack(cib, running(), NOW))
    assert scores.own["a"]["n1"] == 0
    assert scores.own["b"]["n1"] == MINUS_INFINITY


def test_failed_start_bans_the_node_even_without_migration_threshold():
    cib = Cib(cluster(res("a")), failures=(FailRecord("a", "n1", INFINITY, NOW),))
    t = schedule(cib, running(("a", "n1"), state=FAILED), NOW)
    assert [str(a) for a in t.actions] == ["stop a on n1", "start a on n2"]
    assert "a: fail count INFINITY on n1 (failed start): banned there" in t.reasons


def test_group_location_counts_once_for_the_group():
    scores = node_scores(unpack(Cib(esup()), running(), NOW))
    assert scores.own["esup"] == {"n1": 100, "n2": 0}
    assert scores.own["vip"] == {"n1": 0, "n2": 0}


def test_offline_node_and_target_role_stopped_are_minus_infinity():
    scores = node_scores(unpack(Cib(cluster(res("a"), res("b", target_role="stopped"))),
                                running(online=("n2",)), NOW))
    assert scores.own["a"] == {"n1": MINUS_INFINITY, "n2": 0}
    assert set(scores.own["b"].values()) == {MINUS_INFINITY}


# ---- placement ------------------------------------------------------------------

def test_units_follow_configuration_order():
    config = cluster(res("x"), res("vip"), res("proxy"), res("y"), groups=[GroupConfig("g", ("proxy", "vip"))])
    assert [(u.id, u.members, u.is_group) for u in units(config)] == [
        ("x", ("x",), False), ("g", ("proxy", "vip"), True), ("y", ("y",), False)]


@pytest.mark.parametrize("each, stays", [(0, False), (30, False), (34, True), (50, True), (200, True)])
def test_group_stickiness_is_the_sum_of_its_members(each: int, stays: bool):
    """Location 100 on n1 against 3 x stickiness on n2: 3 x 34 = 102 keeps esup there."""
    t = schedule(Cib(esup(resource_stickiness=each)), running(*ON_N2), NOW)
    assert t.target("vip") == ("n2" if stays else "n1")
    assert (t.actions == ()) == stays


def test_partially_running_group_counts_only_its_active_members_stickiness():
    # Only vip runs on n2: 60 < 100, the group goes to n1.
    t = schedule(Cib(esup(resource_stickiness=60)), running(("vip", "n2")), NOW)
    assert dict(t.placement) == {"vip": "n1", "proxy": "n1", "tls": "n1"}


def test_ties_prefer_the_current_node_then_the_least_loaded_then_node_order():
    config = cluster(res("a"), res("b"), res("c"), res("d"), nodes=3)
    cold = schedule(Cib(config), running(online=("n1", "n2", "n3")), NOW)
    assert dict(cold.placement) == {"a": "n1", "b": "n2", "c": "n3", "d": "n1"}
    warm = schedule(Cib(config), running(("d", "n3"), ("c", "n3"), online=("n1", "n2", "n3")), NOW)
    assert dict(warm.placement) == {"a": "n1", "b": "n2", "c": "n3", "d": "n3"}
    assert [str(a) for a in warm.actions] == ["start a on n1", "start b on n2"]


def test_move_wins_a_tie_with_infinite_stickiness():
    cib = Cib(esup(auto_failback=False), moves=(MoveConstraint("esup", "n2"),))
    t = schedule(cib, running(("vip", "n1"), ("proxy", "n1"), ("tls", "n1")), NOW)
    assert t.target("tls") == "n2"
    assert "esup: moved to n2 by cli-prefer" in t.reasons


def test_infinite_location_and_infinite_stickiness_tie_keeps_the_current_node():
    config = cluster(res("a", resource_stickiness=INFINITY), constraints=[LocationConstraint("l", "a", "n1", INFINITY)])
    assert schedule(Cib(config), running(("a", "n2")), NOW).actions == ()


def test_negative_finite_score_forbids_the_node():
    config = cluster(res("a"), constraints=[LocationConstraint("l", "a", "n1", -10)])
    assert schedule(Cib(config), running(online=("n1",)), NOW).target("a") is None
    assert schedule(Cib(config), running(), NOW).target("a") == "n2"


def test_ban_on_the_first_member_stops_the_group_and_on_a_later_one_moves_it():
    config = esup(migration_threshold=1)
    first = Cib(config, failures=(FailRecord("vip", "n1", 1, NOW), FailRecord("vip", "n2", 1, NOW)))
    assert [n for _, n in schedule(first, running(), NOW).placement] == [None, None, None]
    later = Cib(config, failures=(FailRecord("tls", "n1", 1, NOW),))
    assert [n for _, n in schedule(later, running(), NOW).placement] == ["n2", "n2", "n2"]


def test_colocation_cycle_is_broken_in_configuration_order_and_reported():
    config = cluster(res("a"), res("b"), constraints=[
        ColocationConstraint("ab", "a", "b"), ColocationConstraint("ba", "b", "a"),
        LocationConstraint("l", "b", "n2", 10)])
    t = schedule(Cib(config), running(), NOW)
    assert t.target("a") == t.target("b") == "n2"
    # a comes first in the configuration: its own colocation closes the cycle and is ignored,
    # b follows a, and a took b's wish for n2 into account.
    assert t.reasons == ("a: colocation ab ignored (constraint cycle)",)


def test_colocation_with_a_group_member():
    config = cluster(res("vip"), res("proxy"), res("tls"), res("mon"),
                     groups=[GroupConfig("esup", ("vip", "proxy", "tls"))],
                     constraints=[LocationConstraint("pref", "esup", "n1", 100),
                                  LocationConstraint("mon-pref", "mon", "n1", 10),
                                  ColocationConstraint("c", "mon", "tls", MINUS_INFINITY)])
    assert schedule(Cib(config), running(), NOW).target("mon") == "n2"
    stopped = replace(config, resources=config.resources[:2] + (res("tls", target_role="stopped"), res("mon")))
    assert schedule(Cib(stopped), running(), NOW).target("mon") == "n1"  # tls stopped: no conflict


def test_unmanaged_resource_is_pinned_where_it_runs_and_others_follow_it():
    config = cluster(res("a"), res("b"), constraints=[ColocationConstraint("c", "b", "a"),
                                                      LocationConstraint("l", "a", "n1", 100)])
    cib = Cib(config, unmanaged=frozenset({"a"}), standby=frozenset({"n2"}))
    t = schedule(cib, running(("a", "n2")), NOW)
    assert t.target("a") == "n2" and t.actions == ()  # b would have to follow a to a standby node
    assert t.target("b") is None
    assert "a: unmanaged: left on n2" in t.reasons


# ---- actions and ordering ------------------------------------------------------

def test_order_pairs_expand_groups():
    config = cluster(res("a"), res("b"), res("c"), groups=[GroupConfig("g", ("b", "c"))],
                     constraints=[OrderConstraint("o", "a", "g", kind="optional", symmetrical=False)])
    assert [(p.first, p.then, p.mandatory, p.symmetrical, p.why) for p in order_pairs(config)] == [
        ("b", "c", True, True, "group g"), ("a", "b", False, False, "order o"), ("a", "c", False, False, "order o")]


def test_steps_group_independent_actions_and_order_dependent_ones():
    config = cluster(res("a"), res("b"), res("c"), res("d"),
                     constraints=[OrderConstraint("o1", "a", "b"), OrderConstraint("o2", "b", "c")])
    t = schedule(Cib(config, standby=frozenset({"n1"})), running(("a", "n1"), ("b", "n1"), ("c", "n1"), ("d", "n1")),
                 NOW)
    assert [[str(a) for a in step] for step in t.steps] == [
        ["stop c on n1", "stop d on n1"], ["stop b on n1"], ["stop a on n1"],
        ["start a on n2", "start d on n2"], ["start b on n2"], ["start c on n2"]]


def test_order_cycle_does_not_hang_and_every_action_is_scheduled():
    config = cluster(res("a"), res("b"), constraints=[OrderConstraint("o1", "a", "b", kind="optional"),
                                                      OrderConstraint("o2", "b", "a", kind="optional")])
    t = schedule(Cib(config), running(), NOW)
    assert sorted(str(a) for a in t.actions) == ["start a on n1", "start b on n2"]


def test_asymmetric_order_still_restarts_then_when_first_starts():
    config = cluster(res("db"), res("web"), constraints=[OrderConstraint("o", "db", "web", symmetrical=False)])
    t = schedule(Cib(config), running(("web", "n2")), NOW)
    assert [str(a) for a in t.actions] == ["stop web on n2", "start db on n1", "start web on n2"]


def test_asymmetric_order_does_not_stop_then_when_first_stops():
    config = cluster(res("db", target_role="stopped"), res("web"),
                     constraints=[OrderConstraint("o", "db", "web", symmetrical=False)])
    # db stops, so web cannot start: it is stopped too, but because it cannot run, in the same step.
    t = schedule(Cib(config), running(("db", "n1"), ("web", "n2")), NOW)
    assert [[str(a) for a in step] for step in t.steps] == [["stop db on n1", "stop web on n2"]]


def test_failed_resource_on_a_node_it_must_leave_is_stopped_there_and_started_elsewhere():
    cib = Cib(cluster(res("a")), standby=frozenset({"n1"}))
    t = schedule(cib, running(("a", "n1"), state=FAILED), NOW)
    assert [str(a) for a in t.actions] == ["stop a on n1", "start a on n2"]


def test_starting_counts_as_running_and_stopping_is_recovered():
    config = cluster(res("a"), res("b"))
    status = ClusterStatus(frozenset({"n1", "n2"}), (ResourceStatus("a", "n1", ResourceState.STARTING),
                                                     ResourceStatus("b", "n2", ResourceState.STOPPING)))
    t = schedule(Cib(config), status, NOW)
    assert [str(a) for a in t.actions] == ["stop b on n2", "start b on n2"]


def test_nothing_is_stopped_on_an_offline_node():
    t = schedule(Cib(cluster(res("a"))), running(("a", "n1"), online=()), NOW)
    assert t.actions == () and t.target("a") is None
    assert t.reasons == ("no node can run resources: no node online",)


# ---- schedule()'s contract ----------------------------------------------------------

def test_maintenance_mode_keeps_everything_and_does_nothing():
    cib = Cib(esup(), maintenance=True, standby=frozenset({"n1", "n2"}))
    t = schedule(cib, running(("vip", "n1"), ("proxy", "n2"), state=FAILED), NOW)
    assert t.steps == () and dict(t.placement) == {"vip": "n1", "proxy": "n2", "tls": None}
    assert t.reasons == ("maintenance mode: no actions",)


def test_reads_no_clock(monkeypatch):
    def no_clock() -> float:
        raise AssertionError("the policy engine read the clock")

    for name in ("time", "monotonic", "perf_counter", "time_ns", "monotonic_ns"):
        monkeypatch.setattr(time, name, no_clock)
    cib = Cib(esup(migration_threshold=2, failure_timeout=60_000),
              failures=(FailRecord("proxy", "n1", 2, NOW - 30),), moves=(MoveConstraint("esup", "n2", NOW - 1),))
    t = schedule(cib, running(("vip", "n1"), ("proxy", "n1"), ("tls", "n1")), NOW)
    assert t.target("vip") == "n2"
    # The same input later: the failure has expired, esup may go back.
    assert schedule(cib, running(*ON_N2), NOW + 31).target("vip") == "n1"


def test_placement_is_in_configuration_order_and_lists_every_resource():
    t = schedule(Cib(esup()), running(online=()), NOW)
    assert t.placement == (("vip", None), ("proxy", None), ("tls", None))


def test_empty_cluster():
    t = schedule(Cib(cluster()), running(), NOW)
    assert t.placement == () and t.steps == () and t.reasons == ()


def test_reasons_only_explain_what_the_transition_does():
    cib = Cib(cluster(res("a", target_role="stopped"), res("b")))
    assert schedule(cib, running(("a", "n1")), NOW).reasons == ("a: target-role is stopped",)
    assert schedule(cib, running(("b", "n1")), NOW).reasons == ()


def test_select_keeps_order_drops_duplicates_and_unrelated_notes():
    notes = [Note("x: one", ("x",)), Note("y: two", ("y",)), Note("global", always=True), Note("x: one", ("x",))]
    assert select(notes, frozenset({"x"})) == ("x: one", "global")


def test_score_text():
    assert [score_text(s) for s in (INFINITY, MINUS_INFINITY, 5, 2 * INFINITY)] == [
        "INFINITY", "-INFINITY", "5", "INFINITY"]


def test_actions_are_model_actions():
    t = schedule(Cib(cluster(res("a"))), running(), NOW)
    assert t.steps == ((Action("start", "a", "n1"),),)
