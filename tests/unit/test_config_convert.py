"""`gproxy convert`: HAProxy's configuration of the seed (2.x and 1.x syntax)
becomes TOML that loads into the same Config as esup-proxy.toml; unsupported
directives are listed with their line numbers; the reverse is accepted by
HAProxy itself."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from gproxy.config.convert import haproxy_to_toml, split_words, toml_to_haproxy
from gproxy.config.loader import load_file, load_string
from gproxy.config.model import Address, Config, StatusRange
from gproxy.errors import ConfigError

SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "spec"
CONFIGS = Path(__file__).resolve().parent / "configs"
HAPROXY_CHECK_TIMEOUT = 30  # seconds; `haproxy -c` takes milliseconds


@pytest.fixture(scope="module")
def spec() -> Config:
    return load_file(str(SPEC / "esup-proxy.toml"))


def convert(text: str) -> Config:
    return load_string(haproxy_to_toml(text))


def conversion_problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        haproxy_to_toml(text)
    return info.value.problems


@pytest.mark.parametrize("name", ["esup-proxy.haproxy2.cfg", "esup-proxy.haproxy.cfg"])
def test_seed_configuration_converts_to_the_spec(spec: Config, name: str) -> None:
    converted = convert((SPEC / name).read_text())
    # Proxies: everything that matters (servers, weights, checks, cookie,
    # forwardfor, timeouts, connection mode, logs, ids) is identical.
    assert converted.proxy_order == spec.proxy_order
    assert converted.frontends == spec.frontends
    assert converted.backends == spec.backends
    g, s = converted.global_, spec.global_
    assert (g.maxconn, g.log, g.user, g.group, g.daemon) == (s.maxconn, s.log, s.user, s.group, s.daemon)
    assert g.chroot == "/usr/share/haproxy"  # paths are the file's own
    if "haproxy2" in name:
        assert [(x.mode, x.level) for x in g.stats_sockets] == [(0o600, "admin")]


def test_converted_text_reads_like_the_spec() -> None:
    text = haproxy_to_toml((SPEC / "esup-proxy.haproxy2.cfg").read_text())
    assert text.startswith("# Converted from an HAProxy configuration")
    assert "[[listen.esup-proxy.server]]" in text
    assert 'stats_socket = [{ path = "/run/haproxy/admin.sock", mode = 0o600, level = "admin" }]' in text
    assert 'timeout = { connect = "5s", client = "50s", server = "50s" }' in text
    assert 'cookie = { name = "JSESSIONID", mode = "prefix" }' in text


def test_unsupported_directives_are_listed_with_line_numbers() -> None:
    assert conversion_problems((CONFIGS / "unsupported.cfg").read_text()) == [
        ("line 3", 'unsupported directive "nbthread 4" in global'),
        ("line 7", 'unsupported directive "option abortonclose" in defaults'),
        ("line 11", 'bind: option "tfo" is not supported'),
        ("line 15", 'balance: algorithm "random" is not supported'),
        ("line 16", 'server a: option "slowstart" is not supported'),
    ]


def test_problems_name_the_file_when_given() -> None:
    with pytest.raises(ConfigError) as info:
        haproxy_to_toml("global\n    nbproc 2\n", source="old.cfg")
    assert info.value.lines() == ['old.cfg:2: unsupported directive "nbproc 2" in global']


def test_misplaced_and_partial_directives() -> None:
    assert conversion_problems("""\
maxconn 10
userlist admins
        user admin insecure-password x
frontend www
        bind *:80
        balance roundrobin
        cookie S insert
backend app
        bind *:81
        maxconn 10
        cookie S
        server a 127.0.0.1
        option httpchk GET /h HTTP/1.1\\r\\nX-Api:\\ 1
""") == [
        ("line 1", '"maxconn" outside of any section'),
        ("line 2", 'section "userlist" is not supported (its lines are skipped)'),
        ("line 6", "balance is not allowed in a frontend section"),
        ("line 7", "cookie is not allowed in a frontend section"),
        ("line 9", "bind is not allowed in a backend section"),
        ("line 10", "maxconn is not allowed in a backend section"),
        ("line 11", "cookie without insert, prefix or rewrite (HAProxy's passive mode) is not supported"),
        ("line 12", 'server a: "127.0.0.1" has no port (write "host:port")'),
        ("line 13", 'option httpchk: header "X-Api" is not supported (only Host)'),
    ]


RICH_CFG = """\
global
    log /dev/log local0 notice
    log-tag gp
    user haproxy
    group haproxy
    stats socket ipv4@127.0.0.1:9999 level operator expose-fd listeners
    stats socket /run/a.sock mode 0660 uid 0 gid 4
    stats timeout 2m
    tune.bufsize 32768
    tune.http.maxhdr 64

defaults
    mode http
    log global
    option httplog
    option httpclose
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    default-server inter 3s fall 2

frontend www
    bind *:80,:8080
    bind [::1]:81
    option forwardfor header X-Real-IP if-none
    no option httpclose
    default_backend app

frontend raw   # tcp: httplog from defaults becomes tcplog
    mode tcp
    bind "127.0.0.1:5000"
    default_backend pool

backend app
    balance uri whole
    hash-type consistent
    cookie SRV insert indirect nocache domain .example.org
    option httpchk GET /health HTTP/1.1\\r\\nHost:\\ www.example.org
    http-check expect status 200-399
    http-check disable-on-404
    option allbackups
    fullconn 100
    retries 5
    no option redispatch
    server a1 10.0.0.1:80 check weight 10 cookie a1 port 8080 fastinter 1s downinter 10s maxconn 30 maxqueue 5
    server a2 10.0.0.2:80 check backup disabled

backend pool
    mode tcp
    balance source
    option log-health-checks
    server p1 ::1:6000
"""


def test_rich_configuration_toml() -> None:
    data = tomllib.loads(haproxy_to_toml(RICH_CFG))
    assert data["global"] == {
        "log": [{"target": "unix:///dev/log", "facility": "local0", "level": "notice", "tag": "gp"}],
        "user": "haproxy",
        "group": "haproxy",
        "stats_socket": [
            {"path": "ipv4@127.0.0.1:9999", "level": "operator"},
            {"path": "/run/a.sock", "mode": 0o660, "user": 0, "group": 4},
        ],
        "stats_timeout": "2m",
        "tune": {"bufsize": 32768, "maxhdr": 64},
    }
    assert data["defaults"]["default_server"] == {"inter": "3s", "fall": 2}
    assert data["frontend"]["www"]["bind"] == ["*:80", ":8080", "[::1]:81"]
    assert data["frontend"]["www"]["connection_mode"] == "keep-alive"
    assert data["backend"]["app"]["httpchk"] == {
        "method": "GET", "path": "/health", "version": "HTTP/1.1", "host": "www.example.org",
        "expect_status": "200-399", "disable_on_404": True,
    }
    assert data["backend"]["app"]["redispatch"] is False
    assert data["backend"]["pool"]["server"] == [{"name": "p1", "address": "[::1]:6000"}]


def test_rich_configuration_loads() -> None:
    config = convert(RICH_CFG)
    assert config.proxy_order == ("www", "raw", "app", "pool")
    www, raw = config.frontends["www"], config.frontends["raw"]
    assert www.bind == (Address("*", 80), Address("", 8080), Address("::1", 81))
    assert www.forwardfor is not None and www.forwardfor.header == "X-Real-IP" and www.forwardfor.if_none
    assert www.log.httplog and www.timeouts.http_request == 10_000
    assert raw.mode == "tcp" and raw.log.tcplog and not raw.log.httplog
    app = config.backends["app"]
    assert (app.balance, app.uri_whole, app.hash_type, app.retries, app.fullconn) == ("uri", True, "consistent", 5, 100)
    assert app.cookie is not None and app.cookie.domain == (".example.org",) and app.cookie.nocache
    assert app.httpchk is not None and app.httpchk.expect_status == (StatusRange(200, 399),)
    assert app.connection_mode == "close" and app.allbackups and not app.redispatch
    a1, a2 = app.servers
    assert (a1.weight, a1.inter, a1.fall, a1.check_port, a1.fastinter, a1.downinter) == (10, 3000, 2, 8080, 1000, 10_000)
    assert (a1.maxconn, a1.maxqueue, a1.cookie) == (30, 5, "a1")
    assert a2.backup and a2.disabled and a2.check
    pool = config.backends["pool"]
    assert pool.balance == "source" and pool.log.log_health_checks
    assert pool.servers[0].address == Address("::1", 6000)


def test_tcp_is_haproxys_default_mode() -> None:
    config = convert("frontend f\n bind :80\n default_backend b\nbackend b\n server s 127.0.0.1:81\n")
    assert config.frontends["f"].mode == config.backends["b"].mode == "tcp"


def test_several_defaults_sections_are_folded() -> None:
    text = haproxy_to_toml("""\
defaults
    mode http
    option httplog
    timeout client 7s
frontend f
    bind :80
    default_backend b
defaults
    timeout connect 2s
backend b
    server s 127.0.0.1:81
""")
    data = tomllib.loads(text)
    assert "defaults" not in data
    assert data["frontend"]["f"] == {"mode": "http", "httplog": True, "timeout": {"client": "7s"},
                                     "bind": [":80"], "default_backend": "b"}
    assert data["backend"]["b"]["mode"] == "tcp" and data["backend"]["b"]["timeout"] == {"connect": "2s"}


@pytest.mark.parametrize("line, words", [
    ("  server a 127.0.0.1:80 check   # comment", ["server", "a", "127.0.0.1:80", "check"]),
    ('log-format "%ci %b # not a comment"', ["log-format", "%ci %b # not a comment"]),
    ("errorfile 503 'a\\b c'", ["errorfile", "503", "a\\b c"]),
    ("option httpchk OPTIONS * HTTP/1.1\\r\\nHost:\\ www", ["option", "httpchk", "OPTIONS", "*", "HTTP/1.1\r\nHost: www"]),
    ('x a""b \\x41', ["x", "ab", "A"]),
    ('x ""', ["x", ""]),
    ("# only a comment", []),
])
def test_split_words(line: str, words: list[str]) -> None:
    assert split_words(line) == words


# --- back to haproxy.cfg -----------------------------------------------------------------


def test_toml_to_haproxy_round_trip(spec: Config) -> None:
    back = convert(toml_to_haproxy(spec))
    assert dataclasses.replace(back, source=None) == dataclasses.replace(spec, source=None)


def test_toml_to_haproxy_keeps_what_each_side_uses() -> None:
    original = load_file(str(CONFIGS / "full.toml"))
    back = convert(toml_to_haproxy(original))
    assert back.proxy_order == original.proxy_order
    # HAProxy has one log-tag for all targets and no max_header_bytes.
    assert dataclasses.replace(back.global_, log=(), tune=original.global_.tune) == dataclasses.replace(
        original.global_, log=())
    assert [dataclasses.replace(t, tag="") for t in back.global_.log] == [
        dataclasses.replace(t, tag="") for t in original.global_.log]
    for name, be in original.backends.items():
        other = back.backends[name]
        assert other.servers == be.servers
        assert (other.cookie, other.httpchk, other.balance, other.uri_whole) == (be.cookie, be.httpchk, be.balance, be.uri_whole)
        assert (other.timeouts.connect, other.timeouts.server, other.timeouts.queue) == (
            be.timeouts.connect, be.timeouts.server, be.timeouts.queue)
    for name, fe in original.frontends.items():
        other_fe = back.frontends[name]
        assert (other_fe.bind, other_fe.forwardfor, other_fe.maxconn, other_fe.connection_mode) == (
            fe.bind, fe.forwardfor, fe.maxconn, fe.connection_mode)
        assert dataclasses.replace(other_fe.log, targets=()) == dataclasses.replace(fe.log, targets=())
        assert other_fe.timeouts.client == fe.timeouts.client


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="Debian's haproxy is not installed")
@pytest.mark.parametrize("path", [SPEC / "esup-proxy.toml", CONFIGS / "full.toml"], ids=lambda p: p.name)
def test_haproxy_accepts_the_output(path: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(toml_to_haproxy(load_file(str(path))))
    result = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True,
                            timeout=HAPROXY_CHECK_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stderr and "[ALERT]" not in result.stderr
