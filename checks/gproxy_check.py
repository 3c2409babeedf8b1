"""check_gproxy: the Nagios plugin for gproxy's (and HAProxy's) load balancing.

Modes (the first argument; `backends` when omitted):

* `backends`: every backend (`-b NAME`, repeatable, or `--exclude NAME`):
  CRITICAL when no active server is up (saying whether a backup server
  serves), WARNING when some are down; `-w`/`-c` are ranges on the number of
  active servers up (`%` for a percentage); DRAIN/MAINT/NOLB servers count
  as down unless `--maint-ok`. Perfdata: servers up, sessions, queue.
* `server -b B -S S`: one server's state, last check and last change.
* `sessions`: current sessions against the global, frontend and server
  limits, with `-w`/`-c` in percent (80/90 by default).
* `rates`: request rate, 5xx rate and connection errors per backend since
  the previous run, remembered in a state file under /var/tmp.

The data comes from the runtime API socket (`-s PATH` or `-s HOST:PORT`:
`show stat`, plus `show info` for the global limit) or from the stats
page's CSV (`-U URL`, `-a user:password`). Nothing else is imported: no
gevent, no gproxy code.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from typing import TYPE_CHECKING, Iterator, Mapping, NoReturn

import nagiosplugin
from nagiosplugin import CheckError, Critical, Metric, Ok, Unknown, Warn

from checks import haproxy_csv, lbhealth, statesock
from checks.haproxy_csv import Stats, StatsFormatError

if TYPE_CHECKING:
    from checks.rates import RatesOutcome
from checks.plugin import (ALL, FindingContext, PlainContext, PluginArgumentParser, ReportSummary, Resource,
                           Threshold, ThresholdContext, add_common_arguments, inner_timeout,
                           percent_threshold_arg, run, threshold_arg)

PROG = "check_gproxy"
DEFAULT_SOCKET = "/run/gproxy/admin.sock"
MODES = ("backends", "server", "sessions", "rates")
MAX_LONG_LINES = 80  # Nagios 3 kept 8 KB of output: a few thousand servers must not flood it
DEFAULT_SESSIONS_WARNING = "80"  # percent of a limit, as check_haproxy_stats
DEFAULT_SESSIONS_CRITICAL = "90"
DEFAULT_5XX_WARNING = "5"  # percent of the responses in the interval
DEFAULT_5XX_CRITICAL = "20"

_log = logging.getLogger("nagiosplugin")


class StatsSource:
    """Where the statistics come from: the runtime API socket, or the stats page's CSV."""

    def __init__(self, socket_path: str | None, url: str | None, auth: str | None, timeout: float) -> None:
        self.socket_path = socket_path or DEFAULT_SOCKET
        self.url = url
        self.auth = auth
        self.timeout = timeout

    @property
    def key(self) -> str:
        """Names this source in the rates state file's name."""
        return f"url:{self.url}" if self.url else f"socket:{self.socket_path}"

    def _ask(self, command: str) -> str:
        started = time.monotonic()
        try:
            answer = statesock.query(self.socket_path, command.encode() + b"\n", timeout=self.timeout)
        except statesock.SocketQueryError as exc:
            raise CheckError(str(exc)) from None
        _log.info("socket %s: %r -> %d bytes in %.1f ms", self.socket_path, command, len(answer),
                  (time.monotonic() - started) * 1000)
        if not answer.strip():
            raise CheckError(f"socket {self.socket_path}: empty answer to {command!r}")
        return answer.decode("utf-8", "replace")

    def stat(self) -> Stats:
        if self.url:
            from checks import httpstats
            started = time.monotonic()
            try:
                text = httpstats.fetch_csv(self.url, self.auth, self.timeout)
            except httpstats.StatsPageError as exc:
                raise CheckError(str(exc)) from None
            _log.info("stats page %s: %d characters in %.1f ms", httpstats.csv_url(self.url), len(text),
                      (time.monotonic() - started) * 1000)
            where = f"stats page {self.url}"
        else:
            text = self._ask("show stat")
            where = f"socket {self.socket_path}"
        _log.debug("show stat:\n%s", text[:4000])
        try:
            return haproxy_csv.parse_stat_csv(text)
        except StatsFormatError as exc:
            raise CheckError(f"{where}: {exc}") from None

    def info(self) -> Mapping[str, str] | None:
        """`show info`, or None from a stats page (which has no process-wide limits)."""
        if self.url:
            return None
        try:
            return haproxy_csv.parse_info(self._ask("show info"))
        except StatsFormatError as exc:
            raise CheckError(f"socket {self.socket_path}: {exc}") from None


def _missing(names: list[str], include: list[str], resource: Resource) -> Iterator[Metric]:
    """UNKNOWN findings for `-b` names the balancer does not have."""
    for name in include:
        if name not in names:
            yield resource.finding(f"missing:{name}", Unknown, f"no backend named {name!r}")


class BackendsResource(Resource):
    """Every selected backend's active servers up, sessions and queue."""

    def __init__(self, source: StatsSource, include: list[str], exclude: list[str], maint_ok: bool) -> None:
        super().__init__()
        self.source = source
        self.include = include
        self.exclude = exclude
        self.maint_ok = maint_ok
        self.health: dict[str, lbhealth.BackendHealth] = {}
        self.empty: list[str] = []

    def probe(self) -> Iterator[Metric]:
        stats = self.source.stat()
        backends = stats.backends()
        names = [backend.name for backend in backends]
        yield from _missing(names, self.include, self)
        kept = set(haproxy_csv.select(names, self.include, self.exclude))
        for backend in backends:
            if backend.name not in kept:
                continue
            if not backend.servers:
                self.empty.append(backend.name)  # a stats or redirect-only proxy: nothing to balance
                continue
            health = lbhealth.assess(backend, self.maint_ok)
            self.health[backend.name] = health
            yield Metric(f"{backend.name}_up", health.up, min=0, max=len(health.counted), context="servers_up")
            yield Metric(f"{backend.name}_scur", health.sessions, min=0, max=health.session_limit, context="plain")
            yield Metric(f"{backend.name}_qcur", health.queue, min=0, context="plain")
            down = health.backups_down
            if down and health.active and health.up:  # with no active server up, the CRITICAL text says it
                yield self.finding(f"{backend.name}_backup", Warn,
                                   f"{backend.name}: backup {', '.join(r.name + ' ' + r.status.text for r in down)}")
        if not self.health and not self.include:
            yield self.finding("nothing", Unknown, "no backend with servers to check"
                               + (" (all excluded)" if self.exclude and names else ""))

    def _health_of(self, metric: Metric) -> lbhealth.BackendHealth | None:
        return self.health.get(metric.name[:-len("_up")]) if metric.name.endswith("_up") else None

    def adjust(self, metric: Metric, state: nagiosplugin.state.ServiceState) -> nagiosplugin.state.ServiceState:
        health = self._health_of(metric)
        if health is None:
            return state
        if health.status == haproxy_csv.DOWN:
            return Critical  # HAProxy itself says nothing can serve this backend
        if not health.counted:
            return Ok  # every server is out on purpose and --maint-ok says that is fine
        return state

    def explain(self, metric: Metric, state: nagiosplugin.state.ServiceState) -> str:
        health = self._health_of(metric)
        if health is None:
            return super().explain(metric, state)
        return "" if state == Ok else lbhealth.problem_text(health)

    def ok_summary(self) -> str:
        up = sum(h.up for h in self.health.values())
        total = sum(len(h.counted) for h in self.health.values())
        if len(self.health) == 1:
            (health,) = self.health.values()
            text = f"{health.name}: {up}/{total} active servers up"
        else:
            text = f"{len(self.health)} backends, {up}/{total} active servers up"
        out = [row for h in self.health.values() for row in h.administrative]
        if out:
            text += f", {len(out)} drained or in maintenance"
        if any(h.up == 0 and h.serving_backups for h in self.health.values()):
            text += ", backup serving"
        return text

    def long_output(self) -> list[str]:
        lines: list[str] = []
        for health in self.health.values():
            lines.append(lbhealth.summary_text(health))
            lines.extend("  " + lbhealth.describe_server(row) for row in health.active + health.backups)
        lines.extend(f"{name}: no servers (not checked)" for name in self.empty)
        if len(lines) > MAX_LONG_LINES:
            lines = lines[:MAX_LONG_LINES] + [f"... {len(lines) - MAX_LONG_LINES} more lines"]
        return lines


def server_verdict(row: haproxy_csv.StatRow, maint_ok: bool) -> nagiosplugin.state.ServiceState:
    """One server: serving is OK, out on purpose is WARNING (OK with --maint-ok), down is CRITICAL."""
    status = row.status
    if status.serving:
        return Ok
    if status.administrative:
        return Ok if maint_ok else Warn
    if status.kind == haproxy_csv.OTHER:
        return Unknown
    return Critical


class ServerResource(Resource):
    """One server's state, last check and last change."""

    def __init__(self, source: StatsSource, backend: str, server: str, maint_ok: bool) -> None:
        super().__init__()
        self.source = source
        self.backend = backend
        self.server = server
        self.maint_ok = maint_ok
        self.text = ""

    def probe(self) -> Iterator[Metric]:
        stats = self.source.stat()
        row = stats.server(self.backend, self.server)
        if row is None:
            known = [b.name for b in stats.backends()]
            where = "no such backend" if self.backend not in known else "no such server in that backend"
            raise CheckError(f"no server {self.backend}/{self.server} ({where})")
        self.text = f"{self.backend}/{lbhealth.describe_server(row)}"
        state = server_verdict(row, self.maint_ok)
        if row.status.kind == haproxy_csv.OTHER:
            self.text += " (status not understood)"
        yield self.finding("server", state, self.text)
        yield Metric("scur", row.count("scur"), min=0, max=row.number("slim"), context="plain")
        yield Metric("qcur", row.count("qcur"), min=0, context="plain")
        if row.number("check_duration") is not None:
            yield Metric("check_duration", row.count("check_duration"), uom="ms", min=0, context="plain")
        if row.number("chkfail") is not None:
            yield Metric("chkfail", row.count("chkfail"), uom="c", min=0, context="plain")

    def ok_summary(self) -> str:
        return self.text

    def long_output(self) -> list[str]:
        return []


class SessionsResource(Resource):
    """Current sessions against the process, frontend and server limits."""

    def __init__(self, source: StatsSource, include: list[str], exclude: list[str]) -> None:
        super().__init__()
        self.source = source
        self.include = include
        self.exclude = exclude
        self.labels: dict[str, str] = {}
        self.usage: list[tuple[float, str]] = []

    def _usage(self, name: str, label: str, current: int, limit: int) -> Metric:
        self.labels[name] = label
        self.usage.append((100.0 * current / limit, f"{label} {current}/{limit}"))
        return Metric(name, current, min=0, max=limit, context="usage")

    def probe(self) -> Iterator[Metric]:
        info = self.source.info()
        stats = self.source.stat()
        if info is not None:
            try:
                current, limit = int(info.get("CurrConns", "")), int(info.get("Maxconn", ""))
            except ValueError:
                raise CheckError("show info: no CurrConns/Maxconn numbers") from None
            if limit > 0:
                yield self._usage("sessions", "global", current, limit)
        proxies = [row.proxy for row in stats.rows if row.kind in ("frontend", "backend")]
        yield from _missing(proxies, self.include, self)
        kept = set(haproxy_csv.select(proxies, self.include, self.exclude))
        for row in stats.rows:
            row_limit = row.number("slim")
            if row.proxy not in kept or not row_limit:
                continue
            if row.kind == "frontend":
                yield self._usage(f"{row.proxy}_scur", f"frontend {row.proxy}", row.count("scur"), row_limit)
            elif row.kind == "server":
                yield self._usage(f"{row.proxy}/{row.name}_scur", f"server {row.proxy}/{row.name}",
                                  row.count("scur"), row_limit)
        if not self.usage:
            yield self.finding("nothing", Unknown, "no session limit to compare with")

    def explain(self, metric: Metric, state: nagiosplugin.state.ServiceState) -> str:
        if metric.name not in self.labels:
            return super().explain(metric, state)
        percent = 100.0 * metric.value / metric.max
        return f"{self.labels[metric.name]}: {metric.value}/{metric.max} sessions ({percent:.0f}%)"

    def ok_summary(self) -> str:
        worst = max(self.usage)
        return f"{len(self.usage)} limits, highest use {worst[1]} ({worst[0]:.0f}%)"

    def long_output(self) -> list[str]:
        lines = [f"{text} ({percent:.0f}%)" for percent, text in self.usage]
        if len(lines) > MAX_LONG_LINES:
            lines = lines[:MAX_LONG_LINES] + [f"... {len(lines) - MAX_LONG_LINES} more lines"]
        return lines


class RatesResource(Resource):
    """Request, 5xx and connection-error rates since the previous run."""

    def __init__(self, source: StatsSource, include: list[str], exclude: list[str], state_file: str | None) -> None:
        super().__init__()
        self.source = source
        self.include = include
        self.exclude = exclude
        self.state_file = state_file
        self.outcome: RatesOutcome | None = None
        self.lines: list[str] = []

    def path(self) -> str:
        from checks import statefile
        if self.state_file:
            return self.state_file
        key = "|".join([self.source.key, "b=" + ",".join(sorted(self.include)),
                        "x=" + ",".join(sorted(self.exclude))])
        return statefile.default_path(key, os.geteuid())

    def probe(self) -> Iterator[Metric]:
        from checks import rates, statefile
        stats = self.source.stat()
        names = [row.proxy for row in stats.of_kind("backend")]
        yield from _missing(names, self.include, self)
        sample = rates.take_sample(stats, haproxy_csv.select(names, self.include, self.exclude), time.time())
        path = self.path()
        try:
            saved = statefile.exchange(path, sample.to_json())
        except statefile.StateFileError as exc:
            raise CheckError(str(exc)) from None
        self.outcome = outcome = rates.compare(rates.Sample.from_json(saved), sample)
        _log.info("state file %s: %s", path, "no previous sample" if outcome.seconds is None
                  else f"previous sample {outcome.seconds:.1f}s ago")
        for item in outcome.rates:
            unit = "requests" if item.unit == "req" else "sessions"
            self.notes[f"{item.name}_req_rate"] = f"{item.name}: {item.requests_per_s:.3g} {unit}/s"
            self.notes[f"{item.name}_5xx"] = (f"{item.name}: {item.pct_5xx:.3g}% 5xx "
                                              f"({item.errors_5xx_per_s:.3g}/s of {item.responses} responses)")
            self.notes[f"{item.name}_econ_rate"] = f"{item.name}: {item.conn_errors_per_s:.3g} connection errors/s"
            yield Metric(f"{item.name}_req_rate", round(item.requests_per_s, 3), min=0, context="req_rate")
            yield Metric(f"{item.name}_5xx", round(item.pct_5xx, 2), uom="%", min=0, max=100, context="5xx")
            yield Metric(f"{item.name}_econ_rate", round(item.conn_errors_per_s, 3), min=0, context="econ")
            self.lines.append(f"{item.name}: {item.requests_per_s:.3g} {unit}/s, {item.pct_5xx:.3g}% 5xx "
                              f"({item.errors_5xx_per_s:.3g}/s), {item.conn_errors_per_s:.3g} conn errors/s "
                              f"over {item.seconds:.0f}s")
        for name in outcome.reset:
            yield self.finding(f"{name}_reset", Ok, f"{name}: counters went back (restart?), rates from the next run")
            self.lines.append(self.notes[f"{name}_reset"])
        if outcome.seconds is None:
            yield self.finding("first_run", Ok, f"first run: counters saved in {path}, rates from the next run")
        else:
            for name in outcome.fresh:
                yield self.finding(f"{name}_new", Ok, f"{name}: new backend, rates from the next run")

    def ok_summary(self) -> str:
        if self.outcome is None or self.outcome.seconds is None:
            return self.notes.get("first_run", "first run")
        total = sum(item.requests_per_s for item in self.outcome.rates)
        return (f"{len(self.outcome.rates)} backends, {total:.3g} requests/s over "
                f"{self.outcome.seconds:.0f}s, 5xx and connection errors within limits")

    def long_output(self) -> list[str]:
        return self.lines[:MAX_LONG_LINES]


def make_parser() -> PluginArgumentParser:
    parser = PluginArgumentParser(
        prog=PROG, status_name="GPROXY",
        description="Nagios plugin for gproxy and HAProxy: backends, one server, sessions or rates, "
                    "read from the runtime API socket or the stats page's CSV.",
        epilog="Ranges: 10 (alert outside 0..10), 10: (below 10), ~:10 (above 10), 10:20, @10:20 (inside). "
               "In backends mode a %% makes -w/-c a percentage of the active servers (-w 75%%:). "
               "Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for -h, -V and bad arguments).")
    parser.add_argument("mode", nargs="?", choices=MODES, default="backends",
                        help="what to check (default: backends)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-s", "--socket", metavar="PATH",
                       help=f"runtime API socket, a path or HOST:PORT (default {DEFAULT_SOCKET})")
    where.add_argument("-U", "--url", help="stats page URL; ';csv' is appended (http://lb/stats)")
    parser.add_argument("-a", "--auth", metavar="USER:PASSWORD", help="basic authentication for -U")
    parser.add_argument("-b", "--backend", action="append", default=[], metavar="NAME",
                        help="check only this backend (repeatable); the server's backend in server mode")
    parser.add_argument("--exclude", action="append", default=[], metavar="NAME",
                        help="skip this backend or proxy (repeatable)")
    parser.add_argument("-S", "--server", help="server name (server mode)")
    parser.add_argument("-w", "--warning", type=threshold_arg, metavar="RANGE",
                        help="backends: active servers up (default: all); sessions: percent of a limit "
                             f"(default {DEFAULT_SESSIONS_WARNING}); rates: percent of 5xx responses "
                             f"(default {DEFAULT_5XX_WARNING})")
    parser.add_argument("-c", "--critical", type=threshold_arg, metavar="RANGE",
                        help="backends: active servers up (default 1:); sessions: percent of a limit "
                             f"(default {DEFAULT_SESSIONS_CRITICAL}); rates: percent of 5xx responses "
                             f"(default {DEFAULT_5XX_CRITICAL})")
    parser.add_argument("--maint-ok", action="store_true",
                        help="servers in DRAIN, MAINT or NOLB are not failures (they are still listed)")
    parser.add_argument("--req-warning", type=threshold_arg, metavar="RANGE", help="rates: requests/s")
    parser.add_argument("--req-critical", type=threshold_arg, metavar="RANGE", help="rates: requests/s")
    parser.add_argument("--econ-warning", type=threshold_arg, metavar="RANGE", help="rates: connection errors/s")
    parser.add_argument("--econ-critical", type=threshold_arg, metavar="RANGE", help="rates: connection errors/s")
    parser.add_argument("--state-file", metavar="PATH",
                        help="rates: where to keep the counters between runs "
                             "(default /var/tmp/check_gproxy-<uid>-<hash of source and filters>.json)")
    add_common_arguments(parser, PROG)
    return parser


def make_check(args: argparse.Namespace, parser: PluginArgumentParser) -> nagiosplugin.Check:
    """The check for the chosen mode (argument combinations are validated here)."""
    source = StatsSource(args.socket, args.url, args.auth, inner_timeout(args.timeout))
    if args.auth and not args.url:
        parser.error("-a/--auth goes with -U/--url")
    common = [FindingContext(), PlainContext("plain")]
    resource: Resource
    if args.mode == "backends":
        resource = BackendsResource(source, args.backend, args.exclude, args.maint_ok)
        contexts = [ThresholdContext("servers_up", args.warning or Threshold(ALL), args.critical or Threshold("1:"))]
    elif args.mode == "server":
        if len(args.backend) != 1 or not args.server:
            parser.error("server mode needs one -b BACKEND and -S SERVER")
        resource = ServerResource(source, args.backend[0], args.server, args.maint_ok)
        contexts = []
    elif args.mode == "sessions":
        resource = SessionsResource(source, args.backend, args.exclude)
        warning = percent_threshold_arg(args.warning.spec) if args.warning else Threshold(
            DEFAULT_SESSIONS_WARNING, True)
        critical = percent_threshold_arg(args.critical.spec) if args.critical else Threshold(
            DEFAULT_SESSIONS_CRITICAL, True)
        contexts = [ThresholdContext("usage", warning, critical)]
    else:
        resource = RatesResource(source, args.backend, args.exclude, args.state_file)
        contexts = [ThresholdContext("5xx", args.warning or Threshold(DEFAULT_5XX_WARNING),
                                     args.critical or Threshold(DEFAULT_5XX_CRITICAL)),
                    ThresholdContext("req_rate", args.req_warning, args.req_critical),
                    ThresholdContext("econ", args.econ_warning, args.econ_critical)]
    return nagiosplugin.Check(resource, *common, *contexts, ReportSummary(resource), name=f"gproxy {args.mode}")


@nagiosplugin.guarded(verbose=0)
def main(argv: list[str] | None = None) -> NoReturn:
    parser = make_parser()
    args = parser.parse_args(argv)
    run(make_check(args, parser), args.verbose, args.timeout)


if __name__ == "__main__":
    main()
