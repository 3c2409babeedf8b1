"""Sends traps with pysnmp 7 from a thread of its own, so the daemon's gevent loop never waits.

pysnmp 7 is asyncio-only, and an asyncio loop cannot share the gevent hub's
thread (monitoring.md 4.4). So a `TrapSender` owns one OS thread running its
own asyncio loop and one SnmpEngine. The daemon's side only calls `submit()`:
a `queue.Queue.put_nowait` that takes a lock held for microseconds and never
waits; when the queue is full the trap is dropped and counted (the caller
logs it). The thread takes traps in order, paces them (`rate_limit` per
second, so a storm cannot take the daemon's CPU: the GIL is shared), and
sends each to every receiver. UDP sends do not wait for the receiver, and a
receiver that is down or unreachable costs nothing but a counted error.

One transport target object per receiver (pysnmp tags targets by object: a
shared one sends v3 traps with v2c credentials too, monitoring.md 4.3.2).
Host names are resolved in this thread, again every RESOLVE_RETRY_S after a
failure. The engine ID is fixed (v3 receivers bind users to it).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from gsuite.snmp_config import TrapTarget
from checks.snmp.mapping import DATETIME, INTEGER, SNMP_TRAP_OID, STRING, UNSIGNED, Trap

IDLE_FLUSH_S = 0.5  # with nothing to send, let the loop run this often (buffered datagrams, timers)
TRANSPORT_TIMEOUT_S = 1.0
RESOLVE_RETRY_S = 30.0  # a receiver whose name did not resolve is tried again after this
REPORT_INTERVAL_S = 60.0  # the same error is reported at most this often (with a count)
CLOSE_TIMEOUT_S = 2.0  # close() waits this long for queued traps to leave

_STOP = object()

# Config spellings -> pysnmp protocol constants (names of pysnmp.hlapi.v3arch.asyncio).
AUTH_PROTOCOL_NAMES = {
    "MD5": "usmHMACMD5AuthProtocol",
    "SHA": "usmHMACSHAAuthProtocol",
    "SHA224": "usmHMAC128SHA224AuthProtocol",
    "SHA256": "usmHMAC192SHA256AuthProtocol",
    "SHA384": "usmHMAC256SHA384AuthProtocol",
    "SHA512": "usmHMAC384SHA512AuthProtocol",
}
# net-snmp's AES192/AES256 use the Blumenthal key extension (draft-blumenthal-aes-usm-04).
PRIV_PROTOCOL_NAMES = {
    "DES": "usmDESPrivProtocol",
    "AES": "usmAesCfb128Protocol",
    "AES192": "usmAesBlumenthalCfb192Protocol",
    "AES256": "usmAesBlumenthalCfb256Protocol",
}


def privacy_available() -> bool:
    """pysnmp encrypts with `cryptography`, an optional dependency: without it
    v3 authPriv traps fail (monitoring.md 4.3.1)."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return False
    return True


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
    auth: Any = None
    transport: Any = None
    retry_at: float = 0.0
    errors: dict[str, list[float]] = field(default_factory=dict)  # message -> [last report, count since]


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
        self._tokens = float(rate_limit)
        self._refilled = 0.0
        self.ready = threading.Event()  # set once the engine exists (tests and benches wait on it)

    # ---- the daemon's side ------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

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
                    loop.run_until_complete(asyncio.sleep(0))
                    continue
                if item is _STOP:
                    break
                self._pace()
                loop.run_until_complete(self._send(engine, item))
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
        from pysnmp.hlapi.v3arch import asyncio as hl
        from pysnmp.proto.rfc1902 import OctetString

        engine = hl.SnmpEngine(snmpEngineID=OctetString(hexValue=self.engine_id[2:]))
        self._receivers = []
        for target in self.targets:
            if target.version == "v2c":
                auth = hl.CommunityData(target.community, mpModel=1)
            else:
                auth = hl.UsmUserData(
                    target.user,
                    authKey=target.auth_key, privKey=target.priv_key,
                    authProtocol=getattr(hl, AUTH_PROTOCOL_NAMES[target.auth_protocol])
                    if target.auth_protocol else hl.usmNoAuthProtocol,
                    privProtocol=getattr(hl, PRIV_PROTOCOL_NAMES[target.priv_protocol])
                    if target.priv_protocol else hl.usmNoPrivProtocol)
            self._receivers.append(_Receiver(target, auth))
        return engine

    def _pace(self) -> None:
        """Token bucket: at most `rate_limit` traps a second, bursts of as many."""
        now = self._clock()
        self._tokens = min(float(self.rate_limit), self._tokens + (now - self._refilled) * self.rate_limit)
        self._refilled = now
        if self._tokens < 1.0:
            self.stats.paced += 1
            time.sleep((1.0 - self._tokens) / self.rate_limit)
            self._refilled = self._clock()
            self._tokens = 1.0
        self._tokens -= 1.0

    async def _send(self, engine: Any, trap: Trap) -> None:
        varbinds = _pysnmp_varbinds(trap)
        await asyncio.gather(*(self._send_one(engine, r, varbinds, trap) for r in self._receivers))

    async def _send_one(self, engine: Any, receiver: _Receiver, varbinds: list, trap: Trap) -> None:
        from pysnmp.hlapi.v3arch import asyncio as hl

        if receiver.transport is None:
            if self._clock() < receiver.retry_at:
                self.stats.failed += 1
                return
            try:
                maker = hl.Udp6TransportTarget if receiver.target.ipv6 else hl.UdpTransportTarget
                receiver.transport = await maker.create((receiver.target.host, receiver.target.port),
                                                        timeout=TRANSPORT_TIMEOUT_S, retries=0)
            except Exception as exc:
                receiver.retry_at = self._clock() + RESOLVE_RETRY_S
                self._error(receiver, f"cannot resolve {receiver.target.host}: {exc}")
                return
        try:
            error, _status, _index, _ = await hl.send_notification(
                engine, receiver.auth, receiver.transport, hl.ContextData(), "trap", *varbinds, lookupMib=False)
        except Exception as exc:
            error = exc
        if error:
            self._error(receiver, f"{trap.name} not sent: {error}")
        else:
            self.stats.sent += 1

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


def _pysnmp_varbinds(trap: Trap) -> list:
    from pysnmp.proto.rfc1902 import Integer32, ObjectIdentifier, OctetString, Unsigned32

    out: list = [(SNMP_TRAP_OID, ObjectIdentifier(trap.oid))]
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
