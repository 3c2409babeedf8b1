"""A hostile network against a running two-node heartbeat cluster (loopback).

Two `heartbeat run` processes on 127.0.0.1 (each its own UDP port, as in
`make demo`) manage one ocf:heartbeat:Dummy resource. The test plays the
attacker on the same network: forged packets of every kind (bad HMAC,
unknown key id, unknown node, another cluster, replayed from this boot and
from the previous one, truncated, oversized, sent from another source
address), then a flood of 100 000 garbage datagrams. Each forged packet must
be dropped and counted in the status socket's `packets_rejected`, nothing in
the cluster may change (DC, node states, placement, no failover), and no
traceback may appear in either node's log. During the flood the node must
keep its peer (its own heartbeats keep going out); its CPU time over the
flood is read from /proc/PID/stat and printed (pytest -s), recorded in
docs/reliability.md.
"""

from __future__ import annotations

import os
import random
import socket
import time
from pathlib import Path

import pytest
import tomli_w

from cluster_harness import HeartbeatNodes, cluster_doc, dummies, udp_port, write_authkey

from heartbeat.protocol.packet import MAGIC, Message, encode

SECRET = b"hostile-network-secret"
KEY_ID = 1
FLOOD_PACKETS = 100_000
# Paced so that the flood lasts longer than the deadtime (2s): had the node
# stopped sending or hearing heartbeats under it, its peer would be lost.
FLOOD_BATCH = 100
FLOOD_PAUSE = 0.003
OTHER_SOURCE = "127.0.0.2"  # loopback is a /8: the attacker's "other machine"
CLK_TCK = os.sysconf("SC_CLK_TCK")

class LoopbackCluster(HeartbeatNodes):
    def __init__(self, tmp: Path):
        super().__init__(tmp, ["n1", "n2"], tmp / "cluster.toml")
        self.ports = [udp_port(), udp_port()]
        write_authkey(tmp / "authkey", SECRET.decode(), KEY_ID)
        doc = cluster_doc(tmp, "hostile", {name: f"127.0.0.1:{port}" for name, port in zip(self.names, self.ports)},
                          keepalive="200ms", warntime="500ms", deadtime="2s", initdead="3s")
        self.path.write_text(tomli_w.dumps(doc | dummies(tmp, ["dummy"], "n1", "1s")))

    def wait_settled(self, timeout: float = 30) -> dict:
        return self.wait("the cluster to settle", lambda: (last := self.try_status(1)) and
                         [n["state"] for n in last["nodes"]] == ["online", "online"] and
                         [(r["state"], r["node"]) for r in last["resources"]] == [("started", "n1")] and last,
                         timeout=timeout)

    def generation(self, name: str) -> int:
        (path,) = (self.tmp / f"state-{name}").rglob(f"generation-{name}")
        return int(path.read_text().split()[0])

    def cpu_seconds(self, index: int) -> float:
        fields = Path(f"/proc/{self.procs[self.name(index)].pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


@pytest.fixture
def cluster(tmp_path):
    made = LoopbackCluster(tmp_path)
    try:
        made.start_all()
        made.wait_settled()
        yield made
    finally:
        made.stop()


def signed(sender: str, generation: int, seq: int, cluster: str = "hostile", key: bytes = SECRET,
           key_id: int = KEY_ID) -> bytes:
    return encode(Message("hb", sender, cluster, generation, seq, {}), key_id, key)


def unchanged(before: dict, after: dict) -> None:
    assert after["dc"] == before["dc"]
    assert [n["state"] for n in after["nodes"]] == ["online", "online"]
    assert [(r["id"], r["state"], r["node"]) for r in after["resources"]] == \
        [(r["id"], r["state"], r["node"]) for r in before["resources"]]
    assert after["last_failover"] == before["last_failover"]


def test_forged_packets_are_dropped_counted_and_change_nothing(cluster):
    target = ("127.0.0.1", cluster.ports[1])
    gen = cluster.generation("n1")
    good = signed("n1", gen, 10**6)  # a valid packet, never sent: the base of forgeries
    forged = {
        "bad-hmac": [good[:-1] + bytes([good[-1] ^ 1]),  # one bit of the tag
                     good[:20] + b"X" + good[21:],  # one bit of the payload
                     signed("n1", gen, 10**6, key=b"guessed-secret"),  # another key under our key id
                     good[:-10]],  # truncated: the last 32 bytes are no tag
        "unknown-key": [signed("n1", gen, 10**6, key_id=9)],
        "malformed": [good[:20],  # shorter than a header and a tag
                      b"GHB2" + good[4:],  # another magic
                      MAGIC + b"\x01" + b"\xff" * 65_000],  # oversized
        "unknown-node": [signed("intruder", 1, 1)],
        "wrong-cluster": [signed("n1", gen, 10**6, cluster="other")],
        "replay": [signed("n1", gen - 1, 5)],  # from n1's previous boot
    }
    # Valid packets of n1 resent from another machine: one from this boot
    # (may never have reached n2: fresh by its seq), one far in the future
    # (had it been accepted, n1's real heartbeats would look like replays).
    wrong_source = [signed("n1", gen, 1), signed("n1", gen, 10**6)]
    before = cluster.status(1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind((OTHER_SOURCE, 0))
        for reason, packets in forged.items():
            for packet in packets:
                udp.sendto(packet, target)
                if reason not in ("replay",):  # refused before the source is looked at
                    other.sendto(packet, target)
        for packet in wrong_source:
            other.sendto(packet, target)
        time.sleep(1.5)  # several keepalives: had anything been accepted, it would show
    after = cluster.status(1)
    rejected = {k: after["packets_rejected"][k] - before["packets_rejected"].get(k, 0)
                for k in after["packets_rejected"]}
    expected = {reason: len(packets) * (1 if reason == "replay" else 2) for reason, packets in forged.items()}
    expected["wrong-source"] = len(wrong_source)
    assert rejected == expected
    unchanged(before, after)
    assert "Traceback" not in cluster.logs(tail=0)


def test_flood_of_garbage_keeps_peers_and_bounded_cpu(cluster):
    target = ("127.0.0.1", cluster.ports[1])
    rng = random.Random(9)
    good = signed("n1", cluster.generation("n1"), 10**6)
    # Garbage of three kinds: random bytes, our magic with a random body (the
    # HMAC is computed: the costly path), and bit flips of a valid packet.
    garbage = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))) for _ in range(50)]
    garbage += [MAGIC + bytes([KEY_ID]) + rng.randbytes(rng.randint(40, 1400)) for _ in range(50)]
    garbage += [good[:i] + bytes([good[i] ^ 0x40]) + good[i + 1:] for i in range(5, len(good), 3)]
    before = cluster.status(1)
    cpu_before = cluster.cpu_seconds(1)
    start = time.monotonic()
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.setblocking(True)
        while sent < FLOOD_PACKETS:
            try:
                udp.sendto(garbage[sent % len(garbage)], target)
            except BlockingIOError:
                continue
            sent += 1
            if sent % FLOOD_BATCH == 0:
                time.sleep(FLOOD_PAUSE)
            if sent % 20_000 == 0:  # the node still answers and still sees its peer mid-flood
                assert [n["state"] for n in cluster.status(1)["nodes"]] == ["online", "online"]
    flood_seconds = time.monotonic() - start
    time.sleep(0.5)  # let the node drain its socket
    cpu = cluster.cpu_seconds(1) - cpu_before
    after = cluster.status(1)
    counted = sum(after["packets_rejected"].values()) - sum(before["packets_rejected"].values())
    print(f"\nflood: {sent} datagrams in {flood_seconds:.2f}s; node n2 counted {counted} rejected "
          f"(the rest dropped by the kernel's socket buffer), used {cpu:.2f}s CPU "
          f"({cpu / max(counted, 1) * 1e6:.1f} us per packet handled)")
    assert 0 < counted <= sent
    unchanged(before, after)
    assert cluster.status(0)["nodes"][1]["state"] == "online"  # n1 kept hearing n2 too
    assert "Traceback" not in cluster.logs(tail=0)
