"""Policy step 3: assign each group (as a unit) and each lone resource to a node.

Pacemaker's `assign_resources`, for our subset:

- A *unit* is a group or a resource outside any group. Units are placed one
  at a time; a colocation's `with_resource` and a mandatory order's `first`
  are placed before the units that depend on them (a cycle is broken in
  configuration order, and the constraint that closes it is ignored).
- A group's members run on one node, in order: on each node, the *prefix*
  is the number of leading members that can run there (member score >= 0);
  members after the first that cannot run are stopped with it (Pacemaker's
  implicit "member k with member k-1" colocation). Candidates are compared
  by prefix, then by the unit's total score (group constraints once, plus
  each running member's own score, stickiness summed), so a failure that
  bans one member moves the whole group if another node can run it all.
- Colocation of this unit with an already placed primary: INFINITY = only
  its node (none if the primary is stopped), -INFINITY = anywhere but its
  node, finite = a bonus there. A unit that others must follow (INFINITY)
  adds their configured wishes (locations, moves) to its own, so moving a
  dependent drags its primary.
- A mandatory order whose `first` cannot run makes `then` unable to start.
- Colocations with a clone and orders after a clone (clone_links.py) use
  the nodes the clone was given, clones being placed before everything else.
- Ties: a node named by a move, then the node already running more of the
  unit's members (no needless move), then the node with fewer resources
  assigned so far (Pacemaker's default placement spreads; units that stay
  where they run are assigned first), then node order.
- Unmanaged resources stay where they are (or stopped), whatever their
  group or colocations say: the cluster neither starts nor stops them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from heartbeat.model import (
    INFINITY,
    MINUS_INFINITY,
    ClusterConfig,
    ColocationConstraint,
    OrderConstraint,
    add_scores,
)
from heartbeat.policy.clone_links import CloneLinks
from heartbeat.policy.notes import Note
from heartbeat.policy.scores import Scores
from heartbeat.policy.unpack import View


@dataclass(frozen=True)
class Unit:
    id: str
    members: tuple[str, ...]  # in start order; a lone resource is its own only member
    is_group: bool


@dataclass(frozen=True)
class Assignment:
    placement: Mapping[str, str | None]  # resource -> node, or None: stopped
    notes: tuple[Note, ...]


def units(config: ClusterConfig) -> tuple[Unit, ...]:
    """Groups and lone resources, in order of their first resource in the configuration."""
    known = {r.id for r in config.resources}
    out: list[Unit] = []
    seen: set[str] = set()
    for res in config.resources:
        group = config.group_of(res.id)
        if group is None:
            out.append(Unit(res.id, (res.id,), False))
        elif group.id not in seen:
            seen.add(group.id)
            out.append(Unit(group.id, tuple(m for m in group.resources if m in known), True))
    return tuple(out)


def score_text(score: int) -> str:
    if score >= INFINITY:
        return "INFINITY"
    if score <= MINUS_INFINITY:
        return "-INFINITY"
    return str(score)


def assign(view: View, scores: Scores, clones: CloneLinks | None = None) -> Assignment:
    """`clones`: the colocations and orders of units with clones placed already."""
    return _Assigner(view, scores, clones).run()


class _Assigner:
    """One assignment run; holds the partial placement while units are placed in turn."""

    def __init__(self, view: View, scores: Scores, clones: CloneLinks | None = None):
        self.view = view
        self.scores = scores
        self.clones = clones
        self.units = units(view.config)
        self.unit_of: dict[str, Unit] = {}
        for unit in self.units:
            self.unit_of[unit.id] = unit
            for member in unit.members:
                self.unit_of[member] = unit
        self.colocations = [c for c in view.config.constraints if isinstance(c, ColocationConstraint)]
        self.orders = [c for c in view.config.constraints
                       if isinstance(c, OrderConstraint) and c.kind == "mandatory"]
        self.placement: dict[str, str | None] = {}
        self.decided: set[str] = set()
        self.load = {n: 0 for n in view.nodes}
        self.notes: list[Note] = []

    def run(self) -> Assignment:
        for unit in self._placement_order():
            self._place(unit)
            self.decided.add(unit.id)
        return Assignment(placement=self.placement, notes=tuple(self.notes))

    # ---- order of placement ----------------------------------------------

    def _placement_order(self) -> list[Unit]:
        """Primaries and firsts before their dependents (Kahn's algorithm).
        Among the ready ones, units already running on a node that may keep
        them go first (as Pacemaker assigns active resources first), so the
        load that breaks ties counts them before the ones that must move;
        then configuration order, which also breaks cycles."""
        index = {u.id: i for i, u in enumerate(self.units)}
        after: dict[str, set[str]] = {u.id: set() for u in self.units}
        pairs = [(c.with_resource, c.resource) for c in self.colocations]
        pairs += [(o.first, o.then) for o in self.orders]
        for before_id, after_id in pairs:
            before, later = self.unit_of.get(before_id), self.unit_of.get(after_id)
            if before is not None and later is not None and before is not later:
                after[later.id].add(before.id)

        def staying(unit: Unit) -> bool:
            return any(n in self.view.eligible for m in unit.members for n in self.view.active_on(m))

        remaining = list(self.units)
        done: set[str] = set()
        out: list[Unit] = []
        while remaining:
            ready = [u for u in remaining if after[u.id] <= done]
            if ready:
                unit = min(ready, key=lambda u: (not staying(u), index[u.id]))
            else:  # a cycle: broken where the configuration lists it first, whatever runs
                unit = min(remaining, key=lambda u: index[u.id])
            remaining.remove(unit)
            done.add(unit.id)
            out.append(unit)
        return out

    # ---- one unit --------------------------------------------------------

    def _where(self, rid: str) -> str | None:
        """The node chosen for a resource, or for a group (its first member)."""
        unit = self.unit_of[rid]
        return self.placement.get(unit.members[0] if rid == unit.id and unit.is_group else rid)

    def _place(self, unit: Unit) -> None:
        view = self.view
        nodes = view.nodes
        if not unit.is_group and unit.id in view.unmanaged:
            self._pin(unit.id, unit)
            return
        unit_level = {n: (self.scores.of(unit.id, n) if unit.is_group else 0) for n in nodes}
        member_level = {m: {n: self.scores.of(m, n) for n in nodes} for m in unit.members}

        def level(rid: str) -> dict[str, int]:
            return unit_level if rid == unit.id else member_level[rid]

        self._apply_colocations(unit, level)
        self._apply_orders(unit, level)
        if self.clones is not None:
            self.notes.extend(self.clones.constrain(unit.id, unit.members, level))
        merged, move_nodes = self._dependents_wishes(unit)

        prefix: dict[str, int] = {}
        total: dict[str, int] = {}
        for node in nodes:
            count, score = 0, unit_level[node]
            for member in unit.members:
                if member in view.unmanaged:
                    count += 1  # stays where it is whatever the group does
                    continue
                if add_scores(unit_level[node], member_level[member][node]) < 0:
                    break
                count += 1
                score = add_scores(score, member_level[member][node])
            prefix[node] = count
            total[node] = add_scores(score, merged[node])

        # Managed members that would keep running on each node (within its prefix).
        active = {n: sum(1 for m in unit.members[:prefix[n]] if n in view.active_on(m) and m not in view.unmanaged)
                  for n in nodes}
        candidates = [n for n in nodes if prefix[n] > 0 and total[n] >= 0]
        best = max(candidates, default=None,
                   key=lambda n: (prefix[n], total[n], n in move_nodes, active[n], -self.load[n],
                                  -view.node_index(n)))
        placed = prefix[best] if best is not None else 0
        for position, member in enumerate(unit.members):
            if member in view.unmanaged:
                self._pin(member, unit)
            else:
                self.placement[member] = best if position < placed else None
                if position < placed and best is not None:
                    self.load[best] += 1
        self._explain(unit, best, prefix, total, member_level, unit_level)

    def _pin(self, rid: str, unit: Unit) -> None:
        """An unmanaged resource stays as it is. Said in every transition when
        the cluster would otherwise act on it (failed, or on a node that may
        not run it), else only when the rest of its unit acts."""
        view = self.view
        here = next(iter(view.active_on(rid)), None)
        self.placement[rid] = here
        if here is not None:
            self.load[here] += 1
        neglected = here is not None and ((rid, here) in view.recover or here not in view.eligible)
        self.notes.append(Note(f"{rid}: unmanaged: left " + (f"on {here}" if here else "stopped"),
                               unit.members, always=neglected))

    def _apply_colocations(self, unit: Unit, level: Callable[[str], dict[str, int]]) -> None:
        for c in self.colocations:
            dependent, primary = self.unit_of.get(c.resource), self.unit_of.get(c.with_resource)
            if dependent is not unit or primary is None or primary is unit:
                continue
            scores = level(c.resource)
            if primary.id not in self.decided:
                self.notes.append(Note(f"{c.resource}: colocation {c.id} ignored (constraint cycle)",
                                       unit.members, always=True))
                continue
            where = self._where(c.with_resource)
            if c.score >= INFINITY:
                if where is None:
                    self.notes.append(Note(f"{c.resource}: cannot run: {c.with_resource} is not running "
                                           f"(colocation {c.id})", unit.members))
                for node in scores:
                    scores[node] = add_scores(scores[node], INFINITY if node == where else MINUS_INFINITY)
            elif where is not None:
                scores[where] = add_scores(scores[where], c.score)

    def _apply_orders(self, unit: Unit, level: Callable[[str], dict[str, int]]) -> None:
        for o in self.orders:
            then, first = self.unit_of.get(o.then), self.unit_of.get(o.first)
            if then is not unit or first is None or first is unit:
                continue
            if first.id not in self.decided:
                self.notes.append(Note(f"{o.then}: order {o.id} ignored (constraint cycle)", unit.members,
                                       always=True))
                continue
            if self._where(o.first) is None:
                self.notes.append(Note(f"{o.then}: cannot start: {o.first} is not running (order {o.id})",
                                       unit.members))
                scores = level(o.then)
                for node in scores:
                    scores[node] = MINUS_INFINITY

    def _dependents_wishes(self, unit: Unit) -> tuple[dict[str, int], set[str]]:
        """Wishes of units that must follow this one (INFINITY colocation):
        on each node, those of the dependent's members that could run there
        (leading members, as in placement); and every node a move names."""
        view = self.view
        merged = {n: 0 for n in view.nodes}
        move_nodes = {view.moves[rid].node for rid in (unit.id, *unit.members) if rid in view.moves}
        for c in self.colocations:
            primary, dependent = self.unit_of.get(c.with_resource), self.unit_of.get(c.resource)
            if (c.score < INFINITY or primary is not unit or dependent is None or dependent is unit
                    or dependent.id in self.decided):
                continue
            for node in view.nodes:
                wish = 0
                runnable = 0
                for member in dependent.members:
                    if member in view.unmanaged:
                        continue
                    if self.scores.of(member, node) <= MINUS_INFINITY:
                        break
                    runnable += 1
                    wish = add_scores(wish, self.scores.prefs.get(member, {}).get(node, 0))
                if runnable and dependent.is_group:
                    wish = add_scores(wish, self.scores.prefs.get(dependent.id, {}).get(node, 0))
                if runnable and wish > MINUS_INFINITY:
                    merged[node] = add_scores(merged[node], wish)
            ids = (dependent.id, *dependent.members)
            move_nodes |= {view.moves[rid].node for rid in ids if rid in view.moves}
        return merged, move_nodes

    # ---- explanations ----------------------------------------------------

    def _explain(self, unit: Unit, best: str | None, prefix: dict[str, int], total: dict[str, int],
                 member_level: dict[str, dict[str, int]],
                 unit_level: dict[str, int]) -> None:
        view = self.view
        config = view.config
        subjects = unit.members
        placed = prefix[best] if best is not None else 0
        first = config.resource(unit.members[0])
        wanted = first is not None and first.target_role == "started"
        if best is None:
            if wanted and view.eligible:
                self.notes.append(Note(f"{unit.id}: cannot run anywhere", subjects))
        elif placed < len(unit.members):
            cut = unit.members[placed]
            anywhere = any(add_scores(unit_level[n], member_level[cut][n]) >= 0 for n in view.nodes)
            cut_res = config.resource(cut)
            if cut_res is not None and cut_res.target_role == "started":
                self.notes.append(Note(f"{cut}: cannot run " + (f"on {best}" if anywhere else "anywhere"),
                                       subjects))
            for member in unit.members[placed + 1:]:
                if member not in view.unmanaged:
                    self.notes.append(Note(f"{member}: stopped: it follows {cut} in group {unit.id}",
                                           subjects))
        running = {n: sum(1 for m in unit.members if n in view.active_on(m) and m not in view.unmanaged)
                   for n in view.nodes}
        current = max(view.nodes, key=lambda n: (running[n], -view.node_index(n)))
        was_active = running[current] > 0
        moved = False
        for rid in (unit.id, *unit.members):
            move = view.moves.get(rid)
            if move is None:
                continue
            if move.node == best:
                if not was_active or current != best:
                    moved = True
                    self.notes.append(Note(f"{rid}: moved to {best} by cli-prefer", subjects))
            else:
                self.notes.append(Note(f"{rid}: cannot move to {move.node}: {self._why_not(move.node, prefix)}",
                                       subjects))
        if moved or best is None or not was_active or current == best:
            return
        if current not in view.eligible:
            self.notes.append(Note(f"{unit.id}: leaves {current}: node in standby", subjects))
            return
        if prefix[best] > prefix[current]:
            what = "cannot run" if prefix[current] == 0 else \
                f"only {prefix[current]} of {len(unit.members)} members can run"
            self.notes.append(Note(f"{unit.id}: moves to {best}: {what} on {current}", subjects))
        else:
            self.notes.append(Note(f"{unit.id}: moves to {best} (score {score_text(total[best])} there, "
                                   f"{score_text(total[current])} on {current})", subjects))

    def _why_not(self, node: str, prefix: dict[str, int]) -> str:
        if node not in self.view.online:
            return "node offline"
        if node not in self.view.eligible:
            return "node in standby"
        if prefix[node] == 0:
            return "it cannot run there"
        return "a better node won"
