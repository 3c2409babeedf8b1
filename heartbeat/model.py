"""heartbeat's value objects: the parsed configuration and the CIB.

This is the contract between the parts (Pacemaker's split, DESIGN.md rule 5):
the config loader builds `ClusterConfig`; the CIB (`Cib`) wraps it with the
runtime state that administrators change (standby, moves, fail counts) and
a version; membership reports `NodeStatus`; the local resource manager
reports `ResourceStatus`; the policy engine maps (Cib, ClusterStatus, now)
to a `Transition`. All frozen: a new state is a new object.

Scores follow Pacemaker: INFINITY = 1_000_000, -INFINITY bans; adding
anything to INFINITY stays INFINITY, and -INFINITY wins over INFINITY.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from gsuite.snmp_config import SnmpConfig

INFINITY = 1_000_000
MINUS_INFINITY = -INFINITY


def add_scores(a: int, b: int) -> int:
    """Pacemaker's score arithmetic: -INFINITY dominates, then INFINITY."""
    if a <= MINUS_INFINITY or b <= MINUS_INFINITY:
        return MINUS_INFINITY
    if a >= INFINITY or b >= INFINITY:
        return INFINITY
    return max(MINUS_INFINITY + 1, min(INFINITY - 1, a + b))


# ---- configuration ----------------------------------------------------------

@dataclass(frozen=True)
class AgentSpec:
    """`ocf:PROVIDER:TYPE` or `lsb:NAME`."""

    standard: Literal["ocf", "lsb"]
    provider: str | None  # OCF only
    type: str

    def __str__(self) -> str:
        return f"ocf:{self.provider}:{self.type}" if self.standard == "ocf" else f"lsb:{self.type}"


@dataclass(frozen=True)
class Operation:
    """An operation's settings, all in ms. interval 0: not recurring."""

    name: Literal["start", "stop", "monitor", "reload", "promote", "demote"]
    interval: int = 0
    timeout: int = 20_000
    on_fail: Literal["restart", "ignore", "block", "stop", "standby", "fence"] = "restart"


@dataclass(frozen=True)
class ResourceConfig:
    id: str
    agent: AgentSpec
    params: tuple[tuple[str, str], ...] = ()  # OCF_RESKEY_name=value, in file order
    monitor: Operation | None = None  # the recurring monitor (None: never monitored)
    start: Operation = field(default_factory=lambda: Operation("start", timeout=20_000))
    stop: Operation = field(default_factory=lambda: Operation("stop", timeout=20_000))
    # Meta attributes; None means "use the cluster's default".
    resource_stickiness: int | None = None
    migration_threshold: int | None = None  # failures before moving away (0/None: never)
    failure_timeout: int | None = None  # ms after which a failure is forgotten (None: never)
    target_role: Literal["started", "stopped"] = "started"
    clone_max: int | None = None  # a clone: run on this many nodes at once (0: every node); None: one node
    managed: bool = True  # False: Pacemaker's is-managed=false, never started, stopped or recovered
    make_before_break: bool = False  # moves start on the new node first (policy/make_before_break.py)

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class GroupConfig:
    """Members start in order on one node and stop in reverse."""

    id: str
    resources: tuple[str, ...]
    clone_max: int | None = None  # the whole group cloned (see ResourceConfig.clone_max)
    managed: bool = True  # False: its members are left alone (see ResourceConfig.managed)


@dataclass(frozen=True)
class LocationConstraint:
    id: str
    resource: str  # a resource or a group
    node: str
    score: int


@dataclass(frozen=True)
class ColocationConstraint:
    """`resource` runs where `with_resource` runs (score INFINITY), or never
    with it (-INFINITY); finite scores are preferences."""

    id: str
    resource: str
    with_resource: str
    score: int = INFINITY


@dataclass(frozen=True)
class OrderConstraint:
    """`first` starts before `then` starts (and `then` stops before `first`
    stops when symmetrical)."""

    id: str
    first: str
    then: str
    kind: Literal["mandatory", "optional"] = "mandatory"
    symmetrical: bool = True


Constraint = LocationConstraint | ColocationConstraint | OrderConstraint


@dataclass(frozen=True)
class NodeConfig:
    name: str
    addresses: tuple[str, ...]  # one per link (redundant links)
    id: int = 0  # 1-based position in the file
    votes: int = 1  # quorum votes (Corosync's quorum_votes)


NoQuorumPolicy = Literal["stop", "freeze", "ignore"]


@dataclass(frozen=True)
class FencingConfig:
    """The fencing hook: `command` (argv, `{node}` standing for the node to
    fence) run before resources are taken from a node nobody can see; it
    must exit 0 within `timeout` ms for the takeover to go on."""

    command: tuple[str, ...]
    timeout: int = 20_000


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    nodes: tuple[NodeConfig, ...]
    resources: tuple[ResourceConfig, ...] = ()
    groups: tuple[GroupConfig, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    keepalive: int = 1000  # ms
    warntime: int = 3000
    deadtime: int = 5000
    initdead: int = 15_000
    port: int = 694
    multicast: str | None = None  # group address; None: unicast to every peer
    auth_key_file: str = "/etc/heartbeat/authkey"
    auto_failback: bool = True  # shorthand for resource_stickiness: true = 0, false = INFINITY
    resource_stickiness: int = 0
    migration_threshold: int = 0  # cluster default: 0 = never move away on failures
    failure_timeout: int | None = None
    status_socket: str = "/run/heartbeat/status.sock"
    state_dir: str = "/var/lib/heartbeat"  # where the CIB is persisted
    source: str | None = None
    snmp: SnmpConfig | None = None  # the [snmp] table: traps and notify command (docs/snmp.md)
    no_quorum_policy: NoQuorumPolicy = "stop"  # what a partition without quorum does with its resources
    ping: tuple[str, ...] = ()  # tie-breaker targets of a two-node cluster ("IP", or "IP:PORT" for TCP)
    fencing: FencingConfig | None = None

    def node(self, name: str) -> NodeConfig | None:
        for node in self.nodes:
            if node.name == name:
                return node
        return None

    def resource(self, rid: str) -> ResourceConfig | None:
        for res in self.resources:
            if res.id == rid:
                return res
        return None

    def group(self, gid: str) -> GroupConfig | None:
        for group in self.groups:
            if group.id == gid:
                return group
        return None

    def group_of(self, rid: str) -> GroupConfig | None:
        for group in self.groups:
            if rid in group.resources:
                return group
        return None

    def configured_unmanaged(self) -> frozenset[str]:
        """Resources and groups the file declares `managed = false`."""
        return frozenset({r.id for r in self.resources if not r.managed}
                         | {g.id for g in self.groups if not g.managed})

    def clone_max_of(self, rid: str) -> int | None:
        """How many copies of a resource (or group) run at once: None when it
        is not a clone, else its clone_max with 0 meaning every node."""
        group = self.group(rid) or self.group_of(rid)
        value = group.clone_max if group is not None else None
        if value is None:
            res = self.resource(rid)
            value = res.clone_max if res is not None else None
        if value is None:
            return None
        return value or len(self.nodes)


# ---- the CIB: configuration + administrators' runtime state + version -----

@dataclass(frozen=True)
class CibVersion:
    """Compared as (admin_epoch, epoch, num_updates): the highest wins."""

    admin_epoch: int = 0
    epoch: int = 0
    num_updates: int = 0

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.admin_epoch, self.epoch, self.num_updates)

    def __lt__(self, other: "CibVersion") -> bool:
        return self.as_tuple() < other.as_tuple()


@dataclass(frozen=True)
class MoveConstraint:
    """`heartbeat move RES NODE`: Pacemaker's cli-prefer (INFINITY on NODE),
    optionally until `expires` (epoch seconds)."""

    resource: str
    node: str
    expires: float | None = None


@dataclass(frozen=True)
class FailRecord:
    """Fail count of a resource on a node, and its last failure."""

    resource: str
    node: str
    count: int
    last_failure: float  # epoch seconds
    last_rc: int = 1
    last_reason: str = ""
    hard: bool = False  # a hard error (OCF 2, 3, 5) bans the node for this resource


@dataclass(frozen=True)
class Cib:
    config: ClusterConfig
    version: CibVersion = field(default_factory=CibVersion)
    standby: frozenset[str] = frozenset()  # node names in standby
    moves: tuple[MoveConstraint, ...] = ()
    failures: tuple[FailRecord, ...] = ()
    maintenance: bool = False  # cluster-wide: manage nothing (no start/stop/monitor recovery)
    unmanaged: frozenset[str] = frozenset()  # resources left alone

    def failcount(self, resource: str, node: str) -> FailRecord | None:
        for record in self.failures:
            if record.resource == resource and record.node == node:
                return record
        return None


# ---- observed state ------------------------------------------------------

class NodeState(str, Enum):
    ONLINE = "online"
    OFFLINE = "offline"
    STANDBY = "standby"  # online but holding no resources


class ResourceState(str, Enum):
    STARTED = "started"
    STOPPED = "stopped"
    STARTING = "starting"
    STOPPING = "stopping"
    FAILED = "failed"
    UNMANAGED = "unmanaged"


@dataclass(frozen=True)
class ResourceStatus:
    """What a node's LRM knows of one resource there."""

    resource: str
    node: str
    state: ResourceState
    rc: int = 0  # last OCF return code
    reason: str = ""


@dataclass(frozen=True)
class ClusterStatus:
    """Online nodes and where each resource is seen running (or failed)."""

    online: frozenset[str]
    resources: tuple[ResourceStatus, ...] = ()
    quorum: bool = True  # this partition has quorum (or its two-node tie-breaker won)
    unclean: frozenset[str] = frozenset()  # lost nodes not fenced (yet): their resources stay put

    def running_on(self, resource: str) -> tuple[str, ...]:
        return tuple(sorted(r.node for r in self.resources
                            if r.resource == resource and r.state in (ResourceState.STARTED, ResourceState.FAILED,
                                                                      ResourceState.STARTING)))


# ---- the policy engine's output ---------------------------------------------

@dataclass(frozen=True)
class Action:
    """One operation to run: `stop proxy on esup-proxy-1`."""

    # quiesce: make-before-break's "stop taking new connections" on the old
    # node (heartbeat/policy/make_before_break.py), not an OCF action.
    kind: Literal["start", "stop", "monitor", "quiesce"]
    resource: str
    node: str

    def __str__(self) -> str:
        return f"{self.kind} {self.resource} on {self.node}"


@dataclass(frozen=True)
class Transition:
    """Target placement and the ordered actions that reach it. Actions of one
    step may run together; each step waits for the previous one."""

    placement: tuple[tuple[str, str | None], ...]  # (resource, node or None), config order
    steps: tuple[tuple[Action, ...], ...]
    reasons: tuple[str, ...] = ()  # human-readable notes ("proxy: migration-threshold reached on n1")
    clones: tuple[tuple[str, tuple[str, ...]], ...] = ()  # cloned resource -> its nodes (placement has the first)

    def target(self, resource: str) -> str | None:
        for rid, node in self.placement:
            if rid == resource:
                return node
        return None

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(a for step in self.steps for a in step)
