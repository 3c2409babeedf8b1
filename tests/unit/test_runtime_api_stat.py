"""Reports against HAProxy 2.6's captures, in memory: `show stat` (CSV and
typed), `show info`, `show servers state`, and every golden exchange that
happens before the capture starts changing servers."""

from __future__ import annotations

import pytest

from gproxy.runtime_api import stat_csv
from gproxy.runtime_api.reports import INFO_FIELDS, dump_lines, show_info, uptime_text
from gproxy.runtime_api.stat_csv import FIELD_NAMES, HEADER, StatFilter, show_stat
from runtime_api_support import START, converse, facts, golden_compare, golden_state, substitute_ports

STEPS = golden_compare.load_transcript()["steps"]
FIRST_CHANGE = next(i for i, step in enumerate(STEPS) if step["name"] == "get weight")
# How answers that differ on purpose are compared (see tests/e2e/test_runtime_api_golden.py).
OVERRIDES = {
    "help": "help", "help (user level)": "help", "help show": "help", "prefix only": "help",
    "empty line": "usage", "unknown command": "usage", "near miss show": "usage", "near miss get": "usage",
    "bad: set maxconn": "usage", "bad: shutdown sessions": "usage", "prompt empty line": "prompt_usage",
    "bad: show servers state be_static extra": "servers_state",
}
BEFORE_CHANGES = [step for step in STEPS[:FIRST_CHANGE] if step.get("action") != "settle"
                  and step["name"] != "drain web2"]


def _tokenized(answer: bytes) -> str:
    from runtime_api_support import PORTS
    return golden_compare.tokenize_ports(answer.decode("latin-1"), PORTS)


@pytest.mark.parametrize("step", BEFORE_CHANGES, ids=[s["name"] for s in BEFORE_CHANGES])
def test_golden_exchange(step):
    state = golden_state()
    data = substitute_ports(step["send"]).encode("latin-1")
    answer, closed = converse(state, data, level=step["socket"], now=START + 3, eof=step["read"] == "shut")
    ours = _tokenized(answer) + ("<EOF>" if closed else "<TIMEOUT>")
    assert golden_compare.compare(step, ours, OVERRIDES.get(step["name"])) == []


def test_header_is_haproxys():
    golden = golden_compare.steps_by_name()["show stat"]["answer"]
    assert HEADER == golden.splitlines()[0] + "\n"
    assert len(FIELD_NAMES) == 128 and FIELD_NAMES[103] == "-"
    assert FIELD_NAMES[:2] == ("pxname", "svname") and FIELD_NAMES[99] == "uweight"


def test_every_row_has_every_column_and_a_trailing_comma():
    state = golden_state()
    for line in show_stat(state, START).splitlines()[1:]:
        assert line.endswith(",") and len(line.split(",")) == 129


def test_status_strings_follow_the_health_state():
    state = golden_state()
    rows = {tuple(line.split(",")[:2]): line.split(",")[17] for line in show_stat(state, START).splitlines()[1:]}
    assert rows[("app", "web1")] == "UP"
    assert rows[("app", "web2")] == "DRAIN"
    assert rows[("app", "web3")] == "DOWN"
    assert rows[("app", "web4")] == "no check"
    assert rows[("app", "web5")] == "MAINT"
    assert rows[("app", "FRONTEND")] == "OPEN"
    assert rows[("app", "BACKEND")] == "UP"


def test_backend_weight_act_bck_count_usable_servers_only():
    state = golden_state()
    row = [line.split(",") for line in show_stat(state, START).splitlines() if line.startswith("app,BACKEND")][0]
    # web1 (10) + web4 (1); web2 is drained, web3 down, web5 in maintenance; bk1 is the backup.
    assert row[18:21] == ["11", "2", "1"]
    assert row[FIELD_NAMES.index("uweight")] == "11"


def test_backend_with_only_backups_up_shows_backup_weight():
    from gproxy.health import SetAdmin
    state = golden_state()
    for name in ("web1", "web4"):
        state.backends["app"].by_name[name].apply(SetAdmin("maint"), START)
    row = [line.split(",") for line in show_stat(state, START).splitlines() if line.startswith("app,BACKEND")][0]
    assert row[17:21] == ["UP", "1", "0", "1"]
    state.backends["app"].by_name["bk1"].apply(SetAdmin("maint"), START)
    row = [line.split(",") for line in show_stat(state, START).splitlines() if line.startswith("app,BACKEND")][0]
    assert row[17:21] == ["DOWN", "0", "0", "0"]


def test_stopping_process_shows_frontends_stop():
    state = golden_state()
    state.process.stopping = True
    assert ",STOP," in show_stat(state, START, StatFilter(types=1))


def test_csv_quotes_free_text_with_commas_or_quotes():
    row = [None] * len(FIELD_NAMES)
    row[0], row[1], row[2] = "app", "web1", 3
    row[FIELD_NAMES.index("last_chk")] = 'said "no", twice'
    row[FIELD_NAMES.index("check_desc")] = "Layer7 wrong status"
    fields = stat_csv.csv_line(row).split(",")
    assert fields[:3] == ["app", "web1", "3"]
    line = stat_csv.csv_line(list(row))
    assert ',"said ""no"", twice",' in line and ",Layer7 wrong status," in line


def test_lastchg_and_downtime_follow_the_clock():
    state = golden_state()
    line = [l for l in show_stat(state, START + 42).splitlines() if l.startswith("app,web3,")][0].split(",")
    assert line[FIELD_NAMES.index("lastchg")] == "42"
    assert line[FIELD_NAMES.index("downtime")] == "42"


def test_typed_positions_skip_the_marker():
    state = golden_state()
    text = show_stat(state, START, StatFilter(typed=True, iid=2, types=4, sid=1))
    lines = text.splitlines()
    assert lines[0] == "S.2.1.0.pxname.1:KNS:str:app"
    assert "S.2.1.103.ssl_sess.1:MCP:u64:0" in lines
    assert not any(".-." in line for line in lines)


def test_show_info_fields_are_haproxys_in_order():
    golden = golden_compare.steps_by_name()["show info"]["answer"]
    names = [line.partition(": ")[0] for line in golden.splitlines() if ": " in line]
    assert [name for _, name, _ in INFO_FIELDS] == names
    state = golden_state()
    ours = show_info(state, START + 8, facts())
    assert ours.splitlines()[6:9] == ["Pid: 4242", "Uptime: 0d 0h00m08s", "Uptime_sec: 8"]


def test_uptime_text():
    assert uptime_text(0) == "0d 0h00m00s"
    assert uptime_text(90061) == "1d 1h01m01s"


def test_show_errors_dump_format_is_haproxys():
    golden = golden_compare.steps_by_name()["show errors"]["answer"]
    expected = [line + "\n" for line in golden.splitlines() if line.startswith("  000")]
    assert dump_lines(b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n") == expected
