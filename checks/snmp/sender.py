"""Sends traps with pysnmp 7 from a thread of its own, so the daemon's gevent loop never waits.

pysnmp 7 is asyncio-only, and an asyncio loop cannot share the gevent hub's
thread (monitoring.md 4.4). So a `TrapSender` owns one OS thread with its own
asyncio loop and one SnmpEngine. The daemon's side only calls `submit()`: a
`queue.Queue.put_nowait` that takes a lock held for microseconds and never
waits; when the queue is full the trap is dropped and counted (the caller
logs it). The thread takes traps in order and sends each to every receiver.
UDP sends do not wait for the receiver, so a receiver that is down or
unreachable costs nothing but a counted error.

CPU is the real cost: the thread shares the GIL with the daemon's loop, and
pyasn1's BER encoding takes ~0.6 ms per trap and receiver (bench/trap_impact.py).
So the engine is configured once with pysnmp's documented low-level API
(entity.config targets, rfc3413.ntforg.NotificationOriginator), which costs a
third of hlapi's `send_notification` (LCD set-up and MIB look-ups on every
call), and traps are paced: bursts of up to TOKEN_BURST leave at once, then
`rate_limit` a second; what cannot wait in the queue is dropped and counted.

Each receiver has its own target, parameters and security name, so a v2c
community never carries a v3 trap (monitoring.md 4.3.2) and one receiver's
error (an encryption failure) does not stop the others. Host names are
resolved in this thread, again every RESOLVE_RETRY_S after a failure. The
engine ID is fixed (v3 receivers bind users to it).
"""

from __future__ import annotations

import asyncio
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from gsuite.snmp_config import TrapTarget
from checks.snmp.mapping import DATETIME, INTEGER, SNMP_TRAP_OID, STRING, UNSIGNED, Trap

IDLE_FLUSH_S = 0.5  # with nothing to send, let the loop run this often (buffered datagrams, timers)
TOKEN_BURST = 50  # traps sent back to back before the rate limit applies (a backend's servers all failing)
TRANSPORT_READY_S = 5.0  # the UDP endpoints must be open within this long
RESOLVE_RETRY_S = 30.0  # a receiver whose name did not resolve is tried again after this
REPORT_INTERVAL_S = 60.0  # the same error is reported at most this often (with a count)
CLOSE_TIMEOUT_S = 2.0  # close() waits this long for queued traps to leave

_STOP = object()

# Config spellings -> pysnmp.entity.config protocol constants.
AUTH_PROTOCOL_NAMES = {
    "MD5": "USM_AUTH_HMAC96_MD5",
    "SHA": "USM_AUTH_HMAC96_SHA",
    "SHA224": "USM_AUTH_HMAC128_SHA224",
    "SHA256": "USM_AUTH_HMAC192_SHA256",
    "SHA384": "USM_AUTH_HMAC256_SHA384",
    "SHA512": "USM_AUTH_HMAC384_SHA512",
}
# net-snmp's AES192/AES256 use the Blumenthal key extension (draft-blumenthal-aes-usm-04).
PRIV_PROTOCOL_NAMES = {
    "DES": "USM_PRIV_CBC56_DES",
    "AES": "USM_PRIV_CFB128_AES",
    "AES192": "USM_PRIV_CFB192_AES_BLUMENTHAL",
    "AES256": "USM_PRIV_CFB256_AES_BLUMENTHAL",
}


def privacy_available() -> bool:
    """pysnmp encrypts with `cryptography`, an optional dependency: without it
    v3 authPriv traps fail (monitoring.md 4.3.1)."""
    import importlib.util
    return importlib.util.find_spec("cryptography") is not None


@dataclass
class SenderStats:
    submitted: int = 0
    sent: int = 0  # trap x receiver sends handed to the kernel
    dropped: int = 0  # traps refused because the queue was full
    failed: int = 0  # trap x receiver sends that failed (resolution, encryption, socket)
    paced: int = 0  # times the rate limit made the thread wait


@dataclass
class _Receiver:
    target: TrapTarget
    index: int
    resolved: bool = False
    retry_at: float = 0.0
    failure: Any = None  # the error indication of the send in progress, set by pysnmp's callback
    errors: dict[str, list[float]] = field(default_factory=dict)  # message -> [last report, count since]

    @property
    def notify_name(self) -> str:
        return f"gsuite-notify-{self.index}"

    @property
    def params_name(self) -> str:
        return f"gsuite-params-{self.index}"


class TrapSender:
    """A bounded queue in front of one sending thread. `submit` is the only
    method the daemon's loop calls while running."""

    def __init__(self, targets: tuple[TrapTarget, ...], engine_id: str, queue_size: int, rate_limit: int,
                 report: Callable[[str], None], clock: Callable[[], float] = time.monotonic,
                 name: str = "snmp-traps"):
        self.targets = targets
        self.engine_id = engine_id
        self.rate_limit = rate_limit
        self.stats = SenderStats()
        self._report = report
        self._clock = clock
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._burst = float(max(rate_limit, TOKEN_BURST))
        self._tokens = self._burst
        self._refilled = 0.0
        self._receivers: list[_Receiver] = []
        self._originator: Any = None
        self.ready = threading.Event()  # set once the engine exists (tests and benches wait on it)

    # ---- the daemon's side ------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def full(self) -> bool:
        """Whether a submit now would be dropped (approximate: the thread may take one meanwhile)."""
        return self._queue.full()

    def submit(self, trap: Trap) -> bool:
        """Queue a trap; False (and counted) if the queue is full. Never blocks."""
        try:
            self._queue.put_nowait(trap)
        except queue.Full:
            self.stats.dropped += 1
            return False
        self.stats.submitted += 1
        return True

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Let queued traps leave (for up to `timeout`), then stop the thread."""
        if not self._thread.is_alive():
            return
        deadline = self._clock() + timeout
        while True:
            try:
                self._queue.put(_STOP, timeout=0.05)
                break
            except queue.Full:
                if self._clock() >= deadline:
                    self._discard_queued()
        self._thread.join(max(0.0, deadline - self._clock()))

    def _discard_queued(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
            self.stats.dropped += 1

    # ---- the sending thread -------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        engine = None
        try:
            engine = loop.run_until_complete(self._make_engine())
            self.ready.set()
            while True:
                try:
                    item = self._queue.get(timeout=IDLE_FLUSH_S)
                except queue.Empty:
                    item = None
                if item is _STOP:
                    break
                if item is not None:
                    self._pace()
                    self._send(engine, item)
                # Sends are synchronous; the loop only has callbacks to run (ICMP errors, timers).
                loop.run_until_complete(asyncio.sleep(0))
        except Exception as exc:  # the thread must say why it stopped, never die silently
            self._report(f"SNMP trap sender stopped: {exc!r}")
        finally:
            self.ready.set()
            if engine is not None:
                try:
                    engine.close_dispatcher()
                except Exception:
                    pass
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _make_engine(self) -> Any:
        from pysnmp.carrier.asyncio.dgram import udp, udp6
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import ntforg
        from pysnmp.proto.rfc1902 import OctetString

        snmp_engine = engine.SnmpEngine(OctetString(hexValue=self.engine_id[2:]))
        transports = []
        if any(not t.ipv6 for t in self.targets):
            transports.append(udp.UdpTransport().open_client_mode())
            config.add_transport(snmp_engine, udp.DOMAIN_NAME, transports[-1])
        if any(t.ipv6 for t in self.targets):
            transports.append(udp6.Udp6Transport().open_client_mode())
            config.add_transport(snmp_engine, udp6.DOMAIN_NAME, transports[-1])
        config.add_context(snmp_engine, "")
        for index, target in enumerate(self.targets):
            # USM finds v3 keys by user name: one name, one set of keys (gsuite.snmp_config checks it).
            security = f"gsuite-{index}" if target.version == "v2c" else target.user
            if target.version == "v2c":
                config.add_v1_system(snmp_engine, security, target.community)
                level, model = "noAuthNoPriv", 2
                config.add_target_parameters(snmp_engine, f"gsuite-params-{index}", security, level, mpModel=1)
            else:
                level = target.security_level
                config.add_v3_user(
                    snmp_engine, target.user,
                    getattr(config, AUTH_PROTOCOL_NAMES[target.auth_protocol]) if target.auth_protocol
                    else config.USM_AUTH_NONE, target.auth_key,
                    getattr(config, PRIV_PROTOCOL_NAMES[target.priv_protocol]) if target.priv_protocol
                    else config.USM_PRIV_NONE, target.priv_key)
                model = 3
                config.add_target_parameters(snmp_engine, f"gsuite-params-{index}", security, level, mpModel=3)
            # Notifications pass the view-based access control: let these names notify anything.
            config.add_vacm_user(snmp_engine, model, security, level, notifySubTree=(1, 3, 6))
            self._receivers.append(_Receiver(target, index))
        self._originator = ntforg.NotificationOriginator()
        deadline = self._clock() + TRANSPORT_READY_S
        while any(t.transport is None for t in transports):  # the endpoints open on the loop
            if self._clock() > deadline:
                raise RuntimeError("the UDP endpoints did not open")
            await asyncio.sleep(0.001)
        return snmp_engine

    def _pace(self) -> None:
        """Token bucket: bursts of up to TOKEN_BURST traps (or `rate_limit`), then `rate_limit` a second."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self.rate_limit)
        self._refilled = now
        if self._tokens < 1.0:
            self.stats.paced += 1
            time.sleep((1.0 - self._tokens) / self.rate_limit)
            self._refilled = self._clock()
            self._tokens = 1.0
        self._tokens -= 1.0

    def _send(self, engine: Any, trap: Trap) -> None:
        varbinds = _pysnmp_varbinds(trap)
        for receiver in self._receivers:
            if not receiver.resolved and not self._resolve(engine, receiver):
                continue  # counted (and reported) by _resolve
            receiver.failure = None
            try:
                self._originator.send_varbinds(engine, receiver.notify_name, None, b"", varbinds,
                                               self._callback, receiver)
            except Exception as exc:
                receiver.failure = exc
            if receiver.failure:
                self._error(receiver, f"{trap.name} not sent: {receiver.failure}")
            else:
                self.stats.sent += 1

    @staticmethod
    def _callback(engine: Any, handle: Any, error: Any, status: Any, index: Any, varbinds: Any,
                  receiver: _Receiver) -> None:
        """pysnmp calls this at once when a trap cannot be sent (encryption, transport)."""
        if error:
            receiver.failure = error

    def _resolve(self, engine: Any, receiver: _Receiver) -> bool:
        """Give the receiver its address (a name is looked up here, in this thread)."""
        if self._clock() < receiver.retry_at:
            self.stats.failed += 1
            return False
        from pysnmp.carrier.asyncio.dgram import udp, udp6
        from pysnmp.entity import config

        target = receiver.target
        family = socket.AF_INET6 if target.ipv6 else socket.AF_INET
        try:
            address = socket.getaddrinfo(target.host, target.port, family, socket.SOCK_DGRAM)[0][4][:2]
        except OSError as exc:
            receiver.retry_at = self._clock() + RESOLVE_RETRY_S
            self._error(receiver, f"cannot resolve {target.host}: {exc.strerror or exc}")
            return False
        tag = f"gsuite-tag-{receiver.index}"
        config.add_target_address(engine, f"gsuite-target-{receiver.index}",
                                  udp6.DOMAIN_NAME if target.ipv6 else udp.DOMAIN_NAME, address,
                                  receiver.params_name, tagList=tag)
        config.add_notification_target(engine, receiver.notify_name, receiver.params_name, tag, "trap")
        receiver.resolved = True
        return True

    def _error(self, receiver: _Receiver, message: str) -> None:
        """Count a failure; report it now if new, else once per REPORT_INTERVAL_S with a count."""
        self.stats.failed += 1
        now = self._clock()
        seen = receiver.errors.get(message)
        if seen is None or now - seen[0] >= REPORT_INTERVAL_S:
            again = f" ({seen[1]} more since the last report)" if seen and seen[1] else ""
            receiver.errors[message] = [now, 0]
            self._report(f"SNMP trap to {receiver.target}: {message}{again}")
        else:
            seen[1] += 1


def _pysnmp_varbinds(trap: Trap) -> list[tuple[str, Any]]:
    from pysnmp.proto.rfc1902 import Integer32, ObjectIdentifier, OctetString, Unsigned32

    out: list[tuple[str, Any]] = [(SNMP_TRAP_OID, ObjectIdentifier(trap.oid))]
    for vb in trap.varbinds:
        if vb.syntax == STRING:
            value: Any = OctetString(vb.value)
        elif vb.syntax == DATETIME:
            value = OctetString(bytes(vb.value))
        elif vb.syntax == UNSIGNED:
            value = Unsigned32(vb.value)
        elif vb.syntax == INTEGER:
            value = Integer32(vb.value)
        else:  # a syntax mapping.py does not produce
            raise ValueError(f"unknown syntax {vb.syntax!r} for {vb.name}")
        out.append((vb.oid, value))
    return out
