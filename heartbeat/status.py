"""The status document (docs/heartbeat.md) built from a node's live state,
and the text rendering `heartbeat status` prints (in the spirit of crm_mon -1).
Pure functions of their inputs: the socket server and the CLI do the I/O."""

from __future__ import annotations

import time
from dataclasses import replace

from heartbeat.model import Cib, ClusterStatus, ResourceState, add_scores
from heartbeat.policy.clones import schedule_clones
from heartbeat.policy.unpack import unpack


def preferred_node(cib: Cib, resource: str) -> str | None:
    """The node with the best location score for `resource` (or its group),
    ignoring stickiness and moves; None without positive preferences."""
    config = cib.config
    group = config.group_of(resource)
    targets = {resource} | ({group.id} if group else set())
    scores: dict[str, int] = {}
    for constraint in config.constraints:
        if getattr(constraint, "node", None) is None or not hasattr(constraint, "score"):
            continue
        if constraint.resource in targets:
            scores[constraint.node] = add_scores(scores.get(constraint.node, 0), constraint.score)
    order = {n.name: i for i, n in enumerate(config.nodes)}
    best = [n for n, s in scores.items() if s > 0]
    if not best:
        return None
    return max(best, key=lambda n: (scores[n], -order.get(n, 0)))


def clone_eligible(cib: Cib, status: ClusterStatus, now: float) -> dict[str, tuple[str, ...]]:
    """Each cloned resource -> the nodes that may run a copy of it now, in
    file order: online, not in standby, not banned (location -INFINITY, hard
    error, fail count at the threshold), in a partition allowed to run
    resources. The policy's own choice, asked with every clone uncapped
    (clone_max 0: every node), so that the status and the scheduler cannot
    disagree on what "eligible" means; a check compares the copies running
    with min(clone_max, eligible)."""
    config = cib.config
    if not any(r.clone_max is not None for r in config.resources) and not any(
            g.clone_max is not None for g in config.groups):
        return {}
    uncapped = replace(
        config,
        resources=tuple(r if r.clone_max is None else replace(r, clone_max=0) for r in config.resources),
        groups=tuple(g if g.clone_max is None else replace(g, clone_max=0) for g in config.groups))
    plan = schedule_clones(unpack(replace(cib, config=uncapped), status, now))
    return dict(plan.nodes)


def build_status(controller, membership_links, rejected: dict[str, int], now: float | None = None) -> dict:
    """The JSON document of the status socket.

    `membership_links(node)` returns {address: {"state", "age_ms"}}.
    """
    now = time.time() if now is None else now
    cib = controller.composed_cib()
    config = cib.config
    online = controller.online
    status = controller.cluster_status()
    dc = controller.dc
    pending = {(p.action.resource, p.action.kind): p.action.node for p in controller.pending.values()}
    eligible = clone_eligible(cib, status, now)
    nodes = []
    for node in config.nodes:
        if node.name not in online:
            state = "offline"
        elif node.name in cib.standby:
            state = "standby"
        else:
            state = "online"
        links = membership_links(node.name) or {}
        nodes.append({
            "name": node.name, "state": state, "is_dc": node.name == dc, "local": node.name == controller.local,
            "links": [{"address": addr, "state": info.get("state", "down"), "age_ms": info.get("age_ms")}
                      for addr, info in links.items()],
        })
    moves = {m.resource: m for m in cib.moves}
    resources = []
    for res in config.resources:
        group = config.group_of(res.id)
        seen = [s for s in status.resources if s.resource == res.id]
        started = [s.node for s in seen if s.state == ResourceState.STARTED]
        failed = [s for s in seen if s.state == ResourceState.FAILED]
        if cib.maintenance or res.id in cib.unmanaged or (group and group.id in cib.unmanaged):
            state = "unmanaged"
        elif (res.id, "stop") in pending and started:
            state = "stopping"
        elif (res.id, "start") in pending:
            state = "starting"
        elif failed:
            state = "failed"
        elif started:
            state = "started"
        else:
            state = "stopped"
        node = started[0] if started else (failed[0].node if failed else None)
        clone_max = config.clone_max_of(res.id)
        clone = None if clone_max is None else {
            "max": clone_max, "nodes": [n.name for n in config.nodes if n.name in started],
            "failed": [n.name for n in config.nodes if n.name in {f.node for f in failed}]}
        fail_counts = {n.name: 0 for n in config.nodes}
        last_failure = None
        for record in cib.failures:
            if record.resource != res.id:
                continue
            fail_counts[record.node] = record.count
            if last_failure is None or record.last_failure > last_failure["at"]:
                last_failure = {"node": record.node, "operation": "monitor" if record.count < 1_000_000 else "start",
                                "rc": record.last_rc, "reason": record.last_reason, "at": record.last_failure}
        move = moves.get(res.id) or (moves.get(group.id) if group else None)
        resources.append({
            "id": res.id, "group": group.id if group else None, "agent": str(res.agent), "state": state,
            "node": node, "preferred_node": preferred_node(cib, res.id), "target_role": res.target_role,
            "managed": state != "unmanaged", "fail_counts": fail_counts, "last_failure": last_failure,
            "move": {"node": move.node, "expires": move.expires} if move else None,
            "clone": clone,
            "clone_eligible": list(eligible.get(res.id, ())) if clone is not None else None,
            "running_on": [n.name for n in config.nodes if n.name in started],
        })
    return {
        "cluster": config.name,
        "node": controller.local,
        "dc": dc,
        "cib_version": dict(zip(("admin_epoch", "epoch", "num_updates"), cib.version.as_tuple())),
        "maintenance": cib.maintenance,
        "quorum": {k: v for k, v in controller.quorum.as_dict().items()},
        "no_quorum_policy": config.no_quorum_policy,
        "fencing": {node: dict(result) for node, result in controller.fencing.items()},
        "generated_at": now,
        "packets_rejected": dict(rejected),
        "nodes": nodes,
        "groups": [{"id": g.id, "resources": list(g.resources)} for g in config.groups],
        "resources": resources,
        "last_failover": controller.last_failover,
        "split_brain": dict(controller.split_brain) if controller.split_brain else {"detected": False},
    }


def render_text(doc: dict) -> str:
    """`heartbeat status`: a crm_mon -1 style summary."""
    lines = [f"Cluster: {doc['cluster']} (queried on {doc['node']})"]
    lines.append(f"Current DC: {doc['dc'] or 'NONE'}   CIB version: "
                 f"{doc['cib_version']['admin_epoch']}.{doc['cib_version']['epoch']}."
                 f"{doc['cib_version']['num_updates']}")
    if doc.get("maintenance"):
        lines.append("*** Resource management is DISABLED (maintenance mode) ***")
    quorum = doc.get("quorum")
    if quorum:
        with_or_without = "with" if quorum["have"] else "WITHOUT"
        lines.append(f"Partition {with_or_without} quorum: {quorum['votes']} of {quorum['expected']} votes"
                     + (f" ({quorum['reason']})" if quorum.get("reason") else ""))
    for node, result in sorted((doc.get("fencing") or {}).items()):
        lines.append(f"Fencing of {node}: {result['state']}" + (f" ({result['reason']})" if result["reason"] else ""))
    online = [n["name"] for n in doc["nodes"] if n["state"] == "online"]
    standby = [n["name"] for n in doc["nodes"] if n["state"] == "standby"]
    offline = [n["name"] for n in doc["nodes"] if n["state"] == "offline"]
    lines.append("")
    lines.append(f"{len(doc['nodes'])} nodes configured, {len(doc['resources'])} resources configured")
    lines.append("")
    lines.append("Node List:")
    if online:
        lines.append(f"  * Online: [ {' '.join(online)} ]")
    if standby:
        lines.append(f"  * Standby: [ {' '.join(standby)} ]")
    if offline:
        lines.append(f"  * OFFLINE: [ {' '.join(offline)} ]")
    for node in doc["nodes"]:
        for link in node["links"]:
            if link["state"] != "up" and node["state"] != "offline":
                lines.append(f"  * link {link['address']} of {node['name']} is DOWN")
    lines.append("")
    lines.append("Full List of Resources:")
    groups = {g["id"]: g["resources"] for g in doc["groups"]}
    by_id = {r["id"]: r for r in doc["resources"]}
    shown = set()

    def line(res: dict, indent: str) -> str:
        where = f" {res['node']}" if res["node"] else ""
        if res.get("clone"):
            where = f" [ {' '.join(res['clone']['nodes'])} ] ({len(res['clone']['nodes'])} of {res['clone']['max']})"
        return f"{indent}* {res['id']}\t({res['agent']}):\t {res['state'].capitalize()}{where}"

    for gid, members in groups.items():
        lines.append(f"  * Resource Group: {gid}:")
        for rid in members:
            if rid in by_id:
                lines.append(line(by_id[rid], "    "))
                shown.add(rid)
    for res in doc["resources"]:
        if res["id"] not in shown:
            lines.append(line(res, "  "))
    failures = [(r["id"], node, count) for r in doc["resources"] for node, count in r["fail_counts"].items() if count]
    if failures:
        lines.append("")
        lines.append("Migration Summary:")
        for rid, node, count in failures:
            lines.append(f"  * Node: {node}: {rid}: fail-count={count}")
    failed = [r for r in doc["resources"] if r["last_failure"]]
    if failed:
        lines.append("")
        lines.append("Failed Resource Actions:")
        for res in failed:
            lf = res["last_failure"]
            lines.append(f"  * {res['id']}_{lf['operation']} on {lf['node']} '{lf['reason']}' (rc={lf['rc']})")
    if doc.get("last_failover"):
        fo = doc["last_failover"]
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(fo["at"]))
        lines.append("")
        lines.append(f"Last failover: {when}: {', '.join(fo['resources'])} from {fo['from']} to {fo['to']} "
                     f"({fo['reason']})")
    split = doc.get("split_brain") or {}
    if split.get("detected"):
        lines.append("")
        lines.append(f"*** SPLIT BRAIN: {', '.join(split.get('resources', []))} ran on "
                     f"{' and '.join(split.get('nodes', []))} at once ***")
    rejected = {k: v for k, v in doc.get("packets_rejected", {}).items() if v}
    if rejected:
        lines.append("")
        lines.append("Rejected packets: " + ", ".join(f"{k}={v}" for k, v in sorted(rejected.items())))
    return "\n".join(lines) + "\n"
