"""Policy steps 4 and 5: the actions that reach the placement, and their order.

`plan_actions` (Pacemaker's `schedule_resource_actions`):
- stop a resource wherever it is active but not assigned (a resource found
  active on several nodes keeps only the copy on its assigned node);
- start it where assigned but not active;
- recover it (stop + start on the same node) where its state is failed;
- then the implications of mandatory orders, to a fixed point: when `first`
  starts (or, for symmetrical orders, goes down), an active `then` restarts.
  A group is a chain of such orders, so a restarted member restarts the
  members after it, as in Pacemaker.
Unmanaged resources get no action at all.

`order_steps` (`pcmk__apply_orderings` + the graph): every stop comes before
every start; stops run in reverse order (`then` before `first`, for
symmetrical orders and groups), starts in order (`first` before `then`, for
every order, optional ones included: an order between actions that are not
both in the transition simply has nothing to order). Each step holds the
actions whose predecessors are all in earlier steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from heartbeat.model import Action, ClusterConfig, OrderConstraint
from heartbeat.policy.notes import Note
from heartbeat.policy.unpack import View, migration_threshold


@dataclass(frozen=True)
class OrderPair:
    """`first` before `then`, between two resources (groups expanded)."""

    first: str
    then: str
    mandatory: bool
    symmetrical: bool
    why: str  # "group esup" or "order o1"


@dataclass(frozen=True)
class Plan:
    stops: Mapping[str, tuple[str, ...]]  # resource -> nodes to stop it on, node order
    starts: Mapping[str, str]  # resource -> node to start it on
    notes: tuple[Note, ...]


def order_pairs(config: ClusterConfig) -> tuple[OrderPair, ...]:
    """Groups' implicit orders (each member after the previous one) and the
    order constraints, with a group standing for all its members."""
    known = {r.id for r in config.resources}
    pairs: list[OrderPair] = []
    for group in config.groups:
        members = [m for m in group.resources if m in known]
        for first, then in zip(members, members[1:]):
            pairs.append(OrderPair(first, then, True, True, f"group {group.id}"))

    def expand(rid: str) -> tuple[str, ...]:
        group = config.group(rid)
        return tuple(m for m in group.resources if m in known) if group else ((rid,) if rid in known else ())

    for c in config.constraints:
        if isinstance(c, OrderConstraint):
            for first in expand(c.first):
                for then in expand(c.then):
                    if first != then:
                        pairs.append(OrderPair(first, then, c.kind == "mandatory", c.symmetrical, f"order {c.id}"))
    return tuple(pairs)


def plan_actions(view: View, placement: Mapping[str, str | None],
                 restarts: Mapping[str, tuple[str, str]] | None = None) -> Plan:
    """`restarts`: resource -> (node, note) to restart in place for a cause
    outside this plan (clone_links: the clone instance it follows restarts
    there); its dependents restart with it, as for any restart."""
    stops: dict[str, set[str]] = {}
    starts: dict[str, str] = {}
    notes: list[Note] = []
    for res in view.config.resources:
        rid = res.id
        if rid in view.unmanaged:
            continue
        target = placement.get(rid)
        active = view.active_on(rid)
        for node in active:
            if node != target:
                stops.setdefault(rid, set()).add(node)
        if target is not None:
            if target not in active:
                starts[rid] = target
            elif (rid, target) in view.recover:
                stops.setdefault(rid, set()).add(target)
                starts[rid] = target
                notes.append(Note(f"{rid}: failed on {target}: recover in place{_fail_count(view, rid, target)}",
                                  (rid,)))
            elif restarts and rid in restarts and restarts[rid][0] == target:
                stops.setdefault(rid, set()).add(target)
                starts[rid] = target
                notes.append(Note(restarts[rid][1], (rid,)))
        if len(active) > 1:
            kept = f"keeping {target}" if target in active else "stopping all"
            notes.append(Note(f"{rid}: active on {' and '.join(active)}: {kept}", (rid,)))
    for rid, node in view.orphans:
        stops.setdefault(rid, set()).add(node)
        notes.append(Note(f"{rid}: not in the configuration: stopped on {node}", (rid,)))
    _implied_restarts(view, placement, stops, starts, notes)
    ordered = {rid: tuple(n for n in view.nodes if n in where) for rid, where in stops.items()}
    return Plan(stops=ordered, starts=starts, notes=tuple(notes))


def _fail_count(view: View, rid: str, node: str) -> str:
    """What follows "recover in place": the fail count and threshold, if counted."""
    count = sum(f.count for f in view.failures if f.resource == rid and f.node == node)
    if not count:
        return ""
    res = view.config.resource(rid)
    threshold = migration_threshold(view.config, res) if res is not None else 0
    return f" (fail count {count} of migration-threshold {threshold})" if threshold else \
        f" (fail count {count}, no migration-threshold)"


def _implied_restarts(view: View, placement: Mapping[str, str | None], stops: dict[str, set[str]],
                      starts: dict[str, str], notes: list[Note]) -> None:
    """Mandatory orders: `then` restarts when `first` starts, or goes down
    (symmetrical orders). Repeated until nothing changes: restarts cascade."""
    pairs = [p for p in order_pairs(view.config) if p.mandatory]
    changed = True
    while changed:
        changed = False
        for pair in pairs:
            if pair.then in view.unmanaged:
                continue
            down = _goes_down(view, placement, stops, pair.first)
            if not (pair.first in starts or (pair.symmetrical and down)):
                continue
            target = placement.get(pair.then)
            for node in view.active_on(pair.then):
                if node in stops.get(pair.then, ()):
                    continue
                stops.setdefault(pair.then, set()).add(node)
                changed = True
                if node == target:
                    starts[pair.then] = node
                    verb = _verb(pair.first, down, stops, starts)
                    notes.append(Note(f"{pair.then}: restart on {node}: {pair.first} {verb} ({pair.why})",
                                      (pair.then,)))


def _verb(rid: str, down: bool, stops: Mapping[str, set[str]], starts: Mapping[str, str]) -> str:
    if not down:
        return "starts"
    if rid not in starts:
        return "stops"
    return "restarts" if starts[rid] in stops.get(rid, ()) else "moves"


def _goes_down(view: View, placement: Mapping[str, str | None], stops: Mapping[str, set[str]],
               rid: str) -> bool:
    """Whether a stop of `rid` leaves no copy running on its target (a
    duplicate stopped elsewhere does not count)."""
    stopped = stops.get(rid)
    if not stopped:
        return False
    target = placement.get(rid)
    return target is None or target not in view.active_on(rid) or target in stopped


def order_steps(view: View, plan: Plan) -> tuple[tuple[Action, ...], ...]:
    pairs = order_pairs(view.config)
    stop_actions = [Action("stop", rid, node) for rid, nodes in plan.stops.items() for node in nodes]
    start_actions = [Action("start", rid, node) for rid, node in plan.starts.items()]
    stop_before = [(p.then, p.first) for p in pairs if p.symmetrical]
    start_before = [(p.first, p.then) for p in pairs]
    return (*_layers(view, stop_actions, stop_before), *_layers(view, start_actions, start_before))


def _layers(view: View, actions: list[Action], before: Iterable[tuple[str, str]],
            ) -> list[tuple[Action, ...]]:
    """Group actions into steps: a step holds every action whose resource's
    predecessors have all run. A cycle of orders is broken at its first action."""
    order = {r.id: i for i, r in enumerate(view.config.resources)}

    def key(action: Action) -> tuple[int, str, int]:
        node = view.node_index(action.node) if action.node in view.nodes else len(view.nodes)
        return (order.get(action.resource, len(order)), action.resource, node)

    resources = {a.resource for a in actions}
    preds: dict[str, set[str]] = {r: set() for r in resources}
    for first, then in before:
        if first in resources and then in resources:
            preds[then].add(first)
    remaining = sorted(actions, key=key)
    done: set[str] = set()
    steps: list[tuple[Action, ...]] = []
    while remaining:
        ready = [a for a in remaining if preds[a.resource] <= done]
        if not ready:
            ready = [a for a in remaining if a.resource == remaining[0].resource]
        steps.append(tuple(ready))
        done |= {a.resource for a in ready}
        remaining = [a for a in remaining if a not in ready]
    return steps
