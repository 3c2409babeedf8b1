"""The resource lifecycle on one node, as an explicit state table.

Theory of operation
-------------------
Rule 1: every state change of a resource the LRM tracks lives in TABLE.

    stopped --START--> starting --START_OK--> started --STOP--> stopping --STOP_OK--> stopped
                           \\--START_FAILED--> failed <--STOP_FAILED--/
    started --MONITOR_NOT_RUNNING | MONITOR_FAILED--> failed

A start or stop is two events: one when the action begins (the state shows
what is in flight) and one with its result. A failed resource must be stopped
before it can start again (Pacemaker never starts over a failure); starting
a started resource and stopping a stopped one are allowed because OCF start
and stop are idempotent. Probes (a monitor with interval 0, run at start-up
and after a cleanup) learn the actual state from any settled state. Recurring
monitor results keep a failed resource failed: only the controller's stop
(or a cleanup's probe) clears a failure. `process_event()` raises
`IllegalTransition` for any pair the table does not list.

Stdlib only; no I/O, no clock.
"""

from __future__ import annotations

from enum import Enum

from heartbeat.errors import IllegalTransition
from heartbeat.model import ResourceState

S = ResourceState


class LifecycleEvent(str, Enum):
    START = "start"
    START_OK = "start-ok"
    START_FAILED = "start-failed"
    STOP = "stop"
    STOP_OK = "stop-ok"
    STOP_FAILED = "stop-failed"
    MONITOR_OK = "monitor-ok"
    MONITOR_NOT_RUNNING = "monitor-not-running"
    MONITOR_FAILED = "monitor-failed"
    PROBE_RUNNING = "probe-running"
    PROBE_NOT_RUNNING = "probe-not-running"
    PROBE_FAILED = "probe-failed"


E = LifecycleEvent

_PROBES = {E.PROBE_RUNNING: S.STARTED, E.PROBE_NOT_RUNNING: S.STOPPED, E.PROBE_FAILED: S.FAILED}

TABLE: dict[ResourceState, dict[LifecycleEvent, ResourceState]] = {
    S.STOPPED: {E.START: S.STARTING, E.STOP: S.STOPPING, **_PROBES},
    S.STARTING: {E.START_OK: S.STARTED, E.START_FAILED: S.FAILED},
    S.STARTED: {E.START: S.STARTING, E.STOP: S.STOPPING,
                E.MONITOR_OK: S.STARTED, E.MONITOR_NOT_RUNNING: S.FAILED, E.MONITOR_FAILED: S.FAILED,
                **_PROBES},
    S.STOPPING: {E.STOP_OK: S.STOPPED, E.STOP_FAILED: S.FAILED},
    S.FAILED: {E.STOP: S.STOPPING,
               E.MONITOR_OK: S.FAILED, E.MONITOR_NOT_RUNNING: S.FAILED, E.MONITOR_FAILED: S.FAILED,
               **_PROBES},
    # The LRM never enters UNMANAGED (that is the CIB's word for "left alone"),
    # so it accepts nothing there.
    S.UNMANAGED: {},
}


def process_event(state: ResourceState, event: LifecycleEvent) -> ResourceState:
    """The state after `event`; IllegalTransition if `state` does not accept it."""
    try:
        return TABLE[state][event]
    except KeyError:
        raise IllegalTransition(f"resource lifecycle: can't handle {event.value} when {state.value}") from None


def result_event(action: str, ok: bool, not_running: bool) -> LifecycleEvent:
    """The event an action's result feeds in: `ok` means it succeeded,
    `not_running` that a monitor or probe answered "cleanly stopped"."""
    if action == "start":
        return E.START_OK if ok else E.START_FAILED
    if action == "stop":
        return E.STOP_OK if ok else E.STOP_FAILED
    if action == "probe":
        return E.PROBE_RUNNING if ok else E.PROBE_NOT_RUNNING if not_running else E.PROBE_FAILED
    if action == "monitor":
        return E.MONITOR_OK if ok else E.MONITOR_NOT_RUNNING if not_running else E.MONITOR_FAILED
    raise ValueError(f"no lifecycle event for action {action!r}")
