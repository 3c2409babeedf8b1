"""gsuite.snmp_config: the [snmp] table of both daemons, its problems with key paths, and both loaders."""

from __future__ import annotations

import pytest

from gsuite.snmp_config import (
    DEFAULT_ENTERPRISE_OID,
    DEFAULT_QUEUE_SIZE,
    SNMP_KEYS,
    TRAP_KEYS,
    SnmpConfig,
    TrapTarget,
    default_engine_id,
    parse_snmp,
)

V3 = {"target": "udp://192.0.2.50:162", "version": "v3", "user": "nms", "auth_protocol": "SHA",
      "auth_key": "authpass123", "priv_protocol": "AES", "priv_key": "privpass123"}


def ok(raw: dict) -> SnmpConfig:
    config, problems = parse_snmp(raw)
    assert problems == []
    assert config is not None
    return config


def problems_of(raw: object) -> dict[str, str]:
    config, problems = parse_snmp(raw)
    assert config is None and problems
    return dict(problems)


def test_the_issue_example_parses():
    config = ok({"traps": [{"target": "udp://192.0.2.50:162", "version": "v2c", "community": "public"}, V3]})
    v2, v3 = config.traps
    assert v2 == TrapTarget(host="192.0.2.50", port=162, version="v2c", community="public")
    assert (v3.user, v3.auth_protocol, v3.priv_protocol, v3.security_level) == ("nms", "SHA", "AES", "authPriv")
    assert config.enterprise_oid == DEFAULT_ENTERPRISE_OID and config.queue_size == DEFAULT_QUEUE_SIZE
    assert config.enabled


def test_defaults_port_version_and_single_table():
    config = ok({"traps": {"target": "udp://nms.example.org"}})
    assert config.traps == (TrapTarget(host="nms.example.org", port=162, version="v2c", community="public"),)


def test_ipv6_and_protocol_case():
    config = ok({"traps": [dict(V3, target="udp://[2001:db8::5]:1162", auth_protocol="sha256",
                                priv_protocol="aes256")]})
    target = config.traps[0]
    assert (target.host, target.port, target.ipv6) == ("2001:db8::5", 1162, True)
    assert (target.auth_protocol, target.priv_protocol) == ("SHA256", "AES256")


def test_v3_levels():
    auth_only = ok({"traps": [{k: v for k, v in V3.items() if not k.startswith("priv")}]}).traps[0]
    assert auth_only.security_level == "authNoPriv"
    bare = ok({"traps": [{"target": "udp://h", "version": "v3", "user": "u"}]}).traps[0]
    assert bare.security_level == "noAuthNoPriv"


def test_secrets_never_show():
    target = ok({"traps": [V3, {"target": "udp://h:1", "community": "s3cret-c0mmunity"}]}).traps
    shown = " ".join(str(t) + repr(t) for t in target)
    assert "authpass123" not in shown and "privpass123" not in shown and "s3cret" not in shown
    assert "udp://192.0.2.50:162 (v3, user nms authPriv)" in shown


def test_other_keys():
    config = ok({"traps": [], "enterprise_oid": ".1.3.6.1.4.1.99999.5", "engine_id": "0x80001F8880C0FFEE",
                 "notify_command": ["/usr/local/bin/notify", "--all"], "notify_timeout": "2s",
                 "queue_size": 10, "rate_limit": 5})
    assert config.enterprise_oid == "1.3.6.1.4.1.99999.5"
    assert config.engine_id == "0x80001f8880c0ffee"
    assert config.notify_command == ("/usr/local/bin/notify", "--all")
    assert (config.notify_timeout, config.queue_size, config.rate_limit) == (2000, 10, 5)
    assert config.enabled and not config.traps


@pytest.mark.parametrize("raw, path, reason", [
    ([], "snmp", "expected a table, got an array"),
    ({"trap": []}, "snmp.trap", 'unknown key (did you mean "traps"?)'),
    ({"traps": "udp://h"}, "snmp.traps", "expected an array of tables"),
    ({"traps": [3]}, "snmp.traps[0]", "expected a table, got integer 3"),
    ({"traps": [{}]}, "snmp.traps[0].target", "missing"),
    ({"traps": [{"target": "udp:/h"}]}, "snmp.traps[0].target", "is not \"udp://HOST[:PORT]\""),
    ({"traps": [{"target": "tcp://h:162"}]}, "snmp.traps[0].target", "is not"),
    ({"traps": [{"target": "udp://h:70000"}]}, "snmp.traps[0].target", "port 70000 is out of range"),
    ({"traps": [{"target": "udp://h", "version": "v1"}]}, "snmp.traps[0].version", 'is not one of "v2c", "v3"'),
    ({"traps": [{"target": "udp://h", "user": "u"}]}, "snmp.traps[0].user", 'only for version = "v3"'),
    ({"traps": [{"target": "udp://h", "community": ""}]}, "snmp.traps[0].community", "must not be empty"),
    ({"traps": [{"target": "udp://h", "community": 5}]}, "snmp.traps[0].community", "expected a string"),
    ({"traps": [dict(V3, community="public")]}, "snmp.traps[0].community", 'only for version = "v2c"'),
    ({"traps": [{k: v for k, v in V3.items() if k != "user"}]}, "snmp.traps[0].user", "missing"),
    ({"traps": [dict(V3, user="a b")]}, "snmp.traps[0].user", "is not a user name"),
    ({"traps": [dict(V3, auth_protocol="SHA1")]}, "snmp.traps[0].auth_protocol", '(did you mean "SHA"?)'),
    ({"traps": [dict(V3, priv_protocol="3DES")]}, "snmp.traps[0].priv_protocol", "is not one of"),
    ({"traps": [dict(V3, auth_key="short")]}, "snmp.traps[0].auth_key", "at least 8 characters"),
    ({"traps": [{k: v for k, v in V3.items() if k != "priv_key"}]}, "snmp.traps[0].priv_key",
     "missing: priv_protocol needs it"),
    ({"traps": [{k: v for k, v in V3.items() if not k.startswith("auth")}]}, "snmp.traps[0].priv_protocol",
     "needs auth_protocol too"),
    ({"enterprise_oid": "1.3.6.1.2.1"}, "snmp.enterprise_oid", "is not under enterprises"),
    ({"enterprise_oid": "1.3.6.x"}, "snmp.enterprise_oid", "is not a dotted OID"),
    ({"engine_id": "80001f88"}, "snmp.engine_id", "is not a hex string"),
    ({"engine_id": "0x8000"}, "snmp.engine_id", "has 2 octets"),
    ({"notify_command": "/bin/true"}, "snmp.notify_command", "expected a non-empty array of strings"),
    ({"notify_command": [""]}, "snmp.notify_command[0]", "must not be empty"),
    ({"notify_timeout": "soon"}, "snmp.notify_timeout", "is not a duration"),
    ({"notify_timeout": 0}, "snmp.notify_timeout", "must be more than 0"),
    ({"queue_size": 0}, "snmp.queue_size", "0 is out of range 1..100000"),
    ({"rate_limit": True}, "snmp.rate_limit", "expected an integer"),
])
def test_each_mistake_is_reported_at_its_path(raw, path, reason):
    found = problems_of(raw)
    assert path in found, found
    assert reason in found[path]


def test_a_v3_user_has_one_set_of_keys():
    other = dict(V3, target="udp://192.0.2.51", priv_key="another-key")
    assert problems_of({"traps": [V3, other]}) == {
        "snmp.traps[1].user": 'user "nms" has other protocols or keys in traps[0]: a user has one set of keys'}
    assert len(ok({"traps": [V3, dict(V3, target="udp://192.0.2.51")]}).traps) == 2


def test_every_problem_is_reported_at_once():
    found = problems_of({"traps": [{"target": "x"}, dict(V3, auth_key="1")], "queue_size": -1, "colour": 1})
    assert set(found) == {"snmp.traps[0].target", "snmp.traps[1].auth_key", "snmp.queue_size", "snmp.colour"}


def test_default_engine_id_is_stable_and_rfc3411_shaped():
    one = default_engine_id(DEFAULT_ENTERPRISE_OID, "gproxy", "lb1")
    assert one == default_engine_id(DEFAULT_ENTERPRISE_OID, "gproxy", "lb1")
    octets = bytes.fromhex(one[2:])
    assert octets[:4] == (0x80000000 | 32473).to_bytes(4, "big") and octets[4] == 4
    assert octets[5:] == b"gproxy@lb1"
    assert one != default_engine_id(DEFAULT_ENTERPRISE_OID, "heartbeat", "lb1")
    long = default_engine_id("1.3.6.1.4.1.99999", "heartbeat", "n" * 100)
    assert len(bytes.fromhex(long[2:])) == 32 and bytes.fromhex(long[2:])[:4] == (0x80000000 | 99999).to_bytes(4, "big")


def test_documented_keys_are_the_accepted_keys():
    assert {k.key for k in SNMP_KEYS} == {"traps", "enterprise_oid", "engine_id", "notify_command",
                                          "notify_timeout", "queue_size", "rate_limit"}
    assert [k.key for k in TRAP_KEYS][0] == "target"


# ---- both loaders --------------------------------------------------------------------------

GPROXY = """
[listen.app]
bind = ["127.0.0.1:8080"]
[[listen.app.server]]
name = "s1"
address = "127.0.0.1:8081"
"""

CLUSTER = """
[cluster]
name = "c"
auth_key_file = "/nonexistent"
[[node]]
name = "n1"
addresses = ["127.0.0.1:17001"]
[[node]]
name = "n2"
addresses = ["127.0.0.1:17002"]
"""

SNMP = """
[snmp]
traps = [{ target = "udp://127.0.0.1:162", community = "public" }]
"""


def test_gproxy_loads_snmp():
    from gproxy.config.loader import load_string
    assert load_string(GPROXY).snmp is None
    config = load_string(GPROXY + SNMP)
    assert config.snmp == SnmpConfig(traps=(TrapTarget(host="127.0.0.1", port=162),))


def test_gproxy_reports_snmp_problems_with_the_others():
    from gproxy.config.loader import load_string
    from gproxy.errors import ConfigError
    with pytest.raises(ConfigError) as err:
        load_string(GPROXY.replace('"s1"', '"s 1"') + SNMP.replace('"public"', '""'))
    lines = "\n".join(err.value.lines())
    assert "snmp.traps[0].community: must not be empty" in lines and "listen.app.server[0].name" in lines


def test_heartbeat_loads_snmp():
    from heartbeat.config.loader import load_string
    from heartbeat.errors import ConfigError
    assert load_string(CLUSTER).snmp is None
    assert load_string(CLUSTER + SNMP).snmp.traps[0].host == "127.0.0.1"
    with pytest.raises(ConfigError) as err:
        load_string(CLUSTER + SNMP + 'queue_size = "big"\n')
    assert any(line.startswith("snmp.queue_size: expected an integer") for line in err.value.lines())
    with pytest.raises(ConfigError) as err:
        load_string("snmp = 3\n" + CLUSTER)
    assert any(line.startswith("snmp: expected a table") for line in err.value.lines())


def test_docs_describe_every_key():
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "docs" / "snmp.md").read_text()
    for key in SNMP_KEYS + TRAP_KEYS:
        assert f"| `{key.key}` |" in text, key.key
