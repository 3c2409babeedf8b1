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
from heartbeat.policy.clones import ClonePlan, clone_units, cloned_ids
from heartbeat.policy.notes import Note
from heartbeat.policy.unpack import View

Steps = tuple[tuple[Action, ...], ...]


@dataclass(frozen=True)
class CloneLinks:
    nodes: Mapping[str, tuple[str, ...]]  # clone, cloned group or member -> nodes of its copies
    colocations: tuple[ColocationConstraint, ...]  # a resource or group with a clone
    orders: tuple[OrderConstraint, ...]  # a clone first, a resource or group then

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
    return CloneLinks(nodes=nodes, colocations=colocations, orders=orders)


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
    main_preds: list[set[Action]] = [set() for _ in main_steps]
    main_of = {a: i for i, step in enumerate(main_steps) for a in step}
    for o in clone_links.orders:
        firsts = set(_members(config, o.first))
        thens = set(_members(config, o.then))
        copies = clone_links.nodes.get(o.first, ())
        for action, index in main_of.items():
            if action.kind == "start" and action.resource in thens:
                main_preds[index] |= {a for a in starts if a.resource in firsts
                                      and (a.node == action.node or action.node not in copies)}
        if o.symmetrical:
            for a in stops:
                if a.resource in firsts:
                    preds[a] |= {m for m in main_of if m.kind == "stop" and m.resource in thens
                                 and (m.node == a.node or not copies)}
    return _emit(config, main_steps, main_preds, stops, starts, preds)


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


def _emit(config: ClusterConfig, main_steps: Steps, main_preds: list[set[Action]], stops: list[Action],
          starts: list[Action], preds: dict[Action, set[Action]]) -> Steps:
    """List scheduling, one step at a time, the first kind that has a ready action:
    1. clone stops that wait for nothing outside the clone, or that a clone
       start waits for (a restart), last member first;
    2. clone starts that a step of the single-node plan waits for;
    3. the next step of the single-node plan;
    4. the other clone stops: those that only had to wait for a dependent to
       stop (so that, say, a VIP starts on its new node before the proxy
       stops on the old one);
    5. the other clone starts, first member first.
    A clone step holds one member's ready actions on every node."""
    order = {r.id: i for i, r in enumerate(config.resources)}
    main_actions = {a for step in main_steps for a in step}
    restarting = set().union(*(preds[a] for a in starts)) if starts else set()
    early = {a for a in stops if a in restarting or not preds[a] & main_actions}
    done: set[Action] = set()
    steps: list[tuple[Action, ...]] = []
    pending_stops, pending_starts = list(stops), list(starts)
    following = 0  # index of the next step of the single-node plan

    def take(candidates: list[Action], pick: Callable[..., Action]) -> tuple[Action, ...]:
        member = pick(candidates, key=lambda a: order.get(a.resource, len(order))).resource
        return tuple(a for a in candidates if a.resource == member)

    while pending_stops or pending_starts or following < len(main_steps):
        ready_stops = [a for a in pending_stops if preds[a] <= done]
        ready_starts = [a for a in pending_starts if preds[a] <= done]
        awaited = set().union(*main_preds[following:]) if following < len(main_steps) else set()
        wanted = [a for a in ready_starts if a in awaited]
        early_stops = [a for a in ready_stops if a in early]
        if early_stops:
            step = take(early_stops, max)
        elif wanted:
            step = tuple(a for a in ready_starts if a.resource == take(wanted, min)[0].resource)
        elif following < len(main_steps) and (main_preds[following] <= done or not (ready_stops or ready_starts)):
            # (a cycle of orders can only block a main step: it is broken there)
            step = main_steps[following]
            following += 1
        elif ready_stops:
            step = take(ready_stops, max)
        else:
            step = take(ready_starts, min)
        steps.append(step)
        done.update(step)
        pending_stops = [a for a in pending_stops if a not in done]
        pending_starts = [a for a in pending_starts if a not in done]
    return tuple(steps)
