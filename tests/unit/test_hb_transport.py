"""The UDP transport (heartbeat/transport.py): the receive rules through
`handle_datagram`, then real UDP on 127.0.0.1, then multicast in a network
namespace of the test's own."""

from __future__ import annotations

import logging
import os
import shutil
import socket as stdlib_socket
import subprocess
import sys
import textwrap
import uuid

import gevent
import pytest
from gevent.queue import Empty, Queue

from heartbeat.authkeys import AuthKeys
from heartbeat.protocol import MAX_DATAGRAM, Message, encode
from heartbeat.transport import MAX_REJECT_KEYS, REJECT_REASONS, Transport, parse_endpoint

KEYS = AuthKeys(1, {1: b"cluster secret"})
ROTATED = AuthKeys(2, {1: b"cluster secret", 2: b"new secret"})
A1, A2 = "10.0.0.1", "10.1.0.1"  # node a's links
B1, B2 = "10.0.0.2", "10.1.0.2"  # node b's links
NODES = {"a": (A1, A2), "b": (B1, B2), "c": ("10.0.0.3",)}


def offline(local: str = "a", keys: AuthKeys = KEYS) -> tuple[Transport, list]:
    """A transport never started: fed through handle_datagram."""
    got: list = []
    t = Transport(local, "esup", [], 694, NODES, keys, 1, lambda m, link: got.append((m, link)))
    return t, got


def datagram(seq: int = 1, sender: str = "b", kind: str = "hb", generation: int = 7, cluster: str = "esup",
             key: tuple[int, bytes] = (1, b"cluster secret"), body: dict | None = None) -> bytes:
    return encode(Message(kind, sender, cluster, generation, seq, body or {"st": "active"}), *key)


def rejected(t: Transport) -> dict[str, int]:
    return {reason: t.counters[reason] for reason in REJECT_REASONS if t.counters[reason]}


# -- addresses


def test_endpoints():
    assert parse_endpoint("192.0.2.11", 694) == ("192.0.2.11", 694)
    assert parse_endpoint("127.0.0.1:7001", 694) == ("127.0.0.1", 7001)
    for bad in ("esup-proxy-1", "192.0.2.11:0", "192.0.2.11:70000", "192.0.2.11:x", "::1", "[::1]:694", ""):
        with pytest.raises(ValueError):
            parse_endpoint(bad, 694)


def test_constructor_checks():
    with pytest.raises(ValueError, match="both"):
        Transport("a", "c", [], 694, {"b": ("10.0.0.2",), "c": ("10.0.0.2:694",)}, KEYS, 1, print)
    with pytest.raises(ValueError, match="multicast"):
        Transport("a", "c", [], 694, {}, KEYS, 1, print, multicast="10.0.0.1")


# -- the receive rules, without sockets


def test_a_good_message_is_delivered_with_its_link():
    t, got = offline()
    message = t.handle_datagram(datagram(), (B2, 694))
    assert got == [(message, B2)] and message.sender == "b" and message.body == {"st": "active"}
    assert t.counters["received"] == 1 and rejected(t) == {} and t.rejected_by_node == {}


@pytest.mark.parametrize("data, reason", [
    (datagram(key=(1, b"wrong secret")), "bad-hmac"),
    (datagram()[:-1] + b"\x00", "bad-hmac"),
    (datagram(key=(5, b"cluster secret")), "unknown-key"),
    (b"hello", "malformed"),
    (b"GHB1" + b"\x01" * (MAX_DATAGRAM - 3), "malformed"),  # one byte too many
])
def test_unauthenticated_datagrams_are_counted_under_the_source_address(data, reason):
    t, got = offline()
    assert t.handle_datagram(data, ("203.0.113.9", 4242)) is None
    assert got == [] and rejected(t) == {reason: 1} and t.rejected_by_node == {"203.0.113.9": 1}


def test_another_cluster_and_unknown_nodes_are_counted_under_the_claimed_sender():
    t, got = offline()
    t.handle_datagram(datagram(cluster="other"), (B1, 694))
    t.handle_datagram(datagram(sender="intruder"), (B1, 694))
    assert got == [] and rejected(t) == {"wrong-cluster": 1, "unknown-node": 1}
    assert t.rejected_by_node == {"b": 1, "intruder": 1}


def test_our_own_packets_are_ignored_silently():
    t, got = offline()
    assert t.handle_datagram(datagram(sender="a"), (A1, 694)) is None
    assert got == [] and rejected(t) == {} and t.counters["received"] == 0


def test_a_replayed_datagram_is_dropped_and_counted():
    t, got = offline()
    data = datagram(seq=5)
    t.handle_datagram(data, (B1, 694))
    t.handle_datagram(data, (B1, 694))
    t.handle_datagram(data, ("203.0.113.9", 694))  # the attacker's own address
    # The copy from elsewhere is refused for its source before its seq is looked at.
    assert len(got) == 1 and rejected(t) == {"replay": 1, "wrong-source": 1} and t.rejected_by_node == {"b": 2}


def test_heartbeats_are_delivered_once_per_link_other_kinds_once():
    t, got = offline()
    t.handle_datagram(datagram(seq=1), (B1, 694))
    t.handle_datagram(datagram(seq=1), (B2, 694))  # the same heartbeat over b's second link
    assert [link for _, link in got] == [B1, B2]
    t.handle_datagram(datagram(seq=2, kind="cib"), (B2, 694))
    t.handle_datagram(datagram(seq=2, kind="cib"), (B1, 694))
    assert [(m.kind, link) for m, link in got[2:]] == [("cib", B2)]
    assert t.counters["duplicate"] == 1 and rejected(t) == {}
    t.handle_datagram(datagram(seq=1), (B2, 694))  # seen on that link already
    assert rejected(t) == {"replay": 1} and len(got) == 3


def test_a_copy_from_an_address_of_another_node_is_dropped():
    t, got = offline()
    t.handle_datagram(datagram(seq=1), (B1, 694))
    t.handle_datagram(datagram(seq=1), ("10.0.0.3", 694))  # c's address does not carry b's links
    assert len(got) == 1 and rejected(t) == {"wrong-source": 1}


def test_a_late_heartbeat_copy_from_before_a_restart_is_not_delivered():
    t, got = offline()
    t.handle_datagram(datagram(seq=900, generation=7), (B1, 694))
    t.handle_datagram(datagram(seq=1, generation=8), (B1, 694))  # b restarted
    t.handle_datagram(datagram(seq=900, generation=7), (B2, 694))  # link B2's slow copy
    assert [(m.generation, link) for m, link in got] == [(7, B1), (8, B1)]
    assert t.counters["duplicate"] == 1 and rejected(t) == {}
    t.handle_datagram(datagram(seq=2, generation=8), (B2, 694))
    assert [(m.generation, link) for m, link in got][-1] == (8, B2)


def test_another_port_of_a_configured_address_names_the_link():
    t, got = offline()
    t.handle_datagram(datagram(seq=2), (B1, 7000))  # b's address, another port
    assert [link for _, link in got] == ["10.0.0.2:7000"]


def test_a_source_address_not_configured_for_the_sender_is_dropped():
    # A valid packet captured and resent from another machine before the
    # sender's own copy arrived: authenticated and fresh, but not from b.
    t, got = offline()
    t.handle_datagram(datagram(seq=1), ("192.0.2.50", 694))
    assert got == [] and rejected(t) == {"wrong-source": 1}
    t.handle_datagram(datagram(seq=1), (B1, 694))  # the real copy is still delivered
    assert len(got) == 1


def test_rotation_accepts_both_keys():
    t, got = offline(keys=ROTATED)
    t.handle_datagram(datagram(seq=1, key=(1, b"cluster secret")), (B1, 694))
    t.handle_datagram(datagram(seq=2, key=(2, b"new secret")), (B1, 694))
    assert len(got) == 2


def test_rejections_by_source_are_bounded(caplog):
    t, _ = offline()
    with caplog.at_level(logging.WARNING, logger="heartbeat.transport"):
        for i in range(MAX_REJECT_KEYS + 100):
            t.handle_datagram(b"junk", (f"198.51.{i // 256}.{i % 256}", 694))
    assert len(t.rejected_by_node) == MAX_REJECT_KEYS + 1
    assert t.rejected_by_node["other"] == 100 and t.counters["malformed"] == MAX_REJECT_KEYS + 100
    # Logged at counts 1, 2, 4, ... 256 only: a flood does not flood the log.
    assert len(caplog.records) == 9


def test_a_failing_handler_does_not_break_reception(caplog):
    def handler(message: Message, link: str) -> None:
        raise RuntimeError("controller bug")

    t = Transport("a", "esup", [], 694, NODES, KEYS, 1, handler)
    with caplog.at_level(logging.ERROR, logger="heartbeat.transport"):
        assert t.handle_datagram(datagram(), (B1, 694)) is not None
    assert "controller bug" in caplog.text and t.counters["received"] == 1


def test_send_needs_a_started_transport():
    t, _ = offline()
    with pytest.raises(RuntimeError):
        t.send("hb", {})


# -- real UDP on 127.0.0.1


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 and 127.0.0.2 now (the kernel's choice)."""
    ports: list[int] = []
    while len(ports) < count:
        probe = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        other = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
        try:
            other.bind(("127.0.0.2", port))
        except OSError:
            continue
        finally:
            other.close()
        if port not in ports:
            ports.append(port)
    return ports


class Node:
    """A started Transport and the queue of what it delivered."""

    def __init__(self, name: str, binds: list[str], port: int, peers: dict[str, tuple[str, ...]],
                 generation: int = 1):
        self.inbox: Queue = Queue()
        self.t = Transport(name, "esup", binds, port, peers, KEYS, generation,
                           lambda m, link: self.inbox.put((m, link)))
        self.t.start()

    def next(self) -> tuple[Message, str]:
        return self.inbox.get(timeout=5)

    def assert_idle(self) -> None:
        with pytest.raises(Empty):
            self.inbox.get_nowait()


@pytest.fixture
def nodes():
    started: list[Node] = []

    def make(*args, **kwargs) -> Node:
        node = Node(*args, **kwargs)
        started.append(node)
        return node

    yield make
    for node in started:
        node.t.stop()


def raw_socket(address: str = "127.0.0.1", port: int = 0, reuse: bool = False) -> stdlib_socket.socket:
    sock = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    if reuse:
        sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
    sock.settimeout(5)
    sock.bind((address, port))
    return sock


def test_two_nodes_exchange_messages_over_udp(nodes):
    pa, pb = free_ports(2)
    peers = {"a": (f"127.0.0.1:{pa}",), "b": (f"127.0.0.1:{pb}",)}
    a = nodes("a", ["127.0.0.1"], pa, peers, generation=3)
    b = nodes("b", ["127.0.0.1"], pb, peers, generation=9)
    assert a.t.bound == [("127.0.0.1", pa)]
    a.t.send("hb", {"st": "active"})
    a.t.send("hb", {"st": "active"})
    assert b.next() == (Message("hb", "a", "esup", 3, 1, {"st": "active"}), f"127.0.0.1:{pa}")
    assert b.next()[0].seq == 2
    b.t.send("cib", {"epoch": 7}, to="a")
    assert a.next() == (Message("cib", "b", "esup", 9, 1, {"epoch": 7}), f"127.0.0.1:{pb}")
    assert a.t.counters["sent"] == 2 and b.t.counters["received"] == 2 and b.t.counters["sent"] == 1
    with pytest.raises(ValueError):
        a.t.send("hb", {}, to="nobody")
    with pytest.raises(ValueError):
        a.t.send("cib", {"pad": "x" * MAX_DATAGRAM})


def test_forged_and_replayed_datagrams_are_counted_not_delivered(nodes):
    pa, pb, ptap = free_ports(3)
    # a also sends b's messages to a tap, which plays the attacker holding a captured datagram.
    a = nodes("a", ["127.0.0.1"], pa, {"b": (f"127.0.0.1:{pb}", f"127.0.0.1:{ptap}")})
    b = nodes("b", ["127.0.0.1"], pb, {"a": (f"127.0.0.1:{pa}",)})
    tap = raw_socket(port=ptap)
    try:
        a.t.send("action", {"op": "start", "rsc": "vip"})
        captured, _ = tap.recvfrom(65535)
        assert b.next()[0].body == {"op": "start", "rsc": "vip"}

        forged = bytearray(captured)
        forged[-40] ^= 0x20  # "stop" instead of "start", say
        tap.sendto(bytes(forged), ("127.0.0.1", pb))
        tap.sendto(captured, ("127.0.0.1", pb))  # replayed from the attacker's address
        spoof = raw_socket(port=pa, reuse=True)  # ... and from a's own address and port
        try:
            spoof.sendto(captured, ("127.0.0.1", pb))
        finally:
            spoof.close()
        tap.sendto(b"x" * (MAX_DATAGRAM + 1), ("127.0.0.1", pb))
        a.t.send("hb", {"st": "active"})  # loopback keeps the order: once this arrives, all did
        assert b.next()[0].kind == "hb"
        b.assert_idle()
        assert rejected(b.t) == {"bad-hmac": 1, "replay": 2, "malformed": 1}
        assert b.t.rejected_by_node == {"127.0.0.1": 2, "a": 2}
        assert b.t.counters["received"] == 2
    finally:
        tap.close()


def test_redundant_links_over_two_loopback_addresses(nodes):
    pa, pb = free_ports(2)
    peers = {"a": (f"127.0.0.1:{pa}", f"127.0.0.2:{pa}"), "b": (f"127.0.0.1:{pb}", f"127.0.0.2:{pb}")}
    a = nodes("a", [f"127.0.0.1:{pa}", f"127.0.0.2:{pa}"], pa, peers)
    b = nodes("b", ["127.0.0.1", "127.0.0.2"], pb, peers)
    a.t.send("hb", {})
    links = sorted(b.next()[1] for _ in range(2))
    assert links == [f"127.0.0.1:{pa}", f"127.0.0.2:{pa}"]  # each copy left from its own link's address
    a.t.send("cib", {"epoch": 1})
    a.t.send("hb", {})
    kinds = [b.next()[0].kind for _ in range(3)]
    assert sorted(kinds) == ["cib", "hb", "hb"]
    b.assert_idle()
    assert b.t.counters["duplicate"] == 1 and rejected(b.t) == {} and a.t.counters["sent"] == 6


def test_send_errors_are_counted_never_raised(nodes):
    pa, pb = free_ports(2)
    # Broadcasting without SO_BROADCAST fails locally (EACCES): nothing leaves the host.
    a = nodes("a", ["127.0.0.1"], pa, {"b": (f"127.0.0.1:{pb}",), "c": ("255.255.255.255",)})
    b = nodes("b", ["127.0.0.1"], pb, {"a": (f"127.0.0.1:{pa}",)})
    a.t.send("hb", {})
    a.t.send("hb", {}, to="c")
    assert b.next()[0].seq == 1
    assert a.t.counters["send-error"] == 2 and a.t.counters["sent"] == 1


def test_stop_closes_everything_and_the_port_can_be_bound_again(nodes):
    (pa,) = free_ports(1)
    node = nodes("a", ["127.0.0.1"], pa, {})
    node.t.stop()
    node.t.stop()
    again = Transport("a", "esup", ["127.0.0.1"], pa, {}, KEYS, 2, print)
    again.start()
    again.stop()
    assert all(g.dead for g in node.t._greenlets) and node.t._greenlets == []


def test_a_busy_port_is_an_oserror_and_leaves_nothing_open():
    (pa,) = free_ports(1)
    holder = raw_socket(port=pa)  # bound without SO_REUSEADDR
    try:
        t = Transport("a", "esup", ["127.0.0.1", "127.0.0.2"], pa, {}, KEYS, 1, print)
        with pytest.raises(OSError):
            t.start()
        assert t._sockets == [] and t._receivers == []
    finally:
        holder.close()


# -- multicast, in a network namespace of our own

MULTICAST_SCRIPT = textwrap.dedent("""
    import json, sys
    from gevent.queue import Queue
    from heartbeat.authkeys import AuthKeys
    from heartbeat.transport import Transport
    keys = AuthKeys(1, {1: b"k"})
    peers = {"a": ("127.0.0.1",), "b": ("127.0.0.2",), "c": ("127.0.0.3",)}
    inbox = {n: Queue() for n in peers}
    ts = {n: Transport(n, "esup", [peers[n][0]], 6940, peers, keys, 1,
                       lambda m, link, n=n: inbox[n].put((m.sender, m.kind, link)),
                       multicast="239.255.7.7")
          for n in peers}
    for t in ts.values():
        t.start()
    ts["a"].send("hb", {})
    ts["b"].send("cib", {"x": 1}, to="c")   # unicast to one node, even with multicast on
    got = {n: sorted([inbox[n].get(timeout=5) for _ in range(k)]) for n, k in (("b", 1), ("c", 2))}
    print(json.dumps({"got": got, "a_inbox": inbox["a"].qsize(),
                      "counters": {n: t.counters for n, t in ts.items()}}))
""")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2")
def test_multicast_between_three_nodes_in_a_namespace():
    ns = f"hbtest-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        inside = ["ip", "netns", "exec", ns]
        for command in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "lo", "multicast", "on"],
                        ["ip", "route", "add", "224.0.0.0/4", "dev", "lo"]):
            subprocess.run(inside + command, check=True)
        run = subprocess.run(inside + [sys.executable, "-c", MULTICAST_SCRIPT], capture_output=True, text=True,
                             timeout=60, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
        assert run.returncode == 0, run.stderr
        import json
        result = json.loads(run.stdout)
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
    assert result["got"] == {"b": [["a", "hb", "127.0.0.1"]], "c": [["a", "hb", "127.0.0.1"], ["b", "cib", "127.0.0.2"]]}
    assert result["a_inbox"] == 0  # its own multicast came back and was ignored
    for counters in result["counters"].values():
        assert not any(counters[reason] for reason in REJECT_REASONS), counters
