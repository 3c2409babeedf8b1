"""checks.snmp.sender: real pysnmp traps to a UDP socket of the test, decoded; a full queue drops
and counts; an unreachable receiver costs a counted nothing; the pacing arithmetic."""

from __future__ import annotations

import socket
import threading

import pytest
from pyasn1.codec.ber import decoder
from pysnmp.proto import api

from checks.snmp import sender as sender_mod
from checks.snmp.mapping import to_trap
from checks.snmp.sender import TrapSender
from gproxy.events import BackendStateChanged, ServerStateChanged
from gsuite.snmp_config import TrapTarget

ENT = "1.3.6.1.4.1.32473"
ENGINE_ID = "0x80007ed904756e6974"
WAIT = 10.0  # generous bound for the thread's first start (pysnmp import and engine)


class Receiver:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(WAIT)
        self.port = self.sock.getsockname()[1]

    def v2c(self):
        """(community, [(oid, value)...]) of the next datagram."""
        data = self.sock.recv(65536)
        assert int(api.decodeMessageVersion(data)) == api.SNMP_VERSION_2C
        proto = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
        message, _ = decoder.decode(data, asn1Spec=proto.Message())
        pdu = proto.apiMessage.get_pdu(message)
        varbinds = [(str(oid), value) for oid, value in proto.apiPDU.get_varbinds(pdu)]
        return str(proto.apiMessage.get_community(message)), varbinds

    def close(self):
        self.sock.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def backend_trap(up: bool = False, name: str = "app"):
    return to_trap(BackendStateChanged(backend=name, up=up, message=f"backend {name} changed", at=1.0e9),
                   "gproxy", "lb1", ENT)


def make(targets, reports=None, queue_size=10, rate_limit=1000):
    reports = reports if reports is not None else []
    sender = TrapSender(tuple(targets), ENGINE_ID, queue_size, rate_limit, reports.append)
    return sender, reports


def test_a_v2c_trap_carries_uptime_trap_oid_and_the_objects(receiver):
    sender, reports = make([TrapTarget(host="127.0.0.1", port=receiver.port, community="monitor")])
    sender.start()
    try:
        event = ServerStateChanged(backend="app", server="s1", old="UP", new="DOWN", reason="Layer4 timeout",
                                   message="Server app/s1 is DOWN", active_left=1, backup_left=0,
                                   kind="went_down", check_status="L4TOUT", at=1.0e9)
        assert sender.submit(to_trap(event, "gproxy", "lb1", ENT))
        community, varbinds = receiver.v2c()
    finally:
        sender.close()
    assert community == "monitor"
    oids = [oid for oid, _ in varbinds]
    assert oids[:2] == ["1.3.6.1.2.1.1.3.0", "1.3.6.1.6.3.1.1.4.1.0"]  # sysUpTime.0, snmpTrapOID.0
    assert str(varbinds[1][1]) == f"{ENT}.0.1"
    values = dict(varbinds[2:])
    assert bytes(values[f"{ENT}.1.1.1.0"]) == b"lb1"
    assert bytes(values[f"{ENT}.1.1.2.0"]) == bytes([0x07, 0xD1, 9, 9, 1, 46, 40, 0, ord("+"), 0, 0])  # 1e9 s
    assert bytes(values[f"{ENT}.1.2.2.0"]) == b"s1"
    assert bytes(values[f"{ENT}.1.2.5.0"]) == b"L4TOUT"
    assert int(values[f"{ENT}.1.2.7.0"]) == 1
    assert oids[2:] == [vb.oid for vb in to_trap(event, "gproxy", "lb1", ENT).varbinds]
    assert sender.stats.sent == 1 and sender.stats.failed == 0 and reports == []


def test_traps_fan_out_to_every_receiver_in_order(receiver):
    other = Receiver()
    try:
        sender, _ = make([TrapTarget(host="127.0.0.1", port=receiver.port),
                          TrapTarget(host="127.0.0.1", port=other.port, community="second")])
        sender.start()
        for i in range(5):
            sender.submit(backend_trap(up=bool(i % 2), name=f"b{i}"))
        got = [receiver.v2c() for _ in range(5)]
        got_other = [other.v2c() for _ in range(5)]
        sender.close()
    finally:
        other.close()
    names = [bytes(dict(vbs)[f"{ENT}.1.2.1.0"]).decode() for _, vbs in got]
    assert names == [f"b{i}" for i in range(5)]
    assert {c for c, _ in got} == {"public"} and {c for c, _ in got_other} == {"second"}
    assert [str(vbs[1][1]) for _, vbs in got] == [f"{ENT}.0.{4 if i % 2 == 0 else 5}" for i in range(5)]
    assert sender.stats.sent == 10


def test_a_full_queue_drops_and_counts_without_blocking(receiver):
    sender, _ = make([TrapTarget(host="127.0.0.1", port=receiver.port)], queue_size=3)
    # Not started: nothing drains the queue.
    results = [sender.submit(backend_trap()) for _ in range(5)]
    assert results == [True, True, True, False, False]
    assert (sender.stats.submitted, sender.stats.dropped) == (3, 2)


def test_close_sends_what_is_queued(receiver):
    sender, _ = make([TrapTarget(host="127.0.0.1", port=receiver.port)])
    for _ in range(3):
        sender.submit(backend_trap())
    sender.start()
    sender.close()
    assert sender.stats.sent == 3
    for _ in range(3):
        receiver.v2c()


def test_nobody_listening_is_not_an_error_for_udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender, reports = make([TrapTarget(host="127.0.0.1", port=port)], queue_size=50)
    sender.start()
    for _ in range(20):
        assert sender.submit(backend_trap())
    sender.close()
    assert sender.stats.dropped == 0
    assert sender.stats.sent + sender.stats.failed == 20


def test_an_unresolvable_receiver_is_reported_once_and_retried_later(receiver, monkeypatch):
    monkeypatch.setattr(sender_mod, "RESOLVE_RETRY_S", 3600.0)
    sender, reports = make([TrapTarget(host="no-such-host.invalid", port=162),
                            TrapTarget(host="127.0.0.1", port=receiver.port)])
    sender.start()
    for _ in range(3):
        sender.submit(backend_trap())
    for _ in range(3):
        receiver.v2c()  # the good receiver is not held up by the bad one
    sender.close()
    assert sender.stats.failed == 3 and sender.stats.sent == 3
    assert len(reports) == 1 and "cannot resolve no-such-host.invalid" in reports[0]


def test_v3_traps_are_encrypted(receiver):
    """authPriv needs `cryptography`; a v3 trap is encrypted, so only its header is checked here
    (snmptrapd decrypts them in tests/e2e/test_snmp_traps.py)."""
    target = TrapTarget(host="127.0.0.1", port=receiver.port, version="v3", user="nms", auth_protocol="SHA256",
                        auth_key="authpass123", priv_protocol="AES", priv_key="privpass123")
    sender, reports = make([target])
    sender.start()
    sender.submit(backend_trap())
    data = receiver.sock.recv(65536)
    sender.close()
    assert reports == [] and sender.stats.sent == 1
    assert int(api.decodeMessageVersion(data)) == 3
    assert bytes.fromhex(ENGINE_ID[2:]) in data  # msgAuthoritativeEngineID: the sender's, in clear
    assert b"backend app changed" not in data  # the scoped PDU is encrypted


def test_pacing_waits_for_tokens(monkeypatch):
    now = [100.0]
    slept = []
    monkeypatch.setattr(sender_mod.time, "sleep", lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)))
    monkeypatch.setattr(sender_mod, "TOKEN_BURST", 2)
    sender = TrapSender((), ENGINE_ID, 10, 2, lambda m: None, clock=lambda: now[0])
    sender._pace()
    sender._pace()  # the burst: two tokens
    assert slept == []
    sender._pace()
    assert slept == [pytest.approx(0.5)] and sender.stats.paced == 1
    now[0] += 10.0  # a quiet period refills to the burst size, not beyond
    sender._pace()
    sender._pace()
    assert len(slept) == 1
    sender._pace()
    assert len(slept) == 2


def test_submit_is_safe_from_many_threads(receiver):
    sender, _ = make([TrapTarget(host="127.0.0.1", port=receiver.port)], queue_size=50)
    threads = [threading.Thread(target=lambda: [sender.submit(backend_trap()) for _ in range(20)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sender.stats.submitted == 50 and sender.stats.dropped == 30
