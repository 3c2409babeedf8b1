"""The runtime API's other reports, in HAProxy 2.6's formats: `show info`
(plain and typed), `show servers state`, `show backend`, `show sess` and
`show errors`. Pure: the clock and the process facts (pid, limits) come in
as arguments; `server.py` gathers them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gproxy import __version__
from gproxy.logfmt import _accept_date as accept_date
from gproxy.runtime import ErrorCapture
from gproxy.runtime_api.redact import mask_credentials
from gproxy.runtime_api.stat_csv import json_tags
from gproxy.runtime_api.view import PROCESS_NUM, ProxyState, proxies

PRODUCT_NAME = "gproxy"
RELEASE_DATE = "2026/11/01"  # shown as `Release_date` by show info
MAX_SHOWN_ERROR_BYTES = 16384  # one buffer, as HAProxy captures
DUMP_WIDTH = 64  # characters of escaped data per `show errors` dump line

# `show info`: (position, name, tags:type), HAProxy's order and typos
# ("TotalSplicdedBytesOut"). Positions 45, 46 (zlib memory) and 51
# (description) are the ones HAProxy leaves out when unset.
INFO_FIELDS: tuple[tuple[int, str, str], ...] = (
    (0, "Name", "POS:str"),
    (1, "Version", "POS:str"),
    (2, "Release_date", "POS:str"),
    (3, "Nbthread", "CGS:u32"),
    (4, "Nbproc", "CGS:u32"),
    (5, "Process_num", "KGP:u32"),
    (6, "Pid", "SGP:u32"),
    (7, "Uptime", "MDP:str"),
    (8, "Uptime_sec", "MDP:u32"),
    (9, "Memmax_MB", "CLP:u32"),
    (10, "PoolAlloc_MB", "MGP:u32"),
    (11, "PoolUsed_MB", "MGP:u32"),
    (12, "PoolFailed", "MCP:u32"),
    (13, "Ulimit-n", "CLP:u32"),
    (14, "Maxsock", "CLP:u32"),
    (15, "Maxconn", "CLP:u32"),
    (16, "Hard_maxconn", "CLP:u32"),
    (17, "CurrConns", "MGP:u32"),
    (18, "CumConns", "MCP:u32"),
    (19, "CumReq", "MCP:u32"),
    (20, "MaxSslConns", "MMP:u32"),
    (21, "CurrSslConns", "MGP:u32"),
    (22, "CumSslConns", "MCP:u32"),
    (23, "Maxpipes", "CLP:u32"),
    (24, "PipesUsed", "MGP:u32"),
    (25, "PipesFree", "MGP:u32"),
    (26, "ConnRate", "MRP:u32"),
    (27, "ConnRateLimit", "CLP:u32"),
    (28, "MaxConnRate", "MMP:u32"),
    (29, "SessRate", "MRP:u32"),
    (30, "SessRateLimit", "CLP:u32"),
    (31, "MaxSessRate", "MRP:u32"),
    (32, "SslRate", "MRP:u32"),
    (33, "SslRateLimit", "CLP:u32"),
    (34, "MaxSslRate", "MMP:u32"),
    (35, "SslFrontendKeyRate", "MGP:u32"),
    (36, "SslFrontendMaxKeyRate", "MMP:u32"),
    (37, "SslFrontendSessionReuse_pct", "MGP:u32"),
    (38, "SslBackendKeyRate", "MRP:u32"),
    (39, "SslBackendMaxKeyRate", "MMP:u32"),
    (40, "SslCacheLookups", "MCP:u32"),
    (41, "SslCacheMisses", "MCP:u32"),
    (42, "CompressBpsIn", "MRP:u32"),
    (43, "CompressBpsOut", "MRP:u32"),
    (44, "CompressBpsRateLim", "CLP:u32"),
    (47, "Tasks", "MGP:u32"),
    (48, "Run_queue", "MGP:u32"),
    (49, "Idle_pct", "MaP:u32"),
    (50, "node", "COS:str"),
    (52, "Stopping", "MGP:u32"),
    (53, "Jobs", "MGP:u32"),
    (54, "Unstoppable Jobs", "MGP:u32"),
    (55, "Listeners", "MGP:u32"),
    (56, "ActivePeers", "MGP:u32"),
    (57, "ConnectedPeers", "MGP:u32"),
    (58, "DroppedLogs", "MGP:u32"),
    (59, "BusyPolling", "MGP:u32"),
    (60, "FailedResolutions", "MGP:u32"),
    (61, "TotalBytesOut", "MGP:u64"),
    (62, "TotalSplicdedBytesOut", "MGP:u64"),
    (63, "BytesOutRate", "MRP:u64"),
    (64, "DebugCommandsIssued", "MGP:u32"),
    (65, "CumRecvLogs", "MCP:u32"),
    (66, "Build info", "POS:str"),
    (67, "Memmax_bytes", "CLP:u32"),
    (68, "PoolAlloc_bytes", "MGP:u64"),
    (69, "PoolUsed_bytes", "MGP:u64"),
    (70, "Start_time_sec", "MDP:u32"),
    (71, "Tainted", "SGP:str"),
)

SERVERS_STATE_VERSION = 1
SERVERS_STATE_HEADER = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
    "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
    "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "
    "srv_check_port srv_check_addr srv_agent_addr srv_agent_port"
)


@dataclass(frozen=True)
class ProcessFacts:
    """What `show info` needs from the operating system (gathered by the caller)."""

    pid: int
    ulimit_n: int = 0
    maxsock: int = 0
    listeners: int = 0
    tasks: int = 0
    node: str = ""


def uptime_text(seconds: int) -> str:
    """HAProxy's `Uptime`: `0d 0h00m08s`."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}d {hours}h{minutes:02d}m{secs:02d}s"


def info_values(state: ProxyState, now: float, facts: ProcessFacts) -> list:
    process = state.process
    uptime = max(0, int(now - process.started))
    version = __version__
    conn_rate, sess_rate = process.conn_rate, process.sess_rate  # fed by gproxy.rate_sampler
    return [
        PRODUCT_NAME, version, RELEASE_DATE, 1, 1, PROCESS_NUM, facts.pid, uptime_text(uptime), uptime,
        0, 0, 0, 0, facts.ulimit_n, facts.maxsock, process.maxconn, process.hard_maxconn,
        process.cur_conns, process.cum_conns, process.cum_req, 0, 0, 0, 0, 0, 0,
        conn_rate.current, 0, conn_rate.peak, sess_rate.current, 0, sess_rate.peak,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        facts.tasks, 0, 100, facts.node, 1 if process.stopping else 0,
        process.cur_conns + facts.listeners, 0, facts.listeners, 0, 0, 0, 0, 0,
        process.bytes_out, 0, process.bytes_out_rate.current, 0, 0, version, 0, 0, 0, int(process.started), "0",
    ]


def show_info(state: ProxyState, now: float, facts: ProcessFacts, typed: bool = False, as_json: bool = False) -> str:
    values = info_values(state, now, facts)
    if as_json:
        fields = []
        for (pos, name, meta), value in zip(INFO_FIELDS, values):
            tags, _, type_name = meta.partition(":")
            fields.append({"field": {"pos": pos, "name": name}, "processNum": PROCESS_NUM,
                           "tags": json_tags(tags), "value": {"type": type_name, "value": value}})
        return json.dumps(fields, separators=(",", ":")) + "\n"
    if typed:
        return "".join(f"{pos}.{name}.{PROCESS_NUM}:{meta}:{value}\n"
                       for (pos, name, meta), value in zip(INFO_FIELDS, values))
    return "".join(f"{name}: {value}\n" for (_, name, _), value in zip(INFO_FIELDS, values))


def show_servers_state(state: ProxyState, now: float, backend: str | None = None) -> str | None:
    """Version line, header, one line per server; None if `backend` is unknown."""
    lines = [f"{SERVERS_STATE_VERSION}\n", SERVERS_STATE_HEADER + "\n"]
    found = backend is None
    for entry in proxies(state):
        be = entry.backend
        if be is None or (backend is not None and be.name != backend):
            continue
        found = True
        for srv in be.servers:
            health = srv.health
            check_port = srv.cfg.check_port or 0
            lines.append(
                f"{be.cfg.id} {be.name} {srv.id} {srv.name} {srv.host} {int(health.op_state)} "
                f"{int(health.admin)} {srv.weight} {srv.initial_weight} "
                f"{int(health.seconds_since_change(now))} {int(health.check_status)} "
                f"{int(health.check_result)} {health.health} {health.check_state} 0 0 0 - {srv.port} - 0 "
                f"{check_port} - - 0\n")
    return "".join(lines) if found else None


def show_backend(state: ProxyState) -> str:
    return "# name\n" + "".join(f"{entry.name}\n" for entry in proxies(state) if entry.backend is not None)


def show_sess(state: ProxyState, now: float, cli_self: str | None = None) -> str:
    """`show sess` (brief): one line per client connection, then the CLI's
    own connection as HAProxy lists it (`fe=GLOBAL`)."""
    lines = []
    for stream in list(state.process.streams.values()):
        frontend = state.frontends.get(stream.frontend)
        backend = frontend.backend.name if frontend is not None and frontend.backend is not None else "<NONE>"
        server = stream.server.name if stream.server is not None else "<none>"
        lines.append(
            f"0x{stream.id:x}: proto=tcpv4 src={stream.source} fe={stream.frontend} be={backend} "
            f"srv={server} ts=00 epoch=0 age={_age(now - stream.started)} calls=1 rate=0 cpu=0 lat=0 "
            "rq[f=0h,i=0,an=00h,rx=,wx=,ax=] rp[f=0h,i=0,an=00h,rx=,wx=,ax=] scf=[8,0h,fd=-1] "
            "scb=[8,0h,fd=-1] exp= rc=0 c_exp=\n")
    if cli_self is not None:
        lines.append(
            f"{cli_self}: proto=unix_stream src=unix:1 fe=GLOBAL be=<NONE> srv=<none> ts=00 epoch=0 age=0s "
            "calls=1 rate=1 cpu=0 lat=0 rq[f=0h,i=0,an=00h,rx=,wx=,ax=] rp[f=0h,i=0,an=00h,rx=,wx=,ax=] "
            "scf=[8,0h,fd=-1] scb=[8,1h,fd=-1] exp= rc=0 c_exp=\n")
    return "".join(lines)


def show_sess_one(state: ProxyState, now: float, stream) -> str:
    """`show sess <id>`: what is known of one stream."""
    frontend = state.frontends.get(stream.frontend)
    backend = frontend.backend if frontend is not None else None
    server = stream.server
    return (
        f"0x{stream.id:x}: [{accept_date(stream.started)}] id={stream.id} proto=tcpv4 source={stream.source}\n"
        f"  flags=0x0, conn_retries=0, conn_exp=<NEVER> conn_et=0x000 srv_conn={server.name if server else '<none>'}\n"
        f"  frontend={stream.frontend} (id={frontend.cfg.id if frontend else -1} mode="
        f"{frontend.cfg.mode if frontend else 'tcp'})\n"
        f"  backend={backend.name if backend else '<NONE>'} (id={backend.cfg.id if backend else -1})\n"
        f"  server={server.name if server else '<NONE>'} (id={server.id if server else -1})\n"
        f"  age={_age(now - stream.started)}\n")


def _age(seconds: float) -> str:
    """HAProxy's human durations: 5s, 3m20s, 1h02m, 2d03h."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    if total < 86400:
        return f"{total // 3600}h{total % 3600 // 60:02d}m"
    return f"{total // 86400}d{total % 86400 // 3600:02d}h"


def show_errors(state: ProxyState, now: float, proxy: str | None = None, which: str = "both") -> str | None:
    """Last invalid request (frontends) and response (backends) per proxy;
    None if `proxy` names nothing. `which` is request, response or both."""
    entries: list[tuple[str, ErrorCapture, str, int]] = []
    found = proxy is None or proxy == "-1"
    for entry in proxies(state):
        if proxy not in (None, "-1") and entry.name != proxy and f"#{entry.id}" != proxy:
            continue
        found = True
        fe, be = entry.frontend, entry.backend
        if fe is not None and fe.last_error is not None and which in ("both", "request"):
            entries.append(("frontend", fe.last_error, entry.name, entry.id))
        if be is not None and be.last_error is not None and which in ("both", "response"):
            entries.append(("backend", be.last_error, entry.name, entry.id))
    if not found:
        return None
    out = [f"Total events captured on [{accept_date(now)}] : {state.process.error_events}\n"]
    for side, capture, name, proxy_id in entries:
        out.append(" \n" + _error_block(side, capture, name, proxy_id))
    return "".join(out)


def _error_block(side: str, c: ErrorCapture, name: str, proxy_id: int) -> str:
    # Credentials are masked: operator level must not reveal the stats passwords.
    data = mask_credentials(c.data[:MAX_SHOWN_ERROR_BYTES])
    if side == "frontend":
        title = f"frontend {name} (#{proxy_id}): invalid request"
        peer = (f"  backend {c.backend or '<NONE>'} (#{c.backend_id}), "
                f"server {c.server or '<NONE>'} (#{c.server_id}), event #{c.event}, src {c.source}\n")
    else:
        title = f"backend {name} (#{proxy_id}): invalid response"
        peer = (f"  frontend {c.frontend or '<NONE>'} (#{c.frontend_id}), "
                f"server {c.server or '<NONE>'} (#{c.server_id}), event #{c.event}, src {c.source}\n")
    lines = [
        f"[{accept_date(c.when)}] {title}\n",
        peer,
        f"  buffer starts at 0 (including 0 out), {MAX_SHOWN_ERROR_BYTES - len(data)} free,\n",
        f"  len {len(data)}, wraps at {MAX_SHOWN_ERROR_BYTES}, error at position {c.error_at}\n",
        "  \n",
    ]
    lines += dump_lines(data)
    return "".join(lines)


def dump_lines(data: bytes) -> list[str]:
    """HAProxy's text dump: `  OFFSET  escaped text`, a line per input line
    (or per DUMP_WIDTH characters), `\\r` `\\n` `\\t` and `\\xHH` escapes."""
    out: list[str] = []
    start = 0
    while start < len(data):
        text: list[str] = []
        width = 0
        pos = start
        while pos < len(data) and width < DUMP_WIDTH:
            byte = data[pos]
            pos += 1
            if byte == 0x0A:
                text.append("\\n")
                break
            if byte == 0x0D:
                piece = "\\r"
            elif byte == 0x09:
                piece = "\\t"
            elif byte == 0x5C:
                piece = "\\\\"
            elif 0x20 <= byte < 0x7F:
                piece = chr(byte)
            else:
                piece = f"\\x{byte:02x}"
            text.append(piece)
            width += len(piece)
        out.append(f"  {start:05d}  {''.join(text)}\n")
        start = pos
    return out
