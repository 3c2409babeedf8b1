"""Replay the scheduler offline on case files (Pacemaker's crm_simulate).

    python -m heartbeat.policy.simulate CASE.toml [CASE.toml ...]   print each summary
    python -m heartbeat.policy.simulate --regenerate DIR             rewrite DIR/NAME.summary
    python -m heartbeat.policy.simulate --check DIR                  exit 1 if one differs

The summary shows the input (nodes, runtime state, resources), the
transition (a crm_simulate-like "Transition Summary", the numbered steps,
the reasons) and the status after applying it. `apply` is also what the
property tests use to check that a second run has nothing left to do.
Rendering and applying are pure; only `main` reads and writes files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from heartbeat.model import Cib, ClusterStatus, ResourceState, ResourceStatus, Transition
from heartbeat.policy import make_before_break, schedule
from heartbeat.policy.casefile import Case, CaseError, load_case
from heartbeat.policy.placement import score_text, units

SUMMARY_SUFFIX = ".summary"
ACTION_WIDTH = 10  # crm_simulate pads the action name ("Recover   ") to this width
_STATE_WORDS = {ResourceState.STARTED: "Started", ResourceState.STARTING: "Starting",
                ResourceState.STOPPING: "Stopping", ResourceState.FAILED: "FAILED",
                ResourceState.UNMANAGED: "Started (unmanaged)"}


def apply(status: ClusterStatus, transition: Transition) -> ClusterStatus:
    """The status once every action of `transition` succeeded."""
    entries = {(e.resource, e.node): e for e in status.resources}
    for action in transition.actions:
        if action.kind == "stop":
            entries.pop((action.resource, action.node), None)
        elif action.kind == "start":
            entries[(action.resource, action.node)] = ResourceStatus(action.resource, action.node,
                                                                     ResourceState.STARTED)
    return ClusterStatus(online=status.online, resources=tuple(entries.values()), quorum=status.quorum,
                         unclean=status.unclean)


def run(case: Case) -> str:
    transition = schedule(case.cib, case.status, case.now)
    # What the controller executes: the resources marked make_before_break
    # moved start-first (the scheduler itself always stops first).
    config = case.cib.config
    transition = make_before_break.reorder(transition, config, make_before_break.opted_in(config))
    return render(case, transition)


def render(case: Case, transition: Transition) -> str:
    lines = [f"Case: {case.name}"]
    if case.description:
        lines.append(f"  {case.description}")
    lines += ["", "Current cluster status:"]
    lines += _nodes(case.cib, case.status)
    lines += _runtime(case.cib, case.now)
    lines += _resources(case.cib, case.status)
    lines += ["", "Transition Summary:"]
    lines += _summary(case.status, transition) or ["  (nothing to do)"]
    lines += ["", "Steps:"]
    lines += [f"  {number}: {action}" for number, step in enumerate(transition.steps, 1) for action in step] \
        or ["  (none)"]
    if transition.reasons:
        lines += ["", "Reasons:"] + [f"  * {reason}" for reason in transition.reasons]
    lines += ["", "Revised cluster status:"]
    lines += _resources(case.cib, apply(case.status, transition))
    return "\n".join(lines) + "\n"


def _nodes(cib: Cib, status: ClusterStatus) -> list[str]:
    names = [n.name for n in cib.config.nodes]
    online = [n for n in names if n in status.online and n not in cib.standby]
    standby = [n for n in names if n in status.online and n in cib.standby]
    offline = [n for n in names if n not in status.online]
    lines = ["  * Node List:", f"    * Online: [ {' '.join(online)} ]"]
    if standby:
        lines.append(f"    * Standby: [ {' '.join(standby)} ]")
    if offline:
        lines.append(f"    * OFFLINE: [ {' '.join(offline)} ]")
    unclean = [n for n in names if n in status.unclean]
    if unclean:
        lines.append(f"    * UNCLEAN (not fenced): [ {' '.join(unclean)} ]")
    if not status.quorum:
        lines.append(f"  * Partition WITHOUT quorum (no_quorum_policy {cib.config.no_quorum_policy})")
    return lines


def _runtime(cib: Cib, now: float) -> list[str]:
    lines = []
    if cib.maintenance:
        lines.append("  * Maintenance mode")
    declared = cib.config.configured_unmanaged()
    for rid in sorted(cib.unmanaged | declared):
        lines.append(f"  * Unmanaged: {rid}" + (" (managed = false)" if rid in declared else ""))
    for move in cib.moves:
        until = "" if move.expires is None else f" until {move.expires:g}"
        lines.append(f"  * Move: {move.resource} to {move.node}{until}")
    for record in cib.failures:
        kind = " hard" if record.hard else ""
        lines.append(f"  * Fail count: {record.resource} on {record.node}: {score_text(record.count)} "
                     f"(rc {record.last_rc}{kind}, {now - record.last_failure:g}s ago)")
    return lines


def _resources(cib: Cib, status: ClusterStatus) -> list[str]:
    config = cib.config
    lines = ["  * Resources:"]
    for unit in units(config):
        indent = "    "
        clone_max = config.clone_max_of(unit.id)
        cloned = "" if clone_max is None else f" (clone of {clone_max})"
        if unit.is_group:
            indent = "      "
            lines.append(f"    * Resource Group: {unit.id}{cloned}:")
            cloned = ""
        for rid in unit.members:
            res = config.resource(rid)
            assert res is not None
            lines.append(f"{indent}* {rid} ({res.agent}){cloned}:  {_state(rid, status)}"
                         + (" (disabled)" if res.target_role == "stopped" else ""))
    configured = {r.id for r in config.resources}
    for entry in sorted(status.resources, key=lambda e: (e.resource, e.node)):
        if entry.resource not in configured:
            lines.append(f"    * {entry.resource} (orphan):  {_STATE_WORDS.get(entry.state, 'Stopped')} "
                         f"{entry.node}")
    return lines


def _state(rid: str, status: ClusterStatus) -> str:
    seen = sorted((e for e in status.resources if e.resource == rid and e.state in _STATE_WORDS),
                  key=lambda e: e.node)
    if not seen:
        return "Stopped"
    return ", ".join(f"{_STATE_WORDS[e.state]} {e.node}" + ("" if e.node in status.online else " (offline)")
                     for e in seen)


def _summary(status: ClusterStatus, transition: Transition) -> list[str]:
    """crm_simulate's wording: Start, Stop, Move, Restart, Recover."""
    rows: list[tuple[str, str, str]] = []
    failed = {(e.resource, e.node) for e in status.resources if e.state == ResourceState.FAILED}
    order = [rid for rid, _ in transition.placement]
    touched = {a.resource for a in transition.actions}
    for rid in order + sorted(touched - set(order)):
        stops = [a.node for a in transition.actions if a.resource == rid and a.kind == "stop"]
        starts = [a.node for a in transition.actions if a.resource == rid and a.kind == "start"]
        if starts:
            target = starts[0]
            if target in stops:
                verb = "Recover" if (rid, target) in failed else "Restart"
                rows.append((verb, rid, target))
                stops.remove(target)
            elif stops:
                source = stops.pop(0)
                verb = "Recover" if (rid, source) in failed else "Move"
                rows.append((verb, rid, f"{source} -> {target}"))
            else:
                rows.append(("Start", rid, target))
        for node in starts[1:]:  # a clone's other copies
            if node in stops:
                stops.remove(node)
                rows.append(("Recover" if (rid, node) in failed else "Restart", rid, node))
            else:
                rows.append(("Start", rid, node))
        rows += [("Stop", rid, node) for node in stops]
    width = max((len(rid) for _, rid, _ in rows), default=0)
    return [f"  * {verb:<{ACTION_WIDTH}} {rid:<{width}} ( {where} )" for verb, rid, where in rows]


def _case_files(directory: Path) -> list[Path]:
    """Every case in a directory; files starting with "_" are bases, not cases."""
    return sorted(p for p in directory.glob("*.toml") if not p.name.startswith("_"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m heartbeat.policy.simulate",
                                     description="Run the policy engine on case files and show what it decides.")
    parser.add_argument("cases", nargs="*", help="case files (TOML) to simulate")
    parser.add_argument("--regenerate", metavar="DIR", help="rewrite DIR/NAME.summary for every DIR/NAME.toml")
    parser.add_argument("--check", metavar="DIR", help="compare every DIR/NAME.summary; exit 1 on a difference")
    args = parser.parse_args(argv)
    try:
        if args.regenerate or args.check:
            directory = Path(args.regenerate or args.check)
            if not directory.is_dir():
                raise CaseError(f"{directory}: not a directory")
            return _regenerate(directory) if args.regenerate else _check(directory)
        if not args.cases:
            parser.error("give case files, --regenerate DIR or --check DIR")
        sys.stdout.write("\n".join(run(load_case(path)) for path in args.cases))
        return 0
    except CaseError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 1


def _regenerate(directory: Path) -> int:
    for path in _case_files(directory):
        expected = path.with_suffix(SUMMARY_SUFFIX)
        text = run(load_case(path))
        if not expected.exists() or expected.read_text(encoding="utf-8") != text:
            expected.write_text(text, encoding="utf-8")
            print(f"wrote {expected}")
    return 0


def _check(directory: Path) -> int:
    status = 0
    for path in _case_files(directory):
        expected = path.with_suffix(SUMMARY_SUFFIX)
        if not expected.exists() or expected.read_text(encoding="utf-8") != run(load_case(path)):
            print(f"{path.name}: differs from {expected.name}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
