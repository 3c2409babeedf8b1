"""Tests of the benchmark's pure parts: wrk report parsing and the rendered configurations.

Not collected by `make test` (testpaths = tests); run with `.venv/bin/python -m pytest -q bench/`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from configs import Layout, gproxy_toml, haproxy_cfg, maxconn_for, nginx_conf
from wrk_report import WrkOutputError, parse_wrk

WRK_NON_2XX = """Running 1s test @ http://127.0.0.1:18779/status/500
  1 threads and 5 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   134.71us  126.99us   4.06ms   99.35%
    Req/Sec    38.84k     1.60k   40.88k    63.64%
  Latency Distribution
     50%  124.00us
     75%  142.00us
     90%  146.00us
     99%    2.21ms
  42451 requests in 1.10s, 5.99MB read
  Non-2xx or 3xx responses: 42451
Requests/sec:  38612.39
Transfer/sec:      5.45MB
"""

WRK_SOCKET_ERRORS = """Running 1s test @ http://127.0.0.1:18779/close
  1 threads and 5 connections
  Latency Distribution
     50%    0.00us
     99%    0.00us
  0 requests in 1.10s, 0.00B read
  Socket errors: connect 1, read 28693, write 2, timeout 3
Requests/sec:      0.00
Transfer/sec:       0.00B
"""


def test_parse_wrk_rates_latencies_and_non_2xx() -> None:
    result = parse_wrk(WRK_NON_2XX)
    assert (result.requests, result.seconds, result.rate) == (42451, 1.1, 38612.39)
    assert result.latency_ms == {"50": 0.124, "75": 0.142, "90": 0.146, "99": 2.21}
    assert result.non_2xx == 42451 and result.errors == 42451
    assert result.socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 0}


def test_parse_wrk_socket_errors() -> None:
    result = parse_wrk(WRK_SOCKET_ERRORS)
    assert result.socket_errors == {"connect": 1, "read": 28693, "write": 2, "timeout": 3}
    assert result.errors == 28699 and result.to_json()["errors"] == 28699


def test_parse_wrk_refuses_a_failed_run() -> None:
    with pytest.raises(WrkOutputError):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


LAYOUT = Layout(origins=(40001, 40002), http_port=40010, tcp_port=40011, maxconn=9900)


def test_gproxy_toml_has_the_same_listeners_as_haproxy() -> None:
    config = tomllib.loads(gproxy_toml(LAYOUT))
    assert config["global"]["maxconn"] == 9900
    assert config["defaults"]["timeout"] == {"connect": "5s", "client": "30s", "server": "30s"}
    assert config["listen"]["bench"]["bind"] == ["127.0.0.1:40010"]
    assert config["listen"]["bench_tcp"]["mode"] == "tcp"
    for name in ("bench", "bench_tcp"):
        assert config["listen"][name]["balance"] == "roundrobin"
        assert config["listen"][name]["server"] == [{"name": "n1", "address": "127.0.0.1:40001"},
                                                     {"name": "n2", "address": "127.0.0.1:40002"}]
    haproxy = haproxy_cfg(LAYOUT, nbthread=1)
    assert "maxconn 9900" in haproxy and "nbthread 1" in haproxy
    assert haproxy.count("server n1 127.0.0.1:40001") == 2 and "bind 127.0.0.1:40011" in haproxy


def test_nginx_conf_keeps_its_files_in_the_workdir(tmp_path: Path) -> None:
    text = nginx_conf(40001, tmp_path, "nginx-n1")
    assert "listen 127.0.0.1:40001;" in text and "access_log off;" in text
    paths = [line.split()[1].rstrip(";") for line in text.splitlines()
             if line.strip().startswith(("pid", "error_log", "client_body_temp_path", "proxy_temp_path"))]
    assert paths and all(path.startswith(str(tmp_path)) for path in paths)


def test_maxconn_fits_the_descriptor_limit() -> None:
    assert maxconn_for(1_048_576) == 10_000
    assert maxconn_for(20_000) == 9_900
