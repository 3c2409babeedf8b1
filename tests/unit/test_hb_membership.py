"""Node membership (heartbeat/membership.py), with explicit times in seconds."""

from __future__ import annotations

import random

import pytest

from heartbeat.errors import IllegalTransition
from heartbeat.membership import (
    LINK_TRANSITIONS,
    NODE_TRANSITIONS,
    HeartbeatHeard,
    LateHeartbeat,
    LinkDown,
    LinkState,
    LinkUp,
    Membership,
    NodeDown,
    NodePhase,
    NodeRestarted,
    NodeUp,
    Signal,
    Tick,
    _step,
)

A2, B2 = "10.0.0.2", "10.1.0.2"  # n2's two links
A3 = "10.0.0.3"
NODES = {"n1": ("10.0.0.1", "10.1.0.1"), "n2": (A2, B2), "n3": (A3,)}


def make(start: float = 0.0, **timers: int) -> Membership:
    settings = {"keepalive_ms": 1000, "warntime_ms": 3000, "deadtime_ms": 5000, "initdead_ms": 15_000}
    settings.update(timers)
    return Membership("n1", NODES, now=start, **settings)


def hb(m: Membership, now: float, node: str = "n2", link: str = A2, generation: int = 1,
       seq: int | None = None) -> list:
    return m.process_event(HeartbeatHeard(node, link, generation, seq), now)


def tick(m: Membership, now: float) -> list:
    return m.process_event(Tick(), now)


def beat(m: Membership, start: float, stop: float, links: tuple[str, ...] = (A2,), node: str = "n2",
         generation: int = 1, every: float = 1.0) -> list:
    """Heartbeats every `every` seconds from `start` to `stop` (inclusive) on each link."""
    out = []
    t = start
    while t <= stop + 1e-9:
        for link in links:
            out += hb(m, t, node, link, generation)
        t = round(t + every, 6)
    return out


# -- start-up


def test_initial_view():
    m = make()
    assert m.state("n1") == "online" and m.state("n2") == "offline"
    assert m.online() == {"n1"} and m.pending() == {"n2", "n3"}
    assert m.phase("n2") is NodePhase.UNKNOWN
    assert m.links("n2") == {A2: {"state": "down", "age_ms": None}, B2: {"state": "down", "age_ms": None}}
    assert m.links("n1") == {"10.0.0.1": {"state": "up", "age_ms": 0}, "10.1.0.1": {"state": "up", "age_ms": 0}}
    assert m.generation("n2") is None


def test_first_heartbeat_brings_the_link_and_the_node_up():
    m = make()
    assert hb(m, 1.0) == [LinkUp("n2", A2), NodeUp("n2")]
    assert m.state("n2") == "online" and m.online() == {"n1", "n2"} and m.pending() == {"n3"}
    assert m.links("n2") == {A2: {"state": "up", "age_ms": 0}, B2: {"state": "down", "age_ms": None}}
    assert m.links("n2", now=3.5)[A2]["age_ms"] == 2500
    assert hb(m, 2.0) == []


# -- deadtime and initdead


def test_a_node_unheard_for_deadtime_is_dead():
    m = make()
    beat(m, 1.0, 5.0)
    assert tick(m, 9.999) == []
    assert tick(m, 10.0) == [LinkDown("n2", A2), NodeDown("n2", 5000)]
    assert m.state("n2") == "offline" and m.phase("n2") is NodePhase.OFFLINE
    assert tick(m, 11.0) == []
    assert m.links("n2")[A2] == {"state": "down", "age_ms": 6000}


def test_a_node_never_heard_is_dead_after_initdead_only():
    m = make(start=100.0)
    beat(m, 101.0, 105.0, node="n3", links=(A3,))
    assert tick(m, 110.0) == [LinkDown("n3", A3), NodeDown("n3", 5000)]  # heard once: deadtime applies
    assert tick(m, 114.999) == []  # n2 never heard: waits for initdead
    assert tick(m, 115.0) == [NodeDown("n2", 15_000)]
    assert m.pending() == frozenset() and m.online() == {"n1"}
    assert tick(m, 200.0) == []


def test_initdead_counts_from_creation_not_from_the_first_tick():
    m = make(start=50.0)
    assert tick(m, 70.0) == [NodeDown("n2", 20_000), NodeDown("n3", 20_000)]


def test_a_dead_node_comes_back():
    m = make()
    beat(m, 1.0, 2.0)
    tick(m, 7.0)
    assert hb(m, 8.0) == [LinkUp("n2", A2), NodeUp("n2")]  # same generation: it was unreachable, not rebooted


# -- warntime


def test_late_heartbeat_reports_the_gap():
    m = make()
    hb(m, 1.0)
    assert hb(m, 4.0) == []  # exactly warntime: not late
    assert hb(m, 7.5) == [LateHeartbeat("n2", 3500)]
    assert hb(m, 8.5) == []


def test_the_gap_is_per_node_whatever_the_link():
    m = make()
    hb(m, 1.0, link=A2)
    assert hb(m, 3.0, link=B2) == [LinkUp("n2", B2)]
    assert hb(m, 5.0, link=A2) == []  # 4 s since A2's last, 2 s since the node's last


# -- generations


def test_restart_while_online():
    m = make()
    beat(m, 1.0, 3.0, generation=5)
    assert hb(m, 4.0, generation=6) == [NodeRestarted("n2", 5, 6)]
    assert m.generation("n2") == 6 and m.state("n2") == "online"


def test_restart_after_being_declared_dead():
    m = make(initdead_ms=100_000)
    beat(m, 1.0, 2.0, generation=5)
    tick(m, 7.0)
    assert hb(m, 30.0, generation=6) == [LinkUp("n2", A2), NodeUp("n2"), NodeRestarted("n2", 5, 6)]


def test_a_stale_generation_is_ignored_and_keeps_nothing_alive():
    m = make()
    hb(m, 1.0, generation=6)
    assert hb(m, 2.0, link=B2, generation=5) == []
    assert m.links("n2")[B2]["state"] == "down"
    assert hb(m, 5.9, generation=5) == []
    assert tick(m, 6.0) == [LinkDown("n2", A2), NodeDown("n2", 5000)]


# -- sequence numbers


def test_only_a_newer_heartbeat_keeps_the_node_alive():
    m = make(initdead_ms=100_000)
    hb(m, 1.0, link=A2, seq=5)
    assert hb(m, 1.001, link=B2, seq=5) == [LinkUp("n2", B2)]  # the copy over the second link
    assert hb(m, 5.9, link=B2, seq=5) == []  # replayed (or very late): refreshes B2 only
    assert hb(m, 5.95, link=A2, seq=4) == []  # reordered: older than what n2 already said
    # n2's death takes its links down with it, though they were refreshed less than deadtime ago.
    assert tick(m, 6.0) == [LinkDown("n2", A2), LinkDown("n2", B2), NodeDown("n2", 5000)]
    assert hb(m, 7.0, link=B2, seq=5) == []  # an old heartbeat does not revive it, nor its link
    assert m.links("n2")[B2]["state"] == "down" and m.state("n2") == "offline"
    assert hb(m, 8.0, link=B2, seq=6) == [LinkUp("n2", B2), NodeUp("n2")]


def test_late_heartbeat_gaps_count_only_new_heartbeats():
    m = make()
    hb(m, 1.0, seq=1)
    hb(m, 3.0, link=B2, seq=1)
    assert hb(m, 4.5, seq=2) == [LateHeartbeat("n2", 3500)]


def test_a_restart_resets_the_sequence():
    m = make()
    hb(m, 1.0, generation=3, seq=900)
    assert hb(m, 2.0, generation=4, seq=1) == [NodeRestarted("n2", 3, 4)]
    assert hb(m, 3.0, generation=4, seq=1) == []
    assert m.next_deadline() == 7.0  # the node's deadline counts from t=2, not t=3


# -- redundant links


def test_one_link_failing_keeps_the_node_online():
    m = make(initdead_ms=100_000)
    assert beat(m, 1.0, 3.0, links=(A2, B2))[:3] == [LinkUp("n2", A2), NodeUp("n2"), LinkUp("n2", B2)]
    assert beat(m, 4.0, 7.0, links=(A2,)) == []
    assert tick(m, 8.0) == [LinkDown("n2", B2)]
    assert m.state("n2") == "online"
    assert m.links("n2") == {A2: {"state": "up", "age_ms": 1000}, B2: {"state": "down", "age_ms": 5000}}
    beat(m, 8.0, 10.0, links=(A2,))
    assert tick(m, 14.9) == []
    assert tick(m, 15.0) == [LinkDown("n2", A2), NodeDown("n2", 5000)]


def test_both_links_failing_together():
    m = make()
    beat(m, 1.0, 3.0, links=(A2, B2))
    assert tick(m, 8.0) == [LinkDown("n2", A2), LinkDown("n2", B2), NodeDown("n2", 5000)]


def test_a_link_coming_back():
    m = make()
    beat(m, 1.0, 3.0, links=(A2, B2))
    beat(m, 4.0, 9.0, links=(A2,))
    assert hb(m, 9.5, link=B2) == [LinkUp("n2", B2)]


def test_a_heartbeat_from_an_unlisted_address_counts_and_is_shown_until_it_goes_down():
    m = make()
    assert hb(m, 1.0, link="192.0.2.99") == [LinkUp("n2", "192.0.2.99"), NodeUp("n2")]
    assert list(m.links("n2")) == [A2, B2, "192.0.2.99"]
    assert tick(m, 6.0) == [LinkDown("n2", "192.0.2.99"), NodeDown("n2", 5000)]
    assert list(m.links("n2")) == [A2, B2]  # forgotten: only configured links stay listed


# -- time handling


def test_timeouts_apply_before_a_late_heartbeat_even_without_ticks():
    m = make(initdead_ms=100_000)
    hb(m, 1.0)
    assert hb(m, 20.0) == [LinkDown("n2", A2), NodeDown("n2", 19_000), LinkUp("n2", A2), NodeUp("n2")]


def test_the_outcome_does_not_depend_on_how_often_the_caller_ticks():
    rng = random.Random(4)
    schedule = []
    t = 0.0
    for _ in range(400):
        t = round(t + rng.choice([0.3, 0.9, 1.0, 1.1, 2.5, 3.2, 4.0, 6.0, 9.0]), 3)
        schedule.append((t, rng.choice(["n2", "n3"]), rng.choice([A2, B2, A3]), rng.choice([1, 1, 1, 2])))
    dense, sparse = make(), make()
    gens: dict[str, int] = {}
    kinds_dense, kinds_sparse = [], []
    clock = 0.0
    for t, node, link, bump in schedule:
        generation = gens[node] = gens.get(node, 1) + (1 if bump == 2 else 0)
        while clock + 0.1 < t:
            clock = round(clock + 0.1, 3)
            kinds_dense += tick(dense, clock)
        seq = round(t * 1000) - rng.choice([0, 0, 0, 2500])  # some copies arrive late
        kinds_dense += hb(dense, t, node, link, generation, seq)
        kinds_sparse += hb(sparse, t, node, link, generation, seq)
        for m in (dense, sparse):
            for name in ("n2", "n3"):
                links_up = any(v["state"] == "up" for v in m.links(name).values())
                assert (m.state(name) == "online") == links_up, (t, name)
    kinds_dense += tick(dense, t + 60)
    kinds_sparse += tick(sparse, t + 60)

    def shape(events: list, node: str, link: str | None) -> list:
        """The events of one node (link None) or one of its links, without their times: when
        several deadlines pass in one step, events of different nodes and links may interleave
        differently."""
        return [type(e).__name__ for e in events if e.node == node and getattr(e, "link", None) == link]

    for node in ("n2", "n3"):
        for link in (None, A2, B2, A3):
            assert shape(kinds_dense, node, link) == shape(kinds_sparse, node, link)
    assert any(isinstance(e, NodeDown) for e in kinds_dense) and any(isinstance(e, NodeRestarted) for e in kinds_dense)
    assert any(isinstance(e, LateHeartbeat) for e in kinds_dense)
    for node in ("n2", "n3"):
        assert dense.state(node) == sparse.state(node) == "offline"


def test_next_deadline_says_when_to_tick():
    m = make(start=10.0)
    assert m.next_deadline() == 25.0  # initdead of the nodes never heard
    hb(m, 11.0, link=A2)
    hb(m, 12.0, link=B2)
    hb(m, 12.5, node="n3", link=A3)
    assert m.next_deadline() == 16.0  # n2's link A2
    tick(m, 16.0)
    assert m.next_deadline() == 17.0
    tick(m, 30.0)
    assert m.next_deadline() is None


def test_time_cannot_go_backwards():
    m = make(start=5.0)
    with pytest.raises(ValueError):
        tick(m, 4.0)


# -- illegal input and the tables


def test_a_heartbeat_from_the_local_node_is_illegal():
    with pytest.raises(IllegalTransition):
        hb(make(), 1.0, node="n1", link="10.0.0.1")


def test_unknown_nodes_and_events():
    m = make()
    with pytest.raises(KeyError):
        hb(m, 1.0, node="intruder")
    with pytest.raises(KeyError):
        m.state("intruder")
    with pytest.raises(IllegalTransition):
        m.process_event("hb", 1.0)  # type: ignore[arg-type]


def test_the_tables():
    assert set(NODE_TRANSITIONS) == set(NodePhase) and set(LINK_TRANSITIONS) == set(LinkState)
    assert NODE_TRANSITIONS[NodePhase.UNKNOWN] == {Signal.HEARD: NodePhase.ONLINE, Signal.TIMEOUT: NodePhase.OFFLINE}
    assert NODE_TRANSITIONS[NodePhase.OFFLINE] == {Signal.HEARD: NodePhase.ONLINE}
    with pytest.raises(IllegalTransition, match="offline on timeout"):
        _step(NODE_TRANSITIONS, NodePhase.OFFLINE, Signal.TIMEOUT, "n2")
    with pytest.raises(IllegalTransition, match="down on timeout"):
        _step(LINK_TRANSITIONS, LinkState.DOWN, Signal.TIMEOUT, "n2 link a")


def test_constructor_checks():
    with pytest.raises(ValueError):
        Membership("n9", NODES, 1000, 3000, 5000, 15_000, 0.0)
    with pytest.raises(ValueError):
        Membership("n1", NODES, 1000, 3000, 0, 15_000, 0.0)


def test_a_single_node_cluster():
    m = Membership("n1", {"n1": ()}, 1000, 3000, 5000, 15_000, 0.0)
    assert tick(m, 100.0) == [] and m.online() == {"n1"} and m.next_deadline() is None
