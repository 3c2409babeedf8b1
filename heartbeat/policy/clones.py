"""Clones: a resource or group run on several nodes at once (Pacemaker's
anonymous clones: at most one copy per node, `clone_max` copies, 0 = one on
every node).

The scheduler splits them off: `split(cib, status)` gives the CIB and status
without the cloned resources (the single-node pipeline never sees them, so
they are neither placed nor taken for orphans), and `schedule_clones(view)`
places each clone and plans its actions. A clone's nodes are the eligible
nodes it is not banned from (a -INFINITY location, a hard error, a fail
count at migration-threshold or INFINITY), best first by location score,
then where it already runs (no needless moves), then file order. A group
clone starts its members in order on each node and stops them in reverse;
a member that (re)starts on a node restarts the members after it there.
Location constraints apply to clones here; a colocation of a resource with
a clone and an order from a clone to a resource are clone_links.py's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from heartbeat.model import INFINITY, Action, Cib, ClusterConfig, ClusterStatus, LocationConstraint, add_scores
from heartbeat.policy.notes import Note
from heartbeat.policy.unpack import View, migration_threshold


@dataclass(frozen=True)
class ClonePlan:
    nodes: tuple[tuple[str, tuple[str, ...]], ...]  # resource -> its nodes, config order
    stop_steps: tuple[tuple[Action, ...], ...]
    start_steps: tuple[tuple[Action, ...], ...]
    notes: tuple[Note, ...]


def cloned_ids(config: ClusterConfig) -> frozenset[str]:
    """Every cloned resource (members of cloned groups included) and cloned group."""
    ids = {r.id for r in config.resources if config.clone_max_of(r.id) is not None}
    ids |= {g.id for g in config.groups if g.clone_max is not None}
    return frozenset(ids)


def split(cib: Cib, status: ClusterStatus) -> tuple[Cib, ClusterStatus]:
    """The CIB and status the single-node pipeline sees: clones left out."""
    config = cib.config
    clones = cloned_ids(config)
    if not clones:
        return cib, status
    main = replace(config, resources=tuple(r for r in config.resources if r.id not in clones),
                   groups=tuple(g for g in config.groups if g.id not in clones),
                   constraints=tuple(c for c in config.constraints if not _names(c) & clones))
    return (replace(cib, config=main, failures=tuple(f for f in cib.failures if f.resource not in clones)),
            replace(status, resources=tuple(e for e in status.resources if e.resource not in clones)))


def _names(constraint) -> set[str]:
    return {getattr(constraint, key) for key in ("resource", "with_resource", "first", "then")
            if hasattr(constraint, key)}


def clone_units(config: ClusterConfig) -> list[tuple[str, tuple[str, ...], int]]:
    """(unit id, members in order, clone_max) of every clone, config order."""
    units, seen = [], set()
    for res in config.resources:
        count = config.clone_max_of(res.id)
        if count is None or res.id in seen:
            continue
        group = config.group_of(res.id)
        members = group.resources if group else (res.id,)
        seen.update(members)
        units.append((group.id if group else res.id, members, count))
    return units


def _banned(view: View, rid: str, node: str) -> bool:
    res = view.config.resource(rid)
    threshold = migration_threshold(view.config, res) if res is not None else 0
    for record in view.failures:
        if record.resource == rid and record.node == node:
            if record.hard or record.count >= INFINITY or (threshold and record.count >= threshold):
                return True
    return False


def schedule_clones(view: View, blocked: Mapping[str, str] | None = None,
                    restart: Mapping[str, str] | None = None) -> ClonePlan:
    """`blocked`: clone unit -> note, units that may run nowhere (a mandatory
    order after a resource that does not run); `restart`: unit -> note,
    units whose running copies all restart (that resource (re)starts).
    Both come from clone_links.py."""
    blocked = blocked or {}
    restart = restart or {}
    config = view.config
    placed: list[tuple[str, tuple[str, ...]]] = []
    stops: dict[str, list[str]] = {}
    starts: dict[str, list[str]] = {}
    notes: list[Note] = []
    for unit, members, count in clone_units(config):
        score = {n: 0 for n in view.nodes}
        for c in config.constraints:
            if isinstance(c, LocationConstraint) and (c.resource == unit or c.resource in members) and c.node in score:
                score[c.node] = add_scores(score[c.node], c.score)
        candidates = [n for n in view.nodes if n in view.eligible and score[n] > -INFINITY and unit not in blocked
                      and not any(_banned(view, m, n) for m in members) and _startable(view, members)]
        if unit in blocked:
            notes.append(Note(blocked[unit], members))
        elif unit in restart:
            notes.append(Note(restart[unit], members))
        running = {n: all(n in view.active_on(m) for m in members if m not in view.unmanaged) for n in view.nodes}
        candidates.sort(key=lambda n: (-score[n], not running[n], view.node_index(n)))
        targets = tuple(sorted(candidates[:count], key=view.node_index))
        if len(targets) < count:
            notes.append(Note(f"{unit}: clone runs on {len(targets)} of {count} nodes", members, always=True))
        for m in members:
            placed.append((m, targets))
        for node in view.nodes:
            restarting = unit in restart
            for m in members:
                if m in view.unmanaged:
                    continue
                active = node in view.active_on(m)
                if node not in targets:
                    if active:
                        stops.setdefault(m, []).append(node)
                    continue
                if restarting or (m, node) in view.recover:
                    if active:
                        stops.setdefault(m, []).append(node)
                    starts.setdefault(m, []).append(node)
                    restarting = True
                elif not active:
                    starts.setdefault(m, []).append(node)
                    restarting = True  # the members after it start after it
    order = {r.id: i for i, r in enumerate(config.resources)}
    by_member = sorted({m for m in stops} | {m for m in starts}, key=order.__getitem__)
    stop_steps = tuple(tuple(Action("stop", m, n) for n in stops[m]) for m in reversed(by_member) if m in stops)
    start_steps = tuple(tuple(Action("start", m, n) for n in starts[m]) for m in by_member if m in starts)
    placed.sort(key=lambda item: order[item[0]])
    return ClonePlan(nodes=tuple(placed), stop_steps=stop_steps, start_steps=start_steps, notes=tuple(notes))


def _startable(view: View, members: tuple[str, ...]) -> bool:
    """A clone whose members are all target_role stopped runs nowhere."""
    return any(view.config.resource(m) is not None and view.config.resource(m).target_role == "started"
               for m in members)
