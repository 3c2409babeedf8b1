"""The Prometheus exposition, read back with Prometheus' own text parser
(prometheus_client): every sample parses, families are whole and unique,
names, types, labels and values follow HAProxy's exporter."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gproxy.health import CheckOutcome, CheckStatus, ForceHealth, SetAdmin
from gproxy.stats_page.prometheus import (
    BACKEND_METRICS,
    CHECK_STATES,
    FRONTEND_METRICS,
    PROCESS_METRICS,
    SERVER_METRICS,
    SERVER_STATES,
    escape_label,
    family,
    render_metrics,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_api_support import START, build_state, facts  # noqa: E402

CONFIG = """
[listen.app]
bind = ["127.0.0.1:1"]
default_server = { check = true }
server = [
  { name = "web1", address = "127.0.0.1:2", weight = 10, maxconn = 50 },
  { name = "web2", address = "127.0.0.1:3" },
  { name = "web3", address = "127.0.0.1:4" },
  { name = "web4", address = "127.0.0.1:5" },
  { name = "plain", address = "127.0.0.1:6", check = false },
  { name = "bk", address = "127.0.0.1:7", backup = true },
]

[frontend.www]
bind = ["127.0.0.1:8"]
default_backend = "empty"

[backend.empty]
"""
OK = CheckOutcome(CheckStatus.L7OK, code=200, duration_ms=250)
REFUSED = CheckOutcome(CheckStatus.L4CON, info="Connection refused")


@pytest.fixture
def state():
    st = build_state(CONFIG)
    servers = st.backends["app"].by_name
    for name in ("web1", "web2", "web3", "bk"):
        servers[name].check_done(OK, START)
    for _ in range(3):
        servers["web4"].check_done(REFUSED, START)
    servers["web2"].apply(SetAdmin("drain"), START)
    servers["web3"].apply(ForceHealth("stopping"), START)
    servers["bk"].apply(SetAdmin("maint"), START)
    counters = servers["web1"].counters
    counters.total, counters.lbtot, counters.bytes_in, counters.bytes_out = 7, 7, 1234, 56789
    counters.hrsp = [0, 5, 1, 1, 0, 0]
    counters.t_time_sum, counters.timed = 3000, 2
    return st


def parse(text: str) -> dict:
    families = list(text_string_to_metric_families(text))
    names = [f.name for f in families]
    assert len(names) == len(set(names)), "a family appears twice: its samples are not together"
    return {f.name: f for f in families}


def samples(families: dict, name: str) -> dict[tuple, float]:
    """{sorted labels: value} of the samples of one family."""
    return {tuple(sorted(s.labels.items())): s.value for s in families[name].samples}


def test_every_line_parses_and_every_family_has_help_and_type(state) -> None:
    text = render_metrics(state, START + 30, facts())
    assert text.endswith("\n")
    families = parse(text)
    helps = [line for line in text.splitlines() if line.startswith("# HELP ")]
    types = [line for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(helps) == len(types) == len(families) > 100
    for line in text.splitlines():
        assert line.startswith(("# HELP gproxy_", "# TYPE gproxy_", "gproxy_")), line
    for fam in families.values():
        assert fam.documentation and fam.samples and fam.type in ("gauge", "counter")
        if fam.type == "counter":
            assert all(s.name == fam.name + "_total" for s in fam.samples)


def test_family_names_follow_haproxys_exporter(state) -> None:
    families = parse(render_metrics(state, START, facts()))
    expected = {
        "gproxy_process_nbthread", "gproxy_process_uptime_seconds", "gproxy_process_current_connections",
        "gproxy_process_connections", "gproxy_process_requests", "gproxy_process_build_info",
        "gproxy_frontend_status", "gproxy_frontend_current_sessions", "gproxy_frontend_sessions",
        "gproxy_frontend_bytes_in", "gproxy_frontend_bytes_out", "gproxy_frontend_http_responses",
        "gproxy_frontend_request_errors", "gproxy_frontend_limit_sessions",
        "gproxy_backend_status", "gproxy_backend_active_servers", "gproxy_backend_backup_servers",
        "gproxy_backend_current_sessions", "gproxy_backend_sessions", "gproxy_backend_bytes_in",
        "gproxy_backend_bytes_out", "gproxy_backend_http_responses", "gproxy_backend_weight",
        "gproxy_backend_agg_server_status", "gproxy_backend_agg_check_status", "gproxy_backend_current_queue",
        "gproxy_backend_check_up_down", "gproxy_backend_downtime_seconds",
        "gproxy_server_status", "gproxy_server_check_status", "gproxy_server_weight",
        "gproxy_server_current_sessions", "gproxy_server_sessions", "gproxy_server_check_failures",
        "gproxy_server_check_up_down", "gproxy_server_current_queue", "gproxy_server_check_last_change_seconds",
        "gproxy_server_downtime_seconds", "gproxy_server_loadbalanced", "gproxy_server_http_responses",
        "gproxy_server_total_time_average_seconds", "gproxy_server_check_duration_seconds",
        "gproxy_server_limit_sessions", "gproxy_server_check_code",
    }
    assert expected <= set(families), expected - set(families)
    assert families["gproxy_server_sessions"].type == "counter"
    assert families["gproxy_server_current_sessions"].type == "gauge"
    declared = {f"gproxy_{scope}_{m.name}" for scope, metrics in (
        ("process", PROCESS_METRICS), ("frontend", FRONTEND_METRICS), ("backend", BACKEND_METRICS),
        ("server", SERVER_METRICS)) for m in metrics}
    assert len(declared) == len(PROCESS_METRICS) + len(FRONTEND_METRICS) + len(BACKEND_METRICS) + len(SERVER_METRICS)


def test_server_status_is_one_series_per_state(state) -> None:
    status = samples(parse(render_metrics(state, START, facts())), "gproxy_server_status")
    current = {}
    for labels, value in status.items():
        label = dict(labels)
        assert set(label) == {"proxy", "server", "state"} and label["state"] in SERVER_STATES
        if value == 1:
            assert label["server"] not in current
            current[label["server"]] = label["state"]
        else:
            assert value == 0
    assert len(status) == 6 * len(SERVER_STATES)
    assert current == {"web1": "UP", "web2": "DRAIN", "web3": "NOLB", "web4": "DOWN", "plain": "UP", "bk": "MAINT"}


def test_check_status_only_for_servers_checked_now(state) -> None:
    checks = samples(parse(render_metrics(state, START, facts())), "gproxy_server_check_status")
    servers = {dict(labels)["server"] for labels in checks}
    assert servers == {"web1", "web2", "web3", "web4"}  # plain is unchecked, bk's checks pause in maint
    ones = {dict(labels)["server"]: dict(labels)["state"] for labels, value in checks.items() if value == 1}
    assert ones == {"web1": "L7OK", "web2": "L7OK", "web3": "L7OK", "web4": "L4CON"}
    assert len(checks) == 4 * len(CHECK_STATES)


def test_backend_and_frontend_state_series(state) -> None:
    families = parse(render_metrics(state, START, facts()))
    backend = samples(families, "gproxy_backend_status")
    assert backend[(("proxy", "app"), ("state", "UP"))] == 1 and backend[(("proxy", "app"), ("state", "DOWN"))] == 0
    assert backend[(("proxy", "empty"), ("state", "UP"))] == 1  # no servers at all counts as UP, as in HAProxy
    agg = samples(families, "gproxy_backend_agg_server_status")
    assert {dict(k)["state"]: v for k, v in agg.items() if dict(k)["proxy"] == "app"} == {
        "UP": 2, "DRAIN": 1, "NOLB": 1, "DOWN": 1, "MAINT": 1}
    assert samples(families, "gproxy_backend_active_servers")[(("proxy", "app"),)] == 2  # web1 and plain
    front = samples(families, "gproxy_frontend_status")
    assert front[(("proxy", "www"), ("state", "UP"))] == 1
    state.process.stopping = True
    stopped = samples(parse(render_metrics(state, START, facts())), "gproxy_frontend_status")
    assert stopped[(("proxy", "www"), ("state", "DOWN"))] == 1


def test_values_and_units(state) -> None:
    families = parse(render_metrics(state, START + 30, facts()))
    web1 = (("proxy", "app"), ("server", "web1"))
    assert samples(families, "gproxy_server_sessions")[web1] == 7
    assert samples(families, "gproxy_server_bytes_out")[web1] == 56789
    assert samples(families, "gproxy_server_weight")[web1] == 10
    assert samples(families, "gproxy_server_limit_sessions")[web1] == 50
    assert samples(families, "gproxy_server_total_time_average_seconds")[web1] == 1.5
    assert samples(families, "gproxy_server_check_duration_seconds")[web1] == 0.25
    assert samples(families, "gproxy_server_check_code")[web1] == 200
    assert samples(families, "gproxy_server_check_last_change_seconds")[web1] == 30
    responses = samples(families, "gproxy_server_http_responses")
    assert responses[(("code", "2xx"),) + web1] == 5 and responses[(("code", "other"),) + web1] == 0
    assert {dict(k)["code"] for k in responses} == {"1xx", "2xx", "3xx", "4xx", "5xx", "other"}
    assert samples(families, "gproxy_server_check_up_down")[(("proxy", "app"), ("server", "web4"))] == 1
    assert samples(families, "gproxy_process_uptime_seconds")[()] == 30
    assert samples(families, "gproxy_process_build_info")[(("version", "0.1.0"),)] == 1


def test_unset_fields_give_no_sample(state) -> None:
    families = parse(render_metrics(state, START, facts()))
    limits = samples(families, "gproxy_server_limit_sessions")
    assert set(limits) == {(("proxy", "app"), ("server", "web1"))}  # only web1 has a maxconn
    assert "gproxy_frontend_current_queue" not in families  # frontends have no queue


def test_scopes_narrow_the_output(state) -> None:
    only_servers = parse(render_metrics(state, START, None, frozenset({"server"})))
    assert all(name.startswith("gproxy_server_") for name in only_servers)
    assert render_metrics(state, START, None, frozenset({"global"})) == ""  # no facts, no process metrics


def test_label_values_are_escaped_and_parse_back() -> None:
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    text = "".join(family("gproxy_test_total", "counter", "Help.", [((("proxy", 'x"y\\z\nw'),), 3)]))
    parsed = parse(text)
    assert parsed["gproxy_test"].samples[0].labels == {"proxy": 'x"y\\z\nw'}
    assert family("gproxy_empty", "gauge", "Help.", []) == []


def test_every_family_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "stats-page.md").read_text()
    for metrics in (PROCESS_METRICS, FRONTEND_METRICS, BACKEND_METRICS, SERVER_METRICS):
        for metric in metrics:
            assert f"{metric.name}," in doc or f"{metric.name}." in doc, metric.name
