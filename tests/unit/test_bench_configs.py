"""The benchmark's rendered configurations (bench/configs.py, bench/plain_configs.py) and wrk report
parsing (bench/wrk_report.py): pure text, no process started."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))  # bench/ is not a package
import configs  # noqa: E402
import plain_configs  # noqa: E402
from wrk_report import WrkOutputError, parse_wrk  # noqa: E402

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
  1 threads and 1000 connections
  Latency Distribution
     50%  150.00ms
     99%    1.90s
  3000 requests in 1.10s, 0.00B read
  Socket errors: connect 1, read 28693, write 2, timeout 3
Requests/sec:      2727.27
Transfer/sec:       0.00B
"""


def test_parse_wrk_rates_latencies_and_non_2xx() -> None:
    result = parse_wrk(WRK_NON_2XX)
    assert (result.requests, result.seconds, result.rate) == (42451, 1.1, 38612.39)
    assert result.latency_ms == {"50": 0.124, "75": 0.142, "90": 0.146, "99": 2.21}
    assert result.non_2xx == 42451 and result.errors == 42451
    assert result.socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 0}


def test_parse_wrk_socket_errors_and_seconds_latencies() -> None:
    result = parse_wrk(WRK_SOCKET_ERRORS)
    assert result.socket_errors == {"connect": 1, "read": 28693, "write": 2, "timeout": 3}
    assert result.errors == 28699 and result.to_json()["errors"] == 28699
    assert result.latency_ms == {"50": 150.0, "99": 1900.0}


def test_parse_wrk_refuses_a_failed_run() -> None:
    with pytest.raises(WrkOutputError):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


LAYOUT = configs.Layout(origins=(40001, 40002), ports={"spec_keepalive": 40010, "spec_close": 40011, "tcp": 40012},
                        log_port=40020, maxconn=9900)


def test_gproxy_toml_has_the_spec_features_on_every_http_listener() -> None:
    config = tomllib.loads(configs.gproxy_toml(LAYOUT))
    assert config["global"]["maxconn"] == 9900 and config["defaults"]["maxconn"] == 9900
    assert config["global"]["log"] == [{"target": "udp://127.0.0.1:40020", "facility": "local3"}]
    assert config["defaults"]["httplog"] is True and config["defaults"]["log"] == "global"
    listeners = config["listen"]
    assert listeners["spec_keepalive"]["connection_mode"] == "keep-alive"
    assert listeners["spec_close"]["connection_mode"] == "close"
    for name in ("spec_keepalive", "spec_close"):
        listener = listeners[name]
        assert listener["cookie"] == {"name": "JSESSIONID", "mode": "prefix"}
        assert listener["forwardfor"] == {"except": "192.0.2.15"}
        assert listener["httpchk"] == {"method": "OPTIONS", "path": "/"}
        servers = listener["server"]
        assert [server.get("weight") for server in servers] == [256, 128, 1, None]
        assert [server.get("backup", False) for server in servers] == [False, False, False, True]
        assert all(server["check"] and server["inter"] == 5000 for server in servers)
        assert {server["address"] for server in servers} == {"127.0.0.1:40001", "127.0.0.1:40002"}
    assert listeners["tcp"]["mode"] == "tcp" and listeners["tcp"]["tcplog"] is True
    assert listeners["tcp"]["bind"] == ["127.0.0.1:40012"]


def test_haproxy_cfg_matches_the_gproxy_configuration() -> None:
    text = configs.haproxy_cfg(LAYOUT, nbthread=1)
    assert "nbthread 1" in text and text.count("maxconn 9900") == 2
    assert "log 127.0.0.1:40020 local3" in text and "option httplog" in text
    assert text.count("cookie JSESSIONID prefix") == 2 and text.count("option httpchk") == 2
    assert text.count("option forwardfor except 192.0.2.15") == 2
    assert text.count("option httpclose") == 1
    assert text.count("server ents3 127.0.0.1:40001 cookie s3 weight 256 check inter 5000 rise 1 fall 3") == 2
    assert text.count("server ent-maintenance 127.0.0.1:40002 check inter 5000 rise 1 fall 3 backup") == 2
    for port in (40010, 40011, 40012):
        assert f"bind 127.0.0.1:{port}" in text
    close = text.split("listen spec_close", 1)[1].split("listen tcp", 1)[0]
    assert "option httpclose" in close  # on the close listener, not the keep-alive one


def test_nginx_conf_serves_the_cookie_and_the_bulk_file_from_the_workdir(tmp_path: Path) -> None:
    text = configs.nginx_conf(40001, tmp_path, "nginx-n1", tmp_path / "bulk.bin")
    assert "listen 127.0.0.1:40001;" in text and "access_log off;" in text
    assert 'add_header Set-Cookie "JSESSIONID=' in text
    assert f"location = {configs.BULK_PATH}" in text and f"alias {tmp_path / 'bulk.bin'};" in text
    paths = [line.split()[1].rstrip(";") for line in text.splitlines()
             if line.strip().startswith(("pid", "error_log", "client_body_temp_path", "proxy_temp_path"))]
    assert paths and all(path.startswith(str(tmp_path)) for path in paths)


def test_maxconn_fits_the_descriptor_limit() -> None:
    assert configs.maxconn_for(1_048_576) == 10_000
    assert configs.maxconn_for(20_000) == 9_900


def test_plain_configurations_of_the_other_benches() -> None:
    layout = plain_configs.Layout(origins=(40001, 40002), http_port=40010, tcp_port=40011, maxconn=9900)
    config = tomllib.loads(plain_configs.gproxy_toml(layout))
    assert config["listen"]["bench_tcp"]["mode"] == "tcp"
    assert config["listen"]["bench"]["server"] == [{"name": "n1", "address": "127.0.0.1:40001"},
                                                    {"name": "n2", "address": "127.0.0.1:40002"}]
    haproxy = plain_configs.haproxy_cfg(layout, nbthread=1)
    assert haproxy.count("server n1 127.0.0.1:40001") == 2 and "bind 127.0.0.1:40011" in haproxy


def test_a_wrk_sample_counts_the_failed_requests_of_its_warm_up_too() -> None:
    import run  # noqa: PLC0415 (bench/run.py: imported here, the other tests need only the pure modules)

    sample = run.wrk_sample(parse_wrk(WRK_NON_2XX), value=38612.39, cpu=0.55, warmup=parse_wrk(WRK_SOCKET_ERRORS))
    assert sample.value == 38612.39 and sample.requests == 42451 + 3000
    assert (sample.non_2xx, sample.socket_errors, sample.timeouts) == (42451, 1 + 28693 + 2, 3)
    assert sample.detail["cpu_percent"] == 50.0 and sample.detail["warmup"]["requests"] == 3000
    assert sample.detail["cpu_us_per_request"] == round(0.55e6 / 42451, 1)  # the measured requests only
    clean = run.wrk_sample(parse_wrk(WRK_SOCKET_ERRORS), value=1.0, cpu=0.0)
    assert clean.requests == 3000 and "warmup" not in clean.detail


def test_haproxy_splices_on_the_tcp_listener_only_when_asked() -> None:
    plain = configs.haproxy_cfg(LAYOUT, nbthread=1)
    spliced = configs.haproxy_cfg(LAYOUT, nbthread=1, splice=True)
    assert "splice" not in plain
    tcp = spliced.split("listen tcp", 1)[1]
    assert "option splice-request" in tcp and "option splice-response" in tcp
    assert spliced.count("option splice-response") == 1
    assert configs.maxconn_for(20_000, splice=True) == 7_920  # (20000 - 200) / 2.5: pipes need descriptors too
