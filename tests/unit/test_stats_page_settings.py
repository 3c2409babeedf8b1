"""The statistics page's request logic: configuration, routing, URI
modifiers, basic auth, the admin form, and every reply (no sockets)."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import pytest

from gproxy.config.loader import load_string
from gproxy.errors import ConfigError
from gproxy.health import CheckOutcome, CheckStatus, SetAdmin
from gproxy.protocol.http import RequestHead
from gproxy.runtime_api import stat_csv
from gproxy.stats_page.options import ADMIN_ACTIONS, STATUS_BANNERS, PageOptions, parse_options
from gproxy.stats_page.request import (
    answer_metrics,
    answer_stats,
    apply_admin,
    authorized,
    dechunk,
    parse_form,
    refresh_seconds,
)
from gproxy.stats_page.routes import LocalRoutes
from gproxy.stats_page.settings import PrometheusSettings, StatsSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_api_support import START, build_state, facts  # noqa: E402

CONFIG = """
[listen.app]
bind = ["127.0.0.1:1"]
stats = { uri = "/gproxy?stats", auth = ["admin:secret", "ops:p4ss:word"], admin = true, refresh = "5s" }
prometheus = { uri = "/metrics" }

[[listen.app.server]]
name = "web1"
address = "127.0.0.1:2"
check = true

[[listen.app.server]]
name = "web2"
address = "127.0.0.1:3"
check = true

[[listen.app.server]]
name = "bk"
address = "127.0.0.1:4"
backup = true

[backend.other]
[[backend.other.server]]
name = "o1"
address = "127.0.0.1:5"
"""
URI = "/gproxy?stats"
ADMIN = b"Basic " + base64.b64encode(b"admin:secret")
L7OK = CheckOutcome(CheckStatus.L7OK, code=200, duration_ms=1)


@pytest.fixture
def state():
    st = build_state(CONFIG)
    for name in ("web1", "web2"):
        st.backends["app"].by_name[name].check_done(L7OK, START)
    return st


@pytest.fixture
def settings(state) -> StatsSettings:
    return StatsSettings.from_table(state.config.frontends["app"].stats)


def get(state, settings, target, auth=ADMIN, method="GET", body=b"", now=START + 10):
    return answer_stats(state, settings, method, target, auth, body, now, facts)


def header(reply, name: str) -> str | None:
    for key, value in reply.headers:
        if key.lower() == name.lower():
            return value
    return None


# ---- configuration -----------------------------------------------------------------------------------------

def _problems(body: str) -> list[tuple[str, str]]:
    text = f'[listen.web]\nbind = ["127.0.0.1:1"]\n{body}\n[[listen.web.server]]\nname = "a"\naddress = "127.0.0.1:2"\n'
    with pytest.raises(ConfigError) as info:
        load_string(text)
    return info.value.problems


def test_settings_take_the_schema_defaults() -> None:
    settings = StatsSettings.from_table({})
    assert (settings.uri, settings.auth, settings.refresh_ms, settings.admin) == ("/haproxy?stats", (), None, False)
    assert settings.realm == "gproxy Statistics" and not settings.hide_version
    assert PrometheusSettings.from_table({}).uri == "/metrics"


def test_config_values_are_parsed(settings) -> None:
    assert settings.uri == URI and settings.auth == ("admin:secret", "ops:p4ss:word")
    assert settings.refresh_ms == 5000 and settings.admin


@pytest.mark.parametrize("body, path, reason", [
    ('stats = { admin = true }', "listen.web.stats.admin", "needs auth: only authenticated users may change servers"),
    ('stats = { admin = true, auth = [] }', "listen.web.stats.admin",
     "needs auth: only authenticated users may change servers"),
    ('stats = { auth = ["nocolon"] }', "listen.web.stats.auth",
     'item 0 is not "user:password" (a user name, a colon, a password)'),
    ('stats = { auth = [":pw"] }', "listen.web.stats.auth",
     'item 0 is not "user:password" (a user name, a colon, a password)'),
    ('stats = { uri = "stats" }', "listen.web.stats.uri",
     "\"stats\" is not a valid path (a path starting with '/', printable characters and no spaces)"),
    ('stats = { uri = "/a b" }', "listen.web.stats.uri",
     "\"/a b\" is not a valid path (a path starting with '/', printable characters and no spaces)"),
    ('stats = { refresh = "soon" }', "listen.web.stats.refresh",
     '"soon" is not a duration (use e.g. "200ms", "5s", "2m" or an integer of ms)'),
    ('stats = { realm = "a\\"b" }', "listen.web.stats.realm",
     "\"a\\\"b\" is not a valid realm (no quotes, backslashes or control characters)"),
    ('stats = { hide-version = true }', "listen.web.stats.hide-version", 'unknown key (did you mean "hide_version"?)'),
    ('prometheus = { path = "/metrics" }', "listen.web.prometheus.path", "unknown key"),
    ('mode = "tcp"\nstats = {}', "listen.web.stats", 'needs mode = "http" (this proxy is in tcp mode)'),
])
def test_config_errors_name_their_key(body: str, path: str, reason: str) -> None:
    assert (path, reason) in _problems(body)


def test_an_auth_error_never_shows_the_password() -> None:
    problems = _problems('stats = { auth = ["admin:ok", "admin-secret-word"] }')
    assert problems == [("listen.web.stats.auth", 'item 1 is not "user:password" (a user name, a colon, a password)')]


def test_stats_from_defaults_apply_to_http_proxies() -> None:
    config = load_string('[defaults]\nstats = { uri = "/st" }\n[listen.web]\nbind = ["127.0.0.1:1"]\n')
    assert config.frontends["web"].stats == {"uri": "/st"}


# ---- routing -----------------------------------------------------------------------------------------------

def head(target: bytes, method: bytes = b"GET") -> RequestHead:
    return RequestHead(method, target, b"HTTP/1.1", [(b"Host", b"x")])


def test_routes_match_the_page_by_prefix_and_the_metrics_by_path(state) -> None:
    routes = LocalRoutes.for_frontend(state.config.frontends["app"], state, lambda: START, facts)
    assert routes is not None
    assert routes.match(head(b"/gproxy?stats")) == routes.serve_stats
    assert routes.match(head(b"/gproxy?stats;csv;norefresh")) == routes.serve_stats
    assert routes.match(head(b"http://lb.example/gproxy?stats;up")) == routes.serve_stats
    assert routes.match(head(b"/metrics")) == routes.serve_metrics
    assert routes.match(head(b"/metrics?scope=server")) == routes.serve_metrics
    for other in (b"/", b"/gproxy", b"/gproxy?stat", b"/metricsx", b"/app/metrics", b"*"):
        assert routes.match(head(other)) is None, other


def test_frontends_without_the_tables_get_no_routes(state) -> None:
    config = load_string('[listen.web]\nbind = ["127.0.0.1:1"]\n')
    assert LocalRoutes.for_frontend(config.frontends["web"], state, lambda: START, facts) is None


# ---- modifiers, auth, forms ----------------------------------------------------------------------------------

@pytest.mark.parametrize("rest, expected", [
    ("", PageOptions()),
    (";csv", PageOptions(csv=True)),
    (";csv;norefresh", PageOptions(csv=True, norefresh=True)),
    (";up;no-maint", PageOptions(hide_down=True, hide_maint=True)),
    (";st=DONE", PageOptions(status="DONE")),
    (";st=done;up", PageOptions(status="DONE", hide_down=True)),
    (";st=<script>", PageOptions(status="UNKN")),
    (";json;typed;whatever", PageOptions(json=True, typed=True)),
])
def test_parse_options(rest: str, expected: PageOptions) -> None:
    assert parse_options(rest) == expected


def test_suffix_keeps_the_view_modifiers() -> None:
    options = PageOptions(hide_down=True, hide_maint=True, norefresh=True, csv=True, status="DONE")
    assert options.suffix() == ";up;no-maint;norefresh"
    assert options.suffix(up=False, norefresh=False) == ";no-maint"


@pytest.mark.parametrize("value, ok", [
    (ADMIN, True),
    (b"basic " + base64.b64encode(b"admin:secret"), True),
    (b"Basic " + base64.b64encode(b"ops:p4ss:word"), True),  # the password may hold colons
    (b"Basic " + base64.b64encode(b"admin:secreT"), False),
    (b"Basic " + base64.b64encode(b"admin:secret "), False),
    (b"Basic " + base64.b64encode(b"admin:"), False),
    (b"Basic " + base64.b64encode(b"admin"), False),
    (b"Basic !!!not-base64", False),
    (b"Bearer " + base64.b64encode(b"admin:secret"), False),
    (b"", False),
    (None, False),
])
def test_basic_auth(settings, value, ok: bool) -> None:
    assert authorized(settings, value) is ok


def test_no_auth_configured_lets_everyone_in() -> None:
    assert authorized(StatsSettings(), None)


def test_dechunk() -> None:
    assert dechunk(b"3\r\nb=a\r\n5;ext=1\r\npp&s=\r\n0\r\nTrailer: x\r\n\r\n") == b"b=app&s="
    assert dechunk(b"0\r\n\r\n") == b""
    assert dechunk(b"3\nabc\n2 ; x\r\nde\r\n0\n\n") == b"abcde"  # bare LF, as the parser accepts it


def test_parse_form_keeps_order_and_repeats() -> None:
    assert parse_form(b"b=app&s=web1&s=web%32&action=drain&x=") == [
        ("b", "app"), ("s", "web1"), ("s", "web2"), ("action", "drain"), ("x", "")]


# ---- answers -----------------------------------------------------------------------------------------------

def test_without_credentials_the_page_asks_for_them(state, settings) -> None:
    for auth in (None, b"Basic " + base64.b64encode(b"admin:wrong")):
        reply = get(state, settings, URI, auth=auth)
        assert reply.status == 401
        assert header(reply, "WWW-Authenticate") == 'Basic realm="gproxy Statistics"'
        assert b"secret" not in reply.body
    assert get(state, settings, URI + ";csv", auth=None).status == 401
    assert get(state, settings, URI, auth=None, method="POST", body=b"b=app&s=web1&action=maint").status == 401
    assert state.backends["app"].by_name["web1"].status == "UP"


def test_the_page_with_refresh(state, settings) -> None:
    reply = get(state, settings, URI)
    assert reply.status == 200 and header(reply, "Content-Type") == "text/html; charset=utf-8"
    assert header(reply, "Cache-Control") == "no-cache" and header(reply, "Refresh") == "5"
    assert b'<tr class="active_up" id="app/web1">' in reply.body
    assert header(get(state, settings, URI + ";norefresh"), "Refresh") is None


def test_refresh_is_whole_seconds_never_zero() -> None:
    assert [refresh_seconds(ms) for ms in (1, 999, 1000, 1001, 10_000)] == [1, 1, 1, 2, 10]


def test_csv_is_show_stat(state, settings) -> None:
    reply = get(state, settings, URI + ";csv")
    assert header(reply, "Content-Type") == "text/plain; charset=utf-8" and header(reply, "Refresh") is None
    text = reply.body.decode()
    assert text.startswith(stat_csv.HEADER)
    assert text == stat_csv.show_stat(state, START + 10, stat_csv.StatFilter(show_legends=True))
    lines = text.splitlines()
    assert [line.split(",")[:2] for line in lines[1:]] == [
        ["app", "FRONTEND"], ["app", "web1"], ["app", "web2"], ["app", "bk"], ["app", "BACKEND"],
        ["other", "o1"], ["other", "BACKEND"]]


def test_csv_modifiers_filter_like_show_stat(state, settings) -> None:
    state.backends["app"].by_name["web2"].apply(SetAdmin("maint"), START)
    text = get(state, settings, URI + ";csv;no-maint").body.decode()
    assert ",web2," not in text and "app,BACKEND" in text
    typed = get(state, settings, URI + ";typed").body.decode()
    assert typed.startswith("F.2.0.0.pxname.1:KNS:str:app\n")
    assert get(state, settings, URI + ";json").body.startswith(b"[[{")


def test_addresses_show_only_on_admin_pages(state) -> None:
    admin = StatsSettings(uri=URI, auth=("a:b",), admin=True)
    viewer = StatsSettings(uri=URI)
    auth = b"Basic " + base64.b64encode(b"a:b")
    assert b"127.0.0.1:2" in get(state, admin, URI + ";csv", auth=auth).body
    assert b"127.0.0.1:2" not in get(state, viewer, URI + ";csv", auth=None).body


def test_admin_post_drains_and_redirects_like_haproxy(state, settings) -> None:
    reply = get(state, settings, URI + ";up;norefresh", method="POST", body=b"b=app&s=web2&action=drain")
    assert reply.status == 303 and reply.reason == "See Other"
    assert header(reply, "Location") == URI + ";up;norefresh;st=DONE"
    web2 = state.backends["app"].by_name["web2"]
    assert web2.status == "DRAIN" and state.backends["app"].by_name["web1"].status == "UP"
    page = get(state, settings, URI + ";st=DONE").body
    assert b'<tr class="active_draining" id="app/web2">' in page
    assert b"Action processed successfully." in page
    ready = get(state, settings, URI, method="POST", body=b"b=app&s=web2&action=ready")
    assert header(ready, "Location") == URI + ";st=DONE" and web2.status == "UP"


def test_admin_post_on_several_servers_and_by_backend_id(state, settings) -> None:
    reply = get(state, settings, URI, method="POST", body=b"b=%232&s=web1&s=bk&action=maint")
    assert header(reply, "Location") == URI + ";st=DONE"
    assert [s.status for s in state.backends["app"].servers] == ["MAINT", "UP", "MAINT"]


@pytest.mark.parametrize("body, code", [
    (b"b=app&s=web1&s=nosuch&action=maint", "PART"),
    (b"b=app&s=nosuch&action=maint", "ERRP"),
    (b"b=nosuch&s=web1&action=maint", "ERRP"),
    (b"b=app&s=web1&action=explode", "ERRP"),
    (b"b=app&action=maint", "NONE"),
    (b"b=app&s=web1", "NONE"),
    (b"", "NONE"),
    (b"b=app&action=maint" + b"&s=web1" * 1000, "EXCD"),
])
def test_admin_post_errors(state, settings, body: bytes, code: str) -> None:
    reply = get(state, settings, URI, method="POST", body=body)
    assert header(reply, "Location") == f"{URI};st={code}"
    assert state.backends["app"].by_name["web2"].status == "UP"
    assert STATUS_BANNERS[code][0].encode() in get(state, settings, f"{URI};st={code}").body


def test_post_without_admin_is_denied(state) -> None:
    viewer = StatsSettings(uri=URI)
    reply = get(state, viewer, URI, auth=None, method="POST", body=b"b=app&s=web1&action=maint")
    assert header(reply, "Location") == URI + ";st=DENY"
    assert state.backends["app"].by_name["web1"].status == "UP"


def test_every_action_runs_its_runtime_api_command(state) -> None:
    web1 = state.backends["app"].by_name["web1"]
    expected = {"drain": "DRAIN", "ready": "UP", "maint": "MAINT"}
    for action in ("drain", "ready", "maint"):
        assert apply_admin(state, [("b", "app"), ("s", "web1"), ("action", action)], START, facts) == "DONE"
        assert web1.status == expected[action]
    apply_admin(state, [("b", "app"), ("s", "web1"), ("action", "ready")], START, facts)
    assert apply_admin(state, [("b", "app"), ("s", "web1"), ("action", "hdown")], START, facts) == "DONE"
    assert web1.status == "DOWN"
    assert apply_admin(state, [("b", "app"), ("s", "web1"), ("action", "hrunn")], START, facts) == "DONE"
    assert web1.status == "UP"
    assert apply_admin(state, [("b", "app"), ("s", "web1"), ("action", "hnolb")], START, facts) == "DONE"
    assert web1.status == "NOLB"
    assert apply_admin(state, [("b", "app"), ("s", "web1"), ("action", "dhlth")], START, facts) == "DONE"
    assert not web1.health.checks_enabled
    assert apply_admin(state, [("b", "app"), ("s", "web1"), ("action", "ehlth")], START, facts) == "DONE"
    assert web1.health.checks_enabled
    # enable health on a server without checks is a runtime API error: not done
    assert apply_admin(state, [("b", "app"), ("s", "bk"), ("action", "ehlth")], START, facts) == "ERRP"
    assert apply_admin(state, [("b", "app"), ("s", "web1"), ("action", "shutdown")], START, facts) == "DONE"
    assert set(ADMIN_ACTIONS) == {"ready", "drain", "maint", "dhlth", "ehlth", "hrunn", "hnolb", "hdown", "shutdown"}


def test_other_methods_are_refused(state, settings) -> None:
    reply = get(state, settings, URI, method="PUT")
    assert reply.status == 405 and header(reply, "Allow") == "GET, HEAD, POST"


def test_metrics_answer(state) -> None:
    reply = answer_metrics(state, PrometheusSettings(), "GET", "/metrics", START, facts)
    assert reply.status == 200 and header(reply, "Content-Type") == "text/plain; version=0.0.4"
    assert b"gproxy_process_nbthread 1\n" in reply.body
    scoped = answer_metrics(state, PrometheusSettings(), "GET", "/metrics?scope=server", START, facts).body
    assert b"gproxy_server_status" in scoped and b"gproxy_process_" not in scoped and b"gproxy_backend_" not in scoped
    both = answer_metrics(state, PrometheusSettings(), "GET", "/metrics?scope=frontend&scope=backend", START,
                          facts).body
    assert b"gproxy_frontend_status" in both and b"gproxy_backend_status" in both and b"gproxy_server_" not in both
    assert answer_metrics(state, PrometheusSettings(), "POST", "/metrics", START, facts).status == 405


def test_every_admin_action_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "stats-page.md").read_text()
    for action, (label, words) in ADMIN_ACTIONS.items():
        command = " ".join("B/S" if word == "{}" else word for word in words)
        assert f"| `{action}` | {label} | `{command}` |" in doc, action


def test_with_several_workers_a_done_action_is_relayed_to_the_others(state) -> None:
    # What the CLI's commands do (gproxy.worker): each done action's command
    # words go to the other workers; a refused one goes nowhere.
    relayed = []
    state.relay = relayed.append
    form = [("b", "app"), ("s", "web1"), ("s", "web2"), ("action", "maint")]
    assert apply_admin(state, form, START, facts) == "DONE"
    assert relayed == [("set", "server", "app/web1", "state", "maint"), ("set", "server", "app/web2", "state", "maint")]
    relayed.clear()
    assert apply_admin(state, [("b", "app"), ("s", "bk"), ("action", "ehlth")], START, facts) == "ERRP"
    assert relayed == []
