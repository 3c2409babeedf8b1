"""The local resource manager: runs the agents of one node's resources.

Pacemaker's execd plus the lifecycle bookkeeping of its controller, for one
node: the controller asks for `start`/`stop`/`monitor` with `execute()` and
gets the result back; recurring monitors run as greenlets and report through
the `on_result` callback. The LRM decides nothing: a failed monitor marks the
resource failed and is reported; recovery is the controller's job.

Rules:
- one action at a time per resource (a gevent lock each); different
  resources run in parallel;
- a resource's state changes only through `lifecycle.process_event()`, so a
  start over a failure raises IllegalTransition before any agent runs;
- a resource entering STARTED (a start, or a probe that finds it running)
  arms its recurring monitor (config `monitor.interval`/`timeout`); a stop,
  or a probe that finds it stopped, disarms it; a failure leaves it armed so
  that a recovery by itself is seen too;
- recurring monitors report only changes (the first failure, a different
  code, a return to success), like Pacemaker's execd, so one failure is one
  callback and not one per interval.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Protocol, Sequence

import gevent
from gevent.event import Event
from gevent.lock import Semaphore

from heartbeat.errors import AgentError, IllegalTransition
from heartbeat.lrm.codes import OcfRc
from heartbeat.lrm.lifecycle import LifecycleEvent, process_event, result_event
from heartbeat.lrm.runner import ActionResult, meta_variable, run_action
from heartbeat.model import Operation, ResourceConfig, ResourceState, ResourceStatus

log = logging.getLogger("heartbeat.lrm")

DEFAULT_PROBE_TIMEOUT_MS = 20_000  # a resource without a monitor op is probed with this timeout
STOP_MONITORS_GRACE_MS = 5_000  # stop_monitors() waits this long beyond the longest monitor timeout
EXECUTE_ACTIONS = ("start", "stop", "monitor", "quiesce")
_SUCCESS_CODES = (OcfRc.SUCCESS, OcfRc.DEGRADED, OcfRc.DEGRADED_PROMOTED)
# A probe answering "not installed" means "cannot be running here" (Pacemaker
# treats it so); the rc is kept in the status for the scheduler to ban the node.
_PROBE_STOPPED_CODES = (OcfRc.NOT_RUNNING, OcfRc.ERR_INSTALLED)


class Executor(Protocol):
    """run_action's shape; tests inject a fake."""

    def __call__(self, resource: ResourceConfig, action: str, timeout_ms: int, interval_ms: int = 0,
                 ocf_root: str | None = None, extra_env: dict[str, str] | None = None) -> ActionResult: ...


@dataclass(eq=False)
class _RecurringMonitor:
    op: Operation
    cancelled: Event = field(default_factory=Event)
    greenlet: gevent.Greenlet | None = None
    last: tuple[int, bool] = (OcfRc.SUCCESS, False)  # (rc, timed_out) last seen; armed after a success


@dataclass(eq=False)
class _Entry:
    config: ResourceConfig
    state: ResourceState = ResourceState.STOPPED
    rc: int = OcfRc.SUCCESS
    reason: str = ""
    lock: Semaphore = field(default_factory=Semaphore)
    monitor: _RecurringMonitor | None = None


class LocalResourceManager:
    def __init__(self, node: str, resources: Sequence[ResourceConfig], on_result: Callable[[ActionResult], None],
                 ocf_root: str | None = None, *, executor: Executor = run_action):
        self.node = node
        self.ocf_root = ocf_root
        self._on_result = on_result
        self._executor = executor
        self._entries: dict[str, _Entry] = {res.id: _Entry(res) for res in resources}

    # ---- queries ---------------------------------------------------------------
    def status(self) -> tuple[ResourceStatus, ...]:
        return tuple(self._status(entry) for entry in self._entries.values())

    def state(self, resource_id: str) -> ResourceState:
        return self._entry(resource_id).state

    def monitor_armed(self, resource_id: str) -> bool:
        return self._entry(resource_id).monitor is not None

    def _status(self, entry: _Entry) -> ResourceStatus:
        return ResourceStatus(entry.config.id, self.node, entry.state, int(entry.rc), entry.reason)

    def _entry(self, resource_id: str) -> _Entry:
        try:
            return self._entries[resource_id]
        except KeyError:
            raise AgentError(f"unknown resource {resource_id!r}") from None

    # ---- actions -----------------------------------------------------------------
    def probe_all(self) -> dict[str, ResourceStatus]:
        """Probe every resource in parallel (start-up, Pacemaker's probes):
        rc 7 (or 5, not installed) stopped, 0 started, anything else failed."""
        greenlets = [gevent.spawn(self.probe, rid) for rid in list(self._entries)]
        gevent.joinall(greenlets, raise_error=True)
        return {g.value.resource: self._status(self._entries[g.value.resource])
                for g in greenlets if g.value.resource in self._entries}

    def probe(self, resource_id: str) -> ActionResult:
        """One probe (monitor, interval 0): learns the actual state, e.g. after a cleanup."""
        entry = self._entry(resource_id)
        with entry.lock:
            op = entry.config.monitor
            timeout = op.timeout if op else DEFAULT_PROBE_TIMEOUT_MS
            result = self._run(entry.config, "probe", timeout, 0)
            self._settle(entry, result)
        return result

    def execute(self, action: str, resource_id: str) -> ActionResult:
        """Run start, stop, monitor or quiesce now (after any action in flight
        on the same resource) and return the result; it is not also passed to
        on_result. `monitor` of a resource that is not started is a probe
        (the result's action says "probe"). IllegalTransition if the
        lifecycle forbids the action (start of a failed resource)."""
        if action not in EXECUTE_ACTIONS:
            raise ValueError(f"unsupported action {action!r} (expected one of {', '.join(EXECUTE_ACTIONS)})")
        entry = self._entry(resource_id)
        with entry.lock:
            config = entry.config
            if action == "quiesce":
                return self._quiesce(config)
            if action == "monitor":
                if entry.state != ResourceState.STARTED:
                    timeout = config.monitor.timeout if config.monitor else DEFAULT_PROBE_TIMEOUT_MS
                    result = self._run(config, "probe", timeout, 0)
                else:
                    op = config.monitor or Operation("monitor", interval=0, timeout=DEFAULT_PROBE_TIMEOUT_MS)
                    result = self._run(config, "monitor", op.timeout, op.interval)
                    if entry.monitor is not None:
                        entry.monitor.last = (result.rc, result.timed_out)
                self._settle(entry, result)
                return result
            event = LifecycleEvent.START if action == "start" else LifecycleEvent.STOP
            entry.state = process_event(entry.state, event)
            if action == "stop":
                self._disarm(entry)
            op = config.start if action == "start" else config.stop
            result = self._run(config, action, op.timeout, 0)
            self._settle(entry, result)
        return result

    def _quiesce(self, config: ResourceConfig) -> ActionResult:
        """A make-before-break move is about to take the resource away: the
        agent stops taking new work (ocf:gproxy:vip drops new connections).
        The state does not change. An agent without the action (3, or an LSB
        script) has nothing to do: that is a success, said in the reason, and
        so is a failure (logged)."""
        result = self._run(config, "quiesce", config.stop.timeout, 0)
        if result.rc == OcfRc.ERR_UNIMPLEMENTED:
            return replace(result, rc=OcfRc.SUCCESS, reason=f"no quiesce action ({result.reason})")
        if not result.ok:
            # Best effort: a failed quiesce costs at most the rare reset it was
            # there to avoid; failing the move for it would cost more.
            log.warning("%s: quiesce failed (%s): moving on without it", config.id, result.reason)
            return replace(result, rc=OcfRc.SUCCESS, reason=f"quiesce failed, ignored ({result.reason})")
        return result

    def _run(self, config: ResourceConfig, action: str, timeout_ms: int, interval_ms: int) -> ActionResult:
        result = self._executor(config, action, timeout_ms, interval_ms, self.ocf_root,
                                {meta_variable("on_node"): self.node})
        log.log(logging.INFO if result.ok else logging.WARNING, "%s %s on %s: %s (%d ms)",
                action, config.id, self.node, result.reason, result.duration_ms)
        return result

    def _settle(self, entry: _Entry, result: ActionResult) -> None:
        """Feed a finished action's result into the lifecycle, then arm or
        disarm the recurring monitor to match the new state."""
        rc = result.rc
        ok = rc in _SUCCESS_CODES and not result.timed_out
        stopped_codes = _PROBE_STOPPED_CODES if result.action == "probe" else (OcfRc.NOT_RUNNING,)
        not_running = rc in stopped_codes and not result.timed_out
        entry.state = process_event(entry.state, result_event(result.action, ok, not_running))
        entry.rc, entry.reason = rc, result.reason
        if entry.state == ResourceState.STARTED:
            self._arm(entry)
        elif entry.state == ResourceState.STOPPED:
            self._disarm(entry)

    # ---- recurring monitors ----------------------------------------------------------
    def _arm(self, entry: _Entry) -> None:
        op = entry.config.monitor
        if entry.monitor is not None or op is None or op.interval <= 0:
            return
        monitor = _RecurringMonitor(op)
        entry.monitor = monitor
        monitor.greenlet = gevent.spawn(self._monitor_loop, entry.config.id, monitor)

    @staticmethod
    def _disarm(entry: _Entry) -> None:
        # Only flags it: the loop exits at its next wake-up, and a monitor in
        # flight finishes (killing it mid-run would orphan the agent's work).
        if entry.monitor is not None:
            entry.monitor.cancelled.set()
            entry.monitor = None

    def _monitor_loop(self, resource_id: str, monitor: _RecurringMonitor) -> None:
        while not monitor.cancelled.wait(monitor.op.interval / 1000):
            self.run_monitor_once(resource_id, monitor)

    def run_monitor_once(self, resource_id: str, monitor: _RecurringMonitor | None = None) -> ActionResult | None:
        """One turn of a recurring monitor (what its greenlet does every
        interval); returns the result, or None when disarmed meanwhile.
        Reports through on_result when the result changed."""
        entry = self._entries.get(resource_id)
        if entry is None:
            return None
        monitor = monitor or entry.monitor
        if monitor is None or entry.monitor is not monitor:
            return None
        with entry.lock:
            if monitor.cancelled.is_set():
                return None
            result = self._run(entry.config, "monitor", monitor.op.timeout, monitor.op.interval)
            if monitor.cancelled.is_set():
                return None  # disarmed (shutdown, config change) while it ran: nobody wants it
            try:
                self._settle(entry, result)
            except IllegalTransition as exc:  # a defensive guard: the lock makes this unreachable
                log.error("%s: recurring monitor result dropped: %s", resource_id, exc)
                return result
            key = (result.rc, result.timed_out)
            changed, monitor.last = key != monitor.last, key
        if changed:
            try:
                self._on_result(result)
            except Exception:  # a broken callback must not stop the monitoring
                log.exception("%s: on_result callback failed", resource_id)
        return result

    def stop_monitors(self) -> None:
        """Disarm every recurring monitor and wait for those in flight (shutdown)."""
        greenlets = []
        longest = 0
        for entry in self._entries.values():
            if entry.monitor is not None:
                longest = max(longest, entry.monitor.op.timeout)
                if entry.monitor.greenlet is not None:
                    greenlets.append(entry.monitor.greenlet)
                self._disarm(entry)
        gevent.joinall(greenlets, timeout=(longest + STOP_MONITORS_GRACE_MS) / 1000)

    # ---- configuration changes --------------------------------------------------------
    def update_resources(self, resources: Sequence[ResourceConfig]) -> None:
        """Take a new resource list: new resources start as stopped (probe them
        to learn better), removed ones are forgotten (stop them first: the LRM
        stops nothing by itself), and a changed monitor op re-arms the monitor."""
        old: Mapping[str, _Entry] = self._entries
        entries: dict[str, _Entry] = {}
        for res in resources:
            entry = old.get(res.id)
            if entry is None:
                entries[res.id] = _Entry(res)
                continue
            monitor_changed = entry.config.monitor != res.monitor
            entry.config = res
            if monitor_changed and entry.monitor is not None:
                self._disarm(entry)
                self._arm(entry)
            entries[res.id] = entry
        for rid, entry in old.items():
            if rid not in entries:
                self._disarm(entry)
        self._entries = entries
