"""The HTML page: HAProxy's row classes for every server state, the table
layout (read back with the standard library's HTML parser), escaping, the
admin form and the display options."""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gproxy.health import CheckOutcome, CheckStatus, ForceHealth, SetAdmin
from gproxy.stats_page.html import COLUMN_GROUPS, COLUMNS, LEGEND, human_seconds, render_page, server_css_class
from gproxy.stats_page.options import ADMIN_ACTIONS, PageOptions
from gproxy.stats_page.settings import StatsSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_api_support import START, build_state, facts  # noqa: E402

CONFIG = """
[frontend.www]
bind = ["127.0.0.1:1"]
default_backend = "app"

[backend.app]
default_server = { check = true, rise = 2, fall = 3 }
server = [
  { name = "up", address = "127.0.0.1:2" },
  { name = "goingdown", address = "127.0.0.1:3" },
  { name = "down", address = "127.0.0.1:4" },
  { name = "goingup", address = "127.0.0.1:5" },
  { name = "nocheck", address = "127.0.0.1:6", check = false },
  { name = "drained", address = "127.0.0.1:7" },
  { name = "maint", address = "127.0.0.1:8" },
  { name = "nolb", address = "127.0.0.1:9" },
  { name = "spare", address = "127.0.0.1:10", backup = true },
  { name = "sparedown", address = "127.0.0.1:11", backup = true },
]

[listen.tcp]
mode = "tcp"
bind = ["127.0.0.1:12"]
server = [{ name = "t1", address = "127.0.0.1:13" }]
"""
OK = CheckOutcome(CheckStatus.L7OK, code=200, duration_ms=4)
FAIL = CheckOutcome(CheckStatus.L7STS, code=500, duration_ms=2, info="Internal <b>Error</b> & \"more\"")
URI = "/stats"
EXPECTED_CLASSES = {
    "up": "active_up", "goingdown": "active_going_down", "down": "active_down", "goingup": "active_going_up",
    "nocheck": "active_no_check", "drained": "active_draining", "maint": "maintain", "nolb": "active_nolb",
    "spare": "backup_up", "sparedown": "backup_down",
}


def _state():
    state = build_state(CONFIG)
    servers = state.backends["app"].by_name
    for name in ("up", "goingdown", "drained", "nolb", "spare"):
        servers[name].check_done(OK, START)
    servers["goingdown"].check_done(FAIL, START)  # UP 2/3
    for _ in range(3):
        servers["down"].check_done(FAIL, START)
        servers["goingup"].check_done(FAIL, START)
        servers["sparedown"].check_done(FAIL, START)
    servers["goingup"].check_done(OK, START)  # DOWN 1/2
    servers["drained"].apply(SetAdmin("drain"), START)
    servers["maint"].apply(SetAdmin("maint"), START)
    servers["nolb"].apply(ForceHealth("stopping"), START)
    return state


class _Rows(HTMLParser):
    """Every <tr>: its attributes and its cells' text; forms and inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[dict, list[str]]] = []
        self.inputs: list[dict] = []
        self.forms: list[dict] = []
        self.options: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "tr":
            self.rows.append((attributes, []))
        elif tag in ("td", "th") and self.rows:
            self._cell = []
            self.rows[-1][1].append("")
        elif tag == "input":
            self.inputs.append(attributes)
        elif tag == "form":
            self.forms.append(attributes)
        elif tag == "option":
            self.options.append(attributes.get("value", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None and self.rows:
            self.rows[-1][1][-1] += data


def parse(page: str) -> _Rows:
    parser = _Rows()
    parser.feed(page)
    parser.close()
    return parser


def page(state, settings: StatsSettings = StatsSettings(uri=URI), options: PageOptions = PageOptions(),
         now: float = START + 75) -> str:
    return render_page(state, settings, options, now, facts())


@pytest.mark.parametrize("status, backup, css", [
    ("UP", False, "active_up"), ("UP", True, "backup_up"),
    ("UP 2/3", False, "active_going_down"), ("UP 1/3", True, "backup_going_down"),
    ("DOWN", False, "active_down"), ("DOWN", True, "backup_down"),
    ("DOWN 1/2", False, "active_going_up"), ("DOWN 1/2", True, "backup_going_up"),
    ("no check", False, "active_no_check"), ("no check", True, "backup_no_check"),
    ("DRAIN", False, "active_draining"), ("DRAIN 2/3", True, "backup_draining"),
    ("NOLB", False, "active_nolb"), ("NOLB 1/3", True, "backup_nolb"),
    ("MAINT", False, "maintain"), ("MAINT (via app/x)", True, "maintain"),
])
def test_css_class_of_each_status(status: str, backup: bool, css: str) -> None:
    assert server_css_class(status, backup) == css


def test_each_server_row_has_its_state_class_and_status() -> None:
    parsed = parse(page(_state()))
    rows = {attrs["id"]: (attrs["class"], cells) for attrs, cells in parsed.rows if attrs.get("id")}
    assert {key.split("/")[1]: css for key, (css, _) in rows.items() if key.startswith("app/")} == EXPECTED_CLASSES
    status_column = 1 + [c for _, columns in COLUMN_GROUPS for c in columns].index("Status")
    statuses = {key.split("/")[1]: cells[status_column] for key, (_, cells) in rows.items()}
    assert statuses["up"] == "1m15s UP" and statuses["goingdown"] == "1m15s UP 2/3"
    assert statuses["goingup"] == "1m15s DOWN 1/2" and statuses["drained"] == "1m15s DRAIN"
    assert statuses["maint"] == "1m15s MAINT" and statuses["nocheck"] == "1m15s no check"
    assert statuses["t1"] == "1m15s no check"


def test_every_row_has_every_column() -> None:
    parsed = parse(page(_state()))
    titles = [cells for attrs, cells in parsed.rows if attrs.get("class") == "titre"]
    assert [cell for cell in titles[0] if cell] == [group for group, _ in COLUMN_GROUPS]
    assert len(titles[1]) == COLUMNS == 30
    body = [(attrs, cells) for attrs, cells in parsed.rows if attrs.get("class") not in (None, "titre")]
    legend = {css for css, _ in LEGEND}
    data = [(attrs, cells) for attrs, cells in body if attrs.get("class") not in legend or attrs.get("id")]
    names = [cells[0] for _, cells in data]
    assert names == ["Frontend", "up", "goingdown", "down", "goingup", "nocheck", "drained", "maint", "nolb",
                     "spare", "sparedown", "Backend", "Frontend", "t1", "Backend"]
    assert all(len(cells) == 1 + COLUMNS for _, cells in data)


def test_last_check_cell_and_its_reason_are_escaped() -> None:
    text = page(_state())
    assert "L7STS/500 in 2ms" in text and "L7OK/200 in 4ms" in text
    assert 'title="Layer7 wrong status: Internal &lt;b&gt;Error&lt;/b&gt; &amp; &quot;more&quot;"' in text
    assert "<b>Error</b>" not in text


def test_uri_is_escaped_in_every_link() -> None:
    settings = StatsSettings(uri='/s?"<x>&', auth=("a:b",), admin=True, refresh_ms=1000)
    text = page(_state(), settings, PageOptions(status="DONE"))
    assert '<x>' not in text and '/s?"' not in text
    assert 'action="/s?&quot;&lt;x&gt;&amp;"' in text
    assert 'href="/s?&quot;&lt;x&gt;&amp;;csv"' in text


def test_admin_form_per_backend() -> None:
    settings = StatsSettings(uri=URI, auth=("a:b",), admin=True)
    parsed = parse(page(_state(), settings, PageOptions(hide_maint=True)))
    assert parsed.forms == [{"method": "post", "action": URI + ";no-maint"}] * 2
    boxes = [i["value"] for i in parsed.inputs if i.get("name") == "s"]
    assert boxes == ["up", "goingdown", "down", "goingup", "nocheck", "drained", "nolb", "spare", "sparedown", "t1"]
    assert [i["value"] for i in parsed.inputs if i.get("name") == "b"] == ["app", "tcp"]
    assert [i["value"] for i in parsed.inputs if i.get("type") == "submit"] == ["Apply", "Apply"]
    assert parsed.options == ["", *ADMIN_ACTIONS] * 2
    # Rows of an admin table have a checkbox column first (empty for the
    # frontend and backend rows); the frontend-only table of www has none.
    widths = {cells[cells.index(name)] + str(cells.index(name)): len(cells) for _, cells in parsed.rows
              for name in ("Frontend", "Backend") if name in cells}
    assert widths == {"Frontend0": 1 + COLUMNS, "Frontend1": 2 + COLUMNS, "Backend1": 2 + COLUMNS}


def test_no_form_without_admin() -> None:
    parsed = parse(page(_state()))
    assert parsed.forms == [] and not [i for i in parsed.inputs if i.get("name") == "s"]


def test_hide_down_and_hide_maint() -> None:
    state = _state()
    up_only = {a["id"].split("/")[1] for a, _ in parse(page(state, options=PageOptions(hide_down=True))).rows
               if a.get("id")}
    assert up_only == {"up", "goingdown", "nocheck", "drained", "nolb", "spare", "t1"}
    no_maint = {a["id"].split("/")[1] for a, _ in parse(page(state, options=PageOptions(hide_maint=True))).rows
                if a.get("id")}
    assert no_maint == set(EXPECTED_CLASSES) - {"maint"} | {"t1"}


def test_display_options_and_banner() -> None:
    settings = StatsSettings(uri=URI, refresh_ms=5000)
    text = page(_state(), settings, PageOptions(hide_down=True, status="PART"))
    assert f'href="{URI}">Show all servers' in text and f'href="{URI};up;norefresh">Disable refresh' in text
    assert f'href="{URI};csv">CSV export' in text and "Action partially processed" in text
    plain = page(_state(), StatsSettings(uri=URI), PageOptions(norefresh=True))
    assert "refresh</a>" not in plain and 'id="action-status"' not in plain
    assert f'href="{URI};up;norefresh">Hide' in plain


def test_version_can_be_hidden() -> None:
    assert "gproxy version 0.1.0" in page(_state())
    hidden = page(_state(), StatsSettings(uri=URI, hide_version=True))
    assert "version" not in hidden.split("<body>")[1].split("</h1>")[0]


def test_process_facts_are_shown() -> None:
    text = page(_state())
    assert "<b>pid = </b>4242" in text and "(pid 4242 on unit)" in text and "<b>maxconn = </b>4096" in text
    assert "<title>Statistics Report for gproxy</title>" in text


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (59, "59s"), (60, "1m00s"), (200, "3m20s"),
                                           (3720, "1h02m"), (86399, "23h59m"), (183600, "2d03h")])
def test_human_seconds(seconds: int, text: str) -> None:
    assert human_seconds(seconds) == text
