"""Events gproxy publishes, and the bus they travel on.

The bus itself is gsuite.events.EventBus, shared with heartbeat; logs, counters, SNMP traps
and notify commands subscribe to it. Events are frozen dataclasses, so a
subscriber can keep one without copying. Publishing never raises: a broken
subscriber is reported on the bus's error hook and the others still run.
"""

from __future__ import annotations

from dataclasses import dataclass

from gsuite.events import Event, EventBus

__all__ = ["Event", "EventBus", "ServerStateChanged", "BackendStateChanged", "CheckResult",
           "RequestLogged", "ProcessEvent"]


@dataclass(frozen=True)
class ServerStateChanged(Event):
    """A server's status as `show stat` prints it changed (UP -> DOWN...)."""

    backend: str
    server: str
    old: str
    new: str
    reason: str  # HAProxy-style message, e.g. "Layer4 connection problem"
    message: str  # the full log line HAProxy would write
    active_left: int = 0
    backup_left: int = 0
    kind: str = ""  # went_down, went_up, stopping, entered_drain, left_drain, entered_maint, left_maint
    check_status: str = ""  # the check that caused it (L4CON, L7STS...), "" for admin changes


@dataclass(frozen=True)
class BackendStateChanged(Event):
    """A backend lost its last usable server, or got one back."""

    backend: str
    up: bool
    message: str


@dataclass(frozen=True)
class CheckResult(Event):
    backend: str
    server: str
    status: str  # L4OK, L4CON, L7OK, L7STS...
    code: int | None
    duration_ms: int
    info: str


@dataclass(frozen=True)
class RequestLogged(Event):
    """One access-log line, already formatted (httplog or tcplog)."""

    frontend: str
    line: str


@dataclass(frozen=True)
class ProcessEvent(Event):
    """Start, reload, stop of the daemon itself."""

    kind: str  # "start" | "reload" | "reload-failed" | "stop"
    message: str
