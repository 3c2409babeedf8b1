"""Events -> SNMP notifications of GPROXY-SUITE-MIB, as plain values.

`to_trap(event, source, sender, enterprise_oid)` turns one daemon event into
a `Trap`: the notification's name and OID, its var-binds in the MIB's
OBJECTS order (typed, but not yet pysnmp objects), and the fields a notify
command gets in its environment. Pure: no pysnmp, no sockets, no clock (the
event carries its time). Events are recognised by class name and fields, so
this module imports neither daemon (DESIGN.md: gproxy and heartbeat never
import each other, even through checks).

`NOTIFICATIONS` mirrors nagios/GPROXY-SUITE-MIB.txt; a unit test parses the
MIB and compares, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"  # SNMPv2-MIB::snmpTrapOID.0
DISPLAY_STRING_MAX = 255  # DisplayString's SIZE (0..255)
UNSIGNED32_MAX = 2**32 - 1
INTEGER32_MIN, INTEGER32_MAX = -(2**31), 2**31 - 1
# Characters a trap handler's shell (snmptt EXEC, notify scripts quoting "$x")
# would interpret inside double quotes; a backend's check reply can carry any text.
_SHELL_CHARS = frozenset('"$`\\')

# Sub-arcs of the enterprise OID (see the MIB).
NOTIFICATIONS_ARC = "0"
COMMON_ARC = "1.1"
GPROXY_ARC = "1.2"
HEARTBEAT_ARC = "1.3"

STRING, UNSIGNED, INTEGER, DATETIME = "string", "unsigned", "integer", "datetime"

# name -> (arc, sub-identifier, syntax)
OBJECTS: dict[str, tuple[str, int, str]] = {
    "gproxySuiteSender": (COMMON_ARC, 1, STRING),
    "gproxySuiteEventTime": (COMMON_ARC, 2, DATETIME),
    "gproxySuiteMessage": (COMMON_ARC, 3, STRING),
    "gproxyBackendName": (GPROXY_ARC, 1, STRING),
    "gproxyServerName": (GPROXY_ARC, 2, STRING),
    "gproxyServerOldStatus": (GPROXY_ARC, 3, STRING),
    "gproxyServerNewStatus": (GPROXY_ARC, 4, STRING),
    "gproxyCheckStatus": (GPROXY_ARC, 5, STRING),
    "gproxyReason": (GPROXY_ARC, 6, STRING),
    "gproxyActiveServersLeft": (GPROXY_ARC, 7, UNSIGNED),
    "gproxyBackupServersLeft": (GPROXY_ARC, 8, UNSIGNED),
    "gproxyServerAdminState": (GPROXY_ARC, 9, INTEGER),
    "heartbeatClusterName": (HEARTBEAT_ARC, 1, STRING),
    "heartbeatNodeName": (HEARTBEAT_ARC, 2, STRING),
    "heartbeatSilence": (HEARTBEAT_ARC, 3, UNSIGNED),
    "heartbeatGap": (HEARTBEAT_ARC, 4, UNSIGNED),
    "heartbeatResources": (HEARTBEAT_ARC, 5, STRING),
    "heartbeatFromNode": (HEARTBEAT_ARC, 6, STRING),
    "heartbeatToNode": (HEARTBEAT_ARC, 7, STRING),
    "heartbeatReason": (HEARTBEAT_ARC, 8, STRING),
    "heartbeatResourceName": (HEARTBEAT_ARC, 9, STRING),
    "heartbeatAgent": (HEARTBEAT_ARC, 10, STRING),
    "heartbeatOperation": (HEARTBEAT_ARC, 11, STRING),
    "heartbeatReturnCode": (HEARTBEAT_ARC, 12, INTEGER),
    "heartbeatAuthFailures": (HEARTBEAT_ARC, 13, UNSIGNED),
    "heartbeatAuthSource": (HEARTBEAT_ARC, 14, STRING),
    "heartbeatLinkName": (HEARTBEAT_ARC, 15, STRING),
    "heartbeatQuorumVotes": (HEARTBEAT_ARC, 16, UNSIGNED),
    "heartbeatExpectedVotes": (HEARTBEAT_ARC, 17, UNSIGNED),
    "heartbeatNodes": (HEARTBEAT_ARC, 18, STRING),
}

_COMMON = ("gproxySuiteSender", "gproxySuiteEventTime", "gproxySuiteMessage")
_SERVER = _COMMON + ("gproxyBackendName", "gproxyServerName", "gproxyServerOldStatus", "gproxyServerNewStatus",
                     "gproxyCheckStatus", "gproxyReason", "gproxyActiveServersLeft", "gproxyBackupServersLeft")
_LINK = _COMMON + ("heartbeatClusterName", "heartbeatNodeName", "heartbeatLinkName")
_QUORUM = _COMMON + ("heartbeatClusterName", "heartbeatNodeName", "heartbeatQuorumVotes", "heartbeatExpectedVotes",
                     "heartbeatReason")
_FENCING = _COMMON + ("heartbeatClusterName", "heartbeatNodeName", "heartbeatReason")

# name -> (sub-identifier under the notifications arc, OBJECTS in order)
NOTIFICATIONS: dict[str, tuple[int, tuple[str, ...]]] = {
    "gproxyServerDown": (1, _SERVER),
    "gproxyServerUp": (2, _SERVER),
    "gproxyServerStopping": (3, _SERVER),
    "gproxyBackendDown": (4, _COMMON + ("gproxyBackendName",)),
    "gproxyBackendUp": (5, _COMMON + ("gproxyBackendName",)),
    "gproxyServerAdminChange": (6, _COMMON + (
        "gproxyBackendName", "gproxyServerName", "gproxyServerAdminState", "gproxyServerOldStatus",
        "gproxyServerNewStatus", "gproxyReason", "gproxyActiveServersLeft", "gproxyBackupServersLeft")),
    "heartbeatNodeLost": (11, _COMMON + ("heartbeatClusterName", "heartbeatNodeName", "heartbeatSilence")),
    "heartbeatNodeJoined": (12, _COMMON + ("heartbeatClusterName", "heartbeatNodeName")),
    "heartbeatLateHeartbeat": (13, _COMMON + ("heartbeatClusterName", "heartbeatNodeName", "heartbeatGap")),
    "heartbeatFailover": (14, _COMMON + ("heartbeatClusterName", "heartbeatResources", "heartbeatFromNode",
                                         "heartbeatToNode", "heartbeatReason")),
    "heartbeatResourceFailed": (15, _COMMON + (
        "heartbeatClusterName", "heartbeatResourceName", "heartbeatNodeName", "heartbeatAgent",
        "heartbeatOperation", "heartbeatReturnCode", "heartbeatReason")),
    "heartbeatResourceRecovered": (16, _COMMON + ("heartbeatClusterName", "heartbeatResourceName",
                                                  "heartbeatNodeName")),
    "heartbeatAuthFailuresReport": (17, _COMMON + ("heartbeatClusterName", "heartbeatReason",
                                                   "heartbeatAuthFailures", "heartbeatAuthSource")),
    "heartbeatLinkDown": (18, _LINK),
    "heartbeatLinkUp": (19, _LINK),
    "heartbeatQuorumLost": (20, _QUORUM),
    "heartbeatQuorumRegained": (21, _QUORUM),
    "heartbeatFencingFailed": (22, _FENCING),
    "heartbeatFencingSucceeded": (23, _FENCING),
    "heartbeatSplitBrain": (24, _COMMON + ("heartbeatClusterName", "heartbeatNodes", "heartbeatResources")),
}

ADMIN_STATES = {"ready": 1, "drain": 2, "maint": 3}  # GproxyAdminState

# ServerStateChanged.kind -> notification (and, for admin changes, the state entered)
_SERVER_KINDS: dict[str, str] = {
    "went_down": "gproxyServerDown",
    "went_up": "gproxyServerUp",
    "stopping": "gproxyServerStopping",
    "entered_drain": "gproxyServerAdminChange",
    "left_drain": "gproxyServerAdminChange",
    "entered_maint": "gproxyServerAdminChange",
    "left_maint": "gproxyServerAdminChange",
}

# The short event names notify commands get in GSUITE_EVENT.
EVENT_NAMES: dict[str, str] = {
    "gproxyServerDown": "server-down",
    "gproxyServerUp": "server-up",
    "gproxyServerStopping": "server-stopping",
    "gproxyBackendDown": "backend-down",
    "gproxyBackendUp": "backend-up",
    "gproxyServerAdminChange": "server-admin",
    "heartbeatNodeLost": "node-lost",
    "heartbeatNodeJoined": "node-joined",
    "heartbeatLateHeartbeat": "late-heartbeat",
    "heartbeatFailover": "failover",
    "heartbeatResourceFailed": "resource-failed",
    "heartbeatResourceRecovered": "resource-recovered",
    "heartbeatAuthFailuresReport": "auth-failures",
    "heartbeatLinkDown": "link-down",
    "heartbeatLinkUp": "link-up",
    "heartbeatQuorumLost": "quorum-lost",
    "heartbeatQuorumRegained": "quorum-regained",
    "heartbeatFencingFailed": "fencing-failed",
    "heartbeatFencingSucceeded": "fencing-ok",
    "heartbeatSplitBrain": "split-brain",
}

# Event classes each source publishes that become notifications.
SOURCE_EVENTS: dict[str, tuple[str, ...]] = {
    "gproxy": ("ServerStateChanged", "BackendStateChanged"),
    "heartbeat": ("NodeLost", "NodeJoined", "LateHeartbeat", "LinkChanged", "Failover", "ResourceFailed",
                  "ResourceRecovered", "AuthFailures", "QuorumChanged", "Fencing", "SplitBrain"),
}


@dataclass(frozen=True)
class Varbind:
    name: str  # the MIB descriptor
    oid: str  # with the scalar's instance (.0)
    syntax: str  # string, unsigned, integer or datetime
    value: Any  # str, int, or the 11 DateAndTime octets


@dataclass(frozen=True)
class Trap:
    name: str  # the notification's descriptor, e.g. gproxyServerDown
    oid: str
    source: str  # gproxy or heartbeat
    at: float  # epoch seconds of the event
    varbinds: tuple[Varbind, ...]  # after snmpTrapOID.0 (the sender adds sysUpTime.0 and it)
    environment: tuple[tuple[str, str], ...]  # GSUITE_* variables for notify commands

    @property
    def event(self) -> str:
        return EVENT_NAMES[self.name]

    def value(self, name: str) -> Any:
        for vb in self.varbinds:
            if vb.name == name:
                return vb.value
        raise KeyError(name)


def notification_oid(enterprise_oid: str, name: str) -> str:
    return f"{enterprise_oid}.{NOTIFICATIONS_ARC}.{NOTIFICATIONS[name][0]}"


def object_oid(enterprise_oid: str, name: str) -> str:
    arc, sub, _ = OBJECTS[name]
    return f"{enterprise_oid}.{arc}.{sub}.0"


_TRANSLATE = {**{ord(c): "_" for c in _SHELL_CHARS}, **{ord(c): " " for c in "\t\r\n"}}
_NOT_DISPLAYABLE = re.compile(r"[^ -~]")


def clean_text(value: object, limit: int = DISPLAY_STRING_MAX) -> str:
    """A DisplayString: printable ASCII, shell-active characters made harmless, cut to `limit`."""
    text = str(value)[:limit].translate(_TRANSLATE)
    if text.isascii() and text.isprintable():
        return text
    return _NOT_DISPLAYABLE.sub("?", text)


def date_and_time(at: float) -> bytes:
    """SNMPv2-TC DateAndTime, 11 octets, in UTC (direction '+', offset 0:0)."""
    moment = datetime.fromtimestamp(at, timezone.utc)
    return (moment.year.to_bytes(2, "big")
            + bytes((moment.month, moment.day, moment.hour, moment.minute, moment.second,
                     moment.microsecond // 100_000, ord("+"), 0, 0)))


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, int(value)))


def _values_for(event: Any, source: str) -> tuple[str, dict[str, Any]] | None:
    """(notification name, object values but the common ones) for one event, or None."""
    kind = type(event).__name__
    if kind not in SOURCE_EVENTS.get(source, ()):
        return None
    if kind == "ServerStateChanged":
        name = _SERVER_KINDS.get(event.kind)
        if name is None:
            return None
        values: dict[str, Any] = {
            "gproxyBackendName": event.backend, "gproxyServerName": event.server,
            "gproxyServerOldStatus": event.old, "gproxyServerNewStatus": event.new,
            "gproxyCheckStatus": event.check_status, "gproxyReason": event.reason,
            "gproxyActiveServersLeft": event.active_left, "gproxyBackupServersLeft": event.backup_left,
            "gproxySuiteMessage": event.message,
        }
        if name == "gproxyServerAdminChange":
            values["gproxyServerAdminState"] = ADMIN_STATES[_admin_state(event.kind, event.new)]
        return name, values
    if kind == "BackendStateChanged":
        return ("gproxyBackendUp" if event.up else "gproxyBackendDown",
                {"gproxyBackendName": event.backend, "gproxySuiteMessage": event.message})
    cluster = {"heartbeatClusterName": event.cluster}
    if kind == "NodeLost":
        return "heartbeatNodeLost", {**cluster, "heartbeatNodeName": event.node, "heartbeatSilence": event.silent_ms,
                                     "gproxySuiteMessage": f"node {event.node} lost: silent for {event.silent_ms} ms"}
    if kind == "NodeJoined":
        return "heartbeatNodeJoined", {**cluster, "heartbeatNodeName": event.node,
                                       "gproxySuiteMessage": f"node {event.node} joined"}
    if kind == "LateHeartbeat":
        return "heartbeatLateHeartbeat", {
            **cluster, "heartbeatNodeName": event.node, "heartbeatGap": event.gap_ms,
            "gproxySuiteMessage": f"late heartbeat from node {event.node}: {event.gap_ms} ms since the last one"}
    if kind == "LinkChanged":
        state = "up" if event.up else "down"
        return ("heartbeatLinkUp" if event.up else "heartbeatLinkDown"), {
            **cluster, "heartbeatNodeName": event.node, "heartbeatLinkName": event.link,
            "gproxySuiteMessage": f"link {event.link} to node {event.node} is {state}"}
    if kind == "Failover":
        resources = ",".join(event.resources)
        return "heartbeatFailover", {
            **cluster, "heartbeatResources": resources, "heartbeatFromNode": event.source,
            "heartbeatToNode": event.target, "heartbeatReason": event.reason,
            "gproxySuiteMessage": f"{resources} failed over from {event.source} to {event.target}: {event.reason}"}
    if kind == "ResourceFailed":
        why = f" ({event.reason})" if event.reason else ""
        return "heartbeatResourceFailed", {
            **cluster, "heartbeatResourceName": event.resource, "heartbeatNodeName": event.node,
            "heartbeatAgent": event.agent, "heartbeatOperation": event.operation,
            "heartbeatReturnCode": event.rc, "heartbeatReason": event.reason,
            "gproxySuiteMessage": f"{event.operation} of {event.resource} on {event.node} failed: "
                                  f"rc={event.rc}{why}"}
    if kind == "ResourceRecovered":
        return "heartbeatResourceRecovered", {
            **cluster, "heartbeatResourceName": event.resource, "heartbeatNodeName": event.node,
            "gproxySuiteMessage": f"{event.resource} recovered on {event.node}"}
    if kind == "AuthFailures":
        origin = f" from {event.source}" if event.source else ""
        return "heartbeatAuthFailuresReport", {
            **cluster, "heartbeatReason": event.reason, "heartbeatAuthFailures": event.count,
            "heartbeatAuthSource": event.source,
            "gproxySuiteMessage": f"{event.count} heartbeat packets rejected ({event.reason}){origin}"}
    if kind == "QuorumChanged":
        state = "regained" if event.have else "lost"
        why = f" ({event.reason})" if event.reason else ""
        return ("heartbeatQuorumRegained" if event.have else "heartbeatQuorumLost"), {
            **cluster, "heartbeatNodeName": event.node, "heartbeatQuorumVotes": event.votes,
            "heartbeatExpectedVotes": event.expected, "heartbeatReason": event.reason,
            "gproxySuiteMessage": f"partition of {event.node} {state} quorum: {event.votes} of {event.expected} "
                                  f"votes{why}"}
    if kind == "Fencing":
        # The reason is the hook's program name, exit status and last output line:
        # never its arguments, where a fence agent's password would be.
        outcome = "fenced" if event.ok else "NOT fenced, takeover blocked"
        return ("heartbeatFencingSucceeded" if event.ok else "heartbeatFencingFailed"), {
            **cluster, "heartbeatNodeName": event.node, "heartbeatReason": event.reason,
            "gproxySuiteMessage": f"node {event.node} {outcome}: {event.reason}"}
    if kind == "SplitBrain":
        nodes, resources = ",".join(event.nodes), ",".join(event.resources)
        return "heartbeatSplitBrain", {
            **cluster, "heartbeatNodes": nodes, "heartbeatResources": resources,
            "gproxySuiteMessage": f"split brain: {resources} ran on {' and '.join(event.nodes)} at once"}
    return None


def _admin_state(kind: str, new_status: str) -> str:
    if kind == "entered_drain":
        return "drain"
    if kind == "entered_maint":
        return "maint"
    # Leaving maintenance may land in drain (`set server state drain` from MAINT).
    return "drain" if new_status.startswith("DRAIN") else "ready"


def to_trap(event: Any, source: str, sender: str, enterprise_oid: str, environment: bool = True) -> Trap | None:
    """The notification for `event`, or None if the event is not one that is trapped.
    Without `environment` (no notify command to run), Trap.environment is left empty."""
    found = _values_for(event, source)
    if found is None:
        return None
    name, values = found
    at = float(getattr(event, "at", 0.0))
    values["gproxySuiteSender"] = sender
    values["gproxySuiteEventTime"] = date_and_time(at)
    varbinds = []
    for obj in NOTIFICATIONS[name][1]:
        syntax = OBJECTS[obj][2]
        raw = values[obj]
        if syntax == STRING:
            value: Any = clean_text(raw)
        elif syntax == UNSIGNED:
            value = _clamp(raw, 0, UNSIGNED32_MAX)
        elif syntax == INTEGER:
            value = _clamp(raw, INTEGER32_MIN, INTEGER32_MAX)
        else:
            value = raw
        varbinds.append(Varbind(obj, object_oid(enterprise_oid, obj), syntax, value))
    return Trap(name=name, oid=notification_oid(enterprise_oid, name), source=source, at=at,
                varbinds=tuple(varbinds),
                environment=_environment(event, name, source, sender, values, at) if environment else ())


def _environment(event: Any, name: str, source: str, sender: str, values: dict[str, Any],
                 at: float) -> tuple[tuple[str, str], ...]:
    """GSUITE_* variables: what happened, then every field of the event under its own name."""
    env = {
        "GSUITE_EVENT": EVENT_NAMES[name],
        "GSUITE_TRAP": name,
        "GSUITE_DAEMON": source,
        "GSUITE_SENDER": sender,
        "GSUITE_AT": f"{at:.3f}",
        "GSUITE_MESSAGE": str(values["gproxySuiteMessage"]),
    }
    if name == "gproxyServerAdminChange":
        env["GSUITE_ADMIN_STATE"] = _admin_state(event.kind, event.new)
    if dataclasses.is_dataclass(event):
        for fld in dataclasses.fields(event):
            if fld.name == "at":
                continue
            raw = getattr(event, fld.name)
            if isinstance(raw, bool):
                text = "1" if raw else "0"
            elif isinstance(raw, (tuple, list)):
                text = ",".join(str(x) for x in raw)
            else:
                text = str(raw)
            env.setdefault(f"GSUITE_{fld.name.upper()}", text)
    # An environment value cannot hold NUL; everything else is passed as it is.
    return tuple((k, v.replace("\0", "")) for k, v in env.items())
