"""heartbeat.daemon.Node._publish: the controller's partition events (quorum, fencing, split brain)
become typed events on the bus, the ones checks.snmp traps."""

from __future__ import annotations

from types import SimpleNamespace

from gsuite.events import EventBus
from heartbeat import events as ev
from heartbeat.daemon import Node


def publish(kind: str, fields: dict) -> list:
    bus, seen, logged = EventBus(), [], []
    bus.subscribe(ev.Event, seen.append)
    node = SimpleNamespace(bus=bus, config=SimpleNamespace(name="esup", resource=lambda rid: None),
                           log=logged.append, _now=lambda: 1700000000.0)
    Node._publish(node, kind, fields)
    assert logged and logged[0].startswith(f"{kind}: ")
    return seen


def test_split_brain_is_published_with_its_nodes_and_resources():
    (event,) = publish("split-brain", {"nodes": "n1,n2", "resources": "vip,proxy"})
    assert event == ev.SplitBrain(cluster="esup", nodes=("n1", "n2"), resources=("vip", "proxy"), at=1700000000.0)


def test_quorum_and_fencing_are_published():
    (quorum,) = publish("quorum", {"node": "n3", "have": False, "votes": 1, "expected": 3, "reason": "r"})
    assert quorum == ev.QuorumChanged(cluster="esup", node="n3", have=False, votes=1, expected=3, reason="r",
                                      at=1700000000.0)
    (fencing,) = publish("fencing", {"node": "n1", "ok": False, "reason": "sh exited 1", "at": 5.0})
    assert fencing == ev.Fencing(cluster="esup", node="n1", ok=False, reason="sh exited 1", at=5.0)


def test_unknown_kinds_are_only_logged():
    assert publish("something-new", {"x": 1}) == []
