"""Prometheus text exposition (format 0.0.4) of gproxy's state.

Metric names follow HAProxy's native exporter (`haproxy_process_*`,
`haproxy_frontend_*`, `haproxy_backend_*`, `haproxy_server_*`) with a
`gproxy_` prefix, so dashboards and alerts written for HAProxy need only the
prefix changed. As there, each metric is one of the `show stat` fields (the
rows come from `runtime_api.stat_csv`, the process figures from `show
info`), times are in seconds, a field a row leaves unset gives no sample,
and state-like metrics are one series per state with the current one at 1:

    gproxy_server_status{proxy="app",server="web1",state="DRAIN"} 1
    gproxy_server_check_status{proxy="app",server="web1",state="L7OK"} 1
    gproxy_backend_status{proxy="app",state="UP"} 1

Counters end in `_total`; every family has its HELP and TYPE lines and its
samples together. Pure: the clock and the process facts come from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from gproxy import __version__
from gproxy.health import OpState
from gproxy.runtime import ServerRuntime
from gproxy.runtime_api import stat_csv
from gproxy.runtime_api.reports import INFO_FIELDS, ProcessFacts, info_values
from gproxy.runtime_api.view import ProxyState, proxies

PREFIX = "gproxy_"
MS_PER_SECOND = 1000.0
_INDEX = {name: index for index, name in enumerate(stat_csv.FIELD_NAMES)}

# HAProxy's exporter state labels (promex_srv_st, promex_back_st, promex_front_st).
SERVER_STATES = ("DOWN", "UP", "MAINT", "DRAIN", "NOLB")
PROXY_STATES = ("DOWN", "UP")
CHECK_STATES = ("HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP", "L7TOUT", "L7RSP",
                "L7OK", "L7OKC", "L7STS", "PROCERR", "PROCTOUT", "PROCOK")
HTTP_CODES = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")


@dataclass(frozen=True)
class Metric:
    """One family: its name after `gproxy_<scope>_`, the `show stat` (or
    `show info`) field it reads, and its help. Names ending in `_total`
    are counters, the others gauges; `scale` turns milliseconds into seconds."""

    name: str
    field: str
    help: str
    scale: float = 1.0

    @property
    def kind(self) -> str:
        return "counter" if self.name.endswith("_total") else "gauge"


def _m(name: str, field: str, help: str, ms: bool = False) -> Metric:
    return Metric(name, field, help, MS_PER_SECOND if ms else 1.0)


# -- the families, in HAProxy's order -------------------------------------------------------------------------

PROCESS_METRICS: tuple[Metric, ...] = (
    _m("nbthread", "Nbthread", "Number of started threads."),
    _m("nbproc", "Nbproc", "Number of started worker processes."),
    _m("relative_process_id", "Process_num", "Relative process id, starting at 1."),
    _m("uptime_seconds", "Uptime_sec", "How long ago this worker process was started (seconds)."),
    _m("start_time_seconds", "Start_time_sec", "Start time of this process, in seconds since the Epoch."),
    _m("max_fds", "Ulimit-n", "Limit on the number of per-process file descriptors."),
    _m("max_sockets", "Maxsock", "Limit on the number of per-process sockets."),
    _m("max_connections", "Maxconn", "Limit on the number of per-process connections."),
    _m("hard_max_connections", "Hard_maxconn", "Initial limit on the number of per-process connections."),
    _m("current_connections", "CurrConns", "Number of active sessions."),
    _m("connections_total", "CumConns", "Total number of created sessions."),
    _m("requests_total", "CumReq", "Total number of requests (TCP or HTTP)."),
    _m("current_connection_rate", "ConnRate", "Current number of connections per second over last elapsed second."),
    _m("limit_connection_rate", "ConnRateLimit", "Configured maximum number of connections per second."),
    _m("max_connection_rate", "MaxConnRate", "Maximum observed number of connections per second."),
    _m("current_session_rate", "SessRate", "Current number of sessions per second over last elapsed second."),
    _m("limit_session_rate", "SessRateLimit", "Configured maximum number of sessions per second."),
    _m("max_session_rate", "MaxSessRate", "Maximum observed number of sessions per second."),
    _m("current_tasks", "Tasks", "Number of tasks (checks and client connections)."),
    _m("idle_time_percent", "Idle_pct", "Share of the last second the process was idle (percent)."),
    _m("stopping", "Stopping", "Non-zero means the process is stopping."),
    _m("jobs", "Jobs", "Number of active jobs (listeners, sessions)."),
    _m("listeners", "Listeners", "Number of listeners and stats sockets."),
    _m("bytes_out_total", "TotalBytesOut", "Total number of bytes emitted to clients."),
    _m("bytes_out_rate", "BytesOutRate", "Number of bytes emitted to clients over the last second."),
)

FRONTEND_METRICS: tuple[Metric, ...] = (
    _m("current_sessions", "scur", "Number of current sessions."),
    _m("max_sessions", "smax", "Maximum observed number of active sessions."),
    _m("limit_sessions", "slim", "Configured session limit (maxconn)."),
    _m("sessions_total", "stot", "Total number of sessions."),
    _m("limit_session_rate", "rate_lim", "Configured limit on new sessions per second."),
    _m("max_session_rate", "rate_max", "Maximum observed number of sessions per second."),
    _m("connections_rate_max", "conn_rate_max", "Maximum observed number of connections per second."),
    _m("connections_total", "conn_tot", "Total number of connections."),
    _m("bytes_in_total", "bin", "Total number of request bytes."),
    _m("bytes_out_total", "bout", "Total number of response bytes."),
    _m("requests_denied_total", "dreq", "Total number of denied requests."),
    _m("responses_denied_total", "dresp", "Total number of denied responses."),
    _m("request_errors_total", "ereq", "Total number of request errors."),
    _m("denied_connections_total", "dcon", "Total number of requests denied by connection rules."),
    _m("denied_sessions_total", "dses", "Total number of requests denied by session rules."),
    _m("failed_header_rewriting_total", "wrew", "Total number of failed header rewrites."),
    _m("internal_errors_total", "eint", "Total number of internal errors."),
    _m("http_requests_rate_max", "req_rate_max", "Maximum observed number of HTTP requests per second."),
    _m("http_requests_total", "req_tot", "Total number of HTTP requests received."),
    _m("intercepted_requests_total", "intercepted", "Total number of intercepted HTTP requests."),
    _m("http_cache_lookups_total", "cache_lookups", "Total number of HTTP cache lookups."),
    _m("http_cache_hits_total", "cache_hits", "Total number of HTTP cache hits."),
    _m("http_comp_bytes_in_total", "comp_in", "Total number of HTTP response bytes fed to the compressor."),
    _m("http_comp_bytes_out_total", "comp_out", "Total number of HTTP response bytes emitted by the compressor."),
    _m("http_comp_bytes_bypassed_total", "comp_byp", "Total number of bytes that bypassed the compressor."),
    _m("http_comp_responses_total", "comp_rsp", "Total number of HTTP responses that were compressed."),
)

# Fields backends and servers share.
_QUEUE_AND_SESSIONS: tuple[Metric, ...] = (
    _m("current_queue", "qcur", "Number of current queued requests."),
    _m("max_queue", "qmax", "Maximum observed number of queued requests."),
    _m("current_sessions", "scur", "Number of current sessions."),
    _m("max_sessions", "smax", "Maximum observed number of active sessions."),
    _m("limit_sessions", "slim", "Configured session limit."),
    _m("sessions_total", "stot", "Total number of sessions."),
    _m("max_session_rate", "rate_max", "Maximum observed number of sessions per second."),
    _m("last_session_seconds", "lastsess", "Number of seconds since last session assigned (-1: never)."),
    _m("queue_time_average_seconds", "qtime", "Average queue time (seconds).", ms=True),
    _m("connect_time_average_seconds", "ctime", "Average connect time (seconds).", ms=True),
    _m("response_time_average_seconds", "rtime", "Average response time (seconds).", ms=True),
    _m("total_time_average_seconds", "ttime", "Average total time (seconds).", ms=True),
    _m("max_queue_time_seconds", "qtime_max", "Maximum observed time spent in the queue (seconds).", ms=True),
    _m("max_connect_time_seconds", "ctime_max", "Maximum observed time to connect (seconds).", ms=True),
    _m("max_response_time_seconds", "rtime_max", "Maximum observed response time (seconds).", ms=True),
    _m("max_total_time_seconds", "ttime_max", "Maximum observed total request+response time (seconds).", ms=True),
    _m("connection_attempts_total", "connect", "Total number of connection establishment attempts."),
    _m("connection_reuses_total", "reuse", "Total number of connection reuses."),
    _m("bytes_in_total", "bin", "Total number of request bytes."),
    _m("bytes_out_total", "bout", "Total number of response bytes."),
)

# Errors and warnings: the same columns for a backend and for a server.
_ERRORS_AND_WARNINGS: tuple[Metric, ...] = (
    _m("connection_errors_total", "econ", "Total number of connection errors."),
    _m("response_errors_total", "eresp", "Total number of response errors."),
    _m("retry_warnings_total", "wretr", "Total number of retry warnings."),
    _m("redispatch_warnings_total", "wredis", "Total number of redispatch warnings."),
    _m("failed_header_rewriting_total", "wrew", "Total number of failed header rewrites."),
    _m("internal_errors_total", "eint", "Total number of internal errors."),
    _m("client_aborts_total", "cli_abrt", "Total number of data transfers aborted by the client."),
    _m("server_aborts_total", "srv_abrt", "Total number of data transfers aborted by the server."),
)

BACKEND_METRICS: tuple[Metric, ...] = _QUEUE_AND_SESSIONS + (
    _m("requests_denied_total", "dreq", "Total number of denied requests."),
    _m("responses_denied_total", "dresp", "Total number of denied responses."),
) + _ERRORS_AND_WARNINGS + (
    _m("weight", "weight", "Service weight (sum of the usable servers' weights)."),
    _m("active_servers", "act", "Current number of active servers."),
    _m("backup_servers", "bck", "Current number of backup servers."),
    _m("check_up_down_total", "chkdown", "Total number of UP->DOWN transitions."),
    _m("check_last_change_seconds", "lastchg", "Number of seconds since the last UP<->DOWN transition."),
    _m("downtime_seconds_total", "downtime", "Total downtime (seconds)."),
    _m("loadbalanced_total", "lbtot", "Total number of times a service was selected."),
    _m("http_requests_total", "req_tot", "Total number of HTTP requests received."),
    _m("http_cache_lookups_total", "cache_lookups", "Total number of HTTP cache lookups."),
    _m("http_cache_hits_total", "cache_hits", "Total number of HTTP cache hits."),
    _m("http_comp_bytes_in_total", "comp_in", "Total number of HTTP response bytes fed to the compressor."),
    _m("http_comp_bytes_out_total", "comp_out", "Total number of HTTP response bytes emitted by the compressor."),
    _m("http_comp_bytes_bypassed_total", "comp_byp", "Total number of bytes that bypassed the compressor."),
    _m("http_comp_responses_total", "comp_rsp", "Total number of HTTP responses that were compressed."),
    _m("uweight", "uweight", "Server's user weight, or sum of active servers' user weights for a backend."),
)

SERVER_METRICS: tuple[Metric, ...] = _QUEUE_AND_SESSIONS + (
    _m("responses_denied_total", "dresp", "Total number of denied responses."),
) + _ERRORS_AND_WARNINGS + (
    _m("weight", "weight", "Service weight."),
    _m("check_failures_total", "chkfail", "Total number of failed checks (only counted while the server is up)."),
    _m("check_up_down_total", "chkdown", "Total number of UP->DOWN transitions."),
    _m("check_last_change_seconds", "lastchg", "Number of seconds since the last UP<->DOWN transition."),
    _m("downtime_seconds_total", "downtime", "Total downtime (seconds)."),
    _m("queue_limit", "qlimit", "Configured maxqueue for the server (0: no limit)."),
    _m("loadbalanced_total", "lbtot", "Total number of times a service was selected."),
    _m("check_code", "check_code", "Layer 5-7 code of the last health check, if available."),
    _m("check_duration_seconds", "check_duration", "Time taken by the last health check (seconds).", ms=True),
    _m("idle_connections_current", "srv_icur", "Current number of idle connections available for reuse."),
    _m("safe_idle_connections_current", "safe_conn_cur", "Current number of safe idle connections."),
    _m("used_connections_current", "used_conn_cur", "Current number of connections in use."),
    _m("need_connections_current", "need_conn_est", "Estimated needed number of connections."),
    _m("uweight", "uweight", "Server's user weight."),
)

# State-like families: (name after the scope, help).
STATUS_HELP = "Current status of the service, one series per state."
CHECK_STATUS_HELP = "Status of the last health check, one series per check status (only servers checked now)."
AGG_SERVER_HELP = "Number of the backend's servers in each state."
AGG_CHECK_HELP = "Number of the backend's checked servers by status of their last check."
RESPONSES_HELP = "Total number of HTTP responses, by class of status code."
BUILD_INFO_HELP = "Build information."

Sample = tuple[tuple[tuple[str, str], ...], float | int]


def escape_label(value: str) -> str:
    """Label values escape backslash, double quote and line feed (format 0.0.4)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    """HELP, TYPE and the samples of one family; nothing if it has no sample."""
    lines = []
    for labels, value in samples:
        label_text = ",".join(f'{key}="{escape_label(val)}"' for key, val in labels)
        lines.append(f"{name}{{{label_text}}} {_number(value)}\n" if label_text else f"{name} {_number(value)}\n")
    if not lines:
        return []
    return [f"# HELP {name} {help_text}\n", f"# TYPE {name} {kind}\n"] + lines


def server_state(srv: ServerRuntime) -> str:
    """HAProxy's exporter state of a server: MAINT over DRAIN over UP, NOLB, DOWN."""
    health = srv.health
    status = health.status_text()
    if status.startswith("MAINT"):
        return "MAINT"
    if health.op_state in (OpState.RUNNING, OpState.STARTING):
        return "DRAIN" if status.startswith("DRAIN") else "UP"
    if health.op_state is OpState.STOPPING:
        return "NOLB"
    return "DOWN"


def _scaled(row: list, metric: Metric) -> float | int | None:
    value = row[_INDEX[metric.field]]
    if value is None or value == "":
        return None
    if metric.scale != 1.0:
        return value / metric.scale
    return value


def _row_families(scope: str, metrics: tuple[Metric, ...], rows: list[tuple[tuple[tuple[str, str], ...], list]]
                  ) -> list[str]:
    out: list[str] = []
    for metric in metrics:
        samples = [(labels, value) for labels, row in rows if (value := _scaled(row, metric)) is not None]
        out += family(f"{PREFIX}{scope}_{metric.name}", metric.kind, metric.help, samples)
    return out


def _responses(scope: str, rows: list[tuple[tuple[tuple[str, str], ...], list]]) -> list[str]:
    samples: list[Sample] = []
    for labels, row in rows:
        for code in HTTP_CODES:
            value = row[_INDEX[f"hrsp_{code}"]]
            if value is not None:
                samples.append((labels + (("code", code),), value))
    return family(f"{PREFIX}{scope}_http_responses_total", "counter", RESPONSES_HELP, samples)


def _states(labels: tuple[tuple[str, str], ...], states: tuple[str, ...], current: str | None) -> list[Sample]:
    return [(labels + (("state", state),), 1 if state == current else 0) for state in states]


def _process(state: ProxyState, now: float, facts: ProcessFacts) -> list[str]:
    info = {name: value for (_, name, _), value in zip(INFO_FIELDS, info_values(state, now, facts))}
    out: list[str] = []
    for metric in PROCESS_METRICS:
        out += family(f"{PREFIX}process_{metric.name}", metric.kind, metric.help, [((), info[metric.field])])
    out += family(f"{PREFIX}process_build_info", "gauge", BUILD_INFO_HELP, [((("version", __version__),), 1)])
    return out


def render_metrics(state: ProxyState, now: float, facts: ProcessFacts | None,
                   scopes: frozenset[str] = frozenset({"global", "frontend", "backend", "server"})) -> str:
    """The whole exposition; `facts` is needed only for the global scope."""
    stopping = state.process.stopping
    frontends, backends, servers = [], [], []
    backend_objects = []
    for entry in proxies(state):
        proxy = (("proxy", entry.name),)
        if entry.frontend is not None:
            frontends.append((proxy, stat_csv.frontend_row(entry.frontend, entry.id, stopping)))
        be = entry.backend
        if be is None:
            continue
        backends.append((proxy, stat_csv.backend_row(be, now, False, False)))
        backend_objects.append((proxy, be))
        for srv in be.servers:
            servers.append((proxy + (("server", srv.name),), stat_csv.server_row(srv, now, False), srv))
    out: list[str] = []
    if "global" in scopes and facts is not None:
        out += _process(state, now, facts)
    if "frontend" in scopes:
        status = [sample for labels, row in frontends
                  for sample in _states(labels, PROXY_STATES, "UP" if row[_INDEX["status"]] == "OPEN" else "DOWN")]
        out += family(f"{PREFIX}frontend_status", "gauge", STATUS_HELP, status)
        out += _row_families("frontend", FRONTEND_METRICS, frontends)
        out += _responses("frontend", frontends)
    if "backend" in scopes:
        status = [sample for labels, row in backends
                  for sample in _states(labels, PROXY_STATES, str(row[_INDEX["status"]]).split(" ")[0])]
        out += family(f"{PREFIX}backend_status", "gauge", STATUS_HELP, status)
        out += _row_families("backend", BACKEND_METRICS, backends)
        out += _responses("backend", backends)
        agg_servers: list[Sample] = []
        agg_checks: list[Sample] = []
        for labels, be in backend_objects:
            counts = {name: 0 for name in SERVER_STATES}
            checks = {name: 0 for name in CHECK_STATES}
            for srv in be.servers:
                counts[server_state(srv)] += 1
                if srv.health.shows_check and srv.health.last_outcome is not None:
                    name = srv.health.check_status.name
                    if name in checks:
                        checks[name] += 1
            agg_servers += [(labels + (("state", name),), count) for name, count in counts.items()]
            agg_checks += [(labels + (("state", name),), count) for name, count in checks.items()]
        out += family(f"{PREFIX}backend_agg_server_status", "gauge", AGG_SERVER_HELP, agg_servers)
        out += family(f"{PREFIX}backend_agg_check_status", "gauge", AGG_CHECK_HELP, agg_checks)
    if "server" in scopes:
        rows = [(labels, row) for labels, row, _ in servers]
        status = [sample for labels, _, srv in servers for sample in _states(labels, SERVER_STATES, server_state(srv))]
        out += family(f"{PREFIX}server_status", "gauge", STATUS_HELP, status)
        out += _row_families("server", SERVER_METRICS, rows)
        out += _responses("server", rows)
        checks = []
        for labels, row, srv in servers:
            if srv.health.shows_check:
                current = srv.health.check_status.name if srv.health.last_outcome is not None else None
                checks += _states(labels, CHECK_STATES, current)
        out += family(f"{PREFIX}server_check_status", "gauge", CHECK_STATUS_HELP, checks)
    return "".join(out)
