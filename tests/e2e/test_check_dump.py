"""`gproxy check --dump` and `gproxy convert [--strict]` as an administrator
runs them: the seed's HAProxy configurations (1.3 syntax and 2.x syntax)
convert to files whose dump is the dump of esup-proxy.toml, apart from the
paths each file names itself (chroot, stats socket) and the stats socket the
1.3 file never had."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import REPO, SPEC_DIR  # noqa: E402

CLI_TIMEOUT = 60


def gproxy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gproxy", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=CLI_TIMEOUT)


def dump(path: Path) -> dict:
    result = gproxy("check", "--dump", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def spec_dump() -> dict:
    return dump(SPEC_DIR / "esup-proxy.toml")


def test_dump_applies_every_default(spec_dump: dict) -> None:
    g = spec_dump["global"]
    assert (g["maxconn"], g["stats_timeout"], g["tune"]["bufsize"]) == (4096, 10_000, 16384)
    frontend = spec_dump["frontends"]["esup-proxy"]
    # Durations in milliseconds; derived timeouts resolved as HAProxy derives them.
    assert frontend["timeouts"] == {"connect": 5000, "client": 50000, "server": 50000, "http_request": 50000,
                                    "http_keep_alive": 50000, "queue": 5000, "check": None, "tunnel": 50000}
    assert frontend["bind"] == [{"address": "192.0.2.15:80", "ssl": False, "crt": [], "alpn": [],
                                 "ssl_min_ver": "TLSv1.2", "ciphers": None, "accept_proxy": False}]
    servers = spec_dump["backends"]["esup-proxy"]["servers"]
    assert [(s["name"], s["weight"], s["inter"], s["fastinter"], s["downinter"]) for s in servers] == [
        ("ents3", 256, 5000, 5000, 5000), ("ents2", 128, 5000, 5000, 5000), ("ents1", 1, 5000, 5000, 5000),
        ("ent-maintenance", 1, 2000, 2000, 2000)]
    assert "source" not in spec_dump  # where a file lies says nothing about what it means


@pytest.mark.parametrize("name", ["esup-proxy.haproxy.cfg", "esup-proxy.haproxy2.cfg"])
def test_seed_haproxy_configurations_convert_to_the_spec(name: str, spec_dump: dict, tmp_path: Path) -> None:
    result = gproxy("convert", "--strict", str(SPEC_DIR / name))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    converted = tmp_path / "converted.toml"
    converted.write_text(result.stdout)
    got = dump(converted)
    # The differences the files themselves hold, and nothing else.
    assert got["global"].pop("chroot") == "/usr/share/haproxy"
    expected = json.loads(json.dumps(spec_dump))
    assert expected["global"].pop("chroot") == "/usr/share/gproxy"
    sockets = got["global"].pop("stats_sockets")
    spec_sockets = expected["global"].pop("stats_sockets")
    if name == "esup-proxy.haproxy.cfg":
        assert sockets == []  # HAProxy 1.3 had no runtime API
    else:
        assert [{**s, "path": None} for s in sockets] == [{**s, "path": None} for s in spec_sockets]
        assert sockets[0]["path"] == "/run/haproxy/admin.sock"
    assert got == expected


def test_convert_lists_what_it_leaves_out(tmp_path: Path) -> None:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text("""\
global
        maxconn 100
        nbthread 4

frontend www
        bind 127.0.0.1:443 ssl crt /etc/ssl/site.pem alpn h2,http/1.1 tfo
        bind 127.0.0.1:80 accept-proxy
        mode http
        http-request redirect scheme https code 301 if !{ ssl_fc }
        http-response set-header Strict-Transport-Security "max-age=31536000"
        default_backend app

backend app
        mode http
        server a 127.0.0.1:8443 ssl verify none sni str(app.example) send-proxy-v2 slowstart 10s
""")
    lenient = gproxy("convert", str(cfg))
    assert lenient.returncode == 0
    assert lenient.stderr.splitlines() == [
        f'{cfg}:3: not converted: unsupported directive "nbthread 4" in global',
        f'{cfg}:6: not converted: bind: option "tfo" is not supported',
        f'{cfg}:15: not converted: server a: option "slowstart" is not supported',
    ]
    text = lenient.stdout
    assert ('bind = [{ address = "127.0.0.1:443", ssl = true, crt = ["/etc/ssl/site.pem"], '
            'alpn = ["h2", "http/1.1"] }, { address = "127.0.0.1:80", accept_proxy = true }]') in text
    assert "redirect_to_https = true" in text and 'hsts = "365d"' in text
    assert 'ssl = true\nverify = "none"\nsni = "app.example"\nsend_proxy = "v2"' in text
    strict = gproxy("convert", "--strict", str(cfg))
    assert strict.returncode == 1 and strict.stdout == ""
    assert [line.split(": ", 2)[1] for line in strict.stderr.splitlines()] == ["error"] * 3
    # What was converted is checked like any file: an HTTP frontend cannot offer h2.
    converted = tmp_path / "gproxy.toml"
    converted.write_text(text)
    check = gproxy("check", str(converted))
    assert check.returncode == 1
    assert check.stderr.splitlines() == [
        'frontend.www.bind[0].alpn: "h2": an HTTP frontend speaks HTTP/1.x only (offer "http/1.1")']


def test_dump_of_an_invalid_file_is_the_problem_list(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[listen.web]\nbind = ["127.0.0.1:80"]\nbalance = "fastest"\n')
    result = gproxy("check", "--dump", str(path))
    assert result.returncode == 1 and result.stdout == ""
    assert "listen.web.balance" in result.stderr
