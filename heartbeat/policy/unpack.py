"""Policy step 1: unpack the CIB and the observed status into one `View`.

Pacemaker's `cluster_status()`: everything later steps need, computed once.
Here the clock matters for the only time: failures older than their
failure_timeout and moves past their lifetime are dropped (with a note), so
nothing after this step looks at `now`. Node eligibility (online and not in
standby) and where each resource is active are decided here too.

Iteration is always in configuration order (nodes, resources) so the
result never depends on the order of the input tuples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gsuite.durations import format_duration
from heartbeat.model import (
    INFINITY,
    Cib,
    ClusterConfig,
    ClusterStatus,
    FailRecord,
    MoveConstraint,
    ResourceConfig,
    ResourceState,
)
from heartbeat.policy.notes import Note

# States in which a resource may hold its node's services: it must be stopped
# there before it can start elsewhere.
ACTIVE_STATES = frozenset({ResourceState.STARTED, ResourceState.STARTING, ResourceState.FAILED,
                           ResourceState.STOPPING, ResourceState.UNMANAGED})
# States whose outcome is unknown: the resource is stopped (OCF stop is
# idempotent) and started again if it should run there.
RECOVER_STATES = frozenset({ResourceState.FAILED, ResourceState.STOPPING})

FATAL_RC = 6  # OCF_ERR_CONFIGURED: the resource cannot run anywhere until cleanup


@dataclass(frozen=True)
class View:
    """The scheduler's input, unpacked. Mappings are never mutated."""

    config: ClusterConfig
    nodes: tuple[str, ...]  # every configured node, in configuration order
    online: frozenset[str]
    eligible: frozenset[str]  # online and not in standby: may run resources
    active: Mapping[str, tuple[str, ...]]  # resource -> online nodes where it is active, node order
    recover: frozenset[tuple[str, str]]  # (resource, node) whose state there needs a stop first
    unmanaged: frozenset[str]  # resource ids the cluster must not start or stop
    moves: Mapping[str, MoveConstraint]  # resource or group id -> its live cli-prefer
    failures: tuple[FailRecord, ...]  # live (unexpired) fail records, config order
    orphans: tuple[tuple[str, str], ...]  # (resource, node): active but not in the configuration
    maintenance: bool
    notes: tuple[Note, ...]
    quorum: bool = True  # False: this partition has no quorum (and the policy is not "ignore")
    frozen: bool = False  # no quorum and no_quorum_policy "freeze": keep what runs, start nothing

    def node_index(self, node: str) -> int:
        return self.nodes.index(node)

    def active_on(self, resource: str) -> tuple[str, ...]:
        return self.active.get(resource, ())


def stickiness(config: ClusterConfig, res: ResourceConfig) -> int:
    """The resource's own value, else the cluster's. auto_failback=false is
    Heartbeat's shorthand for INFINITY stickiness (the config loader already
    sets it when resource_stickiness is not given; a hand-built config that
    leaves the default 0 gets it here)."""
    if res.resource_stickiness is not None:
        return res.resource_stickiness
    if not config.auto_failback and config.resource_stickiness == 0:
        return INFINITY
    return config.resource_stickiness


def migration_threshold(config: ClusterConfig, res: ResourceConfig) -> int:
    """Failures on a node before the resource is banned there; 0 = never."""
    if res.migration_threshold is not None:
        return res.migration_threshold
    return config.migration_threshold


def failure_timeout(config: ClusterConfig, res: ResourceConfig | None) -> int | None:
    """ms after which a failure is forgotten; None or 0 = never."""
    if res is not None and res.failure_timeout is not None:
        return res.failure_timeout or None
    return config.failure_timeout or None


def unpack(cib: Cib, status: ClusterStatus, now: float) -> View:
    config = cib.config
    nodes = tuple(n.name for n in config.nodes)
    online = frozenset(status.online) & frozenset(nodes)
    eligible = online - cib.standby
    notes: list[Note] = []
    inquorate = not status.quorum and config.no_quorum_policy != "ignore"
    if inquorate and config.no_quorum_policy == "stop":
        # Pacemaker's no-quorum-policy=stop: a partition without quorum runs nothing.
        eligible = frozenset()
        notes.append(Note("no quorum: every resource is stopped in this partition (no_quorum_policy stop)",
                          always=True))
    failures = _live_failures(cib, now, notes)
    moves = _live_moves(cib, now, notes)
    active, recover, orphans = _observed(config, nodes, online, status)
    unmanaged = _unmanaged(cib, status) | _blocked_by_unclean(config, status, notes)
    return View(config=config, nodes=nodes, online=online, eligible=eligible, active=active,
                recover=recover, unmanaged=unmanaged, moves=moves, failures=failures, orphans=orphans,
                maintenance=cib.maintenance, notes=tuple(notes),
                quorum=not inquorate, frozen=inquorate and config.no_quorum_policy == "freeze")


def _blocked_by_unclean(config: ClusterConfig, status: ClusterStatus, notes: list[Note]) -> frozenset[str]:
    """Resources last seen on a lost node that was not fenced may still run
    there: they (and their whole group) are left alone, neither started
    elsewhere nor stopped, until fencing succeeds or the node returns
    (Pacemaker's unclean node without stonith: resources blocked)."""
    blocked: set[str] = set()
    for entry in status.resources:
        if entry.node in status.unclean and entry.node not in status.online and entry.state in ACTIVE_STATES:
            group = config.group_of(entry.resource)
            blocked.update(group.resources if group else (entry.resource,))
    blocked &= {r.id for r in config.resources}
    for node in sorted(status.unclean, key=lambda n: _node_key(config, n)):
        held = sorted({e.resource for e in status.resources if e.node == node} & blocked)
        if held:
            notes.append(Note(f"{', '.join(held)}: blocked: last seen on {node}, which is lost and not fenced",
                              tuple(held), always=True))
    return frozenset(blocked)


def _live_failures(cib: Cib, now: float, notes: list[Note]) -> tuple[FailRecord, ...]:
    """Drop failures older than their failure_timeout. A fatal error (rc 6)
    never expires: a wrong configuration does not fix itself with time."""
    config = cib.config
    order = _resource_order(config)
    live = []
    for record in sorted(cib.failures, key=lambda f: (order.get(f.resource, len(order)), f.resource,
                                                      _node_key(config, f.node))):
        timeout = failure_timeout(config, config.resource(record.resource))
        if (record.count > 0 and timeout is not None and record.last_rc != FATAL_RC
                and (now - record.last_failure) * 1000 >= timeout):
            notes.append(Note(f"{record.resource}: failure on {record.node} expired "
                              f"(failure-timeout {format_duration(timeout)})", (record.resource,)))
            continue
        if record.count > 0:
            live.append(record)
    return tuple(live)


def _live_moves(cib: Cib, now: float, notes: list[Note]) -> dict[str, MoveConstraint]:
    """Moves are not cumulative: the last one for a resource wins."""
    moves: dict[str, MoveConstraint] = {}
    for move in cib.moves:
        if move.expires is not None and move.expires <= now:
            notes.append(Note(f"{move.resource}: move to {move.node} expired", _members(cib.config, move.resource)))
            moves.pop(move.resource, None)
            continue
        moves[move.resource] = move
    return moves


def _observed(config: ClusterConfig, nodes: tuple[str, ...], online: frozenset[str], status: ClusterStatus,
              ) -> tuple[dict[str, tuple[str, ...]], frozenset[tuple[str, str]], tuple[tuple[str, str], ...]]:
    """Where each resource is active. Entries from offline nodes are ignored:
    nothing can be run there, and without fencing a lost node is assumed to
    have stopped everything (Heartbeat's and stonith-disabled Pacemaker's rule)."""
    configured = {r.id for r in config.resources}
    active: dict[str, set[str]] = {}
    recover: set[tuple[str, str]] = set()
    orphans: set[tuple[str, str]] = set()
    for entry in status.resources:
        if entry.node not in online or entry.state not in ACTIVE_STATES:
            continue
        if entry.resource not in configured:
            orphans.add((entry.resource, entry.node))
            continue
        active.setdefault(entry.resource, set()).add(entry.node)
        if entry.state in RECOVER_STATES:
            recover.add((entry.resource, entry.node))
    ordered = {rid: tuple(n for n in nodes if n in where) for rid, where in active.items()}
    return ordered, frozenset(recover), tuple(sorted(orphans, key=lambda o: (o[0], _node_key(config, o[1]))))


def _unmanaged(cib: Cib, status: ClusterStatus) -> frozenset[str]:
    """Resources named unmanaged at run time or `managed = false` in the
    file (Pacemaker's is-managed meta attribute: both feed the same set),
    members of unmanaged groups, and resources the LRM reports as unmanaged
    (e.g. blocked after a failed stop)."""
    config = cib.config
    names: set[str] = set()
    for rid in cib.unmanaged | config.configured_unmanaged():
        names.update(_members(config, rid))
    names.update(e.resource for e in status.resources
                 if e.state == ResourceState.UNMANAGED and e.node in status.online)
    return frozenset(names & {r.id for r in config.resources})


def _members(config: ClusterConfig, rid: str) -> tuple[str, ...]:
    group = config.group(rid)
    return group.resources if group is not None else (rid,)


def _resource_order(config: ClusterConfig) -> dict[str, int]:
    return {r.id: i for i, r in enumerate(config.resources)}


def _node_key(config: ClusterConfig, node: str) -> tuple[int, str]:
    for index, candidate in enumerate(config.nodes):
        if candidate.name == node:
            return (index, node)
    return (len(config.nodes), node)
