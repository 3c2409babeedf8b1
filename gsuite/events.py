"""The suite's event bus: typed, immutable events published inside a daemon.

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
