"""Events gproxy publishes, and the bus they travel on.

Each daemon gets one `EventBus` at construction; logs, counters, SNMP traps
and notify commands subscribe to it. Events are frozen dataclasses, so a
subscriber can keep one without copying. Publishing never raises: a broken
subscriber is reported on the bus's error hook and the others still run.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, TypeVar

E = TypeVar("E")


@dataclass(frozen=True)
class Event:
    """Base of all events. `at` is the wall-clock time (epoch seconds)."""

    at: float = field(default=0.0, kw_only=True)


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


class EventBus:
    """Synchronous publish/subscribe by event type (and its base classes)."""

    def __init__(self, on_error: Callable[[BaseException, Event], None] | None = None):
        self._subscribers: dict[type, list[Callable]] = defaultdict(list)
        self._on_error = on_error or self._print_error

    def subscribe(self, kind: type[E], callback: Callable[[E], None]) -> None:
        self._subscribers[kind].append(callback)

    def unsubscribe(self, kind: type[E], callback: Callable[[E], None]) -> None:
        if callback in self._subscribers.get(kind, ()):
            self._subscribers[kind].remove(callback)

    def publish(self, event: Event) -> None:
        for kind in type(event).__mro__:
            for callback in self._subscribers.get(kind, ()):
                try:
                    callback(event)
                except Exception as exc:  # a subscriber must not break the publisher
                    self._on_error(exc, event)

    @staticmethod
    def _print_error(exc: BaseException, event: Event) -> None:
        print(f"gproxy: event subscriber failed on {type(event).__name__}: {exc!r}", file=sys.stderr)
