"""`show stat`: HAProxy 2.6.12's CSV (and its `typed` form), field for field.

The header is HAProxy's: the 100 static fields, the three `agg_*` fields,
the `-` marker that ends the static part, then the columns of HAProxy's
ssl, h2 and h1 stats modules (the ssl columns count TLS sessions and failed
handshakes; h2 and h1 stay zero, but tools that parse by position still find
their columns).
Every line ends with a comma; the answer ends with an empty line.

Each row is built as a list of values, one per column, None where HAProxy
leaves the field unset: the CSV prints those empty, the typed form skips
them (so a present-but-empty string, such as `last_chk` after a passing
check, still appears as `...:MOP:str:`). Which fields each kind of row sets
follows the captures in tests/golden/haproxy-2.6.

Pure: `now` comes from the caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gproxy.health import OpState
from gproxy.runtime import BackendRuntime, FrontendRuntime, ServerRuntime
from gproxy.runtime_api.view import (
    PROCESS_NUM,
    ProxyState,
    backend_weight,
    fullconn,
    proxies,
    server_addr,
)

# (name, frontend tags:type, backend tags:type, server tags:type) for each
# column; "" where HAProxy never sets the field for that kind of row. The
# tags (origin, nature, scope) and types are those `show stat typed` prints.
FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("pxname", "KNS:str", "KNS:str", "KNS:str"),
    ("svname", "KNS:str", "KNS:str", "KNS:str"),
    ("qcur", "", "MGP:u32", "MGP:u32"),
    ("qmax", "", "MMP:u32", "MMP:u32"),
    ("scur", "MGP:u32", "MGP:u32", "MGP:u32"),
    ("smax", "MMP:u32", "MMP:u32", "MMP:u32"),
    ("slim", "CLP:u32", "CLP:u32", "CLP:u32"),
    ("stot", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("bin", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("bout", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("dreq", "MCP:u64", "MCP:u64", ""),
    ("dresp", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("ereq", "MCP:u64", "", ""),
    ("econ", "", "MCP:u64", "MCP:u64"),
    ("eresp", "", "MCP:u64", "MCP:u64"),
    ("wretr", "", "MCP:u64", "MCP:u64"),
    ("wredis", "", "MCP:u64", "MCP:u64"),
    ("status", "SGP:str", "SGP:str", "SGP:str"),
    ("weight", "", "MaP:u32", "MaP:u32"),
    ("act", "", "MGP:u32", "SGP:u32"),
    ("bck", "", "MGP:u32", "SGP:u32"),
    ("chkfail", "", "", "MCP:u64"),
    ("chkdown", "", "MCP:u64", "MCP:u64"),
    ("lastchg", "", "MAP:u32", "MAP:u32"),
    ("downtime", "", "MCP:u32", "MCP:u32"),
    ("qlimit", "", "", "CLP:u32"),
    ("pid", "KGP:u32", "KGP:u32", "KGP:u32"),
    ("iid", "KGS:u32", "KGS:u32", "KGS:u32"),
    ("sid", "KGS:u32", "KGS:u32", "KGS:u32"),
    ("throttle", "", "", ""),
    ("lbtot", "", "MCP:u64", "MCP:u64"),
    ("tracked", "", "", ""),
    ("type", "CGS:u32", "CGS:u32", "CGS:u32"),
    ("rate", "MRP:u32", "MGP:u32", "MRP:u32"),
    ("rate_lim", "CLP:u32", "", ""),
    ("rate_max", "MMP:u32", "MGP:u32", "MMP:u32"),
    ("check_status", "", "", "MOP:str"),
    ("check_code", "", "", "MOP:u32"),
    ("check_duration", "", "", "MDP:u64"),
    ("hrsp_1xx", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("hrsp_2xx", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("hrsp_3xx", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("hrsp_4xx", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("hrsp_5xx", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("hrsp_other", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("hanafail", "", "", ""),
    ("req_rate", "MRP:u32", "", ""),
    ("req_rate_max", "MMP:u32", "", ""),
    ("req_tot", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("cli_abrt", "", "MCP:u64", "MCP:u64"),
    ("srv_abrt", "", "MCP:u64", "MCP:u64"),
    ("comp_in", "MCP:u64", "MCP:u64", ""),
    ("comp_out", "MCP:u64", "MCP:u64", ""),
    ("comp_byp", "MCP:u64", "MCP:u64", ""),
    ("comp_rsp", "MCP:u64", "MCP:u64", ""),
    ("lastsess", "", "MAP:s32", "MAP:s32"),
    ("last_chk", "", "", "MOP:str"),
    ("last_agt", "", "", ""),
    ("qtime", "", "MaP:u32", "MaP:u32"),
    ("ctime", "", "MaP:u32", "MaP:u32"),
    ("rtime", "", "MaP:u32", "MaP:u32"),
    ("ttime", "", "MaP:u32", "MaP:u32"),
    ("agent_status", "", "", ""),
    ("agent_code", "", "", ""),
    ("agent_duration", "", "", ""),
    ("check_desc", "", "", "MOP:str"),
    ("agent_desc", "", "", ""),
    ("check_rise", "", "", "CGS:u32"),
    ("check_fall", "", "", "CGS:u32"),
    ("check_health", "", "", "CGS:u32"),
    ("agent_rise", "", "", ""),
    ("agent_fall", "", "", ""),
    ("agent_health", "", "", ""),
    ("addr", "", "", "CGS:str"),
    ("cookie", "", "CNS:str", "CNS:str"),
    ("mode", "CGS:str", "CGS:str", "CGS:str"),
    ("algo", "", "CGS:str", ""),
    ("conn_rate", "MRP:u32", "", ""),
    ("conn_rate_max", "MMP:u32", "", ""),
    ("conn_tot", "MCP:u64", "", ""),
    ("intercepted", "MCP:u64", "", ""),
    ("dcon", "MCP:u64", "", ""),
    ("dses", "MCP:u64", "", ""),
    ("wrew", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("connect", "", "MCP:u64", "MCP:u64"),
    ("reuse", "", "MCP:u64", "MCP:u64"),
    ("cache_lookups", "MCP:u64", "MCP:u64", ""),
    ("cache_hits", "MCP:u64", "MCP:u64", ""),
    ("srv_icur", "", "", "MGP:u32"),
    ("src_ilim", "", "", ""),
    ("qtime_max", "", "MMP:u32", "MMP:u32"),
    ("ctime_max", "", "MMP:u32", "MMP:u32"),
    ("rtime_max", "", "MMP:u32", "MMP:u32"),
    ("ttime_max", "", "MMP:u32", "MMP:u32"),
    ("eint", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("idle_conn_cur", "", "", "MGP:u32"),
    ("safe_conn_cur", "", "", "MGP:u32"),
    ("used_conn_cur", "", "", "MGP:u32"),
    ("need_conn_est", "", "", "MGP:u32"),
    ("uweight", "", "MaP:u32", "MaP:u32"),
    ("agg_server_status", "", "MGP:u32", ""),
    ("agg_server_check_status", "", "MGP:u32", ""),
    ("agg_check_status", "", "MGP:u32", ""),
    ("-", "", "", ""),  # end of HAProxy's static fields; stats modules follow
    ("ssl_sess", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("ssl_reused_sess", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("ssl_failed_handshake", "MCP:u64", "MCP:u64", "MCP:u64"),
    ("h2_headers_rcvd", "MCP:u64", "MCP:u64", ""),
    ("h2_data_rcvd", "MCP:u64", "MCP:u64", ""),
    ("h2_settings_rcvd", "MCP:u64", "MCP:u64", ""),
    ("h2_rst_stream_rcvd", "MCP:u64", "MCP:u64", ""),
    ("h2_goaway_rcvd", "MCP:u64", "MCP:u64", ""),
    ("h2_detected_conn_protocol_errors", "MCP:u64", "MCP:u64", ""),
    ("h2_detected_strm_protocol_errors", "MCP:u64", "MCP:u64", ""),
    ("h2_rst_stream_resp", "MCP:u64", "MCP:u64", ""),
    ("h2_goaway_resp", "MCP:u64", "MCP:u64", ""),
    ("h2_open_connections", "MGP:u64", "MGP:u64", ""),
    ("h2_backend_open_streams", "MGP:u64", "MGP:u64", ""),
    ("h2_total_connections", "MCP:u64", "MCP:u64", ""),
    ("h2_backend_total_streams", "MCP:u64", "MCP:u64", ""),
    ("h1_open_connections", "MGP:u64", "MGP:u64", ""),
    ("h1_open_streams", "MGP:u64", "MGP:u64", ""),
    ("h1_total_connections", "MCP:u64", "MCP:u64", ""),
    ("h1_total_streams", "MCP:u64", "MCP:u64", ""),
    ("h1_bytes_in", "MCP:u64", "MCP:u64", ""),
    ("h1_bytes_out", "MCP:u64", "MCP:u64", ""),
    ("h1_spliced_bytes_in", "MCP:u64", "MCP:u64", ""),
    ("h1_spliced_bytes_out", "MCP:u64", "MCP:u64", ""),
)
FIELD_NAMES: tuple[str, ...] = tuple(f[0] for f in FIELDS)
MARKER = FIELD_NAMES.index("-")  # 103
HEADER = "# " + ",".join(FIELD_NAMES) + ",\n"

# `show stat <iid> <type> <sid>`: the type bitmask.
TYPE_FRONTEND, TYPE_BACKEND, TYPE_SERVER = 1, 2, 4
# The `type` column and the first letter of a typed line.
_OBJ = {"F": 0, "B": 1, "S": 2}
_OTHER_MODULES_FE_BE = (0,) * 21  # h2 (13), h1 (8) counters: gproxy speaks neither module's protocol
_OTHER_MODULES_SRV = (None,) * 21  # servers only carry the ssl module


def _ssl_module(c) -> tuple[int, int, int]:
    """ssl_sess, ssl_reused_sess, ssl_failed_handshake."""
    return c.ssl_sess, c.ssl_reused_sess, c.ssl_failed_handshake


@dataclass(frozen=True)
class StatFilter:
    """`show stat` arguments: which rows, in which form."""

    iid: int = -1  # proxy id, -1 for all
    types: int = -1  # bitmask of TYPE_*, -1 for all
    sid: int = -1  # server id, -1 for all
    typed: bool = False
    hide_down: bool = False  # `up`: only servers that are UP (or not checked)
    hide_maint: bool = False  # `no-maint`
    show_legends: bool = True  # addr and cookie: level operator and above
    json: bool = False


def _hrsp(counters) -> list:
    return list(counters.hrsp)


def _avg(total: int, count: int) -> int:
    return total // count if count else 0


def _time_maxima(c) -> tuple[int, int, int, int]:
    """qtime_max, ctime_max, rtime_max, ttime_max (ms)."""
    return c.q_time_max, c.c_time_max, c.r_time_max, c.t_time_max


def _since(now: float, when: float) -> int:
    return max(0, int(now - when))


def frontend_row(fe: FrontendRuntime, proxy_id: int, stopping: bool) -> list:
    c = fe.counters
    http = fe.cfg.mode == "http"
    hrsp = _hrsp(c) if http else [None] * 6
    on_http = 0 if http else None
    status = "OPEN" if fe.enabled and not stopping else "STOP"
    return [
        fe.name, "FRONTEND", None, None, c.cur, c.max, fe.maxconn, c.total, c.bytes_in, c.bytes_out,
        c.denied_req, c.denied_resp, c.err_req, None, None, None, None, status, None, None, None,
        None, None, None, None, None, PROCESS_NUM, proxy_id, 0, None, None, None, 0, c.sess_rate.current, 0,
        c.sess_rate.peak, None, None, None, *hrsp, None, c.req_rate.current, c.req_rate.peak, c.req_tot,
        None, None, 0, 0, 0, 0,
        None, None, None, None, None, None, None, None, None, None, None, None, None, None, None,
        None, None, None, None, None, fe.cfg.mode, None, c.conn_rate.current, c.conn_rate.peak, c.conn_tot,
        on_http, c.denied_conn, 0, 0,
        None, None, on_http, on_http, None, None, None, None, None, None, 0,
        None, None, None, None, None, None, None, None, "-", *_ssl_module(c), *_OTHER_MODULES_FE_BE,
    ]


def backend_row(be: BackendRuntime, now: float, show_legends: bool, filtered: bool) -> list:
    c = be.counters
    cfg = be.cfg
    http = cfg.mode == "http"
    weight, act, bck = backend_weight(be)
    status = "UP" if weight > 0 or not be.servers else "DOWN"
    if filtered:
        # With `up`/`no-maint`, HAProxy shows how many servers are running.
        running = sum(1 for s in be.servers if s.health.op_state in (OpState.RUNNING, OpState.STARTING))
        status = f"{status} ({running}/{len(be.servers)})"
    hrsp = _hrsp(c) if http else [None] * 6
    on_http = 0 if http else None
    downtime = be.downtime + (now - be.down_since if be.down_since is not None else 0.0)
    lbtot = 0
    for srv in be.servers:
        lbtot += srv.counters.lbtot
    # HAProxy hides the cookie name and the algorithm from `user` level too.
    cookie = cfg.cookie.name if cfg.cookie is not None and show_legends else None
    algo = cfg.balance if show_legends else None
    return [
        be.name, "BACKEND", len(be.queue), c.qmax, c.cur, c.max, fullconn(be), c.total, c.bytes_in,
        c.bytes_out, c.denied_req, c.denied_resp, None, c.err_conn, c.err_resp, c.retries, c.redispatches,
        status, weight, act, bck, None, be.chkdown, _since(now, be.last_change),
        int(downtime), None, PROCESS_NUM, cfg.id, 0, None, lbtot, None, 1, c.sess_rate.current, None,
        c.sess_rate.peak,
        None, None, None, *hrsp, None, None, None, c.req_tot if http else None, c.cli_abrt, c.srv_abrt,
        0, 0, 0, 0, _since(now, c.last_sess) if c.last_sess else -1, None, None,
        _avg(c.q_time_sum, c.timed), _avg(c.c_time_sum, c.timed), _avg(c.r_time_sum, c.timed),
        _avg(c.t_time_sum, c.timed), None, None, None, None, None, None, None, None, None, None, None,
        None, cookie, cfg.mode, algo, None, None, None, None, None, None, 0, 0, 0,
        on_http, on_http, None, None, *_time_maxima(c), 0, None, None, None, None, weight, 0, 0, 0,
        "-", *_ssl_module(c), *_OTHER_MODULES_FE_BE,
    ]


def server_row(srv: ServerRuntime, now: float, show_legends: bool) -> list:
    c = srv.counters
    health = srv.health
    http = srv.backend.cfg.mode == "http"
    configured = health.check_configured and health.checks_enabled
    if health.shows_check:
        outcome = health.last_outcome
        check_status = health.check_status_field()
        check_code = outcome.code if outcome is not None and outcome.code is not None else None
        check_duration = outcome.duration_ms if outcome is not None else 0
        last_chk = outcome.info if outcome is not None else ""
        check_desc = health.check_status.desc
        rise, fall, level = health.rise, health.fall, health.health
    else:
        check_status = check_code = check_duration = last_chk = check_desc = None
        rise = fall = level = None
    hrsp = _hrsp(c) if http else [None] * 6
    backup = srv.cfg.backup
    cookie = srv.cfg.cookie if show_legends and srv.cfg.cookie else None
    return [
        srv.backend.name, srv.name, len(srv.queue), c.qmax, c.cur, c.max, srv.maxconn or None, c.total,
        c.bytes_in, c.bytes_out, None, c.denied_resp, None, c.err_conn, c.err_resp, c.retries,
        c.redispatches, health.status_text(), srv.weight, 0 if backup else 1, 1 if backup else 0,
        health.chkfail if configured else None, health.chkdown if configured else None,
        int(health.seconds_since_change(now)), int(health.downtime(now)) if configured else None,
        srv.maxqueue or None, PROCESS_NUM, srv.backend.cfg.id, srv.id, None, c.lbtot, None, 2,
        c.sess_rate.current, None, c.sess_rate.peak,
        check_status, check_code, check_duration, *hrsp, None, None, None, c.req_tot if http else None,
        c.cli_abrt, c.srv_abrt, None, None, None, None,
        _since(now, c.last_sess) if c.last_sess else -1, last_chk, None,
        _avg(c.q_time_sum, c.timed), _avg(c.c_time_sum, c.timed), _avg(c.r_time_sum, c.timed),
        _avg(c.t_time_sum, c.timed), None, None, None, check_desc, None, rise, fall, level, None, None, None,
        server_addr(srv) if show_legends else None, cookie, srv.backend.cfg.mode, None,
        None, None, None, None, None, None, 0, 0, 0, None, None, len(srv.idle), None, *_time_maxima(c), 0,
        len(srv.idle), 0, c.cur, 1 if health.last_outcome is not None else 0, srv.weight, None, None, None,
        "-", *_ssl_module(c), *_OTHER_MODULES_SRV,
    ]


def _quoted(value: str) -> str:
    """HAProxy's CSV quoting: only values with a comma, a quote, a line
    break, or a leading or trailing space are quoted (quotes doubled)."""
    if "," in value or '"' in value or "\n" in value or "\r" in value or value[0] == " " or value[-1] == " ":
        return '"' + value.replace('"', '""') + '"'
    return value


# Only these columns carry free text (a check's reason, a server's reply);
# names, addresses and cookies are restricted by the config loader.
_FREE_TEXT = (FIELD_NAMES.index("last_chk"), FIELD_NAMES.index("check_desc"))


def csv_line(row: list) -> str:
    """One CSV line, with its trailing comma."""
    for index in _FREE_TEXT:
        value = row[index]
        if value:
            quoted = _quoted(value)
            if quoted is not value:
                row = list(row)  # rare: never change the caller's row
                row[index] = quoted
    # The hot loop of `show stat`: one comprehension, no call per field.
    return ",".join(["" if v is None else str(v) for v in row]) + ",\n"


def typed_fields(row: list, kind: str) -> list[tuple[int, str, str, str, object]]:
    """(position, name, tags, type, value) of each field `row` sets; the
    positions of the typed and JSON forms skip the `-` marker."""
    column = _KIND_COLUMN[kind]
    out = []
    pos = 0
    for field, value in zip(FIELDS, row):
        if field[0] == "-":
            continue
        meta = field[column]
        if value is not None and meta:
            tags, _, type_name = meta.partition(":")
            out.append((pos, field[0], tags, type_name, value))
        pos += 1
    return out


def typed_lines(kind: str, proxy_id: int, obj_id: int, row: list) -> list[str]:
    """`show stat typed`: `S.2.1.17.status.1:SGP:str:UP`, one line per set field."""
    return [f"{kind}.{proxy_id}.{obj_id}.{pos}.{name}.{PROCESS_NUM}:{tags}:{type_name}:{value}\n"
            for pos, name, tags, type_name, value in typed_fields(row, kind)]


def json_object(kind: str, proxy_id: int, obj_id: int, row: list) -> list[dict]:
    """`show stat json`: one object per set field, for one row."""
    obj_type = _JSON_OBJ_TYPE[kind]
    return [{"objType": obj_type, "proxyId": proxy_id, "id": obj_id, "field": {"pos": pos, "name": name},
             "processNum": PROCESS_NUM, "tags": json_tags(tags), "value": {"type": type_name, "value": value}}
            for pos, name, tags, type_name, value in typed_fields(row, kind)]


# The letters of the typed form, spelled out in the JSON form.
_ORIGINS = {"M": "Metric", "S": "Status", "K": "Key", "C": "Config", "P": "Product"}
_NATURES = {"A": "Age", "a": "Avg", "C": "Counter", "D": "Duration", "G": "Gauge", "L": "Limit", "M": "Max",
            "m": "Min", "N": "Name", "O": "Output", "R": "Rate", "T": "Time"}
_SCOPES = {"C": "Cluster", "P": "Process", "S": "Service", "s": "System"}
_KIND_COLUMN = {"F": 1, "B": 2, "S": 3}
_JSON_OBJ_TYPE = {"F": "Frontend", "B": "Backend", "S": "Server"}


def json_tags(tags: str) -> dict[str, str]:
    return {"origin": _ORIGINS[tags[0]], "nature": _NATURES[tags[1]], "scope": _SCOPES[tags[2]]}


def _server_shown(srv: ServerRuntime, filt: StatFilter) -> bool:
    health = srv.health
    maint = health.status_text().startswith("MAINT")
    if filt.hide_maint and maint:
        return False
    if filt.hide_down and (maint or health.op_state is OpState.STOPPED):
        return False
    return True


def show_stat(state: ProxyState, now: float, filt: StatFilter = StatFilter()) -> str:
    """The whole `show stat` answer (without the final empty line)."""
    if filt.json:
        return show_stat_json(state, now, filt)
    out: list[str] = [] if filt.typed else [HEADER]
    typed = filt.typed
    legends = filt.show_legends
    filtered = filt.hide_down or filt.hide_maint
    stopping = state.process.stopping
    for entry in proxies(state):
        if filt.iid != -1 and entry.id != filt.iid:
            continue
        fe, be = entry.frontend, entry.backend
        if fe is not None and filt.types & TYPE_FRONTEND:
            row = frontend_row(fe, entry.id, stopping)
            out.extend(typed_lines("F", entry.id, 0, row) if typed else (csv_line(row),))
        if be is None:
            continue
        if filt.types & TYPE_SERVER:
            for srv in be.servers:
                if filt.sid != -1 and srv.id != filt.sid:
                    continue
                if filtered and not _server_shown(srv, filt):
                    continue
                row = server_row(srv, now, legends)
                out.extend(typed_lines("S", entry.id, srv.id, row) if typed else (csv_line(row),))
        if filt.types & TYPE_BACKEND:
            row = backend_row(be, now, legends, filtered)
            out.extend(typed_lines("B", entry.id, 0, row) if typed else (csv_line(row),))
    return "".join(out)


def show_stat_json(state: ProxyState, now: float, filt: StatFilter) -> str:
    """`show stat json`: a list per row of field objects, on one line."""
    rows: list[list[dict]] = []
    filtered = filt.hide_down or filt.hide_maint
    for entry in proxies(state):
        if filt.iid != -1 and entry.id != filt.iid:
            continue
        fe, be = entry.frontend, entry.backend
        if fe is not None and filt.types & TYPE_FRONTEND:
            rows.append(json_object("F", entry.id, 0, frontend_row(fe, entry.id, state.process.stopping)))
        if be is None:
            continue
        if filt.types & TYPE_SERVER:
            for srv in be.servers:
                if (filt.sid == -1 or srv.id == filt.sid) and (not filtered or _server_shown(srv, filt)):
                    rows.append(json_object("S", entry.id, srv.id, server_row(srv, now, filt.show_legends)))
        if filt.types & TYPE_BACKEND:
            rows.append(json_object("B", entry.id, 0, backend_row(be, now, filt.show_legends, filtered)))
    return json.dumps(rows, separators=(",", ":")) + "\n"
