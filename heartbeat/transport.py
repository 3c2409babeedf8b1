"""The cluster's UDP transport (gevent): sends and receives authenticated
messages over every link, and drops, counts and logs the bad ones.

Every cluster message travels here: the controller's periodic heartbeats
(kind "hb") and its control messages. The bytes are the codec's
(`heartbeat.protocol.packet`); this module only moves them and decides what
reaches `on_message(message, link)`.

Sockets: one UDP socket per local bind address, bound to (address, port)
with SO_REUSEADDR, or one on 0.0.0.0 when the local node lists no address.
With `multicast`, one more socket bound to the group receives what peers
send to it (the group is joined on every bind address); the per-address
sockets still send, so each interface's copy leaves with that interface's
source address, and still receive unicast. Multicast loop is on (several
nodes may share a host, as in `make demo`): our own packets come back and are
ignored. We do not use gevent's DatagramServer: it reads at most 8192 bytes
and spawns a greenlet per datagram; a plain receive loop per socket reads
whole datagrams, in order.

Addresses are IPv4, written "addr" (the transport's `port`) or "addr:port"
(a node with its own port: tests and `make demo` run several nodes on
127.0.0.1). A node's links are its addresses; the configuration lists them
in the same order on every node (link i of a peer is reached from our bind
address i; the route still picks the way out), so a receiver can tell the
links apart by the sender's source address.

`send(kind, body, to)` signs one message (its seq one above the previous one)
and sends the same datagram to every address of the target node, or of every
peer, or once per interface to the multicast group. Send errors (a link down:
ENETUNREACH, EHOSTUNREACH...) are counted, never raised.

Receiving, in this order (the first failure drops the datagram):

1. the codec's checks: more than MAX_DATAGRAM bytes or a bad magic:
   "malformed"; key id not in the keys file: "unknown-key"; HMAC mismatch:
   "bad-hmac" (nothing else of such a packet is looked at); then a bad
   length field or payload: "malformed". These are counted in
   `rejected_by_node` under the source address: no sender name was read;
2. a cluster name other than ours: "wrong-cluster";
3. our own name: ignored (multicast loop), not counted;
4. a sender that is not a peer: "unknown-node";
5. a source address that is none of the sender's configured addresses:
   "wrong-source" (a packet captured on one network and resent from another
   machine, before its sender's own copy arrived, would otherwise be fresh);
   any port is accepted from a configured address;
6. a message already seen: "replay" (see below).
Rejections from step 2 on are counted under the sender's name.

Redundant links carry copies of each message, so "already seen" is tracked
twice: per sender (`ReplayGuard`), and per sender and configured address.
The first copy is delivered. A later copy of a heartbeat arriving over
another configured link of its sender is delivered too (membership needs
every link's heartbeats to tell which links work), but other kinds are
delivered once: their later copies only count as "duplicate". A copy seen
twice on the same link, or coming from another port of one of its
sender's addresses, is a replay. So `on_message` sees each non-heartbeat message once,
and each heartbeat at most once per link: the controller feeds each one to
membership as `HeartbeatHeard(m.sender, link, m.generation, m.seq)`, and
membership lets only the newest keep the node alive.

`on_message` runs in the receive loop's greenlet: it should hand long work
to another greenlet, or the next datagrams wait. An exception in it is a bug:
it is logged with its traceback and reception goes on.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket as stdlib_socket
from typing import Callable

import gevent
from gevent import socket

from heartbeat.authkeys import AuthKeys
from heartbeat.errors import PacketRejected
from heartbeat.protocol.packet import HEARTBEAT, MAX_DATAGRAM, Message, ReplayGuard, decode, encode

log = logging.getLogger("heartbeat.transport")

Endpoint = tuple[str, int]

# Why a packet was dropped: the keys of `counters` shown as "packets rejected".
REJECT_REASONS = ("bad-hmac", "replay", "unknown-node", "malformed", "unknown-key", "wrong-cluster", "wrong-source")
# Everything else counted: datagrams sent, messages delivered, send and receive
# errors, redundant copies of non-heartbeat messages dropped.
OTHER_COUNTERS = ("sent", "received", "send-error", "recv-error", "duplicate")

# Read buffer: the largest UDP payload, so an oversized datagram is read
# whole and dropped rather than truncated into something else.
RECV_BUFFER = 65_535
MULTICAST_TTL = 1  # Heartbeat's mcast default: stay on the local segment
# `rejected_by_node` keeps at most this many keys; an attacker spoofing
# source addresses cannot grow it further (the rest go under OTHER_SOURCES).
MAX_REJECT_KEYS = 256
OTHER_SOURCES = "other"
# Receive errors back off like gevent's BaseServer accept loop.
MIN_ERROR_DELAY = 0.01
MAX_ERROR_DELAY = 1.0


def parse_endpoint(text: str, default_port: int) -> Endpoint:
    """Parse "192.0.2.11" or "192.0.2.11:7001" into (address, port); ValueError otherwise."""
    address, sep, port_text = text.rpartition(":")
    if not sep:
        address, port_text = text, ""
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        raise ValueError(f"{text!r}: expected an IPv4 address, optionally with ':port'") from None
    if not port_text:
        return address, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r}: the port must be in 1..65535")
    return address, int(port_text)


def _is_power_of_two(n: int) -> bool:
    return n & (n - 1) == 0


class Transport:
    """Authenticated UDP messaging between the cluster's nodes."""

    def __init__(self, local: str, cluster: str, bind_addresses: list[str], port: int,
                 peers: dict[str, tuple[str, ...]], keys: AuthKeys, generation: int,
                 on_message: Callable[[Message, str], None], multicast: str | None = None):
        self.local = local
        self.cluster = cluster
        self.port = port
        self.generation = generation
        self.keys = keys
        self.on_message = on_message
        self._binds = [parse_endpoint(a, port) for a in bind_addresses] or [("0.0.0.0", port)]
        # The same dict of all nodes may be passed on every node: skip ourselves.
        self._peers: dict[str, list[Endpoint]] = {
            name: [parse_endpoint(a, port) for a in addresses] for name, addresses in peers.items() if name != local}
        # A peer's datagrams must come from one of its configured addresses.
        self._peer_hosts: dict[str, frozenset[str]] = {
            name: frozenset(host for host, _ in endpoints) for name, endpoints in self._peers.items()}
        # Configured peer endpoint -> (node, link name as configured).
        self._links: dict[Endpoint, tuple[str, str]] = {}
        for name, addresses in peers.items():
            if name == local:
                continue
            for text, endpoint in zip(addresses, self._peers[name]):
                if endpoint in self._links:
                    raise ValueError(f"address {text} is given to both {self._links[endpoint][0]} and {name}")
                self._links[endpoint] = (name, text)
        self._group: Endpoint | None = None
        if multicast is not None:
            self._group = parse_endpoint(multicast, port)
            if not ipaddress.IPv4Address(self._group[0]).is_multicast:
                raise ValueError(f"{multicast!r} is not a multicast address")
        self._seq = 0
        self._guard = ReplayGuard()  # per sender: decides the first delivery
        self._link_guards = {endpoint: ReplayGuard() for endpoint in self._links}  # per configured link
        self._sockets: list[socket.socket] = []  # one per bind address, in order: they send
        self._receivers: list[socket.socket] = []  # every socket read (+ the group's)
        self._route: dict[Endpoint, socket.socket] = {}
        self._greenlets: list[gevent.Greenlet] = []
        self._running = False
        self.counters: dict[str, int] = dict.fromkeys(REJECT_REASONS + OTHER_COUNTERS, 0)
        self.rejected_by_node: dict[str, int] = {}

    # -- lifecycle

    def start(self) -> None:
        """Bind the sockets and start one receive loop per socket."""
        if self._running:
            return
        try:
            for address, port in self._binds:
                sock = self._socket()
                self._sockets.append(sock)
                sock.bind((address, port))
                if self._group is not None:
                    self._set_multicast_sender(sock, address)
            self._receivers = list(self._sockets)
            if self._group is not None:
                self._join_group()
        except OSError:
            self._close_sockets()
            raise
        self._route = {endpoint: self._pick_socket(endpoint, index)
                       for endpoints in self._peers.values() for index, endpoint in enumerate(endpoints)}
        self._running = True
        self._greenlets = [gevent.spawn(self._receive_loop, sock) for sock in self._receivers]

    def stop(self) -> None:
        """Stop receiving and close every socket (idempotent)."""
        self._running = False
        gevent.killall(self._greenlets)
        self._greenlets = []
        self._close_sockets()

    def __enter__(self) -> "Transport":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def bound(self) -> list[Endpoint]:
        """The (address, port) of each bind socket (useful with port 0)."""
        return [sock.getsockname()[:2] for sock in self._sockets]

    def _socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        return sock

    def _set_multicast_sender(self, sock: socket.socket, address: str) -> None:
        if address != "0.0.0.0":
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, MULTICAST_TTL)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)

    def _join_group(self) -> None:
        """Receive the group's datagrams: on the wildcard socket itself, or
        on one more socket bound to the group (a socket bound to a unicast
        address does not see them), joined on every bind address."""
        assert self._group is not None
        group, port = self._group
        if self._binds == [("0.0.0.0", port)]:
            sock = self._sockets[0]
        else:
            sock = self._socket()
            self._receivers.append(sock)
            sock.bind(self._group)
        for address, _ in self._binds:
            membership = socket.inet_aton(group) + socket.inet_aton(address)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)

    def _pick_socket(self, endpoint: Endpoint, index: int) -> socket.socket:
        """The socket that sends to a peer's link `index`: ours for the same
        link (the configuration lists links in the same order for every
        node, so the receiver names the link by our address), else the one
        bound to the source address the routing table picks, else the first.
        The route to the peer, not the socket, decides the way out."""
        if index < len(self._sockets):
            return self._sockets[index]
        probe = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
        try:
            probe.connect(endpoint)  # a route lookup: UDP connect sends nothing
            source = probe.getsockname()[0]
        except OSError:
            source = None
        finally:
            probe.close()
        for (address, _), sock in zip(self._binds, self._sockets):
            if address == source:
                return sock
        return self._sockets[0]

    def _close_sockets(self) -> None:
        for sock in {id(s): s for s in self._sockets + self._receivers}.values():
            sock.close()
        self._sockets, self._receivers, self._route = [], [], {}

    # -- sending

    def send(self, kind: str, body: dict[str, object], to: str | None = None) -> None:
        """Sign and send one message to node `to` (over all its links), or to
        every peer (unicast) or the multicast group when `to` is None.
        ValueError for an unknown node or a message over MAX_DATAGRAM."""
        if not self._running:
            raise RuntimeError("the transport is not started")
        if to is not None and to not in self._peers:
            raise ValueError(f"unknown node {to!r}")
        message = Message(kind, self.local, self.cluster, self.generation, self._seq + 1, body)
        datagram = encode(message, self.keys.sign_id, self.keys.sign_key)
        self._seq += 1
        if to is None and self._group is not None:
            plan = [(sock, self._group) for sock in self._sockets]
        else:
            targets = [to] if to is not None else list(self._peers)
            plan = [(self._route[endpoint], endpoint) for name in targets for endpoint in self._peers[name]]
        for sock, endpoint in plan:
            try:
                sock.sendto(datagram, endpoint)
            except OSError as exc:
                self._count_error("send-error", f"sending to {endpoint[0]}:{endpoint[1]}: {exc.strerror}")
            else:
                self.counters["sent"] += 1

    # -- receiving

    def _receive_loop(self, sock: socket.socket) -> None:
        delay = MIN_ERROR_DELAY
        while self._running:
            try:
                data, source = sock.recvfrom(RECV_BUFFER)
            except OSError as exc:
                if not self._running or exc.errno == errno.EBADF:
                    return
                self._count_error("recv-error", f"receiving: {exc.strerror}")
                gevent.sleep(delay)
                delay = min(delay * 2, MAX_ERROR_DELAY)
                continue
            delay = MIN_ERROR_DELAY
            self.handle_datagram(data, source[:2])

    def handle_datagram(self, data: bytes, source: Endpoint) -> Message | None:
        """One received datagram (the receive loop's step): deliver it to
        `on_message` or drop and count it; return the message delivered."""
        try:
            message = decode(data, self.keys.keys)
        except PacketRejected as exc:
            self._reject(exc.reason, source[0], str(exc))
            return None
        if message.cluster != self.cluster:
            self._reject("wrong-cluster", message.sender, f"cluster {message.cluster!r}")
            return None
        if message.sender == self.local:
            return None  # our own multicast, looped back
        if message.sender not in self._peers:
            self._reject("unknown-node", message.sender, f"from {source[0]}")
            return None
        if source[0] not in self._peer_hosts[message.sender]:
            self._reject("wrong-source", message.sender, f"from {source[0]}:{source[1]}")
            return None
        link = self._link_name(message.sender, source)
        if not self._fresh(message, source):
            return None
        self.counters["received"] += 1
        try:
            self.on_message(message, link)
        except Exception:  # a bug in the handler must not stop the receive loop
            log.exception("on_message failed for %s message %d from %s", message.kind, message.seq, message.sender)
        return message

    def _link_name(self, sender: str, source: Endpoint) -> str:
        """The link a datagram came over: the peer's address as configured,
        or the source address (with its port when not ours) if unlisted."""
        known = self._links.get(source)
        if known is not None and known[0] == sender:
            return known[1]
        return source[0] if source[1] == self.port else f"{source[0]}:{source[1]}"

    def _fresh(self, message: Message, source: Endpoint) -> bool:
        """Apply both replay guards; count what is not delivered."""
        try:
            self._guard.check(message)
            first = True
        except PacketRejected:
            first = False
        on_link = False
        known = self._links.get(source)
        if known is not None and known[0] == message.sender:
            try:
                self._link_guards[source].check(message)
                on_link = True
            except PacketRejected:
                pass
        if first:
            return True
        if on_link:
            if message.kind == HEARTBEAT and message.generation == self._guard.generation(message.sender):
                return True  # the copy sent over another of the sender's links
            self.counters["duplicate"] += 1  # not news, but no attack either
            return False
        self._reject("replay", message.sender, f"{message.kind} seq {message.seq} gen {message.generation} "
                                               f"from {source[0]}:{source[1]}")
        return False

    # -- accounting

    def _reject(self, reason: str, who: str, detail: str) -> None:
        count = self.counters[reason] = self.counters.get(reason, 0) + 1
        key = who if who in self.rejected_by_node or len(self.rejected_by_node) < MAX_REJECT_KEYS \
            else OTHER_SOURCES
        self.rejected_by_node[key] = self.rejected_by_node.get(key, 0) + 1
        # Logged at counts 1, 2, 4, 8...: a flood cannot flood the log.
        if _is_power_of_two(count):
            log.warning("dropped a packet (%s) from %s: %s [%d %s so far]", reason, who, detail, count, reason)

    def _count_error(self, name: str, detail: str) -> None:
        count = self.counters[name] = self.counters[name] + 1
        if _is_power_of_two(count):
            log.warning("%s [%d %s so far]", detail, count, name)
