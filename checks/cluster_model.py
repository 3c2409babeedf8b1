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
    return ClusterResource(
        id=rid,
        state=state if doc.get("managed", True) or state != STARTED else UNMANAGED,
        group=doc.get("group"),
        agent=str(doc.get("agent", "")),
        node=node,
        nodes_running=(node,) if node else (),
        preferred_node=doc.get("preferred_node"),
        should_run=str(doc.get("target_role", "started")).lower() != "stopped",
        fail_counts=tuple((str(n), int(c)) for n, c in counts.items() if isinstance(c, int)),
        last_failure=_failure(doc.get("last_failure")),
        moves=moves,
    )


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
    return ClusterStatus(
        name=str(doc.get("cluster", "")),
        reporter=doc.get("node"),
        dc=doc.get("dc"),
        quorum=doc.get("quorum") if isinstance(doc.get("quorum"), bool) else None,
        maintenance=bool(doc.get("maintenance")),
        nodes=nodes,
        resources=resources,
        groups=tuple(groups),
        last_failover=last,
    )
