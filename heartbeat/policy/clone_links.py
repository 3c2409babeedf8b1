"""Constraints between a clone and a resource or group that is not cloned.

Clones are placed first (clones.py); this module then carries their nodes
into the single-node pipeline and merges the two action plans. "CLONE" below
is a cloned resource, a cloned group, or a member of a cloned group; its
*copies* are the nodes clones.py assigned it (kept or started there). The
supported forms (the config loader refuses the others) and their meaning,
Pacemaker's for a clone with `interleave = true` towards the dependent:

- colocation RESOURCE with CLONE: score INFINITY, RESOURCE may run only on
  a node with a copy (nowhere if the clone runs nowhere); -INFINITY, never on
  such a node; a finite score is added on each such node (a preference).
- order first = CLONE, then = RESOURCE (mandatory): RESOURCE can start only
  if the clone runs on at least one node (Pacemaker: "only if no copies can
  be started is the then resource prevented from being active"). Its start
  waits for the copy on its own node when that copy starts in the same
  transition, else for every copy started in it (Pacemaker's rule for a
  non-interleaved clone). Symmetrical: the copy on RESOURCE's node stops
  after RESOURCE stops, and RESOURCE restarts where it stays when the copy
  on that node (re)starts or stops. A copy restarting on another node does
  not touch RESOURCE: this is the departure from Pacemaker's non-interleaved
  default (which restarts the dependent for any copy), so that a proxy
  clone recovering on the backup node never bounces the VIP on the active one.
- optional orders only order actions that are both in the transition.
- order first = RESOURCE, then = CLONE (a cloned resource or group), the
  reverse: Pacemaker's rule for a clone after a primitive. Mandatory: the
  clone runs nowhere while RESOURCE does not run (all its members, for a
  group); every copy starts after RESOURCE starts, and every running copy
  restarts when RESOURCE starts, restarts or moves. Symmetrical: RESOURCE
  stops after every copy being stopped. Clones being placed first, this
  needs a second pass when RESOURCE cannot run (`blocked`), and the two
  plans feed each other's restarts until nothing changes (`plan_both`).

`merge_steps` orders the clone's actions and the rest's into one sequence:
the single-node pipeline's steps stay as they are and in their order (so a
move's own step order, decided in actions.py, is kept); clone actions go
as early as their orders allow for stops, and for the starts something
else waits for; the other clone starts go last.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from heartbeat.model import (
    INFINITY,
    MINUS_INFINITY,
    Action,
    ClusterConfig,
    ColocationConstraint,
    OrderConstraint,
    add_scores,
)
from heartbeat.policy.actions import Plan, order_pairs, plan_actions
from heartbeat.policy.clones import ClonePlan, clone_units, cloned_ids, schedule_clones
from heartbeat.policy.notes import Note
from heartbeat.policy.unpack import View

Steps = tuple[tuple[Action, ...], ...]


@dataclass(frozen=True)
class CloneLinks:
    """The placed clones' nodes and the constraints that tie other resources to them."""

    nodes: Mapping[str, tuple[str, ...]]  # clone, cloned group or member -> nodes of its copies
    colocations: tuple[ColocationConstraint, ...]  # a resource or group with a clone
    orders: tuple[OrderConstraint, ...]  # a clone first, a resource or group then
    reverse: tuple[OrderConstraint, ...] = ()  # a resource or group first, a clone then

    def constrain(self, unit_id: str, members: tuple[str, ...],
                  level: Callable[[str], dict[str, int]]) -> list[Note]:
        """Apply the links whose dependent is in this placement unit (a
        group or a lone resource) to its node scores; notes on why it cannot run."""
        mine = {unit_id, *members}
        notes: list[Note] = []
        for c in self.colocations:
            if c.resource not in mine:
                continue
            copies = self.nodes.get(c.with_resource, ())
            scores = level(c.resource)
            if c.score >= INFINITY:
                if not copies:
                    notes.append(Note(f"{c.resource}: cannot run: {c.with_resource} runs on no node "
                                      f"(colocation {c.id})", members))
                # Only a ban elsewhere: adding INFINITY on every node with a copy
                # would drown the resource's own preferences among them.
                for node in scores:
                    if node not in copies:
                        scores[node] = MINUS_INFINITY
            else:
                for node in copies:
                    if node in scores:
                        scores[node] = add_scores(scores[node], c.score)
        for o in self.orders:
            if o.then not in mine or o.kind != "mandatory" or self.nodes.get(o.first):
                continue
            notes.append(Note(f"{o.then}: cannot start: {o.first} runs on no node (order {o.id})", members))
            scores = level(o.then)
            for node in scores:
                scores[node] = MINUS_INFINITY
        return notes


def links(config: ClusterConfig, plan: ClonePlan) -> CloneLinks:
    clones = cloned_ids(config)
    nodes = dict(plan.nodes)
    for unit, members, _ in clone_units(config):
        nodes[unit] = nodes.get(members[0], ())
    colocations = tuple(c for c in config.constraints if isinstance(c, ColocationConstraint)
                        and c.with_resource in clones and c.resource not in clones)
    orders = tuple(o for o in config.constraints if isinstance(o, OrderConstraint)
                   and o.first in clones and o.then not in clones)
    reverse = tuple(o for o in config.constraints if isinstance(o, OrderConstraint)
                    and o.then in clones and o.first not in clones)
    return CloneLinks(nodes=nodes, colocations=colocations, orders=orders, reverse=reverse)


def blocked(view: View, clone_links: CloneLinks, placement: Mapping[str, str | None]) -> dict[str, str]:
    """Clones (unit id -> note) that may run nowhere: a mandatory order puts
    them after a resource or group that does not run."""
    out: dict[str, str] = {}
    for o in clone_links.reverse:
        if o.kind != "mandatory":
            continue
        wanted = [m for m in _members(view.config, o.first)
                  if (res := view.config.resource(m)) is not None and res.target_role == "started"]
        if not wanted or any(placement.get(m) is None for m in wanted):
            out.setdefault(o.then, f"{o.then}: cannot start: {o.first} is not running (order {o.id})")
    return out


def _reverse_restarts(full: View, clone_links: CloneLinks, plan: Plan) -> dict[str, str]:
    """Clones (unit id -> note) whose running copies restart: the resource a
    mandatory order puts before them starts, restarts or moves."""
    out: dict[str, str] = {}
    for o in clone_links.reverse:
        if o.kind != "mandatory" or not any(full.active_on(m) for m in _members(full.config, o.then)):
            continue
        for rid in _members(full.config, o.first):
            if rid not in plan.starts:
                continue
            stopped = plan.stops.get(rid, ())
            verb = "restarts" if plan.starts[rid] in stopped else "moves" if stopped else "starts"
            out.setdefault(o.then, f"{o.then}: restart on every node: {o.first} {verb} (order {o.id})")
            break
    return out


def plan_both(view: View, full: View, clone_links: CloneLinks, placement: Mapping[str, str | None],
              blocked_units: Mapping[str, str]) -> tuple[Plan, ClonePlan]:
    """The single-node plan and the clones' plan, each with the restarts the
    other implies, repeated until they agree (the restart sets only grow,
    so this ends; cycles between a clone and a resource are refused by the
    loader). `view` is the single-node pipeline's, `full` the whole cluster's."""
    main_restarts: dict[str, tuple[str, str]] = {}
    clone_restarts: dict[str, str] = {}
    for _ in range(len(view.config.resources) + len(full.config.resources) + 2):
        plan = plan_actions(view, placement, main_restarts)
        cloned = schedule_clones(full, blocked_units, clone_restarts)
        more_main = implied_restarts(view, clone_links, cloned, placement)
        more_clone = _reverse_restarts(full, clone_links, plan)
        if more_main == main_restarts and more_clone == clone_restarts:
            break
        main_restarts, clone_restarts = more_main, more_clone
    return plan, cloned


def _members(config: ClusterConfig, rid: str) -> tuple[str, ...]:
    group = config.group(rid)
    return group.resources if group is not None else (rid,)


def _clone_actions(plan: ClonePlan) -> tuple[list[Action], list[Action]]:
    return ([a for step in plan.stop_steps for a in step], [a for step in plan.start_steps for a in step])


def implied_restarts(view: View, clone_links: CloneLinks, plan: ClonePlan,
                     placement: Mapping[str, str | None]) -> dict[str, tuple[str, str]]:
    """Resources to restart in place because the copy they follow on their
    node (re)starts, or stops (symmetrical orders): resource -> (node, note).
    For a group, its first member that runs where it stays: the group's own
    order restarts the members after it."""
    stops, starts = _clone_actions(plan)
    out: dict[str, tuple[str, str]] = {}
    for o in clone_links.orders:
        if o.kind != "mandatory":
            continue
        firsts = set(_members(view.config, o.first))
        for rid in _members(view.config, o.then):
            node = placement.get(rid)
            if rid in view.unmanaged or node is None or node not in view.active_on(rid):
                continue
            started = any(a.resource in firsts and a.node == node for a in starts)
            stopped = o.symmetrical and any(a.resource in firsts and a.node == node for a in stops)
            if started or stopped:
                verb = "restarts" if started and stopped else "starts" if started else "stops"
                out.setdefault(rid, (node, f"{rid}: restart on {node}: {o.first} {verb} there (order {o.id})"))
            break
    return out


def merge_steps(config: ClusterConfig, main_steps: Steps, plan: ClonePlan, clone_links: CloneLinks) -> Steps:
    """One sequence of steps for the clones' actions and the rest's (see the module doc)."""
    stops, starts = _clone_actions(plan)
    preds = _clone_preds(config, stops, starts)
    main = [a for step in main_steps for a in step]
    for action in main:
        preds[action] = set()
    for o in clone_links.orders:
        firsts = set(_members(config, o.first))
        thens = set(_members(config, o.then))
        copies = clone_links.nodes.get(o.first, ())
        for action in main:
            if action.kind == "start" and action.resource in thens:
                preds[action] |= {a for a in starts if a.resource in firsts
                                  and (a.node == action.node or action.node not in copies)}
        if o.symmetrical:
            for a in stops:
                if a.resource in firsts:
                    preds[a] |= {m for m in main if m.kind == "stop" and m.resource in thens
                                 and (m.node == a.node or not copies)}
    for o in clone_links.reverse:
        firsts = set(_members(config, o.first))
        thens = set(_members(config, o.then))
        for a in starts:
            if a.resource in thens:
                preds[a] |= {m for m in main if m.kind == "start" and m.resource in firsts}
        if o.symmetrical:
            for action in main:
                if action.kind == "stop" and action.resource in firsts:
                    preds[action] |= {a for a in stops if a.resource in thens}
    return _emit(config, main_steps, stops, starts, preds)


def _clone_preds(config: ClusterConfig, stops: list[Action], starts: list[Action]) -> dict[Action, set[Action]]:
    """Within one clone, on each node: members stop in reverse, then start in order."""
    unit_of = {m: members for _, members, _ in clone_units(config) for m in members}
    preds: dict[Action, set[Action]] = {}
    for a in stops:
        later = unit_of[a.resource][unit_of[a.resource].index(a.resource) + 1:]
        preds[a] = {b for b in stops if b.node == a.node and b.resource in later}
    for a in starts:
        members = unit_of[a.resource]
        earlier = members[:members.index(a.resource)]
        preds[a] = {b for b in stops if b.node == a.node and b.resource in members}
        preds[a] |= {b for b in starts if b.node == a.node and b.resource in earlier}
    return preds


def _emit(config: ClusterConfig, main_steps: Steps, stops: list[Action], starts: list[Action],
          preds: dict[Action, set[Action]]) -> Steps:
    """List scheduling, one step at a time, the first kind that has a ready action:
    1. clone stops that wait for nothing outside the clone, that a clone
       start waits for (a restart), or that the single-node plan waits for;
       last member first;
    2. clone starts that the single-node plan waits for;
    3. the ready actions of the single-node plan's next step (all of it,
       unless some of its actions wait for a clone action not done yet:
       actions of one step are unordered, so the step may be split);
    4. the other clone stops: those that only had to wait for a dependent to
       stop (so that, say, a VIP starts on its new node before the proxy
       stops on the old one);
    5. the other clone starts, first member first.
    A clone step holds one member's ready actions on every node. The plan's
    steps keep their order (an action waits for every earlier step) unless
    that blocks everything: see `_unblock`."""
    order = {r.id: i for i, r in enumerate(config.resources)}
    main_actions = {a for step in main_steps for a in step}
    needed = _plan_preds(config, main_actions)
    restarting = set().union(*(preds[a] for a in starts)) if starts else set()
    early = {a for a in stops if a in restarting or not preds[a] & main_actions}
    done: set[Action] = set()
    steps: list[tuple[Action, ...]] = []
    pending_stops, pending_starts = list(stops), list(starts)
    pending_main = [list(step) for step in main_steps]

    def take(candidates: list[Action], pick: Callable[..., Action]) -> tuple[Action, ...]:
        member = pick(candidates, key=lambda a: order.get(a.resource, len(order))).resource
        return tuple(a for a in candidates if a.resource == member)

    while pending_stops or pending_starts or pending_main:
        ready_stops = [a for a in pending_stops if preds[a] <= done]
        ready_starts = [a for a in pending_starts if preds[a] <= done]
        head = pending_main[0] if pending_main else []
        ready_main = [a for a in head if preds[a] <= done]
        awaited = set().union(*(preds[a] for step in pending_main for a in step))
        wanted = [a for a in ready_starts if a in awaited]
        early_stops = [a for a in ready_stops if a in early or a in awaited]
        if early_stops:
            step = take(early_stops, max)
        elif wanted:
            step = tuple(a for a in ready_starts if a.resource == take(wanted, min)[0].resource)
        elif ready_main:
            step = tuple(ready_main)
        elif head and not (ready_stops or ready_starts):
            step = _unblock(pending_main, preds, needed, done)
        elif ready_stops:
            step = take(ready_stops, max)
        else:
            step = take(ready_starts, min)
        steps.append(step)
        done.update(step)
        pending_stops = [a for a in pending_stops if a not in done]
        pending_starts = [a for a in pending_starts if a not in done]
        pending_main = [rest for rest in ([a for a in s if a not in done] for s in pending_main) if rest]
    return tuple(steps)


def _plan_preds(config: ClusterConfig, actions: set[Action]) -> dict[Action, set[Action]]:
    """What each action of the single-node plan really waits for, by the
    rules order_steps lays its steps out with: every stop before every
    start, stops in reverse order (symmetrical orders, groups), starts in order."""
    pairs = order_pairs(config)
    out: dict[Action, set[Action]] = {}
    for a in actions:
        if a.kind == "start":
            firsts = {p.first for p in pairs if p.then == a.resource}
            out[a] = {b for b in actions if b.kind == "stop" or (b.kind == "start" and b.resource in firsts)}
        else:
            thens = {p.then for p in pairs if p.first == a.resource and p.symmetrical}
            out[a] = {b for b in actions if b.kind == "stop" and b.resource in thens}
    return out


def _unblock(pending_main: list[list[Action]], preds: dict[Action, set[Action]],
             needed: dict[Action, set[Action]], done: set[Action]) -> tuple[Action, ...]:
    """Nothing is ready: the next step waits for a clone action that waits
    for a later step (order_steps laid out actions that do not depend on each
    other one after the other). Take from the first later step the actions
    whose real predecessors are done; with none, a true cycle of orders: it
    is broken at the next step."""
    for step in pending_main:
        free = tuple(a for a in step if preds[a] <= done and needed[a] <= done)
        if free:
            return free
    return tuple(pending_main[0])
