"""The rules of check_heartbeat: what in a cluster's status is a problem.

Pure: a `ClusterStatus` (from heartbeat's status socket or from crm_mon) and
`now` in, `Finding`s out. The plugin turns findings into Nagios results and
adds the thresholded counts (nodes online, fail counts) itself.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from checks.cluster_model import (BLOCKED, FAILED, FENCE_DONE, FENCE_FAILED, FREEZE, IGNORE, MAINTENANCE, OFFLINE,
                                  STANDBY, STARTED, STARTING, STOPPED, STOPPING, UNCLEAN, UNMANAGED, ClonePlacement,
                                  ClusterResource, ClusterStatus, Failure, Move)

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
INFINITY = 1000000  # a fail count this high means "never run here again" (Pacemaker's INFINITY)


@dataclass(frozen=True, slots=True)
class Finding:
    """One verdict: `subject` is unique within a run (it names the Nagios metric)."""

    subject: str
    state: int
    text: str


def format_when(at: float | None, now: float | None = None) -> str:
    """`2026-11-02 14:20:00` in local time, with `(12m ago)` when `now` is given."""
    if at is None:
        return "an unknown time"
    stamp = datetime.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")
    if now is None:
        return stamp
    ago = max(0, int(now - at))
    if ago < 120:
        age = f"{ago}s"
    elif ago < 7200:
        age = f"{ago // 60}m"
    elif ago < 172800:
        age = f"{ago // 3600}h"
    else:
        age = f"{ago // 86400}d"
    return f"{stamp} ({age} ago)"


def format_count(count: int) -> str:
    """A fail count; Pacemaker's INFINITY (1000000) by its name."""
    return "INFINITY" if count >= INFINITY else str(count)


# ---------------------------------------------------------------- nodes

def nodes_alive(status: ClusterStatus) -> list[str]:
    return [node.name for node in status.nodes if node.alive]


def node_findings(status: ClusterStatus, *, standby_ok: bool, offline_state: int, now: float | None = None,
                  split_brain_hold: float = 0.0) -> list[Finding]:
    """Offline, unclean, standby and maintenance nodes, links down, DC, quorum and maintenance mode.

    `offline_state` is what an offline node is worth on its own: CRITICAL by
    default, WARNING when `-c` moved the critical line to a count of nodes
    (the count is then what turns CRITICAL), OK to leave it to the count.
    """
    findings: list[Finding] = []
    if not status.nodes:
        return [Finding("no_nodes", UNKNOWN, "the status lists no node")]
    for node in status.nodes:
        if node.state == OFFLINE and offline_state != OK:
            findings.append(Finding(f"node:{node.name}", offline_state, f"{node.name} offline"))
        elif node.state == UNCLEAN:
            findings.append(Finding(f"node:{node.name}", CRITICAL, f"{node.name} unclean (lost, not fenced)"))
        elif node.state == STANDBY:
            findings.append(Finding(f"node:{node.name}", OK if standby_ok else WARNING, f"{node.name} in standby"))
        elif node.state == MAINTENANCE:
            findings.append(Finding(f"node:{node.name}", WARNING, f"{node.name} in maintenance"))
        if node.alive:
            down = [link.address for link in node.links if not link.up]
            if down:
                findings.append(Finding(f"links:{node.name}", WARNING,
                                        f"{node.name}: link {', '.join(down)} down"))
    quorum = quorum_finding(status)
    if quorum is not None:
        findings.append(quorum)
    findings.extend(fencing_findings(status))
    findings.extend(split_brain_findings(status, now, split_brain_hold))
    if status.dc is None and nodes_alive(status):
        findings.append(Finding("dc", WARNING, "no DC elected"))
    if status.maintenance:
        findings.append(Finding("maintenance", WARNING, "cluster in maintenance mode (resources not managed)"))
    return findings


# What a partition without quorum does with its resources, per no_quorum_policy: (state, text).
# Stop (and an unknown policy: Pacemaker's default) leaves the service down on this side;
# freeze keeps what runs but recovers nothing; ignore goes on managing, and may split the brain.
_NO_QUORUM: dict[str | None, tuple[int, str]] = {
    None: (CRITICAL, ""),
    "stop": (CRITICAL, ": its resources are stopped (no_quorum_policy stop)"),
    FREEZE: (WARNING, ": resources kept, nothing started or recovered (no_quorum_policy freeze)"),
    IGNORE: (WARNING, ": resources still managed, a split brain is possible (no_quorum_policy ignore)"),
}


def quorum_finding(status: ClusterStatus) -> Finding | None:
    if status.quorum is not False:
        return None
    detail = status.quorum_detail
    state, consequence = _NO_QUORUM[detail.policy if detail else None]
    why = ""
    if detail is not None and detail.reason:
        why = f" ({detail.reason})"
    elif detail is not None and detail.votes is not None and detail.expected is not None:
        why = f" ({detail.votes} of {detail.expected} votes)"
    return Finding("quorum", state, f"partition WITHOUT quorum{why}{consequence}")


def fencing_findings(status: ClusterStatus) -> list[Finding]:
    """A failed fencing blocks the takeover of the lost node's resources: CRITICAL until a
    retry succeeds or the node returns; a fencing still under way is a WARNING."""
    findings = []
    for run in status.fencing:
        if run.state == FENCE_DONE:
            continue
        if run.state == FENCE_FAILED:
            when = f" at {format_when(run.at)}" if run.at is not None else ""
            why = f": {run.reason}" if run.reason else ""
            findings.append(Finding(f"fencing:{run.node}", CRITICAL,
                                    f"fencing of {run.node} FAILED{when}{why} (its resources are not taken over)"))
        else:
            findings.append(Finding(f"fencing:{run.node}", WARNING, f"fencing of {run.node} {run.state}"))
    return findings


def split_brain_findings(status: ClusterStatus, now: float | None = None, hold: float = 0.0) -> list[Finding]:
    """CRITICAL while the split brain lasts: one of its resources still runs on
    several nodes; then for `hold` seconds after its detection.

    heartbeat keeps the last detection in its status for good (the fact stays
    known after the extra copy is stopped), and has no command to clear it: a
    check CRITICAL for as long would stay CRITICAL, acknowledged, and hide
    every later problem of the same service (a node lost next week would not
    notify). The trap (heartbeatSplitBrain) pages; the check then says what
    is still wrong, and its long output keeps the fact.
    """
    split = status.split_brain
    if split is None:
        return []
    running = {r.id: r.nodes_running for r in status.resources}
    twice = [rid for rid in split.resources if len(running.get(rid, ())) > 1]
    if twice:
        where = "; ".join(f"{rid} on {' and '.join(running[rid])}" for rid in twice)
        return [Finding("split_brain", CRITICAL, f"SPLIT BRAIN: {where} (detected at {format_when(split.at)})")]
    if hold > 0 and now is not None and split.at is not None and now - split.at < hold:
        return [Finding("split_brain", CRITICAL, f"SPLIT BRAIN at {format_when(split.at)}: "
                                                 f"{', '.join(split.resources) or 'resources'} ran on "
                                                 f"{' and '.join(split.nodes) or 'several nodes'} at once")]
    return []


def split_brain_line(status: ClusterStatus) -> list[str]:
    """Long output: the last split brain heartbeat detected, once it is over."""
    split = status.split_brain
    if split is None:
        return []
    return [f"last split brain at {format_when(split.at)}: {', '.join(split.resources)} ran on "
            f"{' and '.join(split.nodes)} at once"]


def partition_lines(status: ClusterStatus) -> list[str]:
    """Long output: quorum and the last fencing of each lost node."""
    lines = []
    detail = status.quorum_detail
    if detail is not None:
        votes = f", {detail.votes} of {detail.expected} votes" if detail.votes is not None else ""
        policy = f", no_quorum_policy {detail.policy}" if detail.policy else ""
        reason = f" ({detail.reason})" if detail.reason else ""
        lines.append(f"quorum: {'yes' if detail.have else 'NO'}{votes}{reason}{policy}")
    for run in status.fencing:
        when = f" at {format_when(run.at)}" if run.at is not None else ""
        lines.append(f"fencing of {run.node}: {run.state}{when}" + (f" ({run.reason})" if run.reason else ""))
    return lines + split_brain_line(status)


def nodes_summary(status: ClusterStatus) -> str:
    alive = nodes_alive(status)
    text = f"{len(alive)}/{len(status.nodes)} nodes up"
    if status.dc:
        text += f", DC {status.dc}"
    links = [link for node in status.nodes if node.alive for link in node.links]
    if links and all(link.up for link in links):
        text += ", all links up"
    return text


def node_lines(status: ClusterStatus) -> list[str]:
    lines = []
    for node in status.nodes:
        flags = [node.state] + (["DC"] if node.is_dc or node.name == status.dc else [])
        links = ", ".join(f"{link.address} {'up' if link.up else 'DOWN'}"
                          + (f" ({link.age_ms:.0f} ms)" if link.age_ms is not None else "")
                          for link in node.links)
        lines.append(f"{node.name}: {' '.join(flags)}" + (f"; links {links}" if links else ""))
    return lines + partition_lines(status)


# ---------------------------------------------------------------- resources

def failure_text(failure: Failure | None, now: float | None = None) -> str:
    """`start rc 1 'config not found' on esup-proxy-2 at 2026-11-24 14:58:20`."""
    if failure is None:
        return ""
    rc = f" rc {failure.rc}" if failure.rc is not None else ""
    reason = f" '{failure.reason}'" if failure.reason else ""
    where = f" on {failure.node}" if failure.node else ""
    return f"{failure.operation}{rc}{reason}{where} at {format_when(failure.at, now)}"


def _move_text(subject: str, move: Move, now: float) -> str:
    expires = f", expires {format_when(move.expires, now).split(' (')[0]}" if move.expires else ""
    named = f" ({move.constraint})" if move.constraint else ""
    if move.kind == "ban":
        return f"{subject}: manual ban from {move.node}{named} still in place{expires}"
    return f"{subject}: manual move to {move.node}{named} still in place{expires}"


def units(status: ClusterStatus) -> list[tuple[str, tuple[ClusterResource, ...]]]:
    """Groups (with their members) and ungrouped resources, in status order.

    Pacemaker clone instances are one unit per clone.
    """
    order: list[str] = []
    members: dict[str, list[ClusterResource]] = {}
    for resource in status.resources:
        key = resource.clone or resource.group or resource.id
        if key not in members:
            order.append(key)
            members[key] = []
        members[key].append(resource)
    return [(key, tuple(members[key])) for key in order]


def _since(status: ClusterStatus, resources: tuple[ClusterResource, ...], node: str) -> str:
    """When the unit came to `node`: heartbeat's last failover, or the start time crm_mon shows."""
    failover = status.last_failover
    ids = {resource.id for resource in resources}
    if failover is not None and failover.to_node == node and ids & set(failover.resources):
        reason = f" ({failover.reason})" if failover.reason else ""
        return f", since failover at {format_when(failover.at)}{reason}"
    started = [resource.started_at for resource in resources if resource.started_at is not None]
    if started:
        return f", since {format_when(max(started))}"
    return ""


def _resource_state(resource: ClusterResource, maintenance: bool) -> Finding | None:
    subject = f"rsc:{resource.id}" + (f"@{resource.node}" if resource.clone and resource.node else "")
    failure = f" (last failure: {failure_text(resource.last_failure)})" if resource.last_failure else ""
    if len(resource.nodes_running) > 1:
        return Finding(subject, CRITICAL, f"{resource.id} active on {' and '.join(resource.nodes_running)}")
    if resource.state == FAILED:
        where = f" on {resource.node}" if resource.node else ""
        return Finding(subject, CRITICAL, f"{resource.id} FAILED{where}{failure}")
    if resource.state == BLOCKED:
        return Finding(subject, CRITICAL, f"{resource.id} blocked (a stop failed) on {resource.node}")
    if resource.state == STOPPED and resource.should_run and not resource.clone:
        return Finding(subject, CRITICAL, f"{resource.id} stopped{failure}")
    if resource.state in (STARTING, STOPPING):
        return Finding(subject, WARNING, f"{resource.id} {resource.state} on {resource.node}")
    if resource.state == UNMANAGED and not maintenance:
        return Finding(subject, WARNING, f"{resource.id} unmanaged")
    return None


def resource_findings(status: ClusterStatus, now: float, *, failover_ok: bool,
                      only: frozenset[str] = frozenset(), split_brain_hold: float = 0.0) -> list[Finding]:
    """Stopped, failed, split, misplaced and manually moved resources.

    `only` restricts the check to some resources (their own state and moves)
    or groups (everything, including split and placement).
    """
    findings: list[Finding] = []
    if not status.resources:
        return [Finding("no_resources", UNKNOWN, "the status lists no resource")]
    if status.maintenance:
        findings.append(Finding("maintenance", WARNING, "cluster in maintenance mode (resources not managed)"))
    findings.extend(split_brain_findings(status, now, split_brain_hold))
    findings.extend(clone_findings(status, only))
    for key, unit in units(status):
        whole_unit = not only or key in only
        resources = unit if whole_unit else tuple(r for r in unit if r.id in only)
        if not resources:
            continue
        moves: list[Move] = []
        whole_group_stopped = whole_unit and len(resources) > 1 and not resources[0].clone and all(
            r.state == STOPPED and r.should_run for r in resources)
        if whole_group_stopped:  # one line for the group, not one per member
            failures = [r.last_failure for r in resources if r.last_failure is not None]
            last = max(failures, key=lambda f: f.at or 0.0) if failures else None
            why = f" (last failure: {failure_text(last)})" if last else ""
            findings.append(Finding(f"stopped:{key}", CRITICAL, f"{key} stopped ({', '.join(r.id for r in resources)})"
                                    + why))
        for resource in resources:
            finding = None if whole_group_stopped else _resource_state(resource, status.maintenance)
            if finding is not None:
                findings.append(finding)
            moves.extend(move for move in resource.moves if move not in moves)
        for number, move in enumerate(moves):  # a group's move shows on each member: report it once
            findings.append(Finding(f"move:{key}:{number}", WARNING, _move_text(key, move, now)))
        running = [r for r in resources if r.state in (STARTED, UNMANAGED, STARTING) and r.node]
        clone = resources[0].clone
        if clone and not running and any(r.should_run for r in resources):
            findings.append(Finding(f"clone:{clone}", CRITICAL, f"{clone}: no instance running"))
        if clone or not whole_unit:  # group-wide rules need the whole group
            continue
        nodes = sorted({r.node for r in running if r.node})
        if len(nodes) > 1:
            where = ", ".join(f"{r.id} on {r.node}" for r in running)
            findings.append(Finding(f"split:{key}", CRITICAL, f"group {key} split: {where}"))
            continue
        preferred = {r.preferred_node for r in resources if r.preferred_node}
        if failover_ok or len(nodes) != 1 or len(preferred) != 1:
            continue
        (node,), (wanted,) = nodes, preferred
        moved_there = any(m.kind == "prefer" and m.node == node for r in resources for m in r.moves)
        if node != wanted and not moved_there:
            findings.append(Finding(f"away:{key}", WARNING,
                                    f"{key} on {node}, not on preferred {wanted}"
                                    + _since(status, resources, node)))
    return findings


def clones_checked(status: ClusterStatus, only: frozenset[str] = frozenset()) -> list[ClonePlacement]:
    """The clones `only` names (a clone, a cloned group or one of its members), or all of them."""
    if not only:
        return list(status.clones)
    members = {key: {r.id for r in unit} for key, unit in units(status)}
    return [c for c in status.clones if c.id in only or members.get(c.id, set()) & only]


def clone_findings(status: ClusterStatus, only: frozenset[str] = frozenset()) -> list[Finding]:
    """A clone on fewer nodes than it should be: clone_max, or fewer eligible nodes.

    Fewer eligible nodes than clone_max (a node lost or in standby) is not a
    finding here: the node check reports the node. A clone with no copy at all
    is already a stopped (CRITICAL) resource.
    """
    findings = []
    for clone in clones_checked(status, only):
        running, wanted = len(clone.nodes), clone.wanted
        if running == 0 or running >= wanted:
            continue
        eligible = f"; eligible: {', '.join(clone.eligible)}" if clone.eligible is not None else ""
        findings.append(Finding(f"clone:{clone.id}", WARNING,
                                f"clone {clone.id} on {running} of {wanted} nodes ({', '.join(clone.nodes)}"
                                f"{eligible})"))
    return findings


def clone_line(clone: ClonePlacement) -> str:
    eligible = f", eligible {' '.join(clone.eligible) or 'none'}" if clone.eligible is not None else ""
    failed = f", failed on {' '.join(clone.failed)}" if clone.failed else ""
    return (f"clone {clone.id}: {len(clone.nodes)} of {clone.max} copies"
            f" [ {' '.join(clone.nodes)} ]{eligible}{failed}")


def fail_counts(status: ClusterStatus) -> list[tuple[ClusterResource, str | None, int]]:
    """Each resource's highest fail count and the node it is on (once per resource id)."""
    seen: dict[str, tuple[ClusterResource, str | None, int]] = {}
    for resource in status.resources:
        node, count = max(resource.fail_counts, key=lambda item: item[1], default=(None, 0))
        if resource.id not in seen or count > seen[resource.id][2]:
            seen[resource.id] = (resource, node, count)
    return list(seen.values())


def resources_summary(status: ClusterStatus) -> str:
    started = [r for r in status.resources if r.state == STARTED]
    wanted = [r for r in status.resources if r.should_run]
    nodes = sorted({r.node for r in started if r.node})
    where = f" on {', '.join(nodes)}" if nodes else ""
    return f"{len(started)}/{len(wanted)} resources started{where}"


def resource_lines(status: ClusterStatus, now: float) -> list[str]:
    lines = []
    for resource in status.resources:
        where = f" on {resource.node}" if resource.node else ""
        extra = [] if resource.should_run else ["target role stopped"]
        if resource.preferred_node:
            extra.append(f"prefers {resource.preferred_node}")
        counts = [f"{node}={format_count(count)}" for node, count in resource.fail_counts if count]
        if counts:
            extra.append("fail counts " + " ".join(counts))
        if resource.last_failure is not None:
            extra.append(f"last failure {failure_text(resource.last_failure, now)}")
        group = f" [{resource.group}]" if resource.group else ""
        lines.append(f"{resource.id}{group}: {resource.state}{where}" + (f" ({', '.join(extra)})" if extra else ""))
    lines.extend(clone_line(clone) for clone in status.clones)
    lines.extend(split_brain_line(status))
    failover = status.last_failover
    if failover is not None:
        lines.append(f"last failover: {', '.join(failover.resources)} from {failover.from_node} to "
                     f"{failover.to_node} at {format_when(failover.at, now)}"
                     + (f" ({failover.reason})" if failover.reason else ""))
    return lines
