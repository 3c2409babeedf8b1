"""What check_heartbeat knows about a cluster, whoever reported it.

Pure: frozen values, and `from_status_json()` for heartbeat's status
document (docs/heartbeat.md). `checks.pacemaker` builds the same values from
`crm_mon --output-as=xml`, so one set of rules (`checks.cluster_eval`)
serves both cluster managers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Node states
ONLINE = "online"
OFFLINE = "offline"
STANDBY = "standby"
MAINTENANCE = "maintenance"
UNCLEAN = "unclean"  # Pacemaker: lost without being fenced
NODE_STATES = frozenset({ONLINE, OFFLINE, STANDBY, MAINTENANCE, UNCLEAN})

# Resource states
STARTED = "started"
STOPPED = "stopped"
STARTING = "starting"
STOPPING = "stopping"
FAILED = "failed"
UNMANAGED = "unmanaged"
BLOCKED = "blocked"  # Pacemaker: a failed stop left it where it was
RESOURCE_STATES = frozenset({STARTED, STOPPED, STARTING, STOPPING, FAILED, UNMANAGED, BLOCKED})

# heartbeat's no_quorum_policy: what a partition without quorum does with its resources
STOP, FREEZE, IGNORE = "stop", "freeze", "ignore"
NO_QUORUM_POLICIES = frozenset({STOP, FREEZE, IGNORE})

# Fencing states (heartbeat's status `fencing`)
FENCE_PENDING, FENCE_RUNNING, FENCE_DONE, FENCE_FAILED = "pending", "running", "done", "failed"


class StatusFormatError(ValueError):
    """The status document does not have the documented shape."""


@dataclass(frozen=True, slots=True)
class Link:
    address: str
    up: bool
    age_ms: float | None  # time since the last heartbeat on that link


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    state: str
    is_dc: bool = False
    links: tuple[Link, ...] = ()

    @property
    def alive(self) -> bool:
        """Running cluster software and reachable (whatever it hosts)."""
        return self.state in (ONLINE, STANDBY, MAINTENANCE)


@dataclass(frozen=True, slots=True)
class Failure:
    node: str | None
    operation: str
    rc: int | None
    reason: str
    at: float | None


@dataclass(frozen=True, slots=True)
class Move:
    """A constraint an administrator left: run on `node` (prefer) or away from it (ban)."""

    node: str | None
    kind: str  # "prefer" or "ban"
    expires: float | None = None
    constraint: str = ""


@dataclass(frozen=True, slots=True)
class ClusterResource:
    id: str
    state: str
    group: str | None = None
    agent: str = ""
    node: str | None = None  # where it runs; None when stopped
    nodes_running: tuple[str, ...] = ()  # more than one: active on several nodes
    preferred_node: str | None = None
    should_run: bool = True  # False when the administrator stopped it (target role stopped)
    fail_counts: tuple[tuple[str, int], ...] = ()
    last_failure: Failure | None = None
    moves: tuple[Move, ...] = ()
    started_at: float | None = None  # when it last started where it runs, if known
    clone: str | None = None  # Pacemaker clone or bundle id (instances share an id)


@dataclass(frozen=True, slots=True)
class Failover:
    at: float | None
    resources: tuple[str, ...]
    from_node: str | None
    to_node: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Quorum:
    """The answering node's partition: votes it counts out of every configured vote."""

    have: bool
    votes: int | None = None
    expected: int | None = None
    reason: str = ""
    policy: str | None = None  # no_quorum_policy; None when the manager does not say


@dataclass(frozen=True, slots=True)
class Fencing:
    """The last fencing run for a lost node."""

    node: str
    state: str  # pending, running, done, failed
    at: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class SplitBrain:
    """Resources found running on both sides when a partition healed."""

    at: float | None
    nodes: tuple[str, ...]
    resources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClonePlacement:
    """A clone (a cloned resource, or a cloned group as one unit): where its copies run."""

    id: str
    max: int  # clone_max (0 already resolved to the number of nodes)
    nodes: tuple[str, ...]  # where a (complete) copy runs
    eligible: tuple[str, ...] | None = None  # nodes that may run a copy now; None when not reported
    failed: tuple[str, ...] = ()

    @property
    def wanted(self) -> int:
        """How many copies the cluster should be running: clone_max, or fewer eligible nodes."""
        return self.max if self.eligible is None else min(self.max, len(self.eligible))


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    name: str
    reporter: str | None  # the node that answered
    dc: str | None
    quorum: bool | None  # None when the manager does not say
    maintenance: bool
    nodes: tuple[Node, ...]
    resources: tuple[ClusterResource, ...]
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    last_failover: Failover | None = None
    quorum_detail: Quorum | None = None  # heartbeat: votes, expected votes, policy
    fencing: tuple[Fencing, ...] = ()
    split_brain: SplitBrain | None = None
    clones: tuple[ClonePlacement, ...] = ()


def _need(doc: dict[str, Any], key: str, kinds: type | tuple[type, ...], where: str) -> Any:
    if key not in doc:
        raise StatusFormatError(f"{where}: no {key!r}")
    value = doc[key]
    if not isinstance(value, kinds):
        raise StatusFormatError(f"{where}: {key!r} has the wrong type")
    return value


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _node(doc: Any) -> Node:
    if not isinstance(doc, dict):
        raise StatusFormatError("a node is not an object")
    name = _need(doc, "name", str, "node")
    state = _need(doc, "state", str, f"node {name}")
    if state not in NODE_STATES:
        raise StatusFormatError(f"node {name}: unknown state {state!r}")
    links = []
    for link in doc.get("links") or []:
        if not isinstance(link, dict):
            raise StatusFormatError(f"node {name}: a link is not an object")
        links.append(Link(str(link.get("address", "?")), link.get("state") == "up", _number(link.get("age_ms"))))
    return Node(name, state, bool(doc.get("is_dc")), tuple(links))


def _failure(doc: Any) -> Failure | None:
    if not isinstance(doc, dict):
        return None
    rc = doc.get("rc")
    return Failure(doc.get("node"), str(doc.get("operation", "?")), rc if isinstance(rc, int) else None,
                   str(doc.get("reason", "")), _number(doc.get("at")))


def _resource(doc: Any) -> ClusterResource:
    if not isinstance(doc, dict):
        raise StatusFormatError("a resource is not an object")
    rid = _need(doc, "id", str, "resource")
    state = _need(doc, "state", str, f"resource {rid}")
    if state not in RESOURCE_STATES:
        raise StatusFormatError(f"resource {rid}: unknown state {state!r}")
    counts = doc.get("fail_counts")
    counts = {} if counts is None else counts
    if not isinstance(counts, dict):
        raise StatusFormatError(f"resource {rid}: 'fail_counts' is not an object")
    move = doc.get("move")
    moves = (Move(move.get("node"), "prefer", _number(move.get("expires"))),) if isinstance(move, dict) else ()
    node = doc.get("node")
    running = doc.get("running_on")  # every node it runs on (heartbeat 2); a clone's copies are not a problem
    nodes_running = _names(running) if isinstance(running, list) and not doc.get("clone") else (
        (node,) if node else ())
    return ClusterResource(
        id=rid,
        state=state if doc.get("managed", True) or state != STARTED else UNMANAGED,
        group=doc.get("group"),
        agent=str(doc.get("agent", "")),
        node=node,
        nodes_running=nodes_running,
        preferred_node=doc.get("preferred_node"),
        should_run=str(doc.get("target_role", "started")).lower() != "stopped",
        fail_counts=tuple((str(n), int(c)) for n, c in counts.items() if isinstance(c, int)),
        last_failure=_failure(doc.get("last_failure")),
        moves=moves,
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _names(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


def _quorum(doc: dict[str, Any]) -> Quorum | None:
    """`quorum` is an object (heartbeat 2: have, votes, expected, reason) or, in older documents, a bool."""
    value = doc.get("quorum")
    policy = doc.get("no_quorum_policy")
    policy = policy if policy in NO_QUORUM_POLICIES else None
    if isinstance(value, bool):
        return Quorum(value, policy=policy)
    if not isinstance(value, dict):
        return None
    if not isinstance(value.get("have"), bool):
        raise StatusFormatError("status: 'quorum' has no boolean 'have'")
    return Quorum(value["have"], _int(value.get("votes")), _int(value.get("expected")), str(value.get("reason") or ""),
                  policy)


def _fencing(value: Any) -> tuple[Fencing, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise StatusFormatError("status: 'fencing' is not an object")
    runs = []
    for node, run in sorted(value.items()):
        if not isinstance(run, dict):
            raise StatusFormatError(f"status: the fencing of {node} is not an object")
        runs.append(Fencing(str(node), str(run.get("state", "?")), _number(run.get("at")),
                            str(run.get("reason") or "")))
    return tuple(runs)


def _split_brain(value: Any) -> SplitBrain | None:
    if not isinstance(value, dict) or not value.get("detected"):
        return None
    return SplitBrain(_number(value.get("at")), _names(value.get("nodes")), _names(value.get("resources")))


def _clones(resources: list[Any], groups: dict[str, tuple[str, ...]]) -> tuple[ClonePlacement, ...]:
    """One placement per cloned resource, and one per cloned group: a group's copy is
    complete on the nodes where every member runs."""
    found: dict[str, ClonePlacement] = {}
    for item in resources:
        clone = item.get("clone") if isinstance(item, dict) else None
        if not isinstance(clone, dict) or _int(clone.get("max")) is None:
            continue
        group = item.get("group")
        key = group if isinstance(group, str) and group in groups else str(item["id"])
        eligible = item.get("clone_eligible")
        placement = ClonePlacement(key, clone["max"], _names(clone.get("nodes")),
                                   _names(eligible) if isinstance(eligible, list) else None,
                                   _names(clone.get("failed")))
        if key in found:  # another member of the group
            before = found[key]
            placement = ClonePlacement(key, before.max, tuple(n for n in before.nodes if n in placement.nodes),
                                       before.eligible, tuple(dict.fromkeys(before.failed + placement.failed)))
        found[key] = placement
    return tuple(found.values())


def from_status_json(doc: Any) -> ClusterStatus:
    """heartbeat's answer to `{"cmd": "status"}` (see docs/heartbeat.md)."""
    if not isinstance(doc, dict):
        raise StatusFormatError("the status document is not a JSON object")
    if doc.get("ok") is False:
        raise StatusFormatError(f"the daemon refused: {doc.get('error', 'no reason given')}")
    nodes = tuple(_node(item) for item in _need(doc, "nodes", list, "status"))
    resources = tuple(_resource(item) for item in _need(doc, "resources", list, "status"))
    groups = []
    for group in doc.get("groups") or []:
        if isinstance(group, dict) and isinstance(group.get("id"), str):
            groups.append((group["id"], tuple(str(r) for r in group.get("resources") or [])))
    failover = doc.get("last_failover")
    last = None
    if isinstance(failover, dict):
        last = Failover(_number(failover.get("at")), tuple(str(r) for r in failover.get("resources") or []),
                        failover.get("from"), failover.get("to"), str(failover.get("reason", "")))
    quorum = _quorum(doc)
    return ClusterStatus(
        name=str(doc.get("cluster", "")),
        reporter=doc.get("node"),
        dc=doc.get("dc"),
        quorum=quorum.have if quorum else None,
        maintenance=bool(doc.get("maintenance")),
        nodes=nodes,
        resources=resources,
        groups=tuple(groups),
        last_failover=last,
        quorum_detail=quorum,
        fencing=_fencing(doc.get("fencing")),
        split_brain=_split_brain(doc.get("split_brain")),
        clones=_clones(doc["resources"], dict(groups)),
    )
