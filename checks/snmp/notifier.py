"""Subscribes a daemon's event bus and turns its events into traps and notify commands.

    notifier = attach(proxy.bus, config.global_.snmp, source="gproxy", node="lb1", log=proxy_log)
    ...
    notifier.close()

gproxy and heartbeat call `attach` only when `[snmp]` is configured, and
import this module only then (pysnmp costs ~0.1 s to import). The callback
on the bus runs in the daemon's loop and does only pure work (mapping.py)
and two `put_nowait`s; sending and commands happen in the threads of
sender.py and notify.py. Only the classes of the daemon's own events module
are subscribed (by `source`), so a gproxy process never imports heartbeat.

Messages from those threads reach the daemon's `log` on its own loop: they
are queued and the hub is woken through a gevent async watcher (the one
thread-safe way into a gevent loop), because a log sink may use gevent
sockets that only the hub's thread may touch.
"""

from __future__ import annotations

import collections
import importlib
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from gsuite.snmp_config import SnmpConfig, default_engine_id
from checks.snmp.mapping import SOURCE_EVENTS, Trap, to_trap
from checks.snmp.notify import CommandRunner
from checks.snmp.sender import REPORT_INTERVAL_S, TrapSender, privacy_available

SOURCES = tuple(SOURCE_EVENTS)


@dataclass(frozen=True)
class NotifierStats:
    events: int
    traps_submitted: int
    traps_sent: int
    traps_dropped: int
    traps_failed: int
    commands_run: int
    commands_failed: int
    commands_dropped: int


class _Reporter:
    """`log` for messages from any thread, delivered on the thread that made it."""

    def __init__(self, log: Callable[[str], None]):
        self._log = log
        self._owner = threading.get_ident()
        self._pending: collections.deque[str] = collections.deque()
        self._watcher: Any = None
        try:
            import gevent

            self._spawn = gevent.spawn
            self._watcher = gevent.get_hub().loop.async_()
            self._watcher.start(self._wake)
            self._watcher.ref = False  # it must not keep the loop (or the process) alive on its own
        except Exception:  # no gevent loop: log from the calling thread
            self._watcher = None

    def __call__(self, message: str) -> None:
        if threading.get_ident() == self._owner:
            self._log(message)
            return
        self._pending.append(message)
        if self._watcher is not None:
            self._watcher.send()
        else:
            self.flush()

    def _wake(self) -> None:
        # Watcher callbacks run in the hub itself, which must not block: log from a greenlet.
        self._spawn(self.flush)

    def flush(self) -> None:
        while self._pending:
            try:
                message = self._pending.popleft()
            except IndexError:
                return
            self._log(message)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher.close()
            self._watcher = None
        self.flush()


class Notifier:
    def __init__(self, bus: Any, config: SnmpConfig, source: str, node: str,
                 log: Callable[[str], None] | None = None):
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
        self.bus = bus
        self.config = config
        self.source = source
        self.node = node
        self.events = 0
        self._reporter = _Reporter(log or _stderr)
        self.engine_id = config.engine_id or default_engine_id(config.enterprise_oid, source, node)
        self.sender: TrapSender | None = None
        if config.traps:
            self.sender = TrapSender(config.traps, self.engine_id, config.queue_size, config.rate_limit,
                                     self._reporter, name=f"snmp-traps-{source}")
        self.runner: CommandRunner | None = None
        if config.notify_command:
            self.runner = CommandRunner(config.notify_command, config.notify_timeout, config.queue_size,
                                        self._reporter, name=f"notify-{source}")
        self._subscribed: list[type] = []
        self._drops_unreported = 0
        self._drops_reported_at: float | None = None

    def start(self) -> None:
        if self.sender is not None:
            needs_privacy = [t for t in self.config.traps if t.priv_protocol]
            if needs_privacy and not privacy_available():
                self._reporter("SNMP: v3 privacy needs the 'cryptography' package; traps to "
                               + ", ".join(str(t) for t in needs_privacy) + " will fail")
            self.sender.start()
        if self.runner is not None:
            self.runner.start()
        events = importlib.import_module(f"{self.source}.events")
        for name in SOURCE_EVENTS[self.source]:
            kind = getattr(events, name)
            self.bus.subscribe(kind, self.on_event)
            self._subscribed.append(kind)
        receivers = ", ".join(str(t) for t in self.config.traps) or "no receivers"
        command = f"; notify command {self.config.notify_command[0]}" if self.config.notify_command else ""
        self._reporter(f"SNMP traps to {receivers} (engine ID {self.engine_id}){command}")

    def on_event(self, event: Any) -> None:
        """The bus callback: map, queue, return. Runs on the daemon's loop."""
        if self._saturated():
            # A storm: the queues are full, so this event would be dropped anyway. Drop it
            # before the mapping's work (tens of microseconds an event, on the daemon's loop).
            self.events += 1
            if self.sender is not None:
                self.sender.stats.dropped += 1
            if self.runner is not None:
                self.runner.dropped += 1
            self._note_drop(type(event).__name__)
            return
        trap = to_trap(event, self.source, self.node, self.config.enterprise_oid,
                       environment=self.runner is not None)
        if trap is None:
            return
        self.events += 1
        self.submit(trap)

    def _saturated(self) -> bool:
        senders = [q for q in (self.sender, self.runner) if q is not None]
        return bool(senders) and all(q.full() for q in senders)

    def submit(self, trap: Trap) -> None:
        dropped = False
        if self.sender is not None and not self.sender.submit(trap):
            dropped = True
        if self.runner is not None and not self.runner.submit(trap):
            dropped = True
        if dropped:
            self._note_drop(trap.name)

    def _note_drop(self, what: str) -> None:
        """A full queue: report the first drop at once, then at most once a minute with a count."""
        self._drops_unreported += 1
        now = time.monotonic()
        if self._drops_reported_at is None or now - self._drops_reported_at >= REPORT_INTERVAL_S:
            self._reporter(f"SNMP: queue full ({self.config.queue_size} events waiting): "
                           f"{self._drops_unreported} event(s) dropped (the last: {what})")
            self._drops_unreported = 0
            self._drops_reported_at = now

    def stats(self) -> NotifierStats:
        s = self.sender.stats if self.sender is not None else None
        r = self.runner
        return NotifierStats(
            events=self.events,
            traps_submitted=s.submitted if s else 0, traps_sent=s.sent if s else 0,
            traps_dropped=s.dropped if s else 0, traps_failed=s.failed if s else 0,
            commands_run=r.ran if r else 0, commands_failed=r.failed if r else 0,
            commands_dropped=r.dropped if r else 0)

    def close(self) -> None:
        """Unsubscribe, let what is queued leave (bounded wait), stop the threads."""
        for kind in self._subscribed:
            self.bus.unsubscribe(kind, self.on_event)
        self._subscribed.clear()
        if self.sender is not None:
            self.sender.close()
        if self.runner is not None:
            self.runner.close()
        st = self.stats()
        if st.events:
            self._reporter(f"SNMP: {st.events} events; {st.traps_sent} trap sends, {st.traps_failed} failed, "
                           f"{st.traps_dropped} dropped; {st.commands_run} notify commands, "
                           f"{st.commands_failed} failed, {st.commands_dropped} dropped")
        self._reporter.close()


def attach(bus: Any, snmp_config: SnmpConfig, source: str, node: str | None = None,
           log: Callable[[str], None] | None = None) -> Notifier:
    """Start a notifier on `bus`. `node` names the sender in the traps (default: the host name)."""
    if node is None:
        import socket
        node = socket.gethostname()
    notifier = Notifier(bus, snmp_config, source, node, log)
    notifier.start()
    return notifier


def _stderr(message: str) -> None:
    import sys
    print(message, file=sys.stderr, flush=True)
