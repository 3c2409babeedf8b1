"""checks.haproxy_csv on real HAProxy 2.6.12 captures and crafted variants."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks import haproxy_csv
from checks.haproxy_csv import DOWN, DRAIN, MAINT, NO_CHECK, NOLB, OTHER, UP, StatsFormatError, parse_status

DATA = Path(__file__).resolve().parents[1] / "checks_data"


def load(name: str) -> str:
    return (DATA / name).read_text()


@pytest.mark.parametrize("text, kind, progress, detail, serving, administrative", [
    ("UP", UP, None, None, True, False),
    ("UP 1/3", UP, (1, 3), None, True, False),
    ("DOWN", DOWN, None, None, False, False),
    ("DOWN 1/2", DOWN, (1, 2), None, False, False),
    ("DOWN (agent)", DOWN, None, "agent", False, False),
    ("NOLB", NOLB, None, None, False, True),
    ("NOLB 2/3", NOLB, (2, 3), None, False, True),
    ("DRAIN", DRAIN, None, None, False, True),
    ("DRAIN 1/3", DRAIN, (1, 3), None, False, True),
    ("DRAIN (agent)", DRAIN, None, "agent", False, True),
    ("MAINT", MAINT, None, None, False, True),
    ("MAINT (via be_app/web5)", MAINT, None, "via be_app/web5", False, True),
    ("MAINT (resolution)", MAINT, None, "resolution", False, True),
    ("no check", NO_CHECK, None, None, True, False),
    ("BROKEN", OTHER, None, None, False, False),
    ("UP x/y", OTHER, None, None, False, False),
    ("", OTHER, None, None, False, False),
])
def test_status_forms(text, kind, progress, detail, serving, administrative):
    status = parse_status(text)
    assert (status.kind, status.progress, status.detail) == (kind, progress, detail)
    assert status.serving is serving
    assert status.administrative is administrative
    assert status.text == text


def test_real_capture_rows_and_kinds():
    stats = haproxy_csv.parse_stat_csv(load("haproxy-2.6.12-capture.csv"))
    assert len(stats.columns) == 128 and stats.columns[-1] == "h1_spliced_bytes_out"
    assert [(r.proxy, r.name, r.kind) for r in stats.rows][:3] == [
        ("fe_main", "FRONTEND", "frontend"), ("be_app", "web1", "server"), ("be_app", "web3", "server")]
    backends = {b.name: b for b in stats.backends()}
    assert list(backends) == ["be_app", "be_checks", "be_nolb", "tcp_lb"]
    app = backends["be_app"]
    assert app.row is not None and app.row.status.text == "UP" and app.row.number("slim") == 998
    assert [s.name for s in app.servers] == ["web1", "web3", "web4", "web5", "web6", "bk1"]
    assert [s.status.kind for s in app.servers] == [UP, DOWN, NO_CHECK, MAINT, MAINT, UP]
    assert app.servers[4].status.detail == "via be_app/web5"
    assert [s.backup for s in app.servers] == [False] * 5 + [True]
    web3 = stats.server("be_app", "web3")
    assert web3 is not None
    assert (web3.text("check_status"), web3.text("last_chk"), web3.number("lastchg")) == (
        "L4CON", "Connection refused", 9)
    assert web3.number("check_code") is None and web3.count("check_code") == 0
    assert backends["be_checks"].row is None  # the capture has no BACKEND row for it
    assert stats.server("be_checks", "ctout").text("check_status") == "* L7TOUT"
    assert stats.server("be_app", "nope") is None


def test_seed_captures_from_debian_haproxy():
    ok = haproxy_csv.parse_stat_csv(load("haproxy-2.6.12-seed-ok.csv"))
    (backend,) = ok.backends()
    assert backend.name == "esup-proxy"
    assert [(s.name, s.status.text, s.backup) for s in backend.servers] == [
        ("ents3", "UP", False), ("ents2", "UP", False), ("ents1", "UP", False), ("ent-maintenance", "UP", True)]
    drained = haproxy_csv.parse_stat_csv(load("haproxy-2.6.12-seed-drain-maint.csv"))
    assert [s.status.kind for s in drained.backends()[0].servers] == [UP, DRAIN, MAINT, UP]
    [frontend, other] = drained.of_kind("frontend")
    assert (frontend.proxy, frontend.status.text, other.proxy) == ("esup-proxy", "OPEN", "stats")


def test_columns_are_found_by_name_not_position():
    text = ("# svname,status,pxname,bck,type,\n"
            "BACKEND,UP,web,0,1,\n"
            "s1,UP 2/3,web,0,2,\n"
            "s2,DOWN,web,1,2,\n")
    stats = haproxy_csv.parse_stat_csv(text)
    (backend,) = stats.backends()
    assert backend.row is not None and [s.name for s in backend.servers] == ["s1", "s2"]
    assert backend.servers[0].status.progress == (2, 3) and backend.servers[1].backup


def test_missing_type_column_falls_back_to_svname():
    stats = haproxy_csv.parse_stat_csv("# pxname,svname,status\nfe,FRONTEND,OPEN\nbe,a,UP\nbe,BACKEND,UP\n")
    assert [r.kind for r in stats.rows] == ["frontend", "server", "backend"]


def test_quoted_values_and_short_rows():
    text = ('# pxname,svname,status,last_chk,check_desc,type,\n'
            'be,s1,DOWN,"HTTP status check returned code <3C>500<3E>, ""boom""",Layer7 wrong status,2,\n'
            'be,s2,UP\n')
    rows = haproxy_csv.parse_stat_csv(text).rows
    assert rows[0].text("last_chk") == 'HTTP status check returned code <3C>500<3E>, "boom"'
    assert rows[0].text("check_desc") == "Layer7 wrong status"
    assert rows[1].text("type") == "" and rows[1].kind == "server" and rows[1].status.kind == UP


@pytest.mark.parametrize("text, message", [
    ("", "not a `show stat` CSV"),
    ("Permission denied\n\n", "it starts with 'Permission denied'"),
    ("Unknown command. Please enter one of the following commands only:\n  help\n", "Unknown command"),
    ("# foo,bar\n1,2\n", "no column pxname, svname"),
    ("\x00\x01\x02garbage", "not a `show stat` CSV"),
    ("# pxname,svname\nlonely\n", "malformed"),
])
def test_garbage_is_refused_with_an_excerpt(text, message):
    with pytest.raises(StatsFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        haproxy_csv.parse_stat_csv(text)


def test_show_info():
    info = haproxy_csv.parse_info(load("haproxy-2.6.12-show-info.txt"))
    assert info["Name"] == "HAProxy" and int(info["Maxconn"]) > 0 and "CurrConns" in info
    assert "Unstoppable Jobs" in info and "Build info" in info
    with pytest.raises(StatsFormatError, match="not a `show info` answer"):
        haproxy_csv.parse_info("Permission denied\n\n")


def test_select_filters():
    names = ["a", "b", "c"]
    assert haproxy_csv.select(names, [], []) == names
    assert haproxy_csv.select(names, ["c", "a"], []) == ["a", "c"]
    assert haproxy_csv.select(names, [], ["b"]) == ["a", "c"]
    assert haproxy_csv.select(names, ["a", "b"], ["b"]) == ["a"]
