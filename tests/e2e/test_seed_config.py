"""The seed's configuration (shared/spec/esup-proxy.toml), addresses rewritten
to loopback, run by a real gproxy in front of four real backends."""

from __future__ import annotations

import collections
import re

import pytest

from harness import http_get, spec_on_loopback

NAMES = {"192.0.2.16:80": "ents3", "192.0.2.17:80": "ents2", "192.0.2.18:80": "ents1",
         "192.0.2.19:80": "ent-maintenance"}


@pytest.fixture
def seed(start_backend, start_gproxy, syslog):
    text, mapping = spec_on_loopback(fixed={"192.0.2.14:514": syslog.port})
    backends = {name: start_backend(name, mapping[addr]) for addr, name in NAMES.items()}
    # Short check timers (the contract keeps keys and meanings; tests shorten timers).
    text = text.replace('inter = "5s"', 'inter = "200ms"').replace("inter = 5000", 'inter = "200ms"')
    frontend = mapping["192.0.2.15:80"]
    proxy = start_gproxy(text, [frontend])
    return frontend, backends, proxy


def test_weights_256_128_1(seed):
    frontend, _, _ = seed
    counts = collections.Counter()
    for _ in range(385):
        status, headers, _ = http_get(frontend, "/")
        assert status == 200
        counts[headers["x-backend"][0]] += 1
    assert counts == {"ents3": 256, "ents2": 128, "ents1": 1}


def test_cookie_prefix_both_ways(seed):
    frontend, _, _ = seed
    # Server -> client: the application's cookie comes back prefixed with the server's id.
    status, headers, _ = http_get(frontend, "/setcookie?name=JSESSIONID&value=abc")
    assert status == 200
    server = headers["x-backend"][0]
    prefix = {"ents3": "s3", "ents2": "s2", "ents1": "s1"}[server]
    assert headers["set-cookie"] == [f"JSESSIONID={prefix}~abc; Path=/"]
    # Client -> server: the prefix routes, and the server sees its own value.
    for _ in range(5):
        status, headers, body = http_get(frontend, "/echo", headers={"Cookie": "JSESSIONID=s1~xyz; lang=fr"})
        assert headers["x-backend"] == ["ents1"]
        import json
        seen = dict((k.lower(), v) for k, v in json.loads(body)["headers"])
        assert seen["cookie"] == "JSESSIONID=xyz; lang=fr"


def test_persistent_server_down_is_redispatched(seed, syslog):
    frontend, backends, _ = seed
    backends["ents1"].kill()
    syslog.wait_for(r"Server esup-proxy/ents1 is DOWN")
    status, headers, _ = http_get(frontend, "/", headers={"Cookie": "JSESSIONID=s1~xyz"})
    assert status == 200
    assert headers["x-backend"][0] in ("ents3", "ents2")


def test_forwardfor_appended_and_access_log_line(seed, syslog):
    frontend, _, _ = seed
    import json
    status, _, body = http_get(frontend, "/echo", headers={"X-Forwarded-For": "203.0.113.9"})
    xff = [v for k, v in json.loads(body)["headers"] if k.lower() == "x-forwarded-for"]
    # An existing header is kept; the client address is appended as another line.
    assert xff == ["203.0.113.9", "127.0.0.1"]
    line = syslog.wait_for(r'"GET /echo HTTP/1.1"')
    # local3.info = <158>; HAProxy's httplog fields in order.
    assert line.startswith("<158>")
    pattern = (r'gproxy\[\d+\]: 127\.0\.0\.1:\d+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] esup-proxy '
               r'esup-proxy/ents[123] \d+/\d+/\d+/\d+/\d+ 200 \d+ - - --N[N-] \d+/\d+/\d+/\d+/\d+ \d+/\d+ '
               r'"GET /echo HTTP/1.1"')
    assert re.search(pattern, line), line


def test_backup_takes_over_and_gives_back(seed, syslog):
    frontend, backends, _ = seed
    for name in ("ents3", "ents2", "ents1"):
        backends[name].post("/health/fail")
    syslog.wait_for(r"backend esup-proxy has no server available|Server esup-proxy/ents1 is DOWN")
    for name in ("ents3", "ents2", "ents1"):
        syslog.wait_for(rf"Server esup-proxy/{name} is DOWN")
    for _ in range(5):
        status, headers, _ = http_get(frontend, "/")
        assert status == 200
        assert headers["x-backend"] == ["ent-maintenance"]
    backends["ents2"].post("/health/ok")
    syslog.wait_for(r"Server esup-proxy/ents2 is UP")
    for _ in range(5):
        status, headers, _ = http_get(frontend, "/")
        assert headers["x-backend"] == ["ents2"]
