"""The HTML statistics page, in the spirit of HAProxy's.

A header with the process facts, a colour legend and the display options;
an optional banner for the result of an admin action; then one table per
proxy, in the file's order, with HAProxy's column groups (Queue, Session
rate, Sessions, Bytes, Denied, Errors, Warnings, Server), a row for the
frontend side, a row per server and a row for the backend side. Server rows
carry HAProxy's CSS classes (`active_up`, `backup_up`, `active_going_down`,
`active_going_up`, `active_down`, `active_nolb`, `active_draining`,
`active_no_check`, `maintain`, ...), derived from the same status text as
`show stat`. With `admin`, each backend's table is a form: a checkbox per
server, an action list and an Apply button, posted back to the page.

Pure string building: the figures are the runtime API's rows
(`stat_csv.*_row`), every name and text is HTML-escaped, and the clock and
process facts come from the caller.
"""

from __future__ import annotations

from html import escape

from gproxy import __version__
from gproxy.health import OpState
from gproxy.runtime import ServerRuntime
from gproxy.runtime_api import stat_csv
from gproxy.runtime_api.reports import INFO_FIELDS, PRODUCT_NAME, ProcessFacts, info_values
from gproxy.runtime_api.view import ProxyEntry, ProxyState, proxies
from gproxy.stats_page.options import ADMIN_ACTIONS, STATUS_BANNERS, PageOptions
from gproxy.stats_page.settings import StatsSettings

_INDEX = {name: index for index, name in enumerate(stat_csv.FIELD_NAMES)}

# Column groups and their columns, left to right after the name column.
COLUMN_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Queue", ("Cur", "Max", "Limit")),
    ("Session rate", ("Cur", "Max", "Limit")),
    ("Sessions", ("Cur", "Max", "Limit", "Total", "LbTot", "Last")),
    ("Bytes", ("In", "Out")),
    ("Denied", ("Req", "Resp")),
    ("Errors", ("Req", "Conn", "Resp")),
    ("Warnings", ("Retr", "Redis")),
    ("Server", ("Status", "LastChk", "Wght", "Act", "Bck", "Chk", "Dwn", "Dwntme", "Thrtle")),
)
COLUMNS = sum(len(columns) for _, columns in COLUMN_GROUPS)  # 30

# The colour legend: (CSS class, what it means).
LEGEND: tuple[tuple[str, str], ...] = (
    ("active_up", "active UP"),
    ("backup_up", "backup UP"),
    ("active_going_down", "active UP, going down"),
    ("backup_going_down", "backup UP, going down"),
    ("active_going_up", "active DOWN, going up"),
    ("backup_going_up", "backup DOWN, going up"),
    ("active_down", "active or backup DOWN"),
    ("active_no_check", "not checked"),
    ("active_nolb", "active or backup soft-stopped (NOLB)"),
    ("active_draining", "active or backup DRAIN (no new clients)"),
    ("maintain", "active or backup in maintenance (MAINT)"),
)

STYLE = """\
body { font-family: sans-serif; font-size: 12px; color: #000; background: #fff; margin: 8px; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
h1 a { color: #2a1a6e; text-decoration: none; }
h2 { font-size: 16px; font-style: italic; color: #5a2a9a; margin: 0 0 6px 0; }
h3 { font-size: 14px; color: #9a0036; background: #ecebd8; margin: 8px 0 4px 0; padding: 1px 4px; }
hr { border: 0; border-bottom: 2px solid #000; margin: 4px 0; }
ul { margin: 2px 0; padding-left: 18px; }
table.info td { vertical-align: top; padding: 0 12px 0 0; font-size: 11px; }
table.lgd { border-collapse: collapse; }
table.lgd td { border: 1px solid #888; padding: 1px 5px; font-size: 11px; }
table.tbl { border-collapse: collapse; margin-bottom: 2px; }
table.tbl th, table.tbl td { border: 1px solid #888; padding: 1px 3px; font-size: 10px; white-space: nowrap; }
table.tbl td { text-align: right; }
table.tbl td.name, table.tbl td.ac { text-align: left; }
table.tbl th.pxname { background: #9a0036; color: #ffff50; text-align: left; }
table.tbl th.pxname a { color: #ffff50; text-decoration: none; }
table.tbl th.empty { border: 0; background: #fff; }
tr.titre th { background: #22c8c8; color: #000; }
tr.frontend, tr.backend { background: #ecebd8; font-weight: bold; }
.active_up { background: #c0f8c0; }
.backup_up { background: #b4d0f8; }
.active_going_down { background: #fff8a8; }
.backup_going_down { background: #c468f8; }
.active_going_up { background: #ffd028; }
.backup_going_up { background: #f888f8; }
.active_down, .backup_down { background: #ff9898; }
.active_nolb { background: #28a0f8; }
.backup_nolb { background: #98b0e0; }
.active_draining { background: #28a0f8; }
.backup_draining { background: #cc9a00; }
.active_no_check, .backup_no_check { background: #e0e0e0; }
.maintain { background: #c47c28; }
td.lgd { padding-left: 8px; }
div.banner { margin: 6px 0; padding: 4px 8px; border: 1px solid #888; font-weight: bold; }
div.banner a { float: right; color: #000; }
p.admin { margin: 2px 0 10px 0; }
"""

# Runs in the page: the header checkbox of an admin table (un)checks its servers.
_SELECT_ALL = "for (const box of this.form.querySelectorAll('input[name=s]')) box.checked = this.checked;"


def human_seconds(seconds: int) -> str:
    """HAProxy's short durations: 7s, 3m20s, 1h02m, 2d03h."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def server_css_class(status: str, backup: bool) -> str:
    """The row class of a server, from its `show stat` status text."""
    if status.startswith("MAINT"):
        return "maintain"
    side = "backup" if backup else "active"
    if status.startswith("DRAIN"):
        state = "draining"
    elif status.startswith("NOLB"):
        state = "nolb"
    elif status == "no check":
        state = "no_check"
    elif status == "UP":
        state = "up"
    elif status.startswith("UP "):
        state = "going_down"
    elif status == "DOWN":
        state = "down"
    else:  # "DOWN 1/2": passing checks on the way up
        state = "going_up"
    return f"{side}_{state}"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _field(row: list, name: str) -> str:
    value = row[_INDEX[name]]
    return "" if value is None else str(value)


def _last_session(row: list) -> str:
    value = row[_INDEX["lastsess"]]
    if value is None:
        return ""
    return "never" if value < 0 else human_seconds(value)


def _last_check(row: list) -> str:
    """`L7OK/200 in 1ms`, the reason in the tooltip."""
    status = _field(row, "check_status")
    if not status:
        return ""
    code = _field(row, "check_code")
    text = status + (f"/{code}" if code else "") + f" in {_field(row, 'check_duration') or 0}ms"
    detail = _field(row, "check_desc")
    info = _field(row, "last_chk")
    if info:
        detail = f"{detail}: {info}" if detail else info
    return f'<span title="{_e(detail)}">{_e(text)}</span>'


def _cells(values: list[str]) -> str:
    return "".join(f"<td>{value}</td>" for value in values)


def _status_cell(row: list) -> str:
    lastchg = row[_INDEX["lastchg"]]
    since = f"{human_seconds(lastchg)} " if lastchg is not None else ""
    return _e(since + _field(row, "status"))


def _downtime(row: list) -> str:
    downtime = row[_INDEX["downtime"]]
    return "" if downtime is None else human_seconds(downtime)


def _fields(row: list, *names: str) -> list[str]:
    """The named fields of `row`, escaped; "" names an empty cell."""
    return [_e(_field(row, name)) if name else "" for name in names]


def frontend_cells(row: list) -> list[str]:
    """The 30 cells of a frontend row, column group by column group."""
    return (["", "", ""]
            + _fields(row, "rate", "rate_max", "rate_lim")
            + _fields(row, "scur", "smax", "slim", "stot", "", "")
            + _fields(row, "bin", "bout", "dreq", "dresp", "ereq", "", "", "", "")
            + [_e(_field(row, "status"))] + [""] * 8)


def server_cells(row: list, backup: bool) -> list[str]:
    """The 30 cells of a server row."""
    return (_fields(row, "qcur", "qmax") + [_e(_field(row, "qlimit")) or "-"]
            + _fields(row, "rate", "rate_max", "")
            + _fields(row, "scur", "smax") + [_e(_field(row, "slim")) or "-"]
            + _fields(row, "stot", "lbtot") + [_e(_last_session(row))]
            + _fields(row, "bin", "bout", "", "dresp", "", "econ", "eresp", "wretr", "wredis")
            + [_status_cell(row), _last_check(row), _e(_field(row, "weight")),
               "-" if backup else "Y", "Y" if backup else "-"]
            + _fields(row, "chkfail", "chkdown") + [_e(_downtime(row)), "-"])


def backend_cells(row: list) -> list[str]:
    """The 30 cells of a backend row."""
    return (_fields(row, "qcur", "qmax", "", "rate", "rate_max", "")
            + _fields(row, "scur", "smax", "slim", "stot", "lbtot") + [_e(_last_session(row))]
            + _fields(row, "bin", "bout", "dreq", "dresp", "", "econ", "eresp", "wretr", "wredis")
            + [_status_cell(row), ""] + _fields(row, "weight", "act", "bck", "", "chkdown")
            + [_e(_downtime(row)), ""])


def _server_shown(srv: ServerRuntime, options: PageOptions) -> bool:
    """`;up` hides servers that are DOWN or in maintenance, `;no-maint` the latter."""
    maint = srv.health.status_text().startswith("MAINT")
    if options.hide_maint and maint:
        return False
    if options.hide_down and (maint or srv.health.op_state is OpState.STOPPED):
        return False
    return True


def proxy_table(entry: ProxyEntry, settings: StatsSettings, options: PageOptions, now: float,
                stopping: bool) -> str:
    """One proxy: its title, its table and, for an admin, its form."""
    name = _e(entry.name)
    be = entry.backend
    admin = settings.admin and be is not None and bool(be.servers)
    out = [f'<table class="tbl"><tr><th class="pxname"><a name="{name}"></a>'
           f'<a href="#{name}">{name}</a></th><th class="empty"></th></tr></table>\n']
    if admin:
        out.append(f'<form method="post" action="{_e(settings.uri + options.suffix())}">\n')
    out.append('<table class="tbl" width="100%">\n<tr class="titre">')
    if admin:
        out.append(f'<th rowspan="2"><input type="checkbox" title="all servers" onclick="{_e(_SELECT_ALL)}"></th>')
    out.append('<th rowspan="2"></th>')
    out.extend(f'<th colspan="{len(columns)}">{group}</th>' for group, columns in COLUMN_GROUPS)
    out.append('</tr>\n<tr class="titre">')
    out.extend(f"<th>{column}</th>" for _, columns in COLUMN_GROUPS for column in columns)
    out.append("</tr>\n")
    lead = "<td></td>" if admin else ""
    if entry.frontend is not None:
        row = stat_csv.frontend_row(entry.frontend, entry.id, stopping)
        out.append(f'<tr class="frontend">{lead}<td class="name">Frontend</td>{_cells(frontend_cells(row))}</tr>\n')
    if be is not None:
        filtered = options.hide_down or options.hide_maint
        for srv in be.servers:
            if filtered and not _server_shown(srv, options):
                continue
            row = stat_csv.server_row(srv, now, settings.admin)
            backup = srv.cfg.backup
            css = server_css_class(_field(row, "status"), backup)
            title = f' title="{_e(_field(row, "addr"))}"' if _field(row, "addr") else ""
            box = (f'<td class="ac"><input type="checkbox" name="s" value="{_e(srv.name)}"></td>'
                   if admin else "")
            out.append(f'<tr class="{css}" id="{_e(be.name + "/" + srv.name)}">{box}'
                       f'<td class="name"{title}>{_e(srv.name)}</td>{_cells(server_cells(row, backup))}</tr>\n')
        row = stat_csv.backend_row(be, now, settings.admin, filtered)
        out.append(f'<tr class="backend">{lead}<td class="name">Backend</td>{_cells(backend_cells(row))}</tr>\n')
    out.append("</table>\n")
    if admin:
        choices = "".join(f'<option value="{_e(action)}">{_e(label)}</option>'
                          for action, (label, _) in ADMIN_ACTIONS.items())
        out.append(f'<p class="admin">Choose the action to perform on the checked servers: '
                   f'<select name="action"><option value="">---</option>{choices}</select> '
                   f'<input type="hidden" name="b" value="{_e(be.name)}">'
                   f'<input type="submit" value="Apply"></p>\n</form>\n')
    else:
        out.append("<p></p>\n")
    return "".join(out)


def _process_block(info: dict[str, object]) -> str:
    return (
        f"<b>pid = </b>{_e(info['Pid'])} (process #{_e(info['Process_num'])}, nbproc = {_e(info['Nbproc'])}, "
        f"nbthread = {_e(info['Nbthread'])})<br>"
        f"<b>uptime = </b>{_e(info['Uptime'])}<br>"
        f"<b>system limits:</b> ulimit-n = {_e(info['Ulimit-n'])}; <b>maxsock = </b>{_e(info['Maxsock'])}; "
        f"<b>maxconn = </b>{_e(info['Maxconn'])}<br>"
        f"current conns = {_e(info['CurrConns'])}; total conns = {_e(info['CumConns'])}; "
        f"total requests = {_e(info['CumReq'])}<br>"
        f"Running tasks: {_e(info['Tasks'])}; listeners = {_e(info['Listeners'])}"
        + ("; <b>stopping</b>" if info["Stopping"] else "") + "<br>"
    )


def _legend() -> str:
    rows = "".join(f'<tr><td class="{css}">&nbsp;&nbsp;&nbsp;&nbsp;</td><td class="lgd">{_e(text)}</td></tr>'
                   for css, text in LEGEND)
    return f'<table class="lgd">{rows}</table>'


def _display_options(settings: StatsSettings, options: PageOptions) -> str:
    base = settings.uri
    links = []
    if options.hide_down:
        links.append(f'<a href="{_e(base + options.suffix(up=False))}">Show all servers</a>')
    else:
        links.append(f'<a href="{_e(base + options.suffix(up=True))}">Hide \'DOWN\' servers</a>')
    if settings.refresh_ms:
        if options.norefresh:
            links.append(f'<a href="{_e(base + options.suffix(norefresh=False))}">Enable refresh</a>')
        else:
            links.append(f'<a href="{_e(base + options.suffix(norefresh=True))}">Disable refresh</a>')
    links.append(f'<a href="{_e(base + options.suffix())}">Refresh now</a>')
    links.append(f'<a href="{_e(base + ";csv")}">CSV export</a>')
    links.append(f'<a href="{_e(base + ";json")}">JSON export</a>')
    return "<b>Display option:</b><ul>" + "".join(f"<li>{link}</li>" for link in links) + "</ul>"


def _banner(settings: StatsSettings, options: PageOptions) -> str:
    if options.status is None:
        return ""
    text, css = STATUS_BANNERS[options.status]
    close = _e(settings.uri + options.suffix())
    return (f'<div class="banner {css}" id="action-status">'
            f'<a href="{close}" title="Remove this message">[X]</a>{_e(text)}</div>\n')


def render_page(state: ProxyState, settings: StatsSettings, options: PageOptions, now: float,
                facts: ProcessFacts) -> str:
    """The whole page."""
    info = {name: value for (_, name, _), value in zip(INFO_FIELDS, info_values(state, now, facts))}
    title = f"Statistics Report for {PRODUCT_NAME}"
    product = PRODUCT_NAME if settings.hide_version else f"{PRODUCT_NAME} version {__version__}"
    node = f" on {info['node']}" if info.get("node") else ""
    parts = [
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">",
        f"<title>{_e(title)}</title>\n<style>\n{STYLE}</style></head>\n<body>\n",
        f"<h1><a href=\"{_e(settings.uri)}\">{_e(product)}</a></h1>\n",
        f"<h2>{_e(title)} (pid {_e(info['Pid'])}{_e(node)})</h2>\n<hr>\n",
        "<h3>&gt; General process information</h3>\n",
        '<table class="info"><tr>',
        f"<td>{_process_block(info)}</td>",
        f"<td>{_legend()}</td>",
        f"<td>{_display_options(settings, options)}</td>",
        "</tr></table>\n",
        _banner(settings, options),
    ]
    stopping = state.process.stopping
    for entry in proxies(state):
        parts.append(proxy_table(entry, settings, options, now, stopping))
    parts.append("</body></html>\n")
    return "".join(parts)
