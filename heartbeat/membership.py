"""Node membership: which nodes are alive, from the heartbeats heard.

A pure state machine (DESIGN.md rules 2 and 10): no sockets and no clock.
The caller feeds `HeartbeatHeard` for each heartbeat the transport delivers
and a `Tick` now and then (`next_deadline()` says when one is due); each call
carries `now` in seconds (any monotonic origin, as long as it is the same)
and returns the `MembershipEvent`s it caused, for the controller, the log
and the traps.

Theory of operation
-------------------
Heartbeat's rules (cluster.md 1.2), with redundant links:

* A node unheard for `deadtime` is dead. Right after start-up, a node never
  heard yet is given `initdead` (counted from the creation of `Membership`)
  instead: peers booting together need longer to show up.
* A node is alive while ANY of its links carries heartbeats. A link is one
  of the node's addresses; it is down once unheard for `deadtime`. A node
  whose links all fall silent therefore sees its LinkDown events and then its
  NodeDown, in the same step.
* A heartbeat from an address the configuration does not list for that node
  still counts (heartbeats are authenticated by their HMAC, not by their
  source address; a host with a wildcard bind or NAT may send from another
  address): it is tracked as a link of its own, named by the address, and
  forgotten when it goes down.
* A heartbeat more than `warntime` after the node's previous one (on any
  link) raises `LateHeartbeat` with the gap: Heartbeat's "late heartbeat",
  the tuning aid for deadtime.
* A heartbeat with a higher boot generation than the last one means the
  node restarted (`NodeRestarted`), whether or not we noticed it die; its
  resources' state is gone. A heartbeat from an older generation is stale
  (delayed on a slow link across the restart) and ignored.
* Only a heartbeat newer than every one heard from the node (higher seq, or
  a new generation) keeps the node alive; an older one, such as the copy of
  a heartbeat sent over several links, only refreshes its link, and only
  while the node is online. So a copy replayed over another link (the
  transport accepts one copy per link) can make that link look up for a
  while, but never keeps a dead node alive nor revives it.
* A node is online exactly while at least one of its links is up: its links
  time out no earlier than the node, and the node's death takes the links
  still up down with it.
* Every `process_event` first applies the timeouts due at `now`, so the
  outcome does not depend on how often the caller ticks: a heartbeat that
  arrives after a silence longer than deadtime, with no tick in between,
  yields NodeDown then NodeUp.
* The local node is always online and never heard; a heartbeat from it is a
  caller bug (the transport drops its own packets).

Per step, events come in this order: LinkDown and NodeDown from the timeouts
(node by node, in configuration order), then for a heartbeat LinkUp,
NodeUp or LateHeartbeat, and NodeRestarted.

Transitions are the tables `NODE_TRANSITIONS` and `LINK_TRANSITIONS`; a
missing pair raises IllegalTransition.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from heartbeat.errors import IllegalTransition


class NodePhase(str, Enum):
    UNKNOWN = "unknown"  # never heard since start-up, initdead not over
    ONLINE = "online"
    OFFLINE = "offline"


class LinkState(str, Enum):
    UP = "up"
    DOWN = "down"


class Signal(str, Enum):
    HEARD = "heard"  # a heartbeat arrived
    TIMEOUT = "timeout"  # deadtime (or initdead) ran out


NODE_TRANSITIONS: dict[NodePhase, dict[Signal, NodePhase]] = {
    NodePhase.UNKNOWN: {Signal.HEARD: NodePhase.ONLINE, Signal.TIMEOUT: NodePhase.OFFLINE},
    NodePhase.ONLINE: {Signal.HEARD: NodePhase.ONLINE, Signal.TIMEOUT: NodePhase.OFFLINE},
    # An offline node cannot time out again: only a heartbeat changes it.
    NodePhase.OFFLINE: {Signal.HEARD: NodePhase.ONLINE},
}

LINK_TRANSITIONS: dict[LinkState, dict[Signal, LinkState]] = {
    LinkState.DOWN: {Signal.HEARD: LinkState.UP},
    LinkState.UP: {Signal.HEARD: LinkState.UP, Signal.TIMEOUT: LinkState.DOWN},
}


# ---- events in --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class HeartbeatHeard:
    """A heartbeat from `node`, received from address `link`, sent by the
    node's boot `generation` with sequence number `seq` (the message's).
    Without `seq`, every heartbeat counts as new."""

    node: str
    link: str
    generation: int
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: apply the timeouts due."""


MembershipInput = HeartbeatHeard | Tick


# ---- events out -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NodeUp:
    node: str


@dataclass(frozen=True, slots=True)
class NodeDown:
    node: str
    silent_ms: int  # since its last heartbeat (since start-up if never heard)


@dataclass(frozen=True, slots=True)
class NodeRestarted:
    node: str
    old_gen: int
    new_gen: int


@dataclass(frozen=True, slots=True)
class LateHeartbeat:
    node: str
    gap_ms: int  # since the node's previous heartbeat


@dataclass(frozen=True, slots=True)
class LinkUp:
    node: str
    link: str


@dataclass(frozen=True, slots=True)
class LinkDown:
    node: str
    link: str


MembershipEvent = NodeUp | NodeDown | NodeRestarted | LateHeartbeat | LinkUp | LinkDown


# ---- state ------------------------------------------------------------------

@dataclass(slots=True)
class _Link:
    state: LinkState = LinkState.DOWN
    last_heard: float | None = None
    listed: bool = True  # in the node's configured addresses


@dataclass(slots=True)
class _Node:
    links: dict[str, _Link]
    phase: NodePhase = NodePhase.UNKNOWN
    last_heard: float | None = None
    generation: int | None = None
    seq: int | None = None  # the highest heard in this generation


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


_S = TypeVar("_S", NodePhase, LinkState)


def _step(table: dict[_S, dict[Signal, _S]], state: _S, signal: Signal, what: str) -> _S:
    try:
        return table[state][signal]
    except KeyError:
        raise IllegalTransition(f"{what}: no transition from {state.value} on {signal.value}") from None


class Membership:
    """Node and link states of one node's view of the cluster."""

    def __init__(self, local: str, nodes: dict[str, tuple[str, ...]], keepalive_ms: int, warntime_ms: int,
                 deadtime_ms: int, initdead_ms: int, now: float):
        if local not in nodes:
            raise ValueError(f"the local node {local!r} is not among the nodes")
        for name, value in (("keepalive", keepalive_ms), ("warntime", warntime_ms), ("deadtime", deadtime_ms),
                            ("initdead", initdead_ms)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.local = local
        self.keepalive_ms = keepalive_ms  # the peers' heartbeat interval (informative: nothing here uses it)
        self.warntime_ms = warntime_ms
        self.deadtime_ms = deadtime_ms
        self.initdead_ms = initdead_ms
        self._addresses = dict(nodes)
        self._started = now
        self._now = now
        self._nodes = {name: _Node({address: _Link() for address in addresses})
                       for name, addresses in nodes.items() if name != local}

    # -- the one entry point

    def process_event(self, event: MembershipInput, now: float) -> list[MembershipEvent]:
        """Apply the timeouts due at `now`, then `event`; return what changed."""
        if now < self._now:
            raise ValueError(f"time went backwards ({now} < {self._now})")
        self._now = now
        out = self._expire(now)
        if isinstance(event, HeartbeatHeard):
            out.extend(self._heard(event, now))
        elif not isinstance(event, Tick):
            raise IllegalTransition(f"membership does not handle {type(event).__name__}")
        return out

    def _expire(self, now: float) -> list[MembershipEvent]:
        out: list[MembershipEvent] = []
        for name, node in self._nodes.items():
            node_down: NodeDown | None = None
            if node.phase is NodePhase.ONLINE and node.last_heard is not None:
                silent = _ms(now - node.last_heard)
                if silent >= self.deadtime_ms:
                    node_down = NodeDown(name, silent)
            elif node.phase is NodePhase.UNKNOWN and _ms(now - self._started) >= self.initdead_ms:
                node_down = NodeDown(name, _ms(now - self._started))
            for address, link in list(node.links.items()):
                if link.state is LinkState.UP and link.last_heard is not None \
                        and (node_down is not None or _ms(now - link.last_heard) >= self.deadtime_ms):
                    link.state = _step(LINK_TRANSITIONS, link.state, Signal.TIMEOUT, f"{name} link {address}")
                    out.append(LinkDown(name, address))
                    if not link.listed:
                        del node.links[address]
            if node_down is not None:
                node.phase = _step(NODE_TRANSITIONS, node.phase, Signal.TIMEOUT, name)
                out.append(node_down)
        return out

    def _heard(self, event: HeartbeatHeard, now: float) -> list[MembershipEvent]:
        if event.node == self.local:
            raise IllegalTransition(f"a heartbeat from the local node {self.local!r}")
        node = self._node(event.node)
        if node.generation is not None and event.generation < node.generation:
            return []  # stale: sent before the restart we already know of
        restarted = node.generation is not None and event.generation > node.generation
        news = restarted or event.seq is None or node.seq is None or event.seq > node.seq
        if not news and node.phase is not NodePhase.ONLINE:
            return []  # an old heartbeat of a node since declared dead: a replay, or very late
        out: list[MembershipEvent] = []
        link = node.links.get(event.link)
        if link is None:
            link = node.links[event.link] = _Link(listed=False)
        if link.state is LinkState.DOWN:
            out.append(LinkUp(event.node, event.link))
        link.state = _step(LINK_TRANSITIONS, link.state, Signal.HEARD, f"{event.node} link {event.link}")
        link.last_heard = now
        if not news:
            return out  # not news for the node: a copy over another link, or reordered
        was, previous = node.phase, node.last_heard
        node.phase = _step(NODE_TRANSITIONS, node.phase, Signal.HEARD, event.node)
        if was is not NodePhase.ONLINE:
            out.append(NodeUp(event.node))
        elif previous is not None and _ms(now - previous) > self.warntime_ms:
            out.append(LateHeartbeat(event.node, _ms(now - previous)))
        if restarted:
            assert node.generation is not None
            out.append(NodeRestarted(event.node, node.generation, event.generation))
        node.generation = event.generation
        node.seq = event.seq
        node.last_heard = now
        return out

    # -- queries

    def _node(self, name: str) -> _Node:
        try:
            return self._nodes[name]
        except KeyError:
            raise KeyError(f"unknown node {name!r}") from None

    def state(self, node: str) -> str:
        """The node's state: online or offline (a node not heard yet is offline)."""
        if node == self.local:
            return NodePhase.ONLINE.value
        return "online" if self._node(node).phase is NodePhase.ONLINE else "offline"

    def phase(self, node: str) -> NodePhase:
        """The state machine's own state, UNKNOWN included."""
        return NodePhase.ONLINE if node == self.local else self._node(node).phase

    def links(self, node: str, now: float | None = None) -> dict[str, dict[str, object]]:
        """link -> {"state": "up"|"down", "age_ms": ms since its last
        heartbeat or None}, configured links first. Ages are computed at
        `now`, by default the time of the last `process_event`. The local
        node's own addresses are shown up, aged 0."""
        at = self._now if now is None else now
        if node == self.local:
            return {address: {"state": LinkState.UP.value, "age_ms": 0} for address in self._addresses[node]}
        return {address: {"state": link.state.value,
                          "age_ms": None if link.last_heard is None else _ms(at - link.last_heard)}
                for address, link in self._node(node).links.items()}

    def online(self) -> frozenset[str]:
        return frozenset(name for name, node in self._nodes.items() if node.phase is NodePhase.ONLINE) \
            | {self.local}

    def pending(self) -> frozenset[str]:
        """Nodes never heard whose initdead is not over: an election may want
        to wait for them."""
        return frozenset(name for name, node in self._nodes.items() if node.phase is NodePhase.UNKNOWN)

    def generation(self, node: str) -> int | None:
        """The boot generation last heard from `node` (None: never heard)."""
        return None if node == self.local else self._node(node).generation

    def next_deadline(self) -> float | None:
        """The earliest time at which a Tick may change something (None:
        nothing pending): when to tick next."""
        deadlines: list[float] = []
        for node in self._nodes.values():
            if node.phase is NodePhase.UNKNOWN:
                deadlines.append(self._started + self.initdead_ms / 1000)
            elif node.phase is NodePhase.ONLINE and node.last_heard is not None:
                deadlines.append(node.last_heard + self.deadtime_ms / 1000)
            deadlines.extend(link.last_heard + self.deadtime_ms / 1000 for link in node.links.values()
                             if link.state is LinkState.UP and link.last_heard is not None)
        return min(deadlines, default=None)
