"""Make-before-break moves: start on the new node, then stop on the old one.

The scheduler moves a resource by stopping it first (Pacemaker's rule: a
primitive never runs twice). For a virtual IP in front of a service cloned
on every node that rule costs requests: between the stop on the old node and
the start on the new one nobody answers on the address. keepalived moves its
address the other way round: the new master adds it and announces it with
gratuitous ARP, then the old one drops it; two hosts holding an IPv4 address
for a moment harm nobody (the last ARP wins, IPv4 has no duplicate address
detection), and every packet finds a node that serves it.

`reorder(transition, config, resources)` rewrites a transition for the
resources that ask for it (`make_before_break = true`): when one stops on
node A and starts on node B, the steps become

    everything else -> clone starts on B -> quiesce on A -> start on B -> stop on A -> clone stops on A

so the service the address fronts runs on B before the address arrives
there, and keeps running on A until the address has left (a standby or a
failback stops or starts the clone in the same transition). A start that
fails leaves the resource where it was: the stop never runs.

`quiesce` (heartbeat's own action, not OCF's: agents without it succeed at
once) tells A's agent to take no new connections: a client whose SYN reached
A and whose next segment reached B (the gratuitous ARP arrived in between)
would be reset by B; dropped at A, its SYN is sent again, to B (measured: one
reset every 15 moves or so without it, none with it).

The stop on A waits DRAIN_MS after the start on B succeeded (`drains`):
requests that reached A just before B's gratuitous ARP turned the clients
to B are still answered from A, which cannot send once the address is gone
(measured: without the wait, a request in flight at the switch now and then
got no answer at all). The agent's announcements (3 at 200 ms for
ocf:gproxy:vip) and Linux's ARP locktime (1 s) keep clients on B meanwhile.

Only a resource outside groups, ordered against nothing but clones, can be
moved so (`why_not` says why another cannot): "order the clone then the
VIP" is what the rewrite does anyway (clone starts on B before, clone stops
on A after), any other order would be broken by it. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from heartbeat.model import Action, ClusterConfig, OrderConstraint, Transition

Steps = list[tuple[Action, ...]]

DRAIN_MS = 500  # the old node keeps the address this long after the new one has it


def why_not(config: ClusterConfig, rid: str) -> str | None:
    """Why `rid` cannot move make-before-break, or None when it can."""
    res = config.resource(rid)
    if res is None:
        return f"{rid}: no such resource"
    if config.clone_max_of(rid) is not None:
        return f"{rid}: a clone runs everywhere at once, it never moves"
    group = config.group_of(rid)
    if group is not None:
        return f"{rid}: a member of group {group.id} stops and starts in the group's order"
    for c in config.constraints:
        if isinstance(c, OrderConstraint) and rid in (c.first, c.then):
            other = c.then if c.first == rid else c.first
            if config.clone_max_of(other) is None:
                return f"{rid}: order constraint {c.id} orders its stop and start"
    return None


def opted_in(config: ClusterConfig, named: Iterable[str] = ()) -> frozenset[str]:
    """The resources that move make-before-break: those whose configuration
    says so (`make_before_break`), and those `named`, less those that cannot."""
    ids = {r.id for r in config.resources if getattr(r, "make_before_break", False)} | set(named)
    return frozenset(rid for rid in ids if why_not(config, rid) is None)


def reorder(transition: Transition, config: ClusterConfig, resources: frozenset[str]) -> Transition:
    """`transition` with each move of a resource in `resources` made before broken."""
    if not resources or not transition.steps:
        return transition
    steps: Steps = list(transition.steps)
    notes: list[str] = []
    for res in config.resources:
        if res.id in resources:
            steps, note = _reorder_one(steps, config, res.id)
            if note:
                notes.append(note)
    if not notes:
        return transition
    return replace(transition, steps=tuple(steps), reasons=(*transition.reasons, *notes))


def drains(step: tuple[Action, ...], previous: tuple[Action, ...], resources: frozenset[str]) -> bool:
    """Whether `step` stops a make-before-break resource that `previous`
    started on another node: it waits DRAIN_MS after `previous` finished."""
    started = {(a.resource, a.node) for a in previous if a.kind == "start" and a.resource in resources}
    return any(a.kind == "stop" and a.resource in resources and
               any(rid == a.resource and node != a.node for rid, node in started) for a in step)


def _reorder_one(steps: Steps, config: ClusterConfig, rid: str) -> tuple[Steps, str | None]:
    actions = [a for step in steps for a in step]
    starts = [a for a in actions if a.resource == rid and a.kind == "start"]
    stops = [a for a in actions if a.resource == rid and a.kind == "stop"]
    if len(starts) != 1 or not stops:
        return steps, None  # not a move: a start, a stop, or nothing
    start = starts[0]
    target = start.node
    if any(a.node == target for a in stops):
        return steps, None  # a recovery in place: the old copy must go first
    sources = {a.node for a in stops}

    def cloned(action: Action) -> bool:
        return config.clone_max_of(action.resource) is not None

    restarted_on_source = {(a.resource, a.node) for a in actions if a.kind == "start" and a.node in sources}
    before = {a for a in actions if cloned(a) and a.kind == "start" and a.node == target}
    after = {a for a in actions if cloned(a) and a.kind == "stop" and a.node in sources
             and (a.resource, a.node) not in restarted_on_source}
    moved = {start, *stops} | before | after
    rest = _keep(steps, lambda a: a not in moved)
    quiesce = tuple(Action("quiesce", rid, a.node) for a in stops)
    new = [*rest, *_keep(steps, before.__contains__), quiesce, (start,), tuple(stops),
           *_keep(steps, after.__contains__)]
    note = f"{rid}: make-before-break: start on {target} before stop on {', '.join(sorted(sources))}"
    return new, note


def _keep(steps: Steps, wanted) -> Steps:
    """The steps restricted to the wanted actions, empty steps dropped, order kept."""
    out: Steps = []
    for step in steps:
        kept = tuple(a for a in step if wanted(a))
        if kept:
            out.append(kept)
    return out
