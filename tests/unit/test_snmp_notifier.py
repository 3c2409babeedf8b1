"""checks.snmp.notifier: a daemon's bus -> traps and notify commands; messages from the threads
reach the daemon's log on its own gevent loop; drops are reported; one daemon never loads the other."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import gevent
import pytest

from checks.snmp.notifier import Notifier, attach
from gproxy.events import BackendStateChanged, ServerStateChanged
from gsuite.events import EventBus
from gsuite.snmp_config import SnmpConfig, TrapTarget, default_engine_id
from heartbeat.events import NodeJoined, NodeLost

REPO = Path(__file__).resolve().parents[2]
WAIT = 10.0


@pytest.fixture
def udp():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(WAIT)
    yield sock
    sock.close()


def trap_oid(data: bytes) -> str:
    from pyasn1.codec.ber import decoder
    from pysnmp.proto import api
    proto = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    message, _ = decoder.decode(data, asn1Spec=proto.Message())
    return str(proto.apiPDU.get_varbinds(proto.apiMessage.get_pdu(message))[1][1])


def down(server: str = "s1") -> ServerStateChanged:
    return ServerStateChanged(backend="app", server=server, old="UP", new="DOWN", reason="Layer4 timeout",
                              message=f"Server app/{server} is DOWN", kind="went_down", check_status="L4TOUT",
                              at=1.7e9)


def wait_for(predicate, what: str) -> None:
    """Run the gevent loop (the daemon's) until `predicate()`; bounded."""
    with gevent.Timeout(WAIT, AssertionError(f"timed out waiting for {what}")):
        while not predicate():
            gevent.sleep(0.01)


def test_gproxy_events_become_traps_and_commands(udp, tmp_path):
    out = tmp_path / "events"
    config = SnmpConfig(traps=(TrapTarget(host="127.0.0.1", port=udp.getsockname()[1]),),
                        notify_command=("/bin/sh", "-c", f'echo "$GSUITE_EVENT $GSUITE_SERVER" >> {out}'))
    bus = EventBus()
    logged: list[str] = []
    notifier = attach(bus, config, source="gproxy", node="lb1", log=logged.append)
    try:
        bus.publish(down())
        bus.publish(BackendStateChanged(backend="app", up=False, message="backend app has no server available!",
                                        at=1.7e9))
        bus.publish(NodeJoined(cluster="c", node="n2"))  # not gproxy's: not subscribed
        assert [trap_oid(udp.recv(65536)) for _ in range(2)] == ["1.3.6.1.4.1.32473.0.1", "1.3.6.1.4.1.32473.0.4"]
    finally:
        notifier.close()
    assert out.read_text().splitlines() == ["server-down s1", "backend-down "]
    stats = notifier.stats()
    assert (stats.events, stats.traps_sent, stats.commands_run) == (2, 2, 2)
    assert logged[0].startswith("SNMP traps to udp://127.0.0.1:") and "(v2c, community ***)" in logged[0]
    assert default_engine_id(config.enterprise_oid, "gproxy", "lb1") in logged[0]
    bus.publish(down())  # after close: unsubscribed
    assert notifier.stats().events == 2


def test_heartbeat_events_become_traps(udp):
    config = SnmpConfig(traps=(TrapTarget(host="127.0.0.1", port=udp.getsockname()[1]),))
    bus = EventBus()
    notifier = attach(bus, config, source="heartbeat", node="n2", log=lambda m: None)
    try:
        bus.publish(down())  # gproxy's: ignored
        bus.publish(NodeLost(cluster="c", node="n1", silent_ms=1000, at=1.7e9))
        assert trap_oid(udp.recv(65536)) == "1.3.6.1.4.1.32473.0.11"
    finally:
        notifier.close()
    assert notifier.stats().events == 1


def test_thread_messages_reach_the_log_on_the_loop_thread():
    config = SnmpConfig(traps=(TrapTarget(host="no-such-host.invalid", port=162),))
    bus = EventBus()
    seen: list[tuple[str, int]] = []
    notifier = attach(bus, config, source="gproxy", node="lb1",
                      log=lambda m: seen.append((m, threading.get_ident())))
    try:
        bus.publish(down())
        wait_for(lambda: any("cannot resolve" in m for m, _ in seen), "the resolution failure report")
    finally:
        notifier.close()
    assert {ident for _, ident in seen} == {threading.get_ident()}


def test_a_full_queue_is_reported_once_with_a_count():
    config = SnmpConfig(traps=(TrapTarget(host="127.0.0.1", port=9),), queue_size=1)
    logged: list[str] = []
    notifier = Notifier(EventBus(), config, "gproxy", "lb1", logged.append)  # not started: nothing drains
    for i in range(4):
        notifier.on_event(down(f"s{i}"))
    assert notifier.stats().traps_dropped == 3 and notifier.stats().traps_submitted == 1
    assert logged == ["SNMP: queue full (1 events waiting): 1 event(s) dropped (the last: ServerStateChanged)"]


def test_unknown_source_is_refused():
    with pytest.raises(ValueError):
        Notifier(EventBus(), SnmpConfig(), "haproxy", "lb1")


@pytest.mark.parametrize("source, other", [("gproxy", "heartbeat"), ("heartbeat", "gproxy")])
def test_one_daemon_never_imports_the_other(source, other):
    code = ("import sys\nfrom gsuite.events import EventBus\nfrom gsuite.snmp_config import SnmpConfig, TrapTarget\n"
            "from checks.snmp.notifier import attach\n"
            f"n = attach(EventBus(), SnmpConfig(traps=(TrapTarget(host='127.0.0.1', port=9),)), {source!r}, 'x',"
            " log=lambda m: None)\nn.close()\n"
            f"bad = sorted(m for m in sys.modules if m == {other!r} or m.startswith({other!r} + '.'))\n"
            "print(bad)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
