"""check_heartbeat: the Nagios plugin for the suite's cluster manager, and for Pacemaker.

Modes (the first argument; `nodes` when omitted):

* `nodes`: CRITICAL when a configured node is offline (or, with `-c`, when
  fewer nodes than the range allows are up; an offline node alone is then a
  WARNING), or unclean, or the partition has no quorum and its policy stops
  the resources (heartbeat's `no_quorum_policy = "stop"`, the default;
  `freeze` and `ignore` make it a WARNING), or the last fencing of a lost
  node failed, or a split brain lasts (a resource it ran twice still runs
  on several nodes; `--split-brain-hold 1h` keeps it CRITICAL that long
  after its detection); WARNING for a standby or maintenance node, a
  heartbeat link down on a node still alive, a fencing under way, no DC,
  or cluster-wide maintenance mode. Perfdata: nodes online, and the
  partition's votes out of the expected votes.
* `resources`: CRITICAL when a resource that should run is stopped or
  failed, runs on two nodes, or its group is split, or a split brain
  lasts; WARNING when resources run away from their preferred node (a
  failover that was not failed back: the message names the node and the
  time), when a fail count is above `-w` (0 by default), when a manual move
  constraint is still in place, or when a clone runs on fewer nodes than
  it should (clone_max, or the eligible nodes when fewer). Perfdata: fail
  counts, resources started, and the copies of each clone.

The data comes from heartbeat's status socket (`-s PATH`: one JSON request,
one JSON line back, see docs/heartbeat.md), or with `--pacemaker` from
`crm_mon --output-as=xml` (`--crm-mon-file FILE` reads a saved document).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Iterator, NoReturn

import nagiosplugin
from nagiosplugin import CheckError, Metric, Ok

from checks import cluster_eval, statesock
from gsuite.durations import parse_duration
from checks.cluster_model import OFFLINE, ClusterStatus, StatusFormatError, from_status_json
from checks.plugin import (ALL, STATES, FindingContext, PlainContext, PluginArgumentParser, ReportSummary, Resource,
                           Threshold, ThresholdContext, add_common_arguments, inner_timeout, run, threshold_arg)

PROG = "check_heartbeat"
DEFAULT_SOCKET = "/run/heartbeat/status.sock"
DEFAULT_CRM_MON = "/usr/sbin/crm_mon"
MODES = ("nodes", "resources")
STATUS_REQUEST = b'{"cmd": "status"}\n'
MAX_CRM_MON_BYTES = 32 * 1024 * 1024

_log = logging.getLogger("nagiosplugin")


class ClusterSource:
    """heartbeat's status socket, crm_mon, or a saved crm_mon document."""

    def __init__(self, args: argparse.Namespace, timeout: float) -> None:
        self.socket_path = args.socket or DEFAULT_SOCKET
        self.pacemaker = args.pacemaker or bool(args.crm_mon_file)
        self.crm_mon = args.crm_mon
        self.crm_mon_file = args.crm_mon_file
        self.preferred_node = args.preferred_node
        self.timeout = timeout

    @property
    def manager(self) -> str:
        return "pacemaker" if self.pacemaker else "heartbeat"

    def status(self) -> ClusterStatus:
        if self.pacemaker:
            from checks import pacemaker
            text, where = self._crm_mon_xml()
            try:
                return pacemaker.parse_crm_mon(text, self.preferred_node)
            except StatusFormatError as exc:
                raise CheckError(f"{where}: {exc}") from None
        return self._from_socket()

    def _from_socket(self) -> ClusterStatus:
        started = time.monotonic()
        try:
            answer = statesock.query(self.socket_path, STATUS_REQUEST, timeout=self.timeout, one_line=True)
        except statesock.SocketQueryError as exc:
            raise CheckError(str(exc)) from None
        _log.info("socket %s: status -> %d bytes in %.1f ms", self.socket_path, len(answer),
                  (time.monotonic() - started) * 1000)
        _log.debug("status: %s", answer[:4000].decode("utf-8", "replace"))
        if not answer.strip():
            raise CheckError(f"socket {self.socket_path}: empty answer to the status request")
        try:
            document = json.loads(answer)
        except ValueError:
            excerpt = answer[:60].decode("utf-8", "replace")
            raise CheckError(f"socket {self.socket_path}: not a JSON status (it starts with {excerpt!r})") from None
        try:
            return from_status_json(document)
        except StatusFormatError as exc:
            raise CheckError(f"socket {self.socket_path}: {exc}") from None

    def _crm_mon_xml(self) -> tuple[str, str]:
        if self.crm_mon_file:
            try:
                with open(self.crm_mon_file, encoding="utf-8", errors="replace") as handle:
                    return handle.read(MAX_CRM_MON_BYTES), f"file {self.crm_mon_file}"
            except OSError as exc:
                raise CheckError(f"file {self.crm_mon_file}: {exc.strerror or exc}") from None
        import subprocess
        command = [self.crm_mon, "--output-as=xml"]
        started = time.monotonic()
        try:
            done = subprocess.run(command, capture_output=True, timeout=self.timeout, check=False)
        except FileNotFoundError:
            raise CheckError(f"{self.crm_mon}: not found (is Pacemaker installed? see --crm-mon)") from None
        except PermissionError:
            raise CheckError(f"{self.crm_mon}: permission denied") from None
        except subprocess.TimeoutExpired:
            raise CheckError(f"{' '.join(command)}: no answer within {self.timeout:g}s") from None
        _log.info("%s: exit %d, %d bytes in %.1f ms", " ".join(command), done.returncode, len(done.stdout),
                  (time.monotonic() - started) * 1000)
        if done.returncode != 0 and not done.stdout.strip().startswith(b"<"):
            reason = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
            raise CheckError(f"{' '.join(command)}: exit {done.returncode}: {reason[0] if reason else 'no message'}"
                             + (" (is this user in group haclient?)" if done.returncode in (13, 102, 105) else ""))
        return done.stdout.decode("utf-8", "replace"), " ".join(command)


class NodesResource(Resource):
    def __init__(self, source: ClusterSource, standby_ok: bool, count_given: bool,
                 split_brain_hold: float = 0.0) -> None:
        super().__init__()
        self.source = source
        self.standby_ok = standby_ok
        self.count_given = count_given
        self.split_brain_hold = split_brain_hold
        self.status: ClusterStatus | None = None

    def probe(self) -> Iterator[Metric]:
        self.status = status = self.source.status()
        alive = cluster_eval.nodes_alive(status)
        yield Metric("nodes_online", len(alive), min=0, max=len(status.nodes), context="nodes_online")
        offline_state = cluster_eval.WARNING if self.count_given else cluster_eval.OK
        for finding in cluster_eval.node_findings(status, standby_ok=self.standby_ok, offline_state=offline_state,
                                                  now=time.time(), split_brain_hold=self.split_brain_hold):
            yield self.finding(finding.subject, STATES[finding.state], finding.text)
        quorum = status.quorum_detail
        if quorum is not None and quorum.votes is not None and quorum.expected is not None:
            yield Metric("quorum_votes", quorum.votes, min=0, max=quorum.expected, context="plain")
            yield Metric("expected_votes", quorum.expected, min=0, context="plain")

    def explain(self, metric: Metric, state: nagiosplugin.state.ServiceState) -> str:
        if metric.name != "nodes_online" or self.status is None:
            return super().explain(metric, state)
        if state == Ok:
            return ""
        offline = [node.name for node in self.status.nodes if node.state == OFFLINE]
        why = f" ({', '.join(offline)} offline)" if offline else ""
        return f"{metric.value}/{metric.max} nodes up{why}"

    def ok_summary(self) -> str:
        return cluster_eval.nodes_summary(self.status) if self.status else "no status"

    def long_output(self) -> list[str]:
        return cluster_eval.node_lines(self.status) if self.status else []


class ResourcesResource(Resource):
    def __init__(self, source: ClusterSource, failover_ok: bool, only: list[str],
                 split_brain_hold: float = 0.0) -> None:
        super().__init__()
        self.source = source
        self.failover_ok = failover_ok
        self.only = frozenset(only)
        self.split_brain_hold = split_brain_hold
        self.status: ClusterStatus | None = None
        self.now = 0.0

    def probe(self) -> Iterator[Metric]:
        self.status = status = self.source.status()
        self.now = now = time.time()
        known = {r.id for r in status.resources} | {r.group for r in status.resources if r.group} | {
            r.clone for r in status.resources if r.clone}
        for name in sorted(self.only - known):
            yield self.finding(f"missing:{name}", nagiosplugin.Unknown, f"no resource or group named {name!r}")
        for finding in cluster_eval.resource_findings(status, now, failover_ok=self.failover_ok, only=self.only,
                                                      split_brain_hold=self.split_brain_hold):
            yield self.finding(finding.subject, STATES[finding.state], finding.text)
        for resource, node, count in cluster_eval.fail_counts(status):
            if self.only and resource.id not in self.only and resource.group not in self.only:
                continue
            name = f"{resource.id}_failcount"
            where = f" on {node}" if node else ""
            self.notes[name] = f"{resource.id}: fail count {cluster_eval.format_count(count)}{where}"
            yield Metric(name, count, min=0, context="failcount")
        started = sum(1 for r in status.resources if r.state == "started")
        wanted = sum(1 for r in status.resources if r.should_run)
        yield Metric("resources_started", started, min=0, max=wanted, context="plain")
        for clone in cluster_eval.clones_checked(status, self.only):
            yield Metric(f"{clone.id}_copies", len(clone.nodes), min=0, max=clone.max, context="plain")

    def ok_summary(self) -> str:
        return cluster_eval.resources_summary(self.status) if self.status else "no status"

    def long_output(self) -> list[str]:
        return cluster_eval.resource_lines(self.status, self.now) if self.status else []


def duration_arg(text: str) -> float:
    """`--split-brain-hold`: a duration of the suite ("30s", "1h", "2d"), in seconds."""
    try:
        return parse_duration(text) / 1000.0
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def make_parser() -> PluginArgumentParser:
    parser = PluginArgumentParser(
        prog=PROG, status_name="HEARTBEAT",
        description="Nagios plugin for the gproxy suite's cluster manager (or Pacemaker): nodes or resources.",
        epilog="Ranges: 10 (alert outside 0..10), 10: (below 10), ~:10 (above 10), 10:20, @10:20 (inside). "
               "Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for -h, -V and bad arguments).")
    parser.add_argument("mode", nargs="?", choices=MODES, default="nodes", help="what to check (default: nodes)")
    parser.add_argument("-s", "--socket", metavar="PATH", help=f"heartbeat's status socket (default {DEFAULT_SOCKET})")
    parser.add_argument("--pacemaker", action="store_true", help="read the cluster from crm_mon --output-as=xml")
    parser.add_argument("--crm-mon", default=DEFAULT_CRM_MON, metavar="PATH",
                        help=f"crm_mon to run with --pacemaker (default {DEFAULT_CRM_MON})")
    parser.add_argument("--crm-mon-file", metavar="FILE",
                        help="read a saved crm_mon XML document (implies --pacemaker)")
    parser.add_argument("--preferred-node", metavar="NODE",
                        help="resources: where the resources belong, for --pacemaker (crm_mon does not show it)")
    parser.add_argument("-w", "--warning", type=threshold_arg, metavar="RANGE",
                        help="nodes: nodes up (default: none); resources: fail count (default 0: any failure)")
    parser.add_argument("-c", "--critical", type=threshold_arg, metavar="RANGE",
                        help="nodes: nodes up (default: all configured, e.g. -c 1: for at least one); "
                             "resources: fail count (default: none)")
    parser.add_argument("--standby-ok", action="store_true", help="nodes: a standby node is not a warning")
    parser.add_argument("--failover-ok", action="store_true",
                        help="resources: running away from the preferred node is not a warning")
    parser.add_argument("-r", "--resource", action="append", default=[], metavar="ID",
                        help="resources: check only this resource or group (repeatable)")
    parser.add_argument("--split-brain-hold", type=duration_arg, default=0.0, metavar="DURATION",
                        help="stay CRITICAL this long after a split brain was detected (e.g. 1h; default 0: "
                             "only while a resource still runs on several nodes)")
    add_common_arguments(parser, PROG)
    return parser


def make_check(args: argparse.Namespace) -> nagiosplugin.Check:
    source = ClusterSource(args, inner_timeout(args.timeout))
    common = [FindingContext(), PlainContext("plain")]
    resource: Resource
    if args.mode == "nodes":
        resource = NodesResource(source, args.standby_ok, args.critical is not None, args.split_brain_hold)
        contexts = [ThresholdContext("nodes_online", args.warning, args.critical or Threshold(ALL))]
    else:
        resource = ResourcesResource(source, args.failover_ok, args.resource, args.split_brain_hold)
        contexts = [ThresholdContext("failcount", args.warning or Threshold("0"), args.critical)]
    return nagiosplugin.Check(resource, *common, *contexts, ReportSummary(resource),
                              name=f"{source.manager} {args.mode}")


@nagiosplugin.guarded(verbose=0)
def main(argv: list[str] | None = None) -> NoReturn:
    args = make_parser().parse_args(argv)
    run(make_check(args), args.verbose, args.timeout)


if __name__ == "__main__":
    main()
