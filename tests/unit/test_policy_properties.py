"""Property tests of the policy engine on random small clusters (seeded, no
hypothesis): whatever the input, the engine is deterministic, never starts
anything on an offline or standby node, never places a resource where it is
banned, keeps each group on one node as a prefix of its members, honours
colocations and mandatory orders, and converges: applying its actions and
scheduling again gives nothing more to do."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from heartbeat.model import (
    INFINITY,
    MINUS_INFINITY,
    AgentSpec,
    Cib,
    ClusterConfig,
    ClusterStatus,
    ColocationConstraint,
    Constraint,
    FailRecord,
    GroupConfig,
    LocationConstraint,
    MoveConstraint,
    NodeConfig,
    OrderConstraint,
    ResourceConfig,
    ResourceState,
    ResourceStatus,
    Transition,
)
from heartbeat.policy import schedule
from heartbeat.policy.simulate import apply
from heartbeat.policy.unpack import FATAL_RC, unpack

NOW = 100_000.0
CASES = 400  # random clusters per property run: a few seconds in all
SCORES = (MINUS_INFINITY, -50, 0, 10, 50, 100, 200, INFINITY)
DUMMY = AgentSpec("ocf", "heartbeat", "Dummy")


def random_cluster(seed: int) -> tuple[Cib, ClusterStatus]:
    """A random cluster; one seed in three is dense with colocations and orders."""
    rng = random.Random(seed)
    links = 5 if seed % 3 == 0 else 2
    nodes = tuple(NodeConfig(f"n{i}", (f"192.0.2.{i}",), i) for i in range(1, rng.randint(2, 5) + 1))
    names = [n.name for n in nodes]
    resources = []
    for i in range(1, rng.randint(1, 7) + 1):
        resources.append(ResourceConfig(
            f"r{i}", DUMMY,
            resource_stickiness=rng.choice((None, None, 0, 50, 200, INFINITY)),
            migration_threshold=rng.choice((None, None, 0, 1, 2, 3)),
            failure_timeout=rng.choice((None, None, 60_000)),
            target_role="stopped" if rng.random() < 0.08 else "started"))
    ids = [r.id for r in resources]
    groups: list[GroupConfig] = []
    pool = ids[:]
    rng.shuffle(pool)
    while len(pool) >= 2 and rng.random() < 0.6:
        size = min(len(pool), rng.randint(2, 3))
        members, pool = pool[:size], pool[size:]
        groups.append(GroupConfig(f"g{len(groups) + 1}", tuple(sorted(members, key=ids.index))))
    grouped = {m for g in groups for m in g.resources}
    targets = ids + [g.id for g in groups]
    unit_of = {r: r for r in ids if r not in grouped}
    for g in groups:
        unit_of[g.id] = g.id
        unit_of.update({m: g.id for m in g.resources})

    def pair() -> tuple[str, str] | None:
        """Two things in different units: mostly groups and lone resources, sometimes members."""
        pool = targets if rng.random() < 0.3 else sorted(set(unit_of.values()))
        a, b = rng.sample(pool, 2) if len(pool) >= 2 else (pool[0], pool[0])
        return (a, b) if unit_of[a] != unit_of[b] else None
    constraints: list[Constraint] = []
    for i in range(rng.randint(0, 6)):
        constraints.append(LocationConstraint(f"l{i}", rng.choice(targets), rng.choice(names), rng.choice(SCORES)))
    for i in range(rng.randint(0, links)):
        if (chosen := pair()) is not None:
            a, b = chosen
            constraints.append(ColocationConstraint(f"c{i}", a, b, rng.choice((INFINITY, MINUS_INFINITY, 50, -50))))
    for i in range(rng.randint(0, links)):
        if (chosen := pair()) is not None:
            a, b = chosen
            constraints.append(OrderConstraint(f"o{i}", a, b, rng.choice(("mandatory", "optional")),
                                               rng.random() < 0.7))
    config = ClusterConfig(
        name="random", nodes=nodes, resources=tuple(resources), groups=tuple(groups),
        constraints=tuple(constraints), auto_failback=rng.random() < 0.7,
        resource_stickiness=rng.choice((0, 0, 100, 300)), migration_threshold=rng.choice((0, 2, 3)),
        failure_timeout=rng.choice((None, 60_000)))
    online = frozenset(n for n in names if rng.random() < 0.8)
    standby = frozenset(n for n in names if rng.random() < 0.15)
    moves = tuple(MoveConstraint(rng.choice(targets), rng.choice(names),
                                 rng.choice((None, NOW - 10, NOW + 100)))
                  for _ in range(rng.choice((0, 0, 1, 2))))
    failures = []
    for rid in ids:
        for node in names:
            if rng.random() < 0.12:
                rc = rng.choice((1, 1, 1, 5, FATAL_RC))
                failures.append(FailRecord(rid, node, rng.choice((1, 2, 3, INFINITY)), NOW - rng.randint(0, 200), rc,
                                           hard=rc != 1))
    unmanaged = frozenset(t for t in targets if rng.random() < 0.05)
    cib = Cib(config=config, standby=standby, moves=moves, failures=tuple(failures),
              maintenance=rng.random() < 0.04, unmanaged=unmanaged)
    entries = []
    for rid in ids:
        for node in names:
            roll = rng.random()
            if roll < 0.25:
                entries.append(ResourceStatus(rid, node, ResourceState.STARTED))
            elif roll < 0.30:
                entries.append(ResourceStatus(rid, node, ResourceState.FAILED, 1))
            elif roll < 0.32:
                entries.append(ResourceStatus(rid, node, ResourceState.STOPPED))
    if rng.random() < 0.05:
        entries.append(ResourceStatus("orphan", rng.choice(names), ResourceState.STARTED))
    return cib, ClusterStatus(online=online, resources=tuple(entries))


def _cases() -> list[tuple[int, Cib, ClusterStatus, Transition]]:
    out = []
    for seed in range(CASES):
        cib, status = random_cluster(seed)
        out.append((seed, cib, status, schedule(cib, status, NOW)))
    return out


@pytest.fixture(scope="module")
def cases() -> list[tuple[int, Cib, ClusterStatus, Transition]]:
    return _cases()


def test_deterministic_whatever_the_input_order(cases):
    for seed, cib, status, transition in cases:
        assert schedule(cib, status, NOW) == transition, seed
        rng = random.Random(seed)
        entries = list(status.resources)
        rng.shuffle(entries)
        failures = list(cib.failures)
        rng.shuffle(failures)
        shuffled = schedule(replace(cib, failures=tuple(failures)), replace(status, resources=tuple(entries)), NOW)
        assert shuffled == transition, seed


def test_starts_only_on_online_non_standby_nodes_and_stops_only_on_online_ones(cases):
    for seed, cib, status, transition in cases:
        for action in transition.actions:
            assert action.node in status.online, (seed, action)
            if action.kind == "start":
                assert action.node not in cib.standby, (seed, action)


def test_never_placed_where_banned(cases):
    for seed, cib, status, transition in cases:
        view = unpack(cib, status, NOW)
        config = cib.config
        if view.maintenance:
            continue
        for rid, node in transition.placement:
            if node is None or rid in view.unmanaged:
                continue
            assert node in view.eligible, (seed, rid, node)
            group = config.group_of(rid)
            for c in config.constraints:
                if isinstance(c, LocationConstraint) and c.score <= MINUS_INFINITY:
                    assert not (c.node == node and c.resource in (rid, group.id if group else None)), (seed, rid, c)
            res = config.resource(rid)
            assert res is not None and res.target_role == "started", (seed, rid)
            for record in view.failures:
                if record.resource == rid:
                    assert record.last_rc != FATAL_RC, (seed, rid)
                    assert not (record.hard and record.node == node), (seed, rid, node)


def test_groups_run_on_one_node_as_a_prefix(cases):
    for seed, cib, status, transition in cases:
        view = unpack(cib, status, NOW)
        if view.maintenance:
            continue
        for group in cib.config.groups:
            managed = [m for m in group.resources if m not in view.unmanaged]
            where = [transition.target(m) for m in managed]
            placed = [n for n in where if n is not None]
            assert len(set(placed)) <= 1, (seed, group, where)
            assert where == sorted(where, key=lambda n: n is None), (seed, group, where)  # prefix


def test_colocations_and_mandatory_orders_hold(cases):
    for seed, cib, status, transition in cases:
        view = unpack(cib, status, NOW)
        if view.maintenance or any("cycle" in r for r in transition.reasons):
            continue
        config = cib.config

        def where(rid: str) -> str | None:
            group = config.group(rid)
            return transition.target(group.resources[0] if group else rid)

        def involved_unmanaged(*rids: str) -> bool:
            names = set()
            for rid in rids:
                group = config.group(rid)
                names.update(group.resources if group else (rid,))
            return bool(names & view.unmanaged)

        for c in config.constraints:
            if isinstance(c, ColocationConstraint) and not involved_unmanaged(c.resource, c.with_resource):
                mine, theirs = where(c.resource), where(c.with_resource)
                if c.score >= INFINITY and mine is not None:
                    assert mine == theirs, (seed, c)
                if c.score <= MINUS_INFINITY and mine is not None:
                    assert mine != theirs, (seed, c)
            if (isinstance(c, OrderConstraint) and c.kind == "mandatory"
                    and not involved_unmanaged(c.first, c.then) and where(c.then) is not None):
                assert where(c.first) is not None, (seed, c)


def test_steps_stop_before_start_each_action_once(cases):
    for seed, cib, status, transition in cases:
        kinds = [a.kind for a in transition.actions]
        assert kinds == sorted(kinds, key=lambda k: k != "stop"), seed
        assert len(set(transition.actions)) == len(transition.actions), seed
        starts = [a.resource for a in transition.actions if a.kind == "start"]
        assert len(set(starts)) == len(starts), seed
        assert all(step for step in transition.steps), seed


def test_applying_the_transition_converges(cases):
    for seed, cib, status, transition in cases:
        after = apply(status, transition)
        again = schedule(cib, after, NOW)
        assert again.actions == (), (seed, transition, again)
        assert again.placement == transition.placement, seed
        view = unpack(cib, after, NOW)
        if view.maintenance:
            continue
        for rid, node in transition.placement:
            if rid not in view.unmanaged:
                assert view.active_on(rid) == ((node,) if node else ()), (seed, rid)


def test_the_generator_covers_the_interesting_situations(cases):
    """Guard against a generator that silently stopped producing hard inputs."""
    summary = {"moves": 0, "restarts": 0, "stops": 0, "starts": 0, "unplaced": 0, "groups": 0}
    for _, cib, status, transition in cases:
        stops = {(a.resource, a.node) for a in transition.actions if a.kind == "stop"}
        starts = {(a.resource, a.node) for a in transition.actions if a.kind == "start"}
        summary["restarts"] += len(stops & starts)
        summary["moves"] += sum(1 for r, n in starts if any(s == r and m != n for s, m in stops))
        summary["stops"] += len(stops)
        summary["starts"] += len(starts)
        summary["unplaced"] += sum(1 for _, n in transition.placement if n is None)
        summary["groups"] += len(cib.config.groups)
    assert all(count >= 20 for count in summary.values()), summary
