"""Events heartbeat publishes on its bus (gsuite.events.EventBus): logs,
SNMP traps and notify commands subscribe to them."""

from __future__ import annotations

from dataclasses import dataclass

from gsuite.events import Event, EventBus

__all__ = ["Event", "EventBus", "NodeLost", "NodeJoined", "LateHeartbeat", "LinkChanged", "Failover",
           "ResourceFailed", "ResourceRecovered", "AuthFailures", "Fencing", "QuorumChanged",
           "SplitBrain"]


@dataclass(frozen=True)
class NodeLost(Event):
    cluster: str
    node: str
    silent_ms: int


@dataclass(frozen=True)
class NodeJoined(Event):
    cluster: str
    node: str


@dataclass(frozen=True)
class LateHeartbeat(Event):
    cluster: str
    node: str
    gap_ms: int


@dataclass(frozen=True)
class LinkChanged(Event):
    cluster: str
    node: str
    link: str
    up: bool


@dataclass(frozen=True)
class Failover(Event):
    """Resources changed node without an administrator asking."""

    cluster: str
    resources: tuple[str, ...]
    source: str
    target: str
    reason: str


@dataclass(frozen=True)
class ResourceFailed(Event):
    cluster: str
    resource: str
    node: str
    agent: str
    operation: str
    rc: int
    reason: str


@dataclass(frozen=True)
class ResourceRecovered(Event):
    cluster: str
    resource: str
    node: str


@dataclass(frozen=True)
class AuthFailures(Event):
    """Rejected packets passed the configured threshold since the last report."""

    cluster: str
    reason: str  # bad-hmac, replay, unknown-node...
    count: int
    source: str


@dataclass(frozen=True)
class Fencing(Event):
    """The fencing hook ran for a lost node: `ok` false blocks the takeover."""

    cluster: str
    node: str  # the node fenced
    ok: bool
    reason: str


@dataclass(frozen=True)
class QuorumChanged(Event):
    """This node's partition gained or lost quorum."""

    cluster: str
    node: str  # the node reporting
    have: bool
    votes: int
    expected: int
    reason: str


@dataclass(frozen=True)
class SplitBrain(Event):
    """Primitives ran on both sides of a partition that has just healed."""

    cluster: str
    nodes: tuple[str, ...]  # the two nodes that both ran them
    resources: tuple[str, ...]
