"""The TOML loader: the seed's file loads with exactly the right values, and
every mistake is reported with its key path and reason, all at once."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest

from gproxy.config.loader import FIRST_PROXY_ID, check_file, load_dict, load_file, load_string
from gproxy.config.model import Address, Config, StatusRange
from gproxy.errors import ConfigError

SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "spec"
CONFIGS = Path(__file__).resolve().parent / "configs"

BACKEND = """
[backend.app]
[[backend.app.server]]
name = "a"
address = "127.0.0.1:8001"
"""


def problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_string(text)
    return info.value.problems


def only_problem(text: str) -> tuple[str, str]:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def listen(body: str, server: str = "") -> str:
    """A minimal valid listen section plus extra lines, for error cases."""
    return f"""
[listen.web]
bind = ["127.0.0.1:8080"]
{body}
[[listen.web.server]]
name = "a"
address = "127.0.0.1:8081"
{server}
"""


# --- the seed's configuration ---------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> Config:
    return load_file(str(SPEC / "esup-proxy.toml"))


def test_spec_global(spec: Config) -> None:
    g = spec.global_
    assert g.maxconn == 4096
    assert len(g.log) == 1
    assert g.log[0].target == "udp://192.0.2.14:514"
    assert g.log[0].facility == "local3"
    assert (g.chroot, g.user, g.group, g.daemon) == ("/usr/share/gproxy", 99, 99, True)
    assert len(g.stats_sockets) == 1
    sock = g.stats_sockets[0]
    assert (sock.path, sock.mode, sock.level) == ("/run/gproxy/admin.sock", 0o600, "admin")


def test_spec_listen_is_a_frontend_and_a_backend(spec: Config) -> None:
    assert spec.proxy_order == ("esup-proxy",)
    fe = spec.frontends["esup-proxy"]
    be = spec.backends["esup-proxy"]
    assert fe.is_listen and be.is_listen
    assert fe.id == be.id == FIRST_PROXY_ID == 2
    assert fe.default_backend == "esup-proxy"
    assert fe.bind == (Address("192.0.2.15", 80),)
    assert fe.mode == be.mode == "http"
    assert fe.maxconn == 2000
    assert spec.source == str(SPEC / "esup-proxy.toml")


def test_spec_defaults_are_folded_in(spec: Config) -> None:
    for proxy in (spec.frontends["esup-proxy"], spec.backends["esup-proxy"]):
        t = proxy.timeouts
        assert (t.connect, t.client, t.server) == (5000, 50_000, 50_000)
        assert proxy.log.targets == spec.global_.log  # log = "global"
        assert proxy.log.httplog and proxy.log.dontlognull and not proxy.log.tcplog
        assert proxy.connection_mode == "close"
    be = spec.backends["esup-proxy"]
    assert be.retries == 3 and be.redispatch


def test_spec_backend_features(spec: Config) -> None:
    be = spec.backends["esup-proxy"]
    assert be.balance == "roundrobin"
    assert be.cookie is not None
    assert (be.cookie.name, be.cookie.mode, be.cookie.indirect) == ("JSESSIONID", "prefix", False)
    assert be.httpchk is not None
    assert (be.httpchk.method, be.httpchk.path, be.httpchk.version) == ("OPTIONS", "/", "HTTP/1.0")
    assert be.httpchk.expect_status is None
    assert be.forwardfor is not None
    assert be.forwardfor.except_net == ip_network("192.0.2.15/32")
    assert be.forwardfor.header == "X-Forwarded-For"


def test_spec_servers(spec: Config) -> None:
    servers = spec.backends["esup-proxy"].servers
    assert [s.name for s in servers] == ["ents3", "ents2", "ents1", "ent-maintenance"]
    assert [s.id for s in servers] == [1, 2, 3, 4]
    assert [s.weight for s in servers] == [256, 128, 1, 1]
    assert [s.cookie for s in servers] == ["s3", "s2", "s1", None]
    assert [s.backup for s in servers] == [False, False, False, True]
    assert all(s.check for s in servers)
    assert [(s.inter, s.rise, s.fall) for s in servers[:3]] == [(5000, 1, 3)] * 3
    assert (servers[3].inter, servers[3].rise, servers[3].fall) == (2000, 2, 3)  # HAProxy's defaults
    assert servers[0].address == Address("192.0.2.16", 80)


def test_full_sample_takes_every_key() -> None:
    config = load_file(str(CONFIGS / "full.toml"))
    g = config.global_
    assert [s.mode for s in g.stats_sockets] == [0o660, 0o644]
    assert g.stats_sockets[0].user == "root" and g.stats_sockets[0].group == "adm"
    assert g.user == "nobody" and g.group == 65534
    assert g.log[1].target == "unix:///dev/log" and g.log[1].facility == "local0"
    assert (g.stats_timeout, g.grace, g.node) == (120_000, 1000, "esup-proxy-1")
    assert (g.tune.bufsize, g.tune.maxhdr, g.tune.max_header_bytes) == (32768, 50, 8192)
    www = config.frontends["www"]
    assert www.bind == (Address("*", 8080), Address("", 8081), Address("::1", 8082))
    assert www.forwardfor is not None and www.forwardfor.if_none and www.forwardfor.header == "X-Client"
    assert www.stats == {"uri": "/stats"} and www.prometheus == {"uri": "/metrics"}
    assert www.timeouts.eff_http_keep_alive == 200 and www.timeouts.tunnel == 3_600_000
    app = config.backends["app"]
    assert (app.balance, app.uri_whole, app.hash_type) == ("uri", True, "consistent")
    assert app.cookie is not None and app.cookie.domain == (".example.org", ".example.net")
    assert app.httpchk is not None
    assert app.httpchk.expect_status == (StatusRange(200, 299), StatusRange(304, 304))
    assert app.httpchk.passes(304) and not app.httpchk.passes(301)
    assert app.httpchk.host == "app.example.org" and app.httpchk.disable_on_404
    a1, a2 = app.servers
    # default_server: [defaults] (inter 1s, rise 1, fall 2) then the backend's (check, inter 2s)
    assert (a1.check, a1.inter, a1.rise, a1.fall) == (True, 2000, 1, 2)
    assert (a1.fastinter, a1.downinter, a1.check_port, a1.maxconn, a1.maxqueue) == (500, 5000, 9001, 50, 10)
    assert (a2.check, a2.backup, a2.disabled) == (False, True, True)
    admin = config.backends["admin"]
    assert admin.httpchk is not None and admin.httpchk.method == "OPTIONS"  # httpchk = true
    assert config.frontends["admin"].forwardfor is not None


def test_ids_follow_file_order_across_kinds() -> None:
    config = load_file(str(CONFIGS / "full.toml"))
    assert config.proxy_order == ("www", "raw", "app", "tcp-pool", "admin")
    ids = {name: (config.frontends.get(name) or config.backends[name]).id for name in config.proxy_order}
    assert ids == {"www": 2, "raw": 3, "app": 4, "tcp-pool": 5, "admin": 6}


def test_load_dict_matches_load_string() -> None:
    data: dict[str, Any] = {
        "backend": {"app": {"server": [{"name": "a", "address": "127.0.0.1:80", "weight": 5}]}},
        "frontend": {"www": {"bind": ["*:80"], "default_backend": "app"}},
    }
    config = load_dict(data, source="test")
    assert config.source == "test"
    assert config.proxy_order == ("app", "www")  # dict order when there is no text
    assert config.backends["app"].servers[0].weight == 5
    assert config.frontends["www"].mode == "http"


# --- defaults and modes -------------------------------------------------------------


def test_timeouts_merge_key_by_key_and_tables_replace() -> None:
    config = load_string("""
[defaults]
timeout = { connect = "1s", client = "2s" }
cookie = { name = "A", mode = "insert", indirect = true }
[backend.app]
timeout = { client = "3s" }
cookie = { name = "B" }
""")
    be = config.backends["app"]
    assert (be.timeouts.connect, be.timeouts.client, be.timeouts.server) == (1000, 3000, 50_000)
    assert be.cookie is not None and (be.cookie.name, be.cookie.indirect) == ("B", False)


def test_http_features_in_tcp_mode_are_errors() -> None:
    found = problems("""
[backend.db]
mode = "tcp"
cookie = { name = "S" }
httpchk = true
balance = "uri"
connection_mode = "close"
""")
    assert found == [(f"backend.db.{key}", 'needs mode = "http" (this proxy is in tcp mode)')
                     for key in ("cookie", "httpchk", "balance", "connection_mode")]


def test_http_features_from_defaults_do_not_apply_to_tcp_proxies() -> None:
    config = load_string("""
[defaults]
mode = "http"
httplog = true
connection_mode = "close"
forwardfor = true
[frontend.db]
mode = "tcp"
bind = ["*:5432"]
default_backend = "pg"
[backend.pg]
mode = "tcp"
""")
    fe = config.frontends["db"]
    assert fe.log.tcplog and not fe.log.httplog  # HAProxy's fallback
    assert fe.connection_mode == "keep-alive" and fe.forwardfor is None


def test_explicit_off_values_are_fine_in_tcp_mode() -> None:
    config = load_string(listen('mode = "tcp"\nhttpchk = false\nforwardfor = false\nconnection_mode = "keep-alive"'))
    assert config.backends["web"].httpchk is None


def test_balance_uri_whole_follows_the_effective_balance() -> None:
    config = load_string('[defaults]\nbalance = "uri"\n' + listen("balance_uri_whole = true"))
    assert config.backends["web"].uri_whole
    config = load_string('[defaults]\nbalance_uri_whole = true\n' + listen('balance = "leastconn"'))
    assert not config.backends["web"].uri_whole  # inherited, it does not apply
    assert only_problem('[defaults]\nbalance = "first"\nbalance_uri_whole = true\n') == (
        "defaults.balance_uri_whole", 'only applies to balance = "uri"')


def test_httplog_with_tcplog() -> None:
    assert only_problem(listen("httplog = true\ntcplog = true")) == (
        "listen.web.tcplog", "cannot be used together with httplog: choose one log format")
    config = load_string("[defaults]\nhttplog = true\n" + listen("tcplog = true"))
    assert config.frontends["web"].log.tcplog and not config.frontends["web"].log.httplog


def test_log_none_and_explicit_targets() -> None:
    config = load_string(listen('log = [{ target = "udp://127.0.0.1" }]'))
    assert config.frontends["web"].log.targets[0].target == "udp://127.0.0.1:514"
    assert load_string(listen("")).frontends["web"].log.targets == ()


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("body, server, path, reason", [
    ("", "weight = 300", "listen.web.server[0].weight", "300 is out of range 0..256"),
    ("", "weight = -1", "listen.web.server[0].weight", "-1 is out of range 0..256"),
    ("", "weight = true", "listen.web.server[0].weight", "expected an integer, got boolean true"),
    ("", "rise = 0", "listen.web.server[0].rise", "0 is too small (the minimum is 1)"),
    ("", "fall = 0", "listen.web.server[0].fall", "0 is too small (the minimum is 1)"),
    ("", "port = 70000", "listen.web.server[0].port", "70000 is out of range 1..65535"),
    ("", "maxconn = -5", "listen.web.server[0].maxconn", "-5 is too small (the minimum is 0)"),
    ("", 'inter = "0s"', "listen.web.server[0].inter", '"0s" is too short: it must be at least 1ms'),
    ("", 'inter = "soon"', "listen.web.server[0].inter",
     '"soon" is not a duration (use e.g. "200ms", "5s", "2m" or an integer of ms)'),
    ("", 'cookie = "a b"', "listen.web.server[0].cookie",
     "\"a b\" is not a valid cookie value (no spaces, quotes, ',', ';', '\\\\' or '~')"),
    ("", 'wieght = 3', "listen.web.server[0].wieght", 'unknown key (did you mean "weight"?)'),
    ("balancee = \"roundrobin\"", "", "listen.web.balancee", 'unknown key (did you mean "balance"?)'),
    ('balance = "random"', "", "listen.web.balance",
     '"random" is not one of roundrobin, static-rr, leastconn, source, first, uri'),
    ('mode = "https"', "", "listen.web.mode", '"https" is not one of http, tcp'),
    ("maxconn = -1", "", "listen.web.maxconn", "-1 is too small (the minimum is 0)"),
    ('timeout = { connect = 0 }', "", "listen.web.timeout.connect", "0 is too short: it must be at least 1ms"),
    ('timeout = { conect = "1s" }', "", "listen.web.timeout.conect", 'unknown key (did you mean "connect"?)'),
    ('timeout = "5s"', "", "listen.web.timeout", 'expected a table, got string "5s"'),
    ('connect = "5s"', "", "listen.web.connect", "unknown key (did you mean timeout = { connect = ... }?)"),
    ('inter = "5s"', "", "listen.web.inter",
     "unknown key (a server setting: put it in a server table or in default_server)"),
    ('cookie = { mode = "prefix" }', "", "listen.web.cookie.name", "missing: every cookie needs one"),
    ('cookie = { name = "S", mode = "rewrite", indirect = true }', "", "listen.web.cookie.indirect",
     'cannot be used with mode = "rewrite"'),
    ('cookie = { name = "S", mode = "append" }', "", "listen.web.cookie.mode",
     '"append" is not one of insert, prefix, rewrite'),
    ('httpchk = { expect_status = "200-999" }', "", "listen.web.httpchk.expect_status",
     "999 is not an HTTP status (100..599)"),
    ('httpchk = { expect_status = ["2xx"] }', "", "listen.web.httpchk.expect_status",
     '"2xx" is not a status list (e.g. "200", "200-399", "200,301-302")'),
    ('httpchk = { path = "health" }', "", "listen.web.httpchk.path",
     "\"health\" is not a valid path (an absolute path starting with '/', or '*')"),
    ('httpchk = "yes"', "", "listen.web.httpchk", 'expected a table, got string "yes"'),
    ('forwardfor = { except = "192.0.2.300" }', "", "listen.web.forwardfor.except",
     '"192.0.2.300" is not an address or network (e.g. "192.0.2.15" or "10.0.0.0/8")'),
    ('log = "globl"', "", "listen.web.log",
     'expected "global" or an array of tables, got string "globl" (did you mean "global"?)'),
    ('balance_uri_whole = true', "", "listen.web.balance_uri_whole", 'only applies to balance = "uri"'),
    ('default_backend = "x"', "", "listen.web.default_backend",
     "not allowed in a listen section: a listen sends requests to its own servers"),
    ('stats = true', "", "listen.web.stats", "expected a table, got boolean true"),
])
def test_error_paths_and_reasons(body: str, server: str, path: str, reason: str) -> None:
    assert only_problem(listen(body, server)) == (path, reason)


@pytest.mark.parametrize("address, reason", [
    ("127.0.0.1", '"127.0.0.1" has no port (write "host:port")'),
    ("127.0.0.1:0", '"127.0.0.1:0": port 0 is out of range 1..65535'),
    ("127.0.0.1:http", '"127.0.0.1:http": the port "http" is not a number'),
    ("::1:80", '"::1:80": write IPv6 addresses in brackets, e.g. "[::1]:80"'),
    ("[::g]:80", '"[::g]:80": "::g" is not an IPv6 address'),
    ("300.0.0.1:80", '"300.0.0.1:80": "300.0.0.1" is not an IPv4 address'),
    ("*:80", '"*:80" has no host (a server needs an address)'),
    ("bad host:80", '"bad host:80": "bad host" is not a host name or address'),
])
def test_server_address_errors(address: str, reason: str) -> None:
    text = listen("").replace('"127.0.0.1:8081"', f'"{address}"')
    assert only_problem(text) == ("listen.web.server[0].address", reason)


def test_ipv6_and_names_in_addresses() -> None:
    text = listen("").replace('"127.0.0.1:8081"', '"[::1]:8081"').replace('"127.0.0.1:8080"', '"[::]:8080"')
    config = load_string(text)
    assert config.backends["web"].servers[0].address == Address("::1", 8081)
    assert str(config.frontends["web"].bind[0]) == "[::]:8080"


def test_every_error_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_file(str(CONFIGS / "three_mistakes.toml"))
    assert info.value.lines() == [
        'defaults.timeout.connect: "5 seconds" is not a duration (use e.g. "200ms", "5s", "2m" or an integer of ms)',
        'listen.esup-proxy.balancee: unknown key (did you mean "balance"?)',
        "listen.esup-proxy.server[1].weight: 300 is out of range 0..256",
    ]


def test_toml_syntax_error_has_line_and_column() -> None:
    path = str(CONFIGS / "bad_syntax.toml")
    with pytest.raises(ConfigError) as info:
        load_file(path)
    assert info.value.problems == [(path, "invalid TOML: invalid value (line 3, column 10)")]


def test_unreadable_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError) as info:
        load_file(missing)
    assert info.value.problems == [(missing, "cannot read the file: No such file or directory")]
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_file(str(binary))


def test_unknown_top_level_section() -> None:
    assert only_problem("[defautls]\nmode = \"http\"\n") == ("defautls", 'unknown section (did you mean "defaults"?)')


def test_keys_in_the_wrong_kind_of_section() -> None:
    found = problems("""
[defaults]
bind = ["*:80"]
[frontend.www]
bind = ["*:80"]
balance = "roundrobin"
[[frontend.www.server]]
name = "a"
address = "127.0.0.1:80"
[backend.app]
default_backend = "x"
maxconn = 10
""")
    assert found == [
        ("defaults.bind", "not allowed in [defaults]: write it in each proxy"),
        ("frontend.www.balance", "not allowed in a frontend section: it belongs in backend and listen sections"),
        ("frontend.www.server", "not allowed in a frontend section: it belongs in backend and listen sections"),
        ("backend.app.default_backend",
         "not allowed in a backend section: it belongs in frontend and listen sections"),
        ("backend.app.maxconn", "not allowed in a backend section: it belongs in frontend and listen sections"),
    ]


def test_default_backend_must_exist() -> None:
    text = BACKEND + '[frontend.www]\nbind = ["*:80"]\ndefault_backend = "ap"\n'
    assert only_problem(text) == ("frontend.www.default_backend", 'no backend named "ap" (did you mean "app"?)')


def test_default_backend_from_defaults_says_so() -> None:
    text = '[defaults]\ndefault_backend = "nope"\n[frontend.www]\nbind = ["*:80"]\n'
    assert only_problem(text) == ("frontend.www.default_backend", 'no backend named "nope" (set in [defaults])')


def test_frontend_and_backend_modes_must_match() -> None:
    text = BACKEND + '[frontend.db]\nmode = "tcp"\nbind = ["*:5432"]\ndefault_backend = "app"\n'
    assert only_problem(text) == (
        "frontend.db.default_backend", 'backend "app" is in http mode but this frontend is in tcp mode')


def test_duplicate_names() -> None:
    text = BACKEND + """
[frontend.app]
bind = ["*:80"]
[[backend.app.server]]
name = "a"
address = "127.0.0.1:8002"
"""
    assert problems(text) == [
        ("frontend.app", 'the name "app" is already used by [backend.app] '
                         "(a frontend and a backend share a name only as one [listen.NAME])"),
        ("backend.app.server[1].name", 'duplicate server name "a" (also server[0])'),
    ]


def test_duplicate_stats_socket_paths() -> None:
    text = '[global]\nstats_socket = [{ path = "/a" }, { path = "/a", level = "admin" }]\n'
    assert only_problem(text) == ("global.stats_socket[1].path", '"/a" is already used by stats_socket[0]')


def test_frontend_needs_bind() -> None:
    assert only_problem(BACKEND + '[frontend.www]\ndefault_backend = "app"\n') == (
        "frontend.www.bind", "missing: a frontend needs at least one address to listen on")
    assert only_problem(listen("bind = []").replace('bind = ["127.0.0.1:8080"]\n', "")) == (
        "listen.web.bind", 'expected an array of addresses such as ["*:80"], got an array')


def test_every_bad_bind_address_is_named() -> None:
    assert only_problem(listen('bind = ["*:80", "x", ":0"]').replace('bind = ["127.0.0.1:8080"]\n', "")) == (
        "listen.web.bind", '"x" has no port (write "host:port"); ":0": port 0 is out of range 1..65535')


def test_server_without_name_and_address() -> None:
    assert problems(listen("", "[[listen.web.server]]\nweight = 2")) == [
        ("listen.web.server[1].name", "missing: every server needs one"),
        ("listen.web.server[1].address", "missing: every server needs one"),
    ]


def test_backend_without_servers_is_allowed() -> None:
    config = load_string("[backend.empty]\n")
    assert config.backends["empty"].servers == ()


def test_invalid_proxy_name() -> None:
    assert only_problem('[backend."bad name"]\n') == (
        "backend.bad name",
        "invalid proxy name: \"bad name\" is not a valid name (letters, digits, '_', '.', ':' and '-' only)")


def test_global_errors() -> None:
    found = problems("""
[global]
user = -1
stats_socket = { path = "/s", mode = 0o1777, level = "root" }
log = [{ target = "tcp://x:1", facility = "local9" }]
tune = { maxhdr = 0 }
""")
    assert found == [
        ("global.user", "-1 is not a valid id (ids are >= 0)"),
        ("global.stats_socket.mode", "0o1777 is not a file mode (0o000..0o777)"),
        ("global.stats_socket.level", '"root" is not one of user, operator, admin'),
        ("global.log[0].target",
         '"tcp://x:1" is not a log target (use "udp://host:port", "unix:///dev/log" or "stderr")'),
        ("global.log[0].facility", '"local9" is not one of ' + ", ".join([
            "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2", "ftp",
            "ntp", "audit", "alert", "cron2"] + [f"local{i}" for i in range(8)])),
        ("global.tune.maxhdr", "0 is out of range 1..32767"),
    ]


def test_check_file_lines() -> None:
    assert check_file(str(SPEC / "esup-proxy.toml")) == [
        f"{SPEC / 'esup-proxy.toml'}: configuration is valid (1 listen, 0 frontends, 0 backends, 4 servers)"]
    assert len(check_file(str(CONFIGS / "three_mistakes.toml"))) == 3
