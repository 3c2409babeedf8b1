"""The controller: what one node does with the cluster's messages.

Every node runs one. Each keepalive it sends a heartbeat whose body carries
its view: CIB version, its local resource states (`lrm_seq` orders them),
its fail counts, and, on the DC, the last failover. From these every node
knows the whole cluster without any reliable transport: state is resent
every keepalive, so a lost datagram only delays things by one interval.

The DC (designated controller) is the online node that comes first in the
configuration: every node computes the same answer from the same
membership, so no election round is needed, and a new DC is chosen as soon
as membership declares the old one dead (within deadtime). Only the DC runs
the policy engine. It executes a transition step by step: it sends each
action to its node (retransmitting every keepalive until a result comes
back; nodes run an action id only once), waits for the step's results, and
recomputes after each transition or failure, like Pacemaker's controller.

Administrators' changes reach the DC as requests; it changes the CIB and the
higher version spreads to every node through the heartbeats.

Quorum (heartbeat.quorum) decides whether this partition may run anything:
the DC is chosen only among the nodes of a partition with quorum. In a
partition without it there is no DC and each node applies the policy
(given `quorum=False`) to its own resources alone: with no_quorum_policy
"stop" it stops them, with "freeze" it leaves them be. When fencing is
configured, a node lost while holding resources is unclean: the DC runs the
fencing hook and the node's resources stay blocked until it succeeds.

This class does no I/O itself: sending, running agents and the clock are
callables given at construction (the daemon passes gevent-based ones).
"""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass, field, replace
from typing import Callable

from heartbeat import cib_store, quorum
from heartbeat.policy import make_before_break as make_before_break_module
from heartbeat.model import (
    Action,
    Cib,
    CibVersion,
    ClusterStatus,
    FailRecord,
    ResourceState,
    ResourceStatus,
    Transition,
)

MAX_REMEMBERED_ACTIONS = 256
FENCE_RETRY_S = 10.0  # a failed fencing is tried again after this long
SETTLE_KEEPALIVES = 1.5  # after nodes join, hear each of them once before deciding
ACTION_GRACE_MS = 2000  # beyond an operation's own timeout before the DC gives up on a result
HARD_RCS = frozenset({2, 3, 5})  # OCF args/unimplemented/not installed: ban the node
FATAL_RC = 6  # OCF not configured: stop everywhere


@dataclass
class PeerView:
    """What a peer told us in its latest heartbeat."""

    lrm_seq: int = -1
    generation: int = -1
    resources: tuple[ResourceStatus, ...] = ()
    failures: tuple[FailRecord, ...] = ()
    cib_version: CibVersion = field(default_factory=CibVersion)
    last_failover: dict | None = None
    reach: int | None = None  # ping targets it reaches (two-node tie-breaker)


@dataclass
class PendingAction:
    action: Action
    id: str
    sent_at: float
    timeout_ms: int


class Controller:
    def __init__(self, local: str, cib: Cib, *, send: Callable[[str, dict, str | None], None],
                 execute: Callable[[str, str, str], None], clock: Callable[[], float],
                 schedule: Callable[[Cib, ClusterStatus, float], Transition],
                 persist: Callable[[Cib], None] | None = None,
                 publish: Callable[[str, dict], None] | None = None,
                 generation: int = 0, fence: Callable[[str], None] | None = None,
                 make_before_break: frozenset[str] = frozenset()):
        """`execute(action_id, kind, resource)` runs an action locally (in the
        background) and later calls `action_done`; `send(kind, body, to)`
        sends to one node (or all when `to` is None); `fence(node)` runs the
        fencing hook in the background and later calls `fence_done`.
        `make_before_break` names resources moved start-first (see
        heartbeat.policy.make_before_break), besides those the config marks."""
        self.local = local
        self.cib = cib
        self.config = cib.config
        self.send = send
        self.execute = execute
        self.clock = clock
        self.schedule = schedule
        self.persist = persist or (lambda cib: None)
        self.publish = publish or (lambda kind, fields: None)
        self.generation = generation
        self.fence = fence or (lambda node: None)
        self.make_before_break = make_before_break_module.opted_in(self.config, make_before_break)
        self.started = clock()
        self.order = {n.name: i for i, n in enumerate(self.config.nodes)}
        self.online: frozenset[str] = frozenset({local})
        self.peers: dict[str, PeerView] = {}
        # Local state
        self.lrm_seq = 0
        self.local_resources: dict[str, ResourceStatus] = {}
        self.failures: dict[str, FailRecord] = {}  # resource -> this node's fail record
        self.unrecovered: set[str] = set()  # failed here, not started again yet
        self.done: collections.OrderedDict[str, dict] = collections.OrderedDict()  # action id -> result
        self.running: set[str] = set()
        # DC state
        self._ids = itertools.count(1)
        self.steps: list[tuple[Action, ...]] = []
        self._last_step: tuple[Action, ...] = ()
        self._step_done_at = 0.0  # when the last result of the step in flight came back
        self.pending: dict[str, PendingAction] = {}
        self.transition_failed = False
        self.last_failover: dict | None = None
        self.last_transition: Transition | None = None
        self.last_seen: dict[str, str] = {}  # resource -> node it was last seen started on
        self._cib_sent: dict[str, float] = {}
        self.acks: dict[str, dict] = {}  # request id -> answer (for requests we forwarded)
        # Quorum and fencing
        self.reach: int | None = None  # ping targets this node reaches (None: not probed)
        self.unclean: dict[str, tuple[ResourceStatus, ...]] = {}  # lost, not fenced -> what it held
        self.fencing: dict[str, dict] = {}  # node -> last fencing result {"state", "at", "reason"}
        self.fence_failures: dict[str, int] = {}  # node -> failed hook runs in a row
        self.quorum = self._compute_quorum()
        self._inquorate_step: set[str] = set()  # local action ids run without a DC
        self.settle_until = 0.0  # the DC decides nothing before this (nodes just joined)
        # Split brain: peers that came back after being lost, whose first
        # report is compared with what runs here; the last detection stays
        # in the status (sticky: the DC soon stops one copy, the fact remains).
        self._rejoined: set[str] = set()
        self.split_brain: dict | None = None

    # ---- membership and identity ------------------------------------------
    @property
    def dc(self) -> str | None:
        if not self.may_manage:
            return None  # a partition without quorum has no DC
        candidates = [n for n in self.online if n in self.order]
        return min(candidates, key=self.order.__getitem__) if candidates else None

    @property
    def may_manage(self) -> bool:
        return self.quorum.have or self.config.no_quorum_policy == "ignore"

    def _compute_quorum(self) -> quorum.Quorum:
        reach = {n: v.reach for n, v in self.peers.items() if v.reach is not None}
        return quorum.compute(self.config, self.online, self.local, reach=self.reach, peer_reach=reach)

    def update_quorum(self) -> None:
        """Recompute quorum (membership or ping reach changed); announce a change."""
        before = self.quorum
        self.quorum = self._compute_quorum()
        if before.have != self.quorum.have:
            self.publish("quorum", {"node": self.local, **self.quorum.as_dict()})
            if self.quorum.have:
                # A healed partition brings its nodes back within about one keepalive:
                # hear each of them (and what runs there) before placing anything.
                self.settle_until = self.clock() + SETTLE_KEEPALIVES * self.config.keepalive / 1000.0
            self.steps = []
            self.pending.clear()
            self.transition_failed = False

    def set_reach(self, reach: int) -> None:
        self.reach = reach
        self.update_quorum()

    @property
    def is_dc(self) -> bool:
        return self.dc == self.local

    def set_online(self, online: frozenset[str], lost: tuple[str, ...] = ()) -> None:
        previous = self.online
        self.online = frozenset(online) | {self.local}
        # A node seen before (it has a view) and back now: a partition healed or it restarted.
        self._rejoined |= {n for n in self.online - previous if n in self.peers}
        for node in self.online:
            if self.unclean.pop(node, None) is not None:
                self.fencing.pop(node, None)  # it came back: its own reports tell the truth again
                self.fence_failures.pop(node, None)
        for node in lost:
            view = self.peers.get(node)
            if view is not None:
                held = tuple(r for r in view.resources if r.state != ResourceState.STOPPED)
                if self.config.fencing is not None and held:
                    # Without fencing a lost node is assumed to have stopped everything
                    # (Heartbeat's rule); with it, its resources wait for the hook.
                    self.unclean[node] = held
                    self.fencing[node] = {"state": "pending", "at": None, "reason": ""}
                self.peers[node] = replace(view, resources=())
            for pending in [p for p in self.pending.values() if p.action.node == node]:
                self.pending.pop(pending.id, None)
                self.transition_failed = True
        self.update_quorum()

    def fence_done(self, node: str, ok: bool, reason: str) -> None:
        """The fencing hook for `node` finished."""
        now = self.clock()
        self.fencing[node] = {"state": "done" if ok else "failed", "at": now, "reason": reason}
        failures = 0 if ok else self.fence_failures.get(node, 0) + 1
        self.fence_failures[node] = failures
        if ok:
            self.unclean.pop(node, None)
        # One event per change of outcome: a retry failing like the one before is
        # logged but not announced again, or a fence device that stays down would
        # send a trap every FENCE_RETRY_S and bury the operator in repeats.
        kind = "fencing-retry-failed" if failures > 1 else "fencing"
        self.publish(kind, {"node": node, "ok": ok, "reason": reason, "at": now,
                            **({"failures": failures} if failures > 1 else {})})

    def _drive_fencing(self, now: float) -> None:
        for node in self.unclean:
            record = self.fencing.setdefault(node, {"state": "pending", "at": None, "reason": ""})
            due = record["state"] == "pending" or (
                record["state"] == "failed" and now - (record["at"] or 0.0) >= FENCE_RETRY_S)
            if due:
                self.fencing[node] = {"state": "running", "at": now, "reason": ""}
                self.fence(node)

    def ready(self, now: float) -> bool:
        """The DC waits for all nodes, or for initdead, before placing anything,
        so a node starting alone does not grab resources it would give back."""
        everyone = all(n.name in self.online for n in self.config.nodes)
        return everyone or (now - self.started) * 1000 >= self.config.initdead

    # ---- local resource manager results -------------------------------------
    def set_local_status(self, statuses) -> None:
        for status in statuses:
            self.local_resources[status.resource] = status
        self.lrm_seq += 1

    def action_done(self, action_id: str | None, kind: str, resource: str, rc: int, reason: str,
                    state: ResourceState, failed: bool) -> None:
        """A local action (or recurring monitor, with no id) finished."""
        now = self.clock()
        if failed:
            self.unrecovered.add(resource)
        elif kind == "start" and resource in self.unrecovered:
            self.unrecovered.discard(resource)
            self.publish("resource-recovered", {"resource": resource, "node": self.local})
        self.local_resources[resource] = ResourceStatus(resource, self.local, state, rc, reason)
        self.lrm_seq += 1
        if failed:
            previous = self.failures.get(resource)
            count = (previous.count if previous else 0) + 1
            if kind == "start":
                # Pacemaker: a failed start sets the fail count to INFINITY by default
                # (start-failure-is-fatal): the node is not tried again until cleanup.
                from heartbeat.model import INFINITY
                count = INFINITY
            self.failures[resource] = FailRecord(resource, self.local, count, now, rc, reason,
                                                 hard=rc in HARD_RCS or rc == FATAL_RC)
            self.publish("resource-failed", {"resource": resource, "node": self.local, "operation": kind,
                                             "rc": rc, "reason": reason})
        if action_id is not None:
            self.running.discard(action_id)
            # The fail counts go with the result: the DC recomputes at once,
            # and must not place the resource again where its start just failed.
            result = {"id": action_id, "rc": rc, "reason": reason, "failed": failed,
                      "lrm_seq": self.lrm_seq, "resources": self._local_resources_body(),
                      "failures": self._failures_body()}
            self.done[action_id] = result
            while len(self.done) > MAX_REMEMBERED_ACTIONS:
                self.done.popitem(last=False)
            if self.is_dc:
                self._record_result(self.local, result)
            elif self.dc is not None:
                self.send("result", result, self.dc)
            self._inquorate_step.discard(action_id)
        else:
            # A spontaneous failure: tell everyone now rather than at the next keepalive.
            self.send("hb", self.heartbeat_body(), None)

    def cleanup(self, resource: str | None, node: str | None) -> None:
        if node not in (None, self.local):
            return
        if resource is None:
            self.failures.clear()
        else:
            group = self.config.group(resource)
            for rid in (group.resources if group else (resource,)):
                self.failures.pop(rid, None)
        self.lrm_seq += 1

    # ---- heartbeats ---------------------------------------------------------
    def _local_resources_body(self) -> list[dict]:
        return [{"resource": s.resource, "state": s.state.value, "rc": s.rc, "reason": s.reason}
                for s in self.local_resources.values()]

    def _failures_body(self) -> list[dict]:
        return [{"resource": f.resource, "count": f.count, "at": f.last_failure, "rc": f.last_rc,
                 "reason": f.last_reason, "hard": f.hard} for f in self.failures.values()]

    def heartbeat_body(self) -> dict:
        body = {
            "cib_version": list(self.cib.version.as_tuple()),
            "reach": self.reach,
            "lrm_seq": self.lrm_seq,
            "resources": self._local_resources_body(),
            "failures": self._failures_body(),
        }
        if self.is_dc and self.last_failover:
            body["last_failover"] = self.last_failover
        if self.split_brain:
            body["split_brain"] = self.split_brain
        return body

    def on_message(self, kind: str, sender: str, body: dict, generation: int = 0) -> None:
        if sender == self.local or sender not in self.order:
            return
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(sender, body, generation)

    def _on_hb(self, sender: str, body: dict, generation: int) -> None:
        view = self.peers.setdefault(sender, PeerView())
        seq = int(body.get("lrm_seq", -1))
        if generation != view.generation or seq >= view.lrm_seq:
            view.generation = generation
            view.lrm_seq = seq
            view.resources = _statuses(sender, body.get("resources", ()))
            view.failures = _failures(sender, body.get("failures", ()))
            if sender in self._rejoined:
                self._rejoined.discard(sender)
                self._check_split_brain(sender, view.resources)
        # The side that saw it first may have stopped its copy before this
        # side heard it: its report is adopted, so every node shows the fact.
        # A later clearing (`heartbeat clear-split-brain`) travels the same way.
        reported = body.get("split_brain")
        if isinstance(reported, dict) and (
                (self.split_brain is None and reported.get("detected"))
                or (self.split_brain is not None and reported.get("at", 0) > self.split_brain.get("at", 0))):
            self.split_brain = dict(reported)
        version = CibVersion(*body.get("cib_version", (0, 0, 0)))
        view.cib_version = version
        reach = body.get("reach")
        if isinstance(reach, int) and reach != view.reach:
            view.reach = reach
            self.update_quorum()
        if "last_failover" in body:
            view.last_failover = body["last_failover"]
            if sender == self.dc:
                self.last_failover = body["last_failover"]
        if cib_store.newer(self.cib.version, version):
            self._send_cib(sender)

    def clear_split_brain(self, now: float) -> None:
        """The administrator has dealt with it: the record becomes a dated
        clearing, newer than the detection, so that heartbeats carry the
        clearing to every node (and a node that missed it does not bring the
        detection back). A new split brain later is recorded again."""
        self.split_brain = {"detected": False, "cleared": True, "at": now}

    def _check_split_brain(self, peer: str, theirs: tuple[ResourceStatus, ...]) -> None:
        """The first report of a node back from a partition: a primitive (not
        a clone) running both there and here ran twice while the two sides
        could not hear each other."""
        running = {ResourceState.STARTED, ResourceState.STARTING, ResourceState.STOPPING}
        here = {r.resource for r in self.local_resources.values() if r.state in running}
        there = {r.resource for r in theirs if r.state in running}
        both = sorted(r for r in here & there if self.config.clone_max_of(r) is None)
        if not both:
            return
        self.split_brain = {"detected": True, "at": self.clock(), "nodes": sorted((self.local, peer)),
                            "resources": both}
        self.publish("split-brain", {"nodes": ",".join(self.split_brain["nodes"]), "resources": ",".join(both)})

    def _send_cib(self, node: str) -> None:
        now = self.clock()
        if now - self._cib_sent.get(node, 0.0) < self.config.keepalive / 1000.0:
            return
        self._cib_sent[node] = now
        self.send("cib", cib_store.runtime_to_dict(self.cib), node)

    def _on_cib(self, sender: str, body: dict, generation: int) -> None:
        candidate = cib_store.runtime_from_dict(self.config, body)
        if cib_store.newer(candidate.version, self.cib.version):
            self.cib = candidate
            self.persist(candidate)

    def _on_action(self, sender: str, body: dict, generation: int) -> None:
        action_id = body["id"]
        if action_id in self.done:
            self.send("result", self.done[action_id], sender)
            return
        if action_id in self.running:
            return
        self.running.add(action_id)
        self.execute(action_id, body["kind"], body["resource"])

    def _on_result(self, sender: str, body: dict, generation: int) -> None:
        view = self.peers.setdefault(sender, PeerView())
        if int(body.get("lrm_seq", -1)) >= view.lrm_seq:
            view.lrm_seq = int(body["lrm_seq"])
            view.resources = _statuses(sender, body.get("resources", ()))
            if "failures" in body:
                view.failures = _failures(sender, body["failures"])
        if self.is_dc:
            self._record_result(sender, body)

    def _on_cleanup(self, sender: str, body: dict, generation: int) -> None:
        self.cleanup(body.get("resource"), body.get("node"))

    def _on_request(self, sender: str, body: dict, generation: int) -> None:
        if not self.is_dc:
            return  # the sender will retry with the DC it sees
        answer = self.apply_request(body)
        self.send("ack", {"id": body.get("id"), **answer}, sender)

    def _on_ack(self, sender: str, body: dict, generation: int) -> None:
        self.acks[body.get("id")] = body

    # ---- administrators' requests -------------------------------------------
    def apply_request(self, request: dict) -> dict:
        """Apply a change on the DC. Returns {"ok": True} or {"ok": False, "error": ...}."""
        if request.get("cmd") == "cleanup":
            payload = {"resource": request.get("resource"), "node": request.get("node")}
            self.cleanup(payload["resource"], payload["node"])
            self.send("cleanup", payload, None)
            return {"ok": True}
        if request.get("cmd") == "clear-split-brain":
            if not (self.split_brain and self.split_brain.get("detected")):
                return {"ok": False, "error": "no split brain is recorded"}
            self.clear_split_brain(self.clock())
            self.send("hb", self.heartbeat_body(), None)  # every node forgets it now, not at the next keepalive
            return {"ok": True}
        try:
            self.cib = cib_store.apply_change(self.cib, request, self.clock())
        except cib_store.ChangeRejected as exc:
            return {"ok": False, "error": str(exc)}
        self.persist(self.cib)
        for node in self.online - {self.local}:
            self._cib_sent.pop(node, None)
            self._send_cib(node)
        return {"ok": True}

    def new_request_id(self) -> str:
        return f"{self.local}:{self.generation}:r{next(self._ids)}"

    # ---- the DC's work -----------------------------------------------------
    def cluster_status(self) -> ClusterStatus:
        statuses = list(self.local_resources.values())
        for node, view in self.peers.items():
            if node in self.online:
                statuses.extend(view.resources)
        for held in self.unclean.values():
            statuses.extend(held)
        return ClusterStatus(online=self.online, resources=tuple(statuses), quorum=self.may_manage,
                             unclean=frozenset(self.unclean))

    def composed_cib(self) -> Cib:
        failures = list(self.failures.values())
        for node, view in self.peers.items():
            if node in self.online:
                failures.extend(view.failures)
        return replace(self.cib, failures=tuple(failures))

    def pulse(self) -> None:
        """Called every keepalive and after events: drive the current transition."""
        now = self.clock()
        for status in self.cluster_status().resources:
            if status.state == ResourceState.STARTED:
                self.last_seen[status.resource] = status.node
        if not self.may_manage:
            # Right after start-up a node is alone until it hears its peers: it
            # waits initdead before treating that as a partition without quorum,
            # or restarting heartbeat on a node would stop its resources.
            if (now - self.started) * 1000 >= self.config.initdead:
                self._enforce_without_quorum(now)
            return
        if not self.is_dc or not self.ready(now) or now < self.settle_until:
            return
        self._drive_fencing(now)
        self._expire_pending(now)
        if self.pending:
            self._retransmit(now)
            return
        if self.steps and not self.transition_failed:
            if (make_before_break_module.drains(self.steps[0], self._last_step, self.make_before_break)
                    and (now - self._step_done_at) * 1000 < make_before_break_module.DRAIN_MS):
                return  # the old node keeps the address a moment longer (make-before-break)
            self._start_step(self.steps.pop(0), now)
            return
        self.steps = []
        self.transition_failed = False
        transition = self.schedule(self.composed_cib(), self.cluster_status(), now)
        transition = make_before_break_module.reorder(transition, self.config, self.make_before_break)
        self.last_transition = transition
        self._note_failover(transition, now)
        if transition.steps:
            self.steps = list(transition.steps)
            self._start_step(self.steps.pop(0), now)

    def _enforce_without_quorum(self, now: float) -> None:
        """No quorum, no DC: apply the policy to this node's own resources
        (stop them, or freeze), one step at a time."""
        if self._inquorate_step:
            return
        local = ClusterStatus(online=frozenset({self.local}), resources=tuple(self.local_resources.values()),
                              quorum=False)
        transition = self.schedule(self.composed_cib(), local, now)
        self.last_transition = transition
        for step in transition.steps:
            mine = [a for a in step if a.node == self.local]
            if not mine:
                continue
            for action in mine:
                action_id = f"{self.local}:{self.generation}:q{next(self._ids)}"
                self._inquorate_step.add(action_id)
                self.running.add(action_id)
                self.execute(action_id, action.kind, action.resource)
            return

    def _start_step(self, step: tuple[Action, ...], now: float) -> None:
        self._last_step = step
        for action in step:
            action_id = f"{self.local}:{self.generation}:a{next(self._ids)}"
            resource = self.config.resource(action.resource)
            op = getattr(resource, action.kind, None) if resource else None
            timeout = op.timeout if op is not None else 20_000
            self.pending[action_id] = PendingAction(action, action_id, now, timeout)
            self._dispatch(action_id, action)

    def _dispatch(self, action_id: str, action: Action) -> None:
        if action.node == self.local:
            if action_id not in self.running and action_id not in self.done:
                self.running.add(action_id)
                self.execute(action_id, action.kind, action.resource)
        else:
            self.send("action", {"id": action_id, "kind": action.kind, "resource": action.resource}, action.node)

    def _retransmit(self, now: float) -> None:
        for pending in self.pending.values():
            if pending.action.node != self.local:
                self._dispatch(pending.id, pending.action)

    def _expire_pending(self, now: float) -> None:
        for pending in list(self.pending.values()):
            if (now - pending.sent_at) * 1000 > pending.timeout_ms + ACTION_GRACE_MS:
                self.pending.pop(pending.id, None)
                self.transition_failed = True

    def _record_result(self, node: str, result: dict) -> None:
        pending = self.pending.pop(result.get("id"), None)
        if pending is None:
            return
        if not self.pending:
            self._step_done_at = self.clock()
        if result.get("failed"):
            self.transition_failed = True

    def _note_failover(self, transition: Transition, now: float) -> None:
        """A resource that is to start on another node than where it was last
        seen running, without a move constraint, is failing over."""
        moved: dict[tuple[str, str], list[str]] = {}
        # An administrator's move to a node is not a failover; leaving that
        # node afterwards (it died, the resource failed there) is one.
        moves = {m.resource: m.node for m in self.cib.moves}
        starts = {a.resource: a.node for a in transition.actions
                  if a.kind == "start" and self.config.clone_max_of(a.resource) is None}
        for rid, target in starts.items():
            before = self.last_seen.get(rid)
            if before is None or before == target:
                continue
            group = self.config.group_of(rid)
            asked = moves.get(rid) or (moves.get(group.id) if group else None)
            if asked == target and before in self.online:
                continue
            moved.setdefault((before, target), []).append(rid)
        for (source, target), resources in moved.items():
            if source not in self.online:
                reason = f"node {source} lost"
            elif source in self.cib.standby:
                reason = f"node {source} in standby"
            else:
                reason = "; ".join(transition.reasons) or "policy"
            self.last_failover = {"at": now, "resources": resources, "from": source, "to": target,
                                  "reason": reason}
            self.publish("failover", dict(self.last_failover))


def _statuses(node: str, items) -> tuple[ResourceStatus, ...]:
    out = []
    for item in items:
        try:
            out.append(ResourceStatus(item["resource"], node, ResourceState(item["state"]),
                                      int(item.get("rc", 0)), str(item.get("reason", ""))))
        except (KeyError, ValueError, TypeError):
            continue  # a peer's malformed entry is ignored, not fatal
    return tuple(out)


def _failures(node: str, items) -> tuple[FailRecord, ...]:
    out = []
    for item in items:
        try:
            out.append(FailRecord(item["resource"], node, int(item["count"]), float(item["at"]),
                                  int(item.get("rc", 1)), str(item.get("reason", "")), bool(item.get("hard"))))
        except (KeyError, ValueError, TypeError):
            continue
    return tuple(out)
