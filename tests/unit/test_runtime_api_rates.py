"""Rates and maxima in the reports (show stat in its three forms, show info,
the stats page and metrics read the same rows), the rate sampler's pass,
`clear counters`, and `set maxconn global`; all in memory, synthetic clock."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gproxy.rate_sampler import sample_all
from gproxy.runtime import Counters
from gproxy.runtime_api import stat_csv
from gproxy.stats_page.html import frontend_cells, server_cells
from gproxy.stats_page.prometheus import render_metrics
from runtime_api_support import START, ask, facts, golden_state

MONO = 1000.0  # the sampler's monotonic clock at the start of a test
TICK = 0.2


def _csv(state, line: str = "show stat") -> dict[str, dict[str, str]]:
    lines = ask(state, line).splitlines()
    names = lines[0][2:].split(",")
    return {f"{f[0]}/{f[1]}": dict(zip(names, f)) for f in (row.split(",") for row in lines[1:])}


def _info(state) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in ask(state, "show info").splitlines())


def _traffic(state, ticks: int, per_tick: int, start: float = MONO) -> float:
    """`per_tick` requests per sampler tick on app/web1 through frontend app."""
    fe = state.frontends["app"]
    be = state.backends["app"]
    srv = be.by_name["web1"]
    now = start
    for _ in range(ticks):
        for _ in range(per_tick):
            fe.counters.enter(START)
            fe.counters.conn_tot += 1
            fe.counters.req_tot += 1
            state.process.cum_conns += 1
            state.process.bytes_out += 100
            be.take_slot(srv, START)
            be.release(srv)
            fe.counters.cur -= 1
        now += TICK
        sample_all(state, now)
    return now


def test_rates_in_show_stat_while_loaded_and_back_to_zero_after():
    state = golden_state()
    sample_all(state, MONO)
    now = _traffic(state, ticks=10, per_tick=20)  # 100 requests per second for 2 s
    rows = _csv(state)
    fe, be, srv = rows["app/FRONTEND"], rows["app/BACKEND"], rows["app/web1"]
    for row, fields in ((fe, ("rate", "req_rate", "conn_rate")), (be, ("rate",)), (srv, ("rate",))):
        for name in fields:
            assert 80 <= int(row[name]) <= 120, (name, row[name])
            assert int(row[name + "_max"]) >= int(row[name])
    assert rows["app/web2"]["rate"] == "0"  # no traffic there
    assert fe["rate_lim"] == "0" and be["rate_lim"] == ""  # no limit configured; empty where HAProxy leaves it
    info = _info(state)
    assert 80 <= int(info["ConnRate"]) <= int(info["MaxConnRate"])
    assert 80 <= int(info["SessRate"]) <= int(info["MaxSessRate"])
    assert int(info["BytesOutRate"]) >= 8000
    for _ in range(12):  # 2.4 s of silence
        now += TICK
        sample_all(state, now)
    rows = _csv(state)
    assert rows["app/FRONTEND"]["rate"] == rows["app/FRONTEND"]["req_rate"] == "0"
    assert rows["app/web1"]["rate"] == "0"
    assert int(rows["app/FRONTEND"]["req_rate_max"]) >= 80  # the max stays
    info = _info(state)
    assert info["ConnRate"] == info["SessRate"] == info["BytesOutRate"] == "0"
    assert int(info["MaxConnRate"]) >= 80


def test_typed_and_json_forms_carry_the_same_rates():
    state = golden_state()
    sample_all(state, MONO)
    _traffic(state, ticks=5, per_tick=10)
    rate = _csv(state)["app/FRONTEND"]["rate"]
    assert rate != "0"
    typed = [line for line in ask(state, "show stat typed").splitlines() if line.startswith("F.")]
    assert any(".rate.1:MRP:u32:" + rate == line[line.index(".rate."):] for line in typed if ".rate." in line)
    rows = json.loads(ask(state, "show stat json"))
    values = {(f["objType"], f["proxyId"], f["id"], f["field"]["name"]): f["value"]["value"]
              for row in rows for f in row}
    proxy_id = state.frontends["app"].cfg.id
    assert values[("Frontend", proxy_id, 0, "rate")] == int(rate)
    assert values[("Frontend", proxy_id, 0, "req_rate_max")] >= int(rate)


def test_time_maxima_are_shown_per_backend_and_server():
    state = golden_state()
    be = state.backends["app"]
    srv = be.by_name["web1"]
    for c in (be.counters, srv.counters):
        c.record_times(0, 1, 10, 20)
        c.record_times(5, -1, 30, 90)  # -1: a phase not reached counts as 0
    row = _csv(state)["app/web1"]
    assert (row["qtime_max"], row["ctime_max"], row["rtime_max"], row["ttime_max"]) == ("5", "1", "30", "90")
    assert (row["qtime"], row["rtime"], row["ttime"]) == ("2", "20", "55")
    assert _csv(state)["app/BACKEND"]["ttime_max"] == "90"


def test_record_times_keeps_sums_count_and_maxima():
    c = Counters()
    c.record_times(1, 2, 3, 4)
    c.record_times(0, 8, 1, 2)
    assert (c.timed, c.q_time_sum, c.c_time_sum, c.r_time_sum, c.t_time_sum) == (2, 1, 10, 4, 6)
    assert (c.q_time_max, c.c_time_max, c.r_time_max, c.t_time_max) == (1, 8, 3, 4)


def test_backend_record_times_updates_server_and_backend():
    state = golden_state()
    be = state.backends["app"]
    be.record_times(be.by_name["web2"], 0, 2, 40, 45)
    rows = _csv(state)
    for key in ("app/web2", "app/BACKEND"):
        assert (rows[key]["ctime_max"], rows[key]["rtime_max"], rows[key]["ttime_max"]) == ("2", "40", "45")
    assert rows["app/web1"]["ttime_max"] == "0"


def test_clear_counters_restarts_the_maxima_and_all_restarts_the_rates():
    state = golden_state()
    sample_all(state, MONO)
    now = _traffic(state, ticks=5, per_tick=20)
    for _ in range(12):
        now += TICK
        sample_all(state, now)
    srv = state.backends["app"].by_name["web1"]
    srv.counters.record_times(1, 1, 1, 50)
    assert int(_csv(state)["app/FRONTEND"]["rate_max"]) > 0
    assert int(_info(state)["MaxConnRate"]) > 0
    assert ask(state, "clear counters") == ""
    rows = _csv(state)
    assert rows["app/FRONTEND"]["rate_max"] == rows["app/FRONTEND"]["req_rate_max"] == "0"
    assert rows["app/web1"]["rate_max"] == rows["app/web1"]["ttime_max"] == "0"
    assert rows["app/FRONTEND"]["req_tot"] != "0"  # totals kept
    assert _info(state)["MaxConnRate"] == "0"
    now = _traffic(state, ticks=3, per_tick=10, start=now)
    assert ask(state, "clear counters all") == ""
    sample_all(state, now + TICK)
    rows = _csv(state)
    assert rows["app/FRONTEND"]["rate"] == rows["app/FRONTEND"]["rate_max"] == "0"
    assert rows["app/FRONTEND"]["req_tot"] == "0"
    # Traffic after the reset is measured from the new totals, not as a negative burst.
    _traffic(state, ticks=5, per_tick=10, start=now + TICK)
    assert 30 <= int(_csv(state)["app/FRONTEND"]["rate"]) <= 60


def test_an_idle_sampler_pass_leaves_everything_at_zero():
    state = golden_state()
    for step in range(20):
        sample_all(state, MONO + step * TICK)
    rows = _csv(state)
    assert all(row.get("rate") in ("0", "") for row in rows.values())


# -- set maxconn global ---------------------------------------------------------------------------------------


def test_set_maxconn_global_shows_in_show_info():
    state = golden_state()
    hard = int(_info(state)["Hard_maxconn"])
    assert ask(state, "set maxconn global 100") == ""
    info = _info(state)
    assert (info["Maxconn"], info["Hard_maxconn"]) == ("100", str(hard))
    assert state.process.maxconn == 100


@pytest.mark.parametrize("value, expected", [
    ("0", "hard"), ("-5", "hard"), ("abc", "hard"),  # HAProxy's atoi(): 0 or less restores the hard limit
    ("12x", "12"),
])
def test_set_maxconn_global_reads_its_value_as_haproxy_does(value, expected):
    state = golden_state()
    hard = state.process.hard_maxconn
    ask(state, "set maxconn global 10")
    assert ask(state, f"set maxconn global {value}") == ""
    assert state.process.maxconn == (hard if expected == "hard" else int(expected))


@pytest.mark.parametrize("line, message", [
    ("set maxconn global", "Expects an integer value.\n"),
    ("set maxconn global 999999", "Value out of range.\n"),
])
def test_set_maxconn_global_refusals_change_nothing(line, message):
    state = golden_state()
    ask(state, "set maxconn global 10")
    assert ask(state, line) == message
    assert state.process.maxconn == 10


def test_set_maxconn_global_needs_admin():
    state = golden_state()
    assert ask(state, "set maxconn global 10", "operator") == "Permission denied\n"
    assert state.process.maxconn == state.process.hard_maxconn


def test_set_maxconn_global_wakes_the_acceptors():
    class Acceptor:
        resumed = 0

        def resume(self):
            self.resumed += 1

    state = golden_state()
    state.servers = [Acceptor(), Acceptor()]
    ask(state, "set maxconn global 50")
    assert [a.resumed for a in state.servers] == [1, 1]


# -- the same rows on the stats page and in the metrics -------------------------------------------------------


def _loaded_state():
    state = golden_state()
    sample_all(state, MONO)
    _traffic(state, ticks=10, per_tick=20)
    state.backends["app"].by_name["web1"].counters.record_times(3, 4, 250, 1500)
    return state


def test_metrics_carry_the_maxima():
    state = _loaded_state()
    rows = _csv(state)
    families = {f.name: f for f in text_string_to_metric_families(render_metrics(state, START, facts()))}

    def value(name: str, **labels) -> float:
        return next(s.value for s in families[name].samples if all(s.labels.get(k) == v for k, v in labels.items()))

    assert value("gproxy_frontend_max_session_rate", proxy="app") == int(rows["app/FRONTEND"]["rate_max"]) > 0
    assert value("gproxy_frontend_http_requests_rate_max", proxy="app") == int(rows["app/FRONTEND"]["req_rate_max"])
    assert value("gproxy_frontend_connections_rate_max", proxy="app") == int(rows["app/FRONTEND"]["conn_rate_max"])
    assert value("gproxy_server_max_session_rate", proxy="app", server="web1") > 0
    assert value("gproxy_server_max_total_time_seconds", proxy="app", server="web1") == 1.5
    assert value("gproxy_server_max_response_time_seconds", proxy="app", server="web1") == 0.25
    info = _info(state)
    assert value("gproxy_process_current_connection_rate") == int(info["ConnRate"]) > 0
    assert value("gproxy_process_max_connection_rate") == int(info["MaxConnRate"])
    assert value("gproxy_process_current_session_rate") == int(info["SessRate"]) > 0
    assert value("gproxy_process_max_session_rate") == int(info["MaxSessRate"])
    assert value("gproxy_process_bytes_out_rate") == int(info["BytesOutRate"]) > 0
    assert value("gproxy_process_limit_connection_rate") == value("gproxy_process_limit_session_rate") == 0


def test_page_session_rate_columns():
    state = _loaded_state()
    fe_row = stat_csv.frontend_row(state.frontends["app"], state.frontends["app"].cfg.id, False)
    srv = state.backends["app"].by_name["web1"]
    srv_row = stat_csv.server_row(srv, START, True)
    rows = _csv(state)
    assert frontend_cells(fe_row)[3:6] == [rows["app/FRONTEND"]["rate"], rows["app/FRONTEND"]["rate_max"], "0"]
    assert server_cells(srv_row, False)[3:5] == [rows["app/web1"]["rate"], rows["app/web1"]["rate_max"]]
    assert int(rows["app/web1"]["rate"]) > 0
