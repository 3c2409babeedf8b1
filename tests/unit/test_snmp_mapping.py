"""checks.snmp.mapping: each event -> the right notification, var-binds in MIB order, typed and cleaned;
and the table agrees with nagios/GPROXY-SUITE-MIB.txt."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from checks.snmp.mapping import (
    DATETIME,
    EVENT_NAMES,
    INTEGER,
    NOTIFICATIONS,
    OBJECTS,
    SOURCE_EVENTS,
    STRING,
    UNSIGNED,
    clean_text,
    date_and_time,
    to_trap,
)
from gproxy import events as gev
from heartbeat import events as hev

ENT = "1.3.6.1.4.1.32473"
AT = datetime(2026, 3, 4, 5, 6, 7, 890_000, tzinfo=timezone.utc).timestamp()
MIB = Path(__file__).resolve().parents[2] / "nagios" / "GPROXY-SUITE-MIB.txt"


def server_event(kind: str, old: str = "UP", new: str = "DOWN", **extra) -> gev.ServerStateChanged:
    fields = dict(backend="esup-proxy", server="ents3", old=old, new=new, reason="Layer4 connection problem",
                  message='Server esup-proxy/ents3 is DOWN, reason: Layer4 connection problem, info: '
                          '"Connection refused". 2 active and 1 backup servers left.',
                  active_left=2, backup_left=1, kind=kind, check_status="L4CON", at=AT)
    fields.update(extra)
    return gev.ServerStateChanged(**fields)


def values(trap) -> dict:
    return {vb.name: vb.value for vb in trap.varbinds}


def test_server_down():
    trap = to_trap(server_event("went_down"), "gproxy", "lb1", ENT)
    assert trap.name == "gproxyServerDown" and trap.oid == f"{ENT}.0.1" and trap.event == "server-down"
    assert [vb.name for vb in trap.varbinds] == list(NOTIFICATIONS["gproxyServerDown"][1])
    got = values(trap)
    assert got["gproxySuiteSender"] == "lb1"
    assert got["gproxyBackendName"] == "esup-proxy" and got["gproxyServerName"] == "ents3"
    assert (got["gproxyServerOldStatus"], got["gproxyServerNewStatus"]) == ("UP", "DOWN")
    assert (got["gproxyCheckStatus"], got["gproxyReason"]) == ("L4CON", "Layer4 connection problem")
    assert (got["gproxyActiveServersLeft"], got["gproxyBackupServersLeft"]) == (2, 1)
    # The check's quoted reply is made harmless for trap handlers' shells.
    assert got["gproxySuiteMessage"].endswith('info: _Connection refused_. 2 active and 1 backup servers left.')
    assert trap.varbinds[0].oid == f"{ENT}.1.1.1.0" and trap.varbinds[3].oid == f"{ENT}.1.2.1.0"


@pytest.mark.parametrize("kind, old, new, name, admin", [
    ("went_up", "DOWN", "UP", "gproxyServerUp", None),
    ("stopping", "UP", "NOLB", "gproxyServerStopping", None),
    ("entered_drain", "UP", "DRAIN", "gproxyServerAdminChange", 2),
    ("left_drain", "DRAIN", "UP", "gproxyServerAdminChange", 1),
    ("entered_maint", "UP", "MAINT", "gproxyServerAdminChange", 3),
    ("left_maint", "MAINT", "UP", "gproxyServerAdminChange", 1),
    ("left_maint", "MAINT", "DRAIN", "gproxyServerAdminChange", 2),
])
def test_other_server_changes(kind, old, new, name, admin):
    trap = to_trap(server_event(kind, old, new, check_status=""), "gproxy", "lb1", ENT)
    assert trap.name == name
    got = values(trap)
    assert (got["gproxyServerOldStatus"], got["gproxyServerNewStatus"]) == (old, new)
    if admin is None:
        assert "gproxyServerAdminState" not in got
    else:
        assert got["gproxyServerAdminState"] == admin
        assert dict(trap.environment)["GSUITE_ADMIN_STATE"] == {1: "ready", 2: "drain", 3: "maint"}[admin]


def test_unknown_server_kind_and_foreign_events_send_nothing():
    assert to_trap(server_event(""), "gproxy", "lb1", ENT) is None
    assert to_trap(gev.CheckResult(backend="b", server="s", status="L4OK", code=None, duration_ms=1, info=""),
                   "gproxy", "lb1", ENT) is None
    # An event of the other daemon is not this source's business.
    assert to_trap(hev.NodeJoined(cluster="c", node="n2"), "gproxy", "lb1", ENT) is None
    assert to_trap(server_event("went_down"), "heartbeat", "n1", ENT) is None


@pytest.mark.parametrize("up, name", [(False, "gproxyBackendDown"), (True, "gproxyBackendUp")])
def test_backend(up, name):
    event = gev.BackendStateChanged(backend="esup-proxy", up=up, message="backend esup-proxy has no server available!",
                                    at=AT)
    trap = to_trap(event, "gproxy", "lb1", ENT)
    assert trap.name == name
    assert values(trap)["gproxyBackendName"] == "esup-proxy"
    assert [vb.name for vb in trap.varbinds] == ["gproxySuiteSender", "gproxySuiteEventTime", "gproxySuiteMessage",
                                                  "gproxyBackendName"]


HEARTBEAT_CASES = [
    (hev.NodeLost(cluster="esup", node="n1", silent_ms=1200, at=AT), "heartbeatNodeLost",
     {"heartbeatNodeName": "n1", "heartbeatSilence": 1200}, "node n1 lost: silent for 1200 ms"),
    (hev.NodeJoined(cluster="esup", node="n2", at=AT), "heartbeatNodeJoined", {"heartbeatNodeName": "n2"},
     "node n2 joined"),
    (hev.LateHeartbeat(cluster="esup", node="n2", gap_ms=640, at=AT), "heartbeatLateHeartbeat",
     {"heartbeatGap": 640}, "late heartbeat from node n2: 640 ms since the last one"),
    (hev.LinkChanged(cluster="esup", node="n2", link="10.0.0.2", up=False, at=AT), "heartbeatLinkDown",
     {"heartbeatLinkName": "10.0.0.2"}, "link 10.0.0.2 to node n2 is down"),
    (hev.LinkChanged(cluster="esup", node="n2", link="10.0.0.2", up=True, at=AT), "heartbeatLinkUp",
     {"heartbeatLinkName": "10.0.0.2"}, "link 10.0.0.2 to node n2 is up"),
    (hev.Failover(cluster="esup", resources=("vip", "proxy"), source="n1", target="n2", reason="node n1 lost",
                  at=AT), "heartbeatFailover",
     {"heartbeatResources": "vip,proxy", "heartbeatFromNode": "n1", "heartbeatToNode": "n2",
      "heartbeatReason": "node n1 lost"}, "vip,proxy failed over from n1 to n2: node n1 lost"),
    (hev.ResourceFailed(cluster="esup", resource="tls", node="n1", agent="ocf:heartbeat:Dummy",
                        operation="monitor", rc=7, reason="not running", at=AT), "heartbeatResourceFailed",
     {"heartbeatResourceName": "tls", "heartbeatAgent": "ocf:heartbeat:Dummy", "heartbeatOperation": "monitor",
      "heartbeatReturnCode": 7, "heartbeatReason": "not running"},
     "monitor of tls on n1 failed: rc=7 (not running)"),
    (hev.ResourceRecovered(cluster="esup", resource="tls", node="n1", at=AT), "heartbeatResourceRecovered",
     {"heartbeatResourceName": "tls", "heartbeatNodeName": "n1"}, "tls recovered on n1"),
    (hev.AuthFailures(cluster="esup", reason="bad-hmac", count=12, source="", at=AT), "heartbeatAuthFailuresReport",
     {"heartbeatReason": "bad-hmac", "heartbeatAuthFailures": 12, "heartbeatAuthSource": ""},
     "12 heartbeat packets rejected (bad-hmac)"),
    (hev.QuorumChanged(cluster="esup", node="n3", have=False, votes=1, expected=3, reason="1 of 3 votes: no majority",
                       at=AT), "heartbeatQuorumLost",
     {"heartbeatNodeName": "n3", "heartbeatQuorumVotes": 1, "heartbeatExpectedVotes": 3,
      "heartbeatReason": "1 of 3 votes: no majority"},
     "partition of n3 lost quorum: 1 of 3 votes (1 of 3 votes: no majority)"),
    (hev.QuorumChanged(cluster="esup", node="n3", have=True, votes=2, expected=3, reason="", at=AT),
     "heartbeatQuorumRegained", {"heartbeatQuorumVotes": 2, "heartbeatExpectedVotes": 3, "heartbeatReason": ""},
     "partition of n3 regained quorum: 2 of 3 votes"),
    (hev.Fencing(cluster="esup", node="n1", ok=False, reason="/usr/sbin/fence_ipmilan exited 1: Failed", at=AT),
     "heartbeatFencingFailed",
     {"heartbeatNodeName": "n1", "heartbeatReason": "/usr/sbin/fence_ipmilan exited 1: Failed"},
     "node n1 NOT fenced, takeover blocked: /usr/sbin/fence_ipmilan exited 1: Failed"),
    (hev.Fencing(cluster="esup", node="n1", ok=True, reason="fence exited 0", at=AT), "heartbeatFencingSucceeded",
     {"heartbeatNodeName": "n1", "heartbeatReason": "fence exited 0"}, "node n1 fenced: fence exited 0"),
    (hev.SplitBrain(cluster="esup", nodes=("n1", "n2"), resources=("vip", "proxy"), at=AT), "heartbeatSplitBrain",
     {"heartbeatNodes": "n1,n2", "heartbeatResources": "vip,proxy"},
     "split brain: vip,proxy ran on n1 and n2 at once"),
]


@pytest.mark.parametrize("event, name, expected, message", HEARTBEAT_CASES,
                         ids=[c[1] + ("Up" if getattr(c[0], "up", False) else "") for c in HEARTBEAT_CASES])
def test_heartbeat_events(event, name, expected, message):
    trap = to_trap(event, "heartbeat", "n2", ENT)
    assert trap.name == name and trap.source == "heartbeat"
    got = values(trap)
    assert got["heartbeatClusterName"] == "esup" and got["gproxySuiteSender"] == "n2"
    assert got["gproxySuiteMessage"] == message
    for key, value in expected.items():
        assert got[key] == value
    assert [vb.name for vb in trap.varbinds] == list(NOTIFICATIONS[name][1])


def test_every_source_event_maps():
    names = {to_trap(case[0], "heartbeat", "n", ENT).name for case in HEARTBEAT_CASES}
    names |= {to_trap(server_event(k), "gproxy", "n", ENT).name for k in ("went_down", "went_up", "stopping",
                                                                           "entered_drain")}
    names |= {"gproxyBackendDown", "gproxyBackendUp"}
    assert names == set(NOTIFICATIONS) == set(EVENT_NAMES)
    assert set(SOURCE_EVENTS["gproxy"]) <= set(gev.__all__)
    assert set(SOURCE_EVENTS["heartbeat"]) <= set(hev.__all__)


def test_environment_of_the_partition_events():
    env = dict(to_trap(hev.QuorumChanged(cluster="esup", node="n3", have=False, votes=1, expected=3, reason="r",
                                         at=AT), "heartbeat", "n3", ENT).environment)
    assert env["GSUITE_EVENT"] == "quorum-lost" and env["GSUITE_HAVE"] == "0"
    assert (env["GSUITE_VOTES"], env["GSUITE_EXPECTED"]) == ("1", "3")
    env = dict(to_trap(hev.Fencing(cluster="esup", node="n1", ok=True, reason="r", at=AT), "heartbeat", "n2",
                       ENT).environment)
    assert env["GSUITE_EVENT"] == "fencing-ok" and env["GSUITE_OK"] == "1" and env["GSUITE_NODE"] == "n1"
    env = dict(to_trap(hev.SplitBrain(cluster="esup", nodes=("n1", "n2"), resources=("vip",), at=AT), "heartbeat",
                       "n2", ENT).environment)
    assert env["GSUITE_EVENT"] == "split-brain" and env["GSUITE_NODES"] == "n1,n2" and env["GSUITE_RESOURCES"] == "vip"


def test_values_are_typed_and_bounded():
    trap = to_trap(hev.ResourceFailed(cluster="c" * 300, resource="r", node="n", agent="lsb:x", operation="start",
                                      rc=-(2**40), reason="caf\u00e9\n$(rm -rf /)`x`\\", at=AT),
                   "heartbeat", "n", ENT)
    got = values(trap)
    assert len(got["heartbeatClusterName"]) == 255
    assert got["heartbeatReturnCode"] == -(2**31)
    assert got["heartbeatReason"] == "caf? _(rm -rf /)_x__"
    for vb in trap.varbinds:
        syntax = OBJECTS[vb.name][2]
        assert vb.syntax == syntax
        assert isinstance(vb.value, {STRING: str, UNSIGNED: int, INTEGER: int, DATETIME: bytes}[syntax])
    lost = to_trap(hev.NodeLost(cluster="c", node="n", silent_ms=-5, at=AT), "heartbeat", "n", ENT)
    assert values(lost)["heartbeatSilence"] == 0


def test_clean_text():
    assert clean_text("UP 1/3") == "UP 1/3"
    assert clean_text('a"b$c`d\\e\tf\x00g\u00e9') == "a_b_c_d_e f?g?"
    assert clean_text("x" * 1000) == "x" * 255


def test_date_and_time_is_rfc2579_utc():
    octets = date_and_time(AT)
    assert octets == bytes([0x07, 0xEA, 3, 4, 5, 6, 7, 8, ord("+"), 0, 0])
    assert values(to_trap(server_event("went_down"), "gproxy", "lb1", ENT))["gproxySuiteEventTime"] == octets


def test_environment_for_notify_commands():
    env = dict(to_trap(hev.Failover(cluster="esup", resources=("vip", "proxy"), source="n1", target="n2",
                                    reason="node n1 lost", at=AT), "heartbeat", "n2", ENT).environment)
    assert env["GSUITE_EVENT"] == "failover" and env["GSUITE_TRAP"] == "heartbeatFailover"
    assert env["GSUITE_DAEMON"] == "heartbeat" and env["GSUITE_SENDER"] == "n2"
    assert env["GSUITE_RESOURCES"] == "vip,proxy" and env["GSUITE_SOURCE"] == "n1" and env["GSUITE_TARGET"] == "n2"
    assert float(env["GSUITE_AT"]) == pytest.approx(AT, abs=0.001)
    assert env["GSUITE_MESSAGE"] == "vip,proxy failed over from n1 to n2: node n1 lost"
    env = dict(to_trap(server_event("went_down"), "gproxy", "lb1", ENT).environment)
    # The environment keeps the text as it was (no shell is involved).
    assert '"Connection refused"' in env["GSUITE_MESSAGE"]
    assert env["GSUITE_ACTIVE_LEFT"] == "2" and env["GSUITE_CHECK_STATUS"] == "L4CON"
    env = dict(to_trap(gev.BackendStateChanged(backend="b", up=True, message="m\0", at=AT), "gproxy", "lb1",
                       ENT).environment)
    assert env["GSUITE_UP"] == "1" and env["GSUITE_MESSAGE"] == "m"


def test_enterprise_oid_moves_every_oid():
    trap = to_trap(server_event("went_down"), "gproxy", "lb1", "1.3.6.1.4.1.99999.7")
    assert trap.oid == "1.3.6.1.4.1.99999.7.0.1"
    assert all(vb.oid.startswith("1.3.6.1.4.1.99999.7.1.") and vb.oid.endswith(".0") for vb in trap.varbinds)


# ---- the MIB and the table agree ---------------------------------------------------------------

def _mib_text() -> str:
    return re.sub(r"--[^\n]*", "", MIB.read_text())


def test_mib_notifications_match_the_table():
    text = _mib_text()
    found = {}
    for name, objects, number in re.findall(
            r"(\w+)\s+NOTIFICATION-TYPE\s+OBJECTS\s*\{([^}]*)\}.*?::=\s*\{\s*gproxySuiteNotifications\s+(\d+)\s*\}",
            text, re.S):
        found[name] = (int(number), tuple(o.strip() for o in objects.split(",")))
    assert found == NOTIFICATIONS


def test_mib_objects_match_the_table():
    text = _mib_text()
    arcs = {"gproxySuiteCommon": "1.1", "gproxyEventObjects": "1.2", "heartbeatEventObjects": "1.3"}
    found = {}
    for name, syntax, parent, number in re.findall(
            r"(\w+)\s+OBJECT-TYPE\s+SYNTAX\s+(\w+).*?::=\s*\{\s*(\w+)\s+(\d+)\s*\}", text, re.S):
        kind = {"DisplayString": STRING, "Unsigned32": UNSIGNED, "Integer32": INTEGER, "DateAndTime": DATETIME,
                "GproxyAdminState": INTEGER}[syntax]
        found[name] = (arcs[parent], int(number), kind)
    assert found == OBJECTS
    assert re.search(r"gproxySuiteMIB MODULE-IDENTITY.*?::=\s*\{\s*enterprises 32473\s*\}", text, re.S)
    assert "ready(1), drain(2), maint(3)" in text


def test_docs_describe_every_notification_and_event_name():
    text = (Path(__file__).resolve().parents[2] / "docs" / "snmp.md").read_text()
    for name, (number, _) in NOTIFICATIONS.items():
        assert f"| `{name}` | `.0.{number}` |" in text, name
    for event in EVENT_NAMES.values():
        assert f"`{event}`" in text, event
