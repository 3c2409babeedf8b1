"""`heartbeat run`: one cluster node, wired together with gevent.

The parts keep to their jobs (Pacemaker's split): the transport moves
authenticated datagrams, membership turns heard heartbeats into node
up/down, the local resource manager runs agents, the controller decides
(and, on the DC, drives the policy engine), the status server answers the
checks and the CLI. This module only connects them and owns the timers.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import gevent
import gevent.event
from gevent.server import StreamServer

from heartbeat import cib_store, probes
from heartbeat.authkeys import load_authkeys
from heartbeat.controller import Controller
from heartbeat.lrm.lrm import LocalResourceManager
from heartbeat import events as ev
from heartbeat.membership import (HeartbeatHeard, LateHeartbeat, LinkDown, LinkUp, Membership, NodeDown,
                                  NodeUp, Tick)
from heartbeat.model import ClusterConfig, ResourceState
from heartbeat.policy import schedule
from heartbeat.status import build_status
from heartbeat.transport import REJECT_REASONS, Transport

STATUS_LINE_LIMIT = 65536
STATUS_CLIENT_TIMEOUT = 5.0
REQUEST_WAIT = 10.0  # how long a forwarded change waits for the DC's answer
GENERATION_FILE = "generation-{node}"
MAX_REPORTED_ERRORS = 20  # the status keeps the most recent ones only


def _next_generation(state_dir: str, node: str) -> int:
    """Boot generation: persisted and increased at every start, so that peers
    tell a restarted node's fresh sequence numbers from a replay."""
    path = Path(state_dir) / GENERATION_FILE.format(node=node)
    try:
        current = int(path.read_text().strip())
    except (OSError, ValueError):
        current = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{current + 1}\n")
    os.replace(tmp, path)
    return current + 1


class Node:
    def __init__(self, config: ClusterConfig, name: str, ocf_root: str | None = None, log=None,
                 bus: ev.EventBus | None = None):
        if config.node(name) is None:
            raise ValueError(f"node {name!r} is not in the configuration")
        self.config = config
        self.name = name
        self.bus = bus or ev.EventBus()
        self._rejected_seen: dict[str, int] = {}
        self.errors: list[dict] = []  # recent errors the node survived (a full disk...), in the status
        self.log = log or (lambda message: print(f"{_stamp()} heartbeat[{name}]: {message}", file=sys.stderr,
                                                 flush=True))
        state_dir = os.path.join(config.state_dir, name) if config.state_dir else "."
        self.state_dir = state_dir
        self.generation = _next_generation(state_dir, name)
        keys = load_authkeys(config.auth_key_file)
        cib = cib_store.load(config, state_dir)
        self.controller = Controller(
            name, cib, send=self._send, execute=self._execute, clock=self._now, schedule=schedule,
            persist=self._persist, publish=self._publish,
            generation=self.generation, fence=self._fence)
        now = self._now()
        self.membership = Membership(
            name, {n.name: n.addresses for n in config.nodes}, keepalive_ms=config.keepalive,
            warntime_ms=config.warntime, deadtime_ms=config.deadtime, initdead_ms=config.initdead, now=now)
        local = config.node(name)
        peers = {n.name: n.addresses for n in config.nodes if n.name != name}
        self.transport = Transport(name, config.name, list(local.addresses), config.port, peers, keys,
                                   self.generation, self._on_message, multicast=config.multicast)
        self.lrm = LocalResourceManager(name, config.resources, self._on_lrm_result, ocf_root=ocf_root)
        self.status_server: StreamServer | None = None
        self._stop = gevent.event.Event()
        self._greenlets: list[gevent.Greenlet] = []
        self.notifier = None  # the SNMP notifier, when [snmp] is configured (started in start())

    # ---- plumbing -------------------------------------------------------------
    @staticmethod
    def _now() -> float:
        import time
        return time.time()

    def _persist(self, cib) -> None:
        """Write the CIB; a full or failing disk must not kill the node: the
        old file stays valid (cib_store writes a temporary file, then renames),
        the new CIB lives on in memory and on the peers, and the error is
        logged and kept in the status's `errors` (the last few)."""
        try:
            cib_store.save(cib, self.state_dir)
        except OSError as exc:
            try:
                os.unlink(os.path.join(self.state_dir, cib_store.CIB_FILE + ".tmp"))
            except OSError:
                pass  # never written, or the disk is gone: nothing more to free
            message = f"cannot write the CIB (epoch {cib.version.epoch}) in {self.state_dir}: {exc.strerror or exc}"
            self.log(message)
            self.errors.append({"at": self._now(), "what": "cib-write", "error": message})
            del self.errors[:-MAX_REPORTED_ERRORS]

    def _send(self, kind: str, body: dict, to: str | None) -> None:
        self.transport.send(kind, body, to)

    def _publish(self, kind: str, fields: dict) -> None:
        """The controller's events, as typed events on the bus."""
        self.log(f"{kind}: " + ", ".join(f"{k}={v}" for k, v in fields.items()))
        cluster = self.config.name
        if kind == "failover":
            self.bus.publish(ev.Failover(cluster=cluster, resources=tuple(fields["resources"]),
                                         source=fields["from"], target=fields["to"], reason=fields["reason"],
                                         at=fields["at"]))
        elif kind == "resource-failed":
            res = self.config.resource(fields["resource"])
            self.bus.publish(ev.ResourceFailed(cluster=cluster, resource=fields["resource"], node=fields["node"],
                                               agent=str(res.agent) if res else "", operation=fields["operation"],
                                               rc=fields["rc"], reason=fields["reason"], at=self._now()))
        elif kind == "fencing":
            self.bus.publish(ev.Fencing(cluster=cluster, node=fields["node"], ok=fields["ok"],
                                        reason=fields["reason"], at=fields["at"]))
        elif kind == "quorum":
            self.bus.publish(ev.QuorumChanged(cluster=cluster, node=fields["node"], have=fields["have"],
                                              votes=fields["votes"], expected=fields["expected"],
                                              reason=fields["reason"], at=self._now()))
        elif kind == "split-brain":
            self.bus.publish(ev.SplitBrain(cluster=cluster, nodes=_names(fields["nodes"]),
                                           resources=_names(fields["resources"]), at=self._now()))
        elif kind == "resource-recovered":
            self.bus.publish(ev.ResourceRecovered(cluster=cluster, resource=fields["resource"],
                                                  node=fields["node"], at=self._now()))

    def _fence(self, node: str) -> None:
        fencing = self.config.fencing
        if fencing is None:
            return

        def run() -> None:
            # The program only: fence agents take passwords as arguments (issue 9: no secret in logs).
            self.log(f"fencing {node}: running {fencing.command[0]} ({len(fencing.command) - 1} arguments not logged)")
            ok, reason = probes.run_fencing(fencing.command, node, fencing.timeout)
            self.controller.fence_done(node, ok, reason)
            self.controller.pulse()

        gevent.spawn(run)

    def _ping_loop(self) -> None:
        """The two-node tie-breaker's input: how many ping targets answer."""
        interval = max(self.config.keepalive / 1000.0, probes.PING_TIMEOUT_S / 2)
        while not self._stop.is_set():
            try:
                self.controller.set_reach(probes.reach(self.config.ping))
            except Exception as exc:
                self.log(f"ping probe failed: {exc!r}")
            self._stop.wait(interval)

    def _execute(self, action_id: str, kind: str, resource: str) -> None:
        gevent.spawn(self._run_action, action_id, kind, resource)

    def _run_action(self, action_id: str, kind: str, resource: str) -> None:
        result = self.lrm.execute(kind, resource)
        state = self._state_of(resource)
        if kind == "monitor":
            failed = result.rc not in (0, 7)
        else:
            failed = result.rc != 0
        self.log(f"{kind} {resource}: rc={result.rc} {result.reason}".rstrip())
        self.controller.action_done(action_id, kind, resource, result.rc, result.reason, state, failed)
        self.controller.pulse()

    def _state_of(self, resource: str) -> ResourceState:
        for status in self.lrm.status():
            if status.resource == resource:
                return status.state
        return ResourceState.STOPPED

    def _on_lrm_result(self, result) -> None:
        """A recurring monitor reported (the LRM calls this only for those)."""
        if result.action != "monitor" or result.rc == 0:
            return
        self.log(f"monitor {result.resource} failed: rc={result.rc} {result.reason}")
        self.controller.action_done(None, "monitor", result.resource, result.rc, result.reason,
                                    ResourceState.FAILED, True)
        self.controller.pulse()

    def _on_message(self, message, source: str) -> None:
        if message.kind == "hb":
            # The transport hands each heartbeat over once per link, so that
            # membership knows which links carry it; other kinds come once.
            now = self._now()
            heard = HeartbeatHeard(message.sender, source, message.generation, message.seq)
            self._membership_events(self.membership.process_event(heard, now))
        self.controller.on_message(message.kind, message.sender, message.body, message.generation)
        if message.kind in ("result", "request", "hb"):
            self.controller.pulse()

    def _membership_events(self, events) -> None:
        lost = []
        changed = False
        cluster = self.config.name
        now = self._now()
        for event in events:
            self.log(_describe(event))
            if isinstance(event, NodeDown):
                lost.append(event.node)
                changed = True
                self.bus.publish(ev.NodeLost(cluster=cluster, node=event.node, silent_ms=event.silent_ms, at=now))
            elif isinstance(event, NodeUp):
                changed = True
                self.bus.publish(ev.NodeJoined(cluster=cluster, node=event.node, at=now))
            elif isinstance(event, LateHeartbeat):
                self.bus.publish(ev.LateHeartbeat(cluster=cluster, node=event.node, gap_ms=event.gap_ms, at=now))
            elif isinstance(event, (LinkUp, LinkDown)):
                self.bus.publish(ev.LinkChanged(cluster=cluster, node=event.node, link=event.link,
                                                up=isinstance(event, LinkUp), at=now))
        if changed:
            self.controller.set_online(self.membership.online(), tuple(lost))

    # ---- timers -------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        interval = self.config.keepalive / 1000.0
        while not self._stop.is_set():
            try:
                self.transport.send("hb", self.controller.heartbeat_body(), None)
            except Exception as exc:  # never let one bad send stop the heartbeats
                self.log(f"heartbeat send failed: {exc!r}")
            self._stop.wait(interval)

    def _tick_loop(self) -> None:
        interval = max(0.02, self.config.keepalive / 4000.0)
        while not self._stop.is_set():
            try:
                self._membership_events(self.membership.process_event(Tick(), self._now()))
                self.controller.pulse()
                self._report_rejections()
            except Exception as exc:
                self.log(f"controller error: {exc!r}")
            self._stop.wait(interval)

    def _report_rejections(self) -> None:
        """Rejected packets (bad HMAC, replays...) become one AuthFailures
        event per reason and burst, not one per packet."""
        for reason in REJECT_REASONS:
            count = self.transport.counters.get(reason, 0)
            seen = self._rejected_seen.get(reason, 0)
            if count > seen:
                self._rejected_seen[reason] = count
                self.bus.publish(ev.AuthFailures(cluster=self.config.name, reason=reason, count=count - seen,
                                                 source="", at=self._now()))

    # ---- status socket ----------------------------------------------------------
    def status_document(self) -> dict:
        document = build_status(self.controller, self.membership.links,
                                {r: self.transport.counters.get(r, 0) for r in REJECT_REASONS})
        document["errors"] = list(self.errors)
        document["split_brain"] = self.controller.split_brain or {"detected": False}
        return document

    def _handle_status(self, sock, address) -> None:
        sock.settimeout(STATUS_CLIENT_TIMEOUT)
        try:
            data = b""
            while b"\n" not in data and len(data) < STATUS_LINE_LIMIT:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            line = data.split(b"\n", 1)[0]
            try:
                request = json.loads(line or b"{}")
                if not isinstance(request, dict):
                    raise ValueError("not an object")
            except ValueError:
                answer = {"ok": False, "error": "requests are one JSON object per line"}
            else:
                answer = self.answer(request)
            sock.sendall(json.dumps(answer).encode() + b"\n")
        except (OSError, socket.timeout):
            pass
        finally:
            sock.close()

    def answer(self, request: dict) -> dict:
        cmd = request.get("cmd", "status")
        if cmd == "status":
            return self.status_document()
        if cmd not in ("move", "clear", "standby", "online", "cleanup", "maintenance", "manage",
                       "clear-split-brain"):
            return {"ok": False, "error": f"unknown command: {cmd}"}
        controller = self.controller
        if controller.is_dc:
            answer = controller.apply_request(request)
            controller.pulse()
            return answer
        request = dict(request, id=controller.new_request_id())
        deadline = self._now() + REQUEST_WAIT
        while self._now() < deadline:
            dc = controller.dc
            if dc is not None:
                self.transport.send("request", request, dc)
            if controller.acks.get(request["id"]) is not None:
                break
            gevent.sleep(self.config.keepalive / 1000.0)
            if request["id"] in controller.acks:
                break
        answer = controller.acks.pop(request["id"], None)
        if answer is None:
            return {"ok": False, "error": "no answer from the DC"}
        return {k: v for k, v in answer.items() if k != "id"}

    def _start_status_server(self) -> None:
        path = self.config.status_socket
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # stale: nobody answers on it
            else:
                probe.close()
                raise RuntimeError(f"status socket {path} is in use by a running node")
            finally:
                probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        os.chmod(path, 0o660)
        listener.listen(64)
        listener.setblocking(False)  # gevent's accept loop must never block the hub
        self.status_server = StreamServer(listener, self._handle_status)
        self.status_server.start()

    # ---- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        if self.config.snmp is not None and self.notifier is None:
            # Imported only when configured (pysnmp is slow to import); it runs threads of its own.
            from checks.snmp.notifier import attach
            self.notifier = attach(self.bus, self.config.snmp, source="heartbeat", node=self.name, log=self.log)
        statuses = self.lrm.probe_all()
        self.controller.set_local_status(statuses.values())
        for status in statuses.values():
            if status.state == ResourceState.STARTED:
                self.log(f"probe: {status.resource} is already running here")
        self.transport.start()
        self._start_status_server()
        self._greenlets = [gevent.spawn(self._heartbeat_loop), gevent.spawn(self._tick_loop)]
        if self.config.ping:
            self._greenlets.append(gevent.spawn(self._ping_loop))
        self.log(f"node {self.name} started (generation {self.generation})")

    def serve_forever(self) -> None:
        self.start()
        self._stop.wait()

    def left_running(self) -> frozenset[str]:
        """Resources a stop of this node leaves running: all of them in
        maintenance mode, else the unmanaged ones (and their groups' members).
        So heartbeat itself can be restarted (upgraded) under running services."""
        cib = self.controller.cib
        if cib.maintenance:
            return frozenset(r.id for r in self.config.resources)
        names: set[str] = set()
        for rid in cib.unmanaged | self.config.configured_unmanaged():
            group = self.config.group(rid)
            names.update(group.resources if group else (rid,))
        return frozenset(names)

    def stop(self, stop_resources: bool = True) -> None:
        """Leave the cluster: stop local resources (in reverse order) so that
        the others can take them, then stop talking. Resources heartbeat does
        not manage now (maintenance mode, unmanaged) are left running."""
        if stop_resources:
            kept = self.left_running()
            for res in reversed(self.config.resources):
                if res.id in kept:
                    if self._state_of(res.id) == ResourceState.STARTED:
                        self.log(f"stop: {res.id} is left running (not managed now)")
                    continue
                if self._state_of(res.id) in (ResourceState.STARTED, ResourceState.FAILED):
                    self.lrm.execute("stop", res.id)
        if self.notifier is not None:
            self.notifier.close()  # lets queued traps leave (bounded wait)
            self.notifier = None
        self._stop.set()
        self.lrm.stop_monitors()
        self.transport.stop()
        if self.status_server is not None:
            self.status_server.stop()
            try:
                os.unlink(self.config.status_socket)
            except OSError:
                pass


def _stamp() -> str:
    import time
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"


def _names(value) -> tuple[str, ...]:
    """A comma-separated list (as the controller publishes it) or a sequence, as a tuple of names."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(str(item) for item in items if str(item))


def _describe(event) -> str:
    name = type(event).__name__
    fields = ", ".join(f"{k}={v}" for k, v in vars(event).items()) if hasattr(event, "__dict__") else str(event)
    return f"{name}({fields})"
