"""Policy step 2: every resource's and group's score on every node.

Pacemaker's `apply_node_criteria`: scores start at 0 on nodes that may run
resources and at -INFINITY elsewhere, then add (with INFINITY arithmetic,
model.add_scores):

- location constraints, on a resource or on a group (the group's score
  counts once for the group as a unit);
- `move` (cli-prefer): INFINITY on its node;
- stickiness on each node where the resource is active (a group's is the
  sum of its active members', which placement adds up);
- failures: -INFINITY on a node where the fail count reached
  migration_threshold or INFINITY (a failed start), or where a hard error
  happened, and everywhere after a fatal one (rc 6); target_role
  "stopped": -INFINITY everywhere.

`prefs` holds only the configured wishes (locations and moves), without
stickiness, bans or eligibility: what a resource's colocation primary takes
into account when it chooses a node for both of them. Stickiness is left
out on purpose: it depends on where things run now, and a dependent that
ends up stopped would otherwise pull its primary on this run and no longer
on the next (the engine must converge: applying a transition and
scheduling again gives nothing more to do).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from heartbeat.model import INFINITY, MINUS_INFINITY, LocationConstraint, add_scores
from heartbeat.policy.notes import Note
from heartbeat.policy.unpack import FATAL_RC, View, migration_threshold, stickiness

NodeScores = Mapping[str, int]


@dataclass(frozen=True)
class Scores:
    own: Mapping[str, NodeScores]  # resource or group id -> node -> score
    prefs: Mapping[str, NodeScores]  # locations and moves only
    notes: tuple[Note, ...]

    def of(self, rid: str, node: str) -> int:
        return self.own.get(rid, {}).get(node, 0)


def node_scores(view: View) -> Scores:
    config = view.config
    own: dict[str, dict[str, int]] = {}
    prefs: dict[str, dict[str, int]] = {}
    notes: list[Note] = []
    for res in config.resources:
        scores = {n: (0 if n in view.eligible else MINUS_INFINITY) for n in view.nodes}
        wishes = {n: 0 for n in view.nodes}
        for node, score in _wishes(view, res.id):
            scores[node] = add_scores(scores[node], score)
            wishes[node] = add_scores(wishes[node], score)
        sticky = stickiness(config, res)
        for node in view.active_on(res.id):
            scores[node] = add_scores(scores[node], sticky)
        for node, why in _bans(view, res.id):
            scores[node] = MINUS_INFINITY
            if why:
                notes.append(Note(why, (res.id,)))
        if res.target_role == "stopped":
            scores = {n: MINUS_INFINITY for n in view.nodes}
            notes.append(Note(f"{res.id}: target-role is stopped", (res.id,)))
        own[res.id] = scores
        prefs[res.id] = wishes
    for group in config.groups:
        wishes = {n: 0 for n in view.nodes}
        for node, score in _wishes(view, group.id):
            wishes[node] = add_scores(wishes[node], score)
        own[group.id] = dict(wishes)
        prefs[group.id] = wishes
    return Scores(own=own, prefs=prefs, notes=tuple(notes))


def _wishes(view: View, rid: str) -> list[tuple[str, int]]:
    """(node, score) from location constraints on `rid` and its move."""
    out = [(c.node, c.score) for c in view.config.constraints
           if isinstance(c, LocationConstraint) and c.resource == rid and c.node in view.nodes]
    move = view.moves.get(rid)
    if move is not None and move.node in view.nodes:
        out.append((move.node, INFINITY))
    return out


def _bans(view: View, rid: str) -> list[tuple[str, str]]:
    """(node, reason) where failures forbid `rid`; reason "" when already said."""
    config = view.config
    res = config.resource(rid)
    threshold = migration_threshold(config, res) if res is not None else 0
    out: list[tuple[str, str]] = []
    for record in view.failures:
        if record.resource != rid or record.node not in view.nodes:
            continue
        if record.last_rc == FATAL_RC:
            reason = f"{rid}: fatal error (rc {FATAL_RC}) on {record.node}: stopped everywhere until cleanup"
            out.extend((n, reason if n == view.nodes[0] else "") for n in view.nodes)
        elif record.hard:
            out.append((record.node, f"{rid}: hard error (rc {record.last_rc}) on {record.node}: "
                                     f"banned there until cleanup"))
        elif record.count >= INFINITY:
            # A failed start sets the count to INFINITY (start-failure-is-fatal):
            # it bans the node whatever migration_threshold says, as in Pacemaker.
            out.append((record.node, f"{rid}: fail count INFINITY on {record.node} (failed start): banned there"))
        elif threshold > 0 and record.count >= threshold:
            out.append((record.node, f"{rid}: migration-threshold {threshold} reached on {record.node}"))
    return out
