"""heartbeat's policy engine: Pacemaker's scheduler for our subset, as a pure function.

`schedule(cib, status, now)` maps the CIB (configuration + administrators'
runtime state + fail counts), the observed cluster status and the current
time to a `Transition`: the target placement, the ordered steps of actions
that reach it, and short reasons. It reads no clock (`now` is an argument),
does no I/O and keeps no state; the same input always gives the same output.

The pipeline, one module per step (like Pacemaker's pcmk__schedule_actions):

    unpack      expire failures and moves, node eligibility, what runs where
    scores      location, moves, stickiness, fail counts -> node scores
    placement   groups as units, colocation, orders' runnability -> nodes
    actions     stops, starts, recoveries, implied restarts -> ordered steps
    clones      resources and groups on several nodes at once, placed and
                planned on their own, first
    clone_links colocations with clones and orders after them: the clones'
                nodes fed to placement, both plans merged into one sequence

`heartbeat.policy.simulate` replays a case file offline (crm_simulate).
"""

from __future__ import annotations

from heartbeat.model import Cib, ClusterStatus, Transition
from heartbeat.policy.actions import order_steps
from heartbeat.policy.clone_links import blocked, links, merge_steps, plan_both
from heartbeat.policy.clones import schedule_clones, split
from heartbeat.policy.notes import Note, select
from heartbeat.policy.placement import assign
from heartbeat.policy.scores import node_scores
from heartbeat.policy.unpack import View, unpack

__all__ = ["schedule"]


def schedule(cib: Cib, status: ClusterStatus, now: float) -> Transition:
    """The transition from the observed `status` to what `cib` asks for at time `now`."""
    full = unpack(cib, status, now)
    if full.maintenance:
        return _hands_off(full)
    if full.frozen:
        return _hands_off(full, "no quorum: running resources are kept, nothing is started "
                                "(no_quorum_policy freeze)")
    main_cib, main_status = split(cib, status)
    view = full if main_cib is cib else unpack(main_cib, main_status, now)
    cloned = schedule_clones(full)
    linked = links(cib.config, cloned)
    scores = node_scores(view)
    assignment = assign(view, scores, linked)
    stuck = blocked(view, linked, assignment.placement)
    if stuck:  # clones ordered after something that does not run: placed again without them
        linked = links(cib.config, schedule_clones(full, stuck))
        assignment = assign(view, scores, linked)
    plan, cloned = plan_both(view, full, linked, assignment.placement, stuck)
    steps = merge_steps(cib.config, order_steps(view, plan), cloned, linked)
    acted_on = frozenset(action.resource for step in steps for action in step)
    notes = (*_cluster_notes(full), *full.notes, *scores.notes, *assignment.notes, *plan.notes, *cloned.notes)
    clone_nodes = dict(cloned.nodes)
    placement = tuple((res.id, clone_nodes[res.id][0] if clone_nodes.get(res.id) else None) if res.id in clone_nodes
                      else (res.id, assignment.placement.get(res.id)) for res in cib.config.resources)
    return Transition(placement=placement, steps=steps, reasons=select(notes, acted_on), clones=cloned.nodes)


def _hands_off(view: View, reason: str = "maintenance mode: no actions") -> Transition:
    """Maintenance mode, or a frozen partition: everything stays as it is, no action at all."""
    placement = tuple((res.id, next(iter(view.active_on(res.id)), None)) for res in view.config.resources)
    return Transition(placement=placement, steps=(), reasons=(reason,))


def _cluster_notes(view: View) -> tuple[Note, ...]:
    if view.eligible or not view.config.resources or not view.quorum:
        return ()
    why = "no node online" if not view.online else "every online node is in standby"
    return (Note(f"no node can run resources: {why}", always=True),)
