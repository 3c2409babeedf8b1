"""`crm_mon --output-as=xml` to a `ClusterStatus`, for `check_heartbeat --pacemaker`.

Pure: XML text in, values out. Handles Pacemaker 2.x's `<pacemaker-result>`
document and the older `<crm_mon>` root (`crm_mon -X`/`--as-xml`), which
have the same children: summary, nodes, resources (primitives, groups,
clones, bundles), node_history (fail counts, operation times), failures and
bans. crm_mon does not show location preferences, so the preferred node
comes from the command line.
"""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET

from checks.cluster_model import (BLOCKED, FAILED, MAINTENANCE, OFFLINE, ONLINE, STANDBY, STARTED, STARTING,
                                  STOPPED, STOPPING, UNCLEAN, UNMANAGED, ClonePlacement, ClusterResource, ClusterStatus,
                                  Failure, Move, Node, StatusFormatError)

RUNNING_ROLES = frozenset({"started", "promoted", "unpromoted", "master", "slave"})
STARTING_ROLES = frozenset({"starting", "migrating", "promoting", "demoting"})
START_TASKS = frozenset({"start", "promote", "migrate_from"})
INFINITY_SCORE = 1000000  # Pacemaker's INFINITY, also written "INFINITY" in fail counts
TIME_FORMATS = ("%a %b %d %H:%M:%S %Y", "%Y-%m-%d %H:%M:%S")
SKIPPED_NODE_TYPES = frozenset({"ping"})


def _true(element: ET.Element, name: str) -> bool:
    return element.get(name, "false").lower() == "true"


def parse_time(text: str | None) -> float | None:
    """crm_mon's times: `Tue Jan 15 22:19:14 2019` (local time), ISO 8601, or epoch seconds."""
    if not text:
        return None
    clean = " ".join(text.strip("'\" ").split())
    if clean.isdigit():
        return float(clean)
    for fmt in TIME_FORMATS:
        try:
            return datetime.datetime.strptime(clean, fmt).timestamp()
        except ValueError:
            pass
    try:
        return datetime.datetime.fromisoformat(clean).timestamp()
    except ValueError:
        return None


def _count(text: str | None) -> int:
    if not text:
        return 0
    if text.upper().lstrip("+") == "INFINITY":
        return INFINITY_SCORE
    try:
        return int(text)
    except ValueError:
        return 0


def _node_state(node: ET.Element) -> str:
    if _true(node, "unclean"):
        return UNCLEAN
    if not _true(node, "online"):
        return OFFLINE
    if _true(node, "maintenance"):
        return MAINTENANCE
    if _true(node, "standby") or _true(node, "standby_onfail"):
        return STANDBY
    return ONLINE


def _resource_state(element: ET.Element) -> str:
    role = element.get("role", "").lower()
    if _true(element, "failed"):
        return FAILED
    if _true(element, "blocked"):
        return BLOCKED
    if element.get("managed", "true").lower() == "false":
        return UNMANAGED
    if role in RUNNING_ROLES:
        return STARTED
    if role in STARTING_ROLES:
        return STARTING
    if role == "stopping":
        return STOPPING
    return STOPPED


class _History:
    """node_history and failures, indexed by resource id."""

    def __init__(self, root: ET.Element) -> None:
        self.fail_counts: dict[str, list[tuple[str, int]]] = {}
        self.started: dict[tuple[str, str], float] = {}
        self.failures: dict[str, Failure] = {}
        for node in root.iterfind("node_history/node"):
            name = node.get("name", "?")
            for history in node.iterfind("resource_history"):
                rid = history.get("id", "?")
                count = _count(history.get("fail-count"))
                if count:
                    self.fail_counts.setdefault(rid, []).append((name, count))
                for operation in history.iterfind("operation_history"):
                    at = parse_time(operation.get("last-rc-change"))
                    if operation.get("task") in START_TASKS and operation.get("rc", "0") == "0" and at is not None:
                        key = (rid, name)
                        self.started[key] = max(at, self.started.get(key, at))
        for failure in root.iterfind("failures/failure"):
            op_key = failure.get("op_key", "")
            parts = op_key.rsplit("_", 2)
            rid = parts[0] if len(parts) == 3 else op_key
            exitcode = failure.get("exitcode", "")
            found = Failure(failure.get("node"), failure.get("task") or (parts[1] if len(parts) == 3 else "?"),
                            int(exitcode) if exitcode.lstrip("-").isdigit() else None,
                            failure.get("exitreason") or failure.get("exitstatus") or "",
                            parse_time(failure.get("last-rc-change")))
            previous = self.failures.get(rid)
            if previous is None or (found.at or 0) >= (previous.at or 0):
                self.failures[rid] = found


def _walk(element: ET.Element, group: str | None, clone: str | None, should_run: bool,
          out: list[tuple[ET.Element, str | None, str | None, bool]], groups: dict[str, list[str]]) -> None:
    """Collect primitives with their group, clone and whether their parents let them run."""
    for child in element:
        disabled = _true(child, "disabled") or child.get("target_role", "").lower() == "stopped"
        if child.tag == "resource":
            out.append((child, group, clone, should_run))
            if group is not None and child.get("id", "?") not in groups.setdefault(group, []):
                groups[group].append(child.get("id", "?"))
        elif child.tag == "group":
            gid = child.get("id", "?").split(":")[0]  # clone instances of a group are "id:0", "id:1"
            _walk(child, gid, clone, should_run and not disabled, out, groups)
        elif child.tag in ("clone", "bundle"):
            _walk(child, group, child.get("id", "?"), should_run and not disabled, out, groups)
        elif child.tag == "replica":
            _walk(child, group, clone, should_run, out, groups)


def _copy_node(copy: ET.Element) -> str | None:
    """The node one clone instance runs on whole: a primitive, or every member of a cloned group."""
    members = [copy] if copy.tag == "resource" else list(copy.iterfind("resource"))
    nodes = {n.get("name", "?") for member in members if member.get("role", "").lower() in RUNNING_ROLES
             for n in member.iterfind("node")}
    running = all(member.get("role", "").lower() in RUNNING_ROLES for member in members)
    return nodes.pop() if members and running and len(nodes) == 1 else None


def _clone_placements(resources: ET.Element, nodes: tuple[Node, ...],
                      banned: dict[str, set[str]]) -> tuple[ClonePlacement, ...]:
    """Where each clone's copies run. crm_mon's XML lists every instance, the
    stopped ones too, so their number is clone-max (resolved). Which nodes may
    run a copy is not shown; it is taken as the online nodes (not standby nor
    in maintenance) that no ban (`bans/ban`, configured or left by
    crm_resource) keeps from the clone or its members, so a copy stopped with
    its node is left to the node check. An older crm_mon listing only active
    instances gives max == running: never a false alarm."""
    online = [node.name for node in nodes if node.state == ONLINE]
    placements = []
    for clone in resources.iter("clone"):
        copies = [child for child in clone if child.tag in ("resource", "group")]
        running = tuple(node for node in map(_copy_node, copies) if node is not None)
        ids = {clone.get("id", "?")} | {member.get("id", "?") for member in clone.iter("resource")}
        eligible = tuple(name for name in online if not any(name in banned.get(rid, ()) for rid in ids))
        failed = tuple(sorted({n.get("name", "?") for member in clone.iter("resource") if _true(member, "failed")
                               for n in member.iterfind("node")}))
        placements.append(ClonePlacement(clone.get("id", "?"), len(copies), running, eligible, failed))
    return tuple(placements)


def parse_crm_mon(text: str, preferred_node: str | None = None) -> ClusterStatus:
    """The cluster as crm_mon shows it; `preferred_node` is where its resources belong."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise StatusFormatError(f"crm_mon output is not XML ({exc})") from None
    if root.tag not in ("pacemaker-result", "crm_mon"):
        raise StatusFormatError(f"crm_mon output has an unexpected root <{root.tag}>")
    status = root.find("status")
    if status is not None and status.get("code", "0") != "0":
        errors = [e.text.strip() for e in status.iterfind("errors/error") if e.text]
        detail = errors[0] if errors else status.get("message", "")
        raise StatusFormatError(f"crm_mon failed (code {status.get('code')}): {detail}")
    summary = root.find("summary")
    if summary is None or root.find("nodes") is None:
        raise StatusFormatError("crm_mon output has no summary or nodes")
    dc_element = summary.find("current_dc")
    dc = None
    quorum = None
    if dc_element is not None:
        quorum = _true(dc_element, "with_quorum")
        if _true(dc_element, "present"):
            dc = dc_element.get("name")
    options = summary.find("cluster_options")
    maintenance = options is not None and _true(options, "maintenance-mode")
    nodes = tuple(Node(node.get("name", "?"), _node_state(node), _true(node, "is_dc"))
                  for node in root.iterfind("nodes/node") if node.get("type", "member") not in SKIPPED_NODE_TYPES)
    history = _History(root)
    bans: dict[str, list[Move]] = {}
    banned: dict[str, set[str]] = {}  # resource -> nodes any ban keeps it from
    for ban in root.iterfind("bans/ban"):
        banned.setdefault(ban.get("resource", "?"), set()).add(ban.get("node", "?"))
        constraint = ban.get("id", "")
        if constraint.startswith("cli-"):  # left by crm_resource --move/--ban, not configured
            kind = "prefer" if constraint.startswith("cli-prefer-") else "ban"
            bans.setdefault(ban.get("resource", "?"), []).append(Move(ban.get("node"), kind, None, constraint))
    primitives: list[tuple[ET.Element, str | None, str | None, bool]] = []
    groups: dict[str, list[str]] = {}
    resources_element = root.find("resources")
    if resources_element is not None:
        _walk(resources_element, None, None, True, primitives, groups)
    resources = []
    for element, group, clone, parents_allow in primitives:
        rid = element.get("id", "?")
        running = tuple(n.get("name", "?") for n in element.iterfind("node"))
        node = running[0] if running else None
        resources.append(ClusterResource(
            id=rid,
            state=_resource_state(element),
            group=group,
            agent=element.get("resource_agent", ""),
            node=node,
            nodes_running=running,
            preferred_node=None if clone else preferred_node,
            should_run=parents_allow and element.get("target_role", "").lower() != "stopped",
            fail_counts=tuple(history.fail_counts.get(rid, ())),
            last_failure=history.failures.get(rid),
            moves=tuple(bans.get(rid, ())) + (tuple(bans.get(group, ())) if group else ()),
            started_at=history.started.get((rid, node)) if node else None,
            clone=clone,
        ))
    return ClusterStatus(
        name="",
        reporter=None,
        dc=dc,
        quorum=quorum,
        maintenance=maintenance,
        nodes=nodes,
        resources=tuple(resources),
        groups=tuple((gid, tuple(members)) for gid, members in groups.items()),
        last_failover=None,
        clones=_clone_placements(resources_element, nodes, banned) if resources_element is not None else (),
    )
