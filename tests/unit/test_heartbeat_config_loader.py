"""heartbeat's cluster file loader: the seed's file loads with exactly the
right values, every key reaches the model, and every mistake is reported
with its key path and reason, all at once."""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from heartbeat.config.loader import load_dict, load_file, load_string, summary, warnings_for
from heartbeat.errors import ConfigError
from heartbeat.model import (
    INFINITY,
    MINUS_INFINITY,
    AgentSpec,
    ClusterConfig,
    ColocationConstraint,
    GroupConfig,
    LocationConstraint,
    NodeConfig,
    Operation,
    OrderConstraint,
)

SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "esup-cluster.toml"
CONFIGS = Path(__file__).resolve().parent / "heartbeat_configs"

MINIMAL = {
    "cluster": {"name": "c"},
    "node": [{"name": "n1", "addresses": ["10.0.0.1"]}, {"name": "n2", "addresses": ["10.0.0.2"]}],
    "resource": [{"id": "vip", "agent": "ocf:heartbeat:IPaddr2"}, {"id": "web", "agent": "lsb:apache2"}],
}


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_dict(data)
    return info.value.problems


def only_problem(data: dict[str, Any]) -> tuple[str, str]:
    found = problems(data)
    assert len(found) == 1, found
    return found[0]


def with_(**tables: Any) -> dict[str, Any]:
    """MINIMAL with some top-level tables replaced or added."""
    data = copy.deepcopy(MINIMAL)
    data.update(copy.deepcopy(tables))
    return data


def cluster(**keys: Any) -> dict[str, Any]:
    return with_(cluster={"name": "c", **keys})


# --- the seed's cluster -------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> ClusterConfig:
    return load_file(str(SPEC))


def test_spec_cluster_settings(spec: ClusterConfig) -> None:
    assert spec.name == "esup-proxy"
    assert (spec.keepalive, spec.warntime, spec.deadtime, spec.initdead) == (1000, 3000, 5000, 15_000)
    assert spec.port == 694
    assert spec.multicast is None
    assert spec.auth_key_file == "/etc/heartbeat/authkey"
    assert spec.auto_failback is True
    assert spec.resource_stickiness == 0
    assert spec.migration_threshold == 0
    assert spec.failure_timeout is None
    assert spec.status_socket == "/run/heartbeat/status.sock"
    assert spec.state_dir == "/var/lib/heartbeat"
    assert spec.source == str(SPEC)


def test_spec_nodes(spec: ClusterConfig) -> None:
    assert spec.nodes == (
        NodeConfig("esup-proxy-1", ("192.0.2.11",), 1),
        NodeConfig("esup-proxy-2", ("192.0.2.12",), 2),
    )


def test_spec_resources(spec: ClusterConfig) -> None:
    vip, proxy, tls = spec.resources
    assert [r.id for r in spec.resources] == ["vip", "proxy", "tls"]
    assert vip.agent == AgentSpec("ocf", "heartbeat", "IPaddr2")
    assert str(vip.agent) == "ocf:heartbeat:IPaddr2"
    assert vip.params == (("ip", "192.0.2.15"), ("cidr_netmask", "24"))
    assert vip.monitor == Operation("monitor", interval=5000, timeout=20_000, on_fail="restart")
    assert proxy.agent == AgentSpec("ocf", "gproxy", "gproxy")
    assert proxy.params == (("config", "/etc/gproxy/esup-proxy.toml"),)
    assert proxy.monitor == Operation("monitor", interval=5000, timeout=10_000)
    assert tls.agent == AgentSpec("lsb", None, "stunnel4")
    assert str(tls.agent) == "lsb:stunnel4"
    assert tls.params == ()
    assert tls.monitor == Operation("monitor", interval=10_000, timeout=20_000)
    for res in spec.resources:
        assert res.start == Operation("start", timeout=20_000)
        assert res.stop == Operation("stop", timeout=20_000)
        assert (res.resource_stickiness, res.migration_threshold, res.failure_timeout) == (None, None, None)
        assert res.target_role == "started"


def test_spec_group_and_constraint(spec: ClusterConfig) -> None:
    assert spec.groups == (GroupConfig("esup", ("vip", "proxy", "tls")),)
    assert spec.group_of("proxy") == spec.groups[0]
    assert spec.constraints == (LocationConstraint("location-esup-esup-proxy-1", "esup", "esup-proxy-1", 100),)


def test_spec_loads_the_same_from_string_and_dict(spec: ClusterConfig) -> None:
    text = SPEC.read_text()
    assert load_string(text, source=str(SPEC)) == spec
    assert load_dict(tomllib.loads(text), source=str(SPEC)) == spec


def test_summary(spec: ClusterConfig) -> None:
    assert summary(spec) == 'cluster "esup-proxy": 2 nodes, 3 resources, 1 group, 1 constraint'


# --- every key reaches the model --------------------------------------------------------


def test_full_file_sets_every_field() -> None:
    config = load_file(str(CONFIGS / "full.toml"))
    assert (config.name, config.keepalive, config.warntime, config.deadtime, config.initdead) == (
        "lab", 200, 600, 1000, 3000)
    assert (config.port, config.multicast, config.auth_key_file) == (7694, "239.0.0.42", "/etc/heartbeat/lab.key")
    assert (config.auto_failback, config.resource_stickiness) == (False, 50)
    assert (config.migration_threshold, config.failure_timeout) == (3, 600_000)
    assert (config.status_socket, config.state_dir) == ("/run/heartbeat/lab.sock", "/var/lib/heartbeat/lab")
    assert config.nodes == (
        NodeConfig("alpha", ("10.0.0.1", "10.1.0.1"), 10),
        NodeConfig("beta", ("10.0.0.2", "10.1.0.2"), 20),
        NodeConfig("gamma.example.org", ("10.0.0.3", "10.1.0.3"), 3),
    )
    vip = config.resource("vip")
    assert vip is not None
    assert vip.agent == AgentSpec("ocf", "gproxy", "vip")
    assert vip.params == (("ip", "10.0.0.100"), ("cidr_netmask", "24"), ("arp", "true"))
    assert vip.monitor == Operation("monitor", interval=2000, timeout=5000, on_fail="standby")
    assert vip.start == Operation("start", timeout=30_000)
    assert vip.stop == Operation("stop", timeout=40_000)
    assert (vip.resource_stickiness, vip.migration_threshold, vip.failure_timeout) == (INFINITY, 1, 30_000)
    assert vip.target_role == "stopped"
    db = config.resource("db")
    assert db is not None and db.monitor is None and db.agent == AgentSpec("lsb", None, "postgresql")
    web = config.resource("web")
    assert web is not None and web.monitor == Operation("monitor", interval=10_000, timeout=20_000)
    assert config.groups == (GroupConfig("front", ("vip", "web")),)
    assert config.constraints == (
        LocationConstraint("no-db-on-gamma", "db", "gamma.example.org", MINUS_INFINITY),
        ColocationConstraint("colocation-front-db", "front", "db", -500),
        ColocationConstraint("front-with-db", "front", "db", INFINITY),
        OrderConstraint("order-db-front", "db", "front", kind="optional", symmetrical=False),
    )


# --- computed defaults -------------------------------------------------------------------


def test_minimal_file_gets_the_model_defaults() -> None:
    config = load_dict(MINIMAL)
    assert config == ClusterConfig(
        name="c", nodes=config.nodes, resources=config.resources, source="<dict>",
        warntime=2500,  # deadtime / 2, not the model's 3000
    )
    assert [n.id for n in config.nodes] == [1, 2]


@pytest.mark.parametrize("keys, warntime, initdead", [
    ({}, 2500, 15_000),
    ({"deadtime": "30s"}, 15_000, 90_000),
    ({"keepalive": "200ms", "deadtime": "1s"}, 500, 3000),
    ({"keepalive": 1000, "deadtime": 2001}, 1001, 6003),  # rounded up: still above keepalive
    ({"deadtime": "10s", "warntime": "4s", "initdead": "10s"}, 4000, 10_000),
])
def test_warntime_and_initdead_follow_deadtime(keys: dict[str, Any], warntime: int, initdead: int) -> None:
    config = load_dict(cluster(**keys))
    assert (config.warntime, config.initdead) == (warntime, initdead)


@pytest.mark.parametrize("keys, stickiness", [
    ({}, 0),
    ({"auto_failback": True}, 0),
    ({"auto_failback": False}, INFINITY),
    ({"auto_failback": False, "resource_stickiness": 100}, 100),
    ({"auto_failback": True, "resource_stickiness": "INFINITY"}, INFINITY),
    ({"resource_stickiness": "-infinity"}, MINUS_INFINITY),
    ({"resource_stickiness": "+INFINITY"}, INFINITY),
])
def test_auto_failback_is_stickiness_shorthand(keys: dict[str, Any], stickiness: int) -> None:
    assert load_dict(cluster(**keys)).resource_stickiness == stickiness


def test_failure_timeout_zero_means_never() -> None:
    assert load_dict(cluster(failure_timeout=0)).failure_timeout is None
    data = with_(resource=[{"id": "vip", "agent": "lsb:x", "failure_timeout": "0s"}])
    resource = load_dict(data).resources[0]
    assert resource.failure_timeout is None


def test_params_convert_integers_and_booleans_in_file_order() -> None:
    data = with_(resource=[{"id": "vip", "agent": "lsb:x", "params": {"b": 24, "a": False, "c": "x"}}])
    assert load_dict(data).resources[0].params == (("b", "24"), ("a", "false"), ("c", "x"))


def test_a_lone_address_is_a_list_of_one() -> None:
    data = with_(node=[{"name": "n1", "addresses": "10.0.0.1"}, {"name": "n2", "addresses": "10.0.0.2"}])
    assert load_dict(data).nodes[0].addresses == ("10.0.0.1",)


def test_ipv6_addresses_are_normalised() -> None:
    data = with_(node=[{"name": "n1", "addresses": ["2001:DB8:0::1"]}, {"name": "n2", "addresses": ["2001:db8::2"]}],
                 cluster={"name": "c", "multicast": "ff02::1:6"})
    config = load_dict(data)
    assert config.nodes[0].addresses == ("2001:db8::1",)
    assert config.multicast == "ff02::1:6"


def test_sixteen_nodes_are_allowed() -> None:
    nodes = [{"name": f"n{i}", "addresses": [f"10.0.0.{i}"]} for i in range(1, 17)]
    assert len(load_dict(with_(node=nodes)).nodes) == 16


# --- mistakes, one at a time --------------------------------------------------------------


@pytest.mark.parametrize("keys, path, reason", [
    ({"keepalive": "2s", "deadtime": "4s"}, "cluster.deadtime",
     "4s is too small compared to keepalive 2s: it must be more than 2 × keepalive (4s)"),
    ({"keepalive": "3s"}, "cluster.deadtime",
     "5s (the default) is too small compared to keepalive 3s: it must be more than 2 × keepalive (6s)"),
    ({"initdead": "4s"}, "cluster.initdead",
     "4s is smaller than deadtime 5s (the default): right after start-up a node waits at least deadtime "
     "before declaring its peers dead"),
    ({"warntime": "1s"}, "cluster.warntime",
     "1s must be more than keepalive 1s (the default): a heartbeat is only late after keepalive"),
    ({"warntime": "5s"}, "cluster.warntime",
     "5s must be less than deadtime 5s (the default): a late heartbeat is reported before its node is declared dead"),
    ({"keepalive": "0s"}, "cluster.keepalive", '"0s" is too short: it must be at least 1ms'),
    ({"deadtime": "5 seconds"}, "cluster.deadtime",
     '"5 seconds" is not a duration (use e.g. "200ms", "5s", "2m" or an integer of ms)'),
    ({"port": 0}, "cluster.port", "0 is out of range 1..65535"),
    ({"port": 65536}, "cluster.port", "65536 is out of range 1..65535"),
    ({"port": "694"}, "cluster.port", 'expected an integer, got string "694"'),
    ({"multicast": "192.0.2.1"}, "cluster.multicast",
     '"192.0.2.1" is not a multicast address (IPv4 224.0.0.0/4, IPv6 ff00::/8)'),
    ({"multicast": "239.0.0.300"}, "cluster.multicast", '"239.0.0.300" is not an IPv4 or IPv6 address'),
    ({"auto_failback": "on"}, "cluster.auto_failback", 'expected a boolean (true or false), got string "on"'),
    ({"resource_stickiness": "INF"}, "cluster.resource_stickiness",
     '"INF" is not a score (an integer, "INFINITY" or "-INFINITY")'),
    ({"resource_stickiness": 2_000_000}, "cluster.resource_stickiness",
     '2000000 is beyond INFINITY (1000000): write "INFINITY" or "-INFINITY"'),
    ({"migration_threshold": -1}, "cluster.migration_threshold", "-1 is too small (the minimum is 0)"),
    ({"name": ""}, "cluster.name", "expected a cluster name, got an empty string"),
    ({"deadtme": "5s"}, "cluster.deadtme", 'unknown key (did you mean "deadtime"?)'),
    ({"udpport": 694}, "cluster.udpport", 'unknown key (ha.cf\'s "udpport" is "port" here)'),
    ({"mcast": "239.0.0.1"}, "cluster.mcast", 'unknown key (ha.cf\'s "mcast" is "multicast" here)'),
])
def test_cluster_mistakes(keys: dict[str, Any], path: str, reason: str) -> None:
    assert only_problem(cluster(**keys)) == (path, reason)


def test_timer_that_does_not_parse_skips_the_rules_that_need_it() -> None:
    # warntime is unusable, but the deadtime rule is still checked.
    found = problems(cluster(keepalive="2s", deadtime="3s", warntime="soon"))
    assert [p for p, _ in found] == ["cluster.warntime", "cluster.deadtime"]


def test_cluster_name_required() -> None:
    assert only_problem(with_(cluster={})) == ("cluster.name", "missing: [cluster] needs one")


def test_cluster_table_required() -> None:
    data = copy.deepcopy(MINIMAL)
    del data["cluster"]
    assert only_problem(data) == ("cluster", "missing: a cluster file needs one")


def two_nodes(first: dict[str, Any], second: dict[str, Any] | None = None) -> dict[str, Any]:
    return with_(node=[first, second or {"name": "n2", "addresses": ["10.0.0.2"]}])


@pytest.mark.parametrize("data, path, reason", [
    (with_(node=[{"name": "n1", "addresses": ["10.0.0.1"]}]), "node",
     "a cluster has 2 to 16 nodes, this one has 1"),
    (with_(node=[{"name": f"n{i}", "addresses": [f"10.0.0.{i}"]} for i in range(1, 18)]), "node",
     "a cluster has 2 to 16 nodes, this one has 17"),
    (with_(node={"name": "n1", "addresses": ["10.0.0.1"]}), "node",
     "expected an array of tables: write [[node]] for each one, not [node]"),
    (two_nodes({"name": "n2", "addresses": ["10.0.0.1"]}), "node[1].name", 'duplicate node name "n2" (also node[0])'),
    (two_nodes({"name": "n1", "addresses": ["10.0.0.1"], "id": 2}), "node[1].id",
     "duplicate node id 2: node[0] has it (a node without `id` gets its 1-based position)"),
    (two_nodes({"name": "n1", "addresses": ["10.0.0.1"]}, {"name": "n2", "addresses": ["10.0.0.2"], "id": 1}),
     "node[1].id", "duplicate node id 1: node[0] has it by its position"),
    (two_nodes({"name": "n1", "addresses": ["10.0.0.1"], "id": 0}), "node[0].id", "0 is out of range 1..4294967295"),
    (two_nodes({"name": "n1", "addresses": []}), "node[0].addresses", "expected at least one IP address, got 0"),
    (two_nodes({"name": "n1"}), "node[0].addresses", "missing: every [[node]] needs one"),
    (two_nodes({"addresses": ["10.0.0.1"]}), "node[0].name", "missing: every [[node]] needs one"),
    (two_nodes({"name": "n1", "addresses": ["10.0.0.256"]}), "node[0].addresses[0]",
     '"10.0.0.256" is not an IPv4 or IPv6 address'),
    (two_nodes({"name": "n1", "addresses": ["224.0.0.1"]}), "node[0].addresses[0]",
     '"224.0.0.1" is a multicast address: a node needs its own unicast address'),
    (two_nodes({"name": "n1", "addresses": ["0.0.0.0"]}), "node[0].addresses[0]",
     '"0.0.0.0" is the unspecified address: a node needs its own unicast address'),
    (two_nodes({"name": "n1", "addresses": ["10.0.0.1", "10.0.0.1"]}), "node[0].addresses[1]",
     '"10.0.0.1" is listed twice (also node[0].addresses[0])'),
    (two_nodes({"name": "n1", "addresses": ["10.0.0.2"]}), "node[1].addresses[0]",
     "10.0.0.2 is also node[0].addresses[0]: every node needs its own addresses"),
    (two_nodes({"name": "n1", "addresses": ["2001:db8::1"]}), "node[1].addresses[0]",
     "10.0.0.2 is IPv4 but node[0].addresses[0] is IPv6: address 0 of every node is on link 0, so all of one family"),
    (two_nodes({"name": "n 1", "addresses": ["10.0.0.1"]}), "node[0].name",
     "\"n 1\" is not a valid node name (a host name: letters, digits, '-', '_' and dots)"),
    (two_nodes({"name": "n1", "address": ["10.0.0.1"]}), "node[0].address",
     'unknown key (did you mean "addresses"?)'),
])
def test_node_mistakes(data: dict[str, Any], path: str, reason: str) -> None:
    found = problems(data)
    assert (path, reason) in found, found
    assert len(found) == 1 or path == "node[0].address", found


def test_multicast_family_must_match_the_links() -> None:
    assert only_problem(cluster(multicast="ff02::1")) == (
        "cluster.multicast", "an IPv6 group cannot reach IPv4 links (node[0].addresses[0] is IPv4)")


def resource(**keys: Any) -> dict[str, Any]:
    return with_(resource=[{"id": "vip", "agent": "ocf:heartbeat:IPaddr2", **keys},
                           {"id": "web", "agent": "lsb:apache2"}])


@pytest.mark.parametrize("data, path, reason", [
    (resource(agent="ocf:heartbeat"), "resource[0].agent",
     '"ocf:heartbeat": an OCF agent is written "ocf:PROVIDER:TYPE" (e.g. "ocf:heartbeat:IPaddr2")'),
    (resource(agent="lsb:init.d:x"), "resource[0].agent",
     '"lsb:init.d:x": an LSB agent is written "lsb:NAME" (the script /etc/init.d/NAME)'),
    (resource(agent="systemd:nginx"), "resource[0].agent",
     '"systemd:nginx": unsupported agent class "systemd" (heartbeat runs "ocf:PROVIDER:TYPE" and "lsb:NAME" agents)'),
    (resource(agent="IPaddr2"), "resource[0].agent", '"IPaddr2" is not an agent (write "ocf:PROVIDER:TYPE" or "lsb:NAME")'),
    (resource(agent="ocf:../..:x"), "resource[0].agent",
     "\"ocf:../..:x\": \"../..\" is not a valid name (letters, digits, '_', '.', '+' and '-' only)"),
    (resource(agent="ocf::IPaddr2"), "resource[0].agent",
     "\"ocf::IPaddr2\": an empty name (letters, digits, '_', '.', '+' and '-' only)"),
    (resource(agent=3), "resource[0].agent",
     'expected an agent such as "ocf:heartbeat:IPaddr2" or "lsb:stunnel4", got integer 3'),
    (resource(params={"ip": 1.5}), "resource[0].params.ip",
     "expected a string, an integer or a boolean, got float 1.5: write it as a string"),
    (resource(params={"ip": ["a"]}), "resource[0].params.ip", "expected a string, an integer or a boolean, got an array"),
    (resource(params={"1ip": "x"}), "resource[0].params.1ip",
     "\"1ip\" is not a valid name (letters, digits and '_', not starting with a digit)"),
    (resource(params="ip=1"), "resource[0].params", 'expected a table such as { name = "value" }, got string "ip=1"'),
    (resource(monitor={"interval": "0s"}), "resource[0].monitor.interval", '"0s" is too short: it must be at least 1ms'),
    (resource(monitor={"interval": "5s", "timeout": 0}), "resource[0].monitor.timeout",
     "0 is too short: it must be at least 1ms"),
    (resource(monitor={"timeout": "5s"}), "resource[0].monitor.interval", "missing: a monitor table needs one"),
    (resource(monitor={"interval": "5s", "on_fail": "retsart"}), "resource[0].monitor.on_fail",
     '"retsart" is not one of restart, ignore, block, stop, standby, fence (did you mean "restart"?)'),
    (resource(monitor={"interval": "5s", "timout": "5s"}), "resource[0].monitor.timout",
     'unknown key (did you mean "timeout"?)'),
    (resource(monitor="5s"), "resource[0].monitor", 'expected a table, got string "5s"'),
    (resource(start={"timeout": "-1s"}), "resource[0].start.timeout",
     '"-1s" is not a duration (use e.g. "200ms", "5s", "2m" or an integer of ms)'),
    (resource(stop={"interval": "5s"}), "resource[0].stop.interval", 'unknown key'),
    (resource(target_role="Started"), "resource[0].target_role",
     '"Started" is not one of started, stopped (did you mean "started"?)'),
    (resource(migration_threshold="INFINITY"), "resource[0].migration_threshold",
     'expected an integer, got string "INFINITY"'),
    (resource(id="1vip"), "resource[0].id",
     "\"1vip\" is not a valid id (a letter or '_', then letters, digits, '_', '.' and '-')"),
    (resource(agnet="lsb:x"), "resource[0].agnet", 'unknown key (did you mean "agent"?)'),
    (with_(resource=[{"id": "vip"}]), "resource[0].agent", "missing: every [[resource]] needs one"),
    (with_(resource=[{"id": "vip", "agent": "lsb:x"}, {"id": "vip", "agent": "lsb:y"}]), "resource[1].id",
     'duplicate id "vip": resource[0].id has it already (resources and groups share one set of ids)'),
])
def test_resource_mistakes(data: dict[str, Any], path: str, reason: str) -> None:
    assert only_problem(data) == (path, reason)


def group(*groups: dict[str, Any]) -> dict[str, Any]:
    return with_(group=list(groups))


@pytest.mark.parametrize("data, path, reason", [
    (group({"id": "g", "resources": ["vip", "wbe"]}), "group[0].resources[1]",
     'no resource named "wbe" (did you mean "web"?)'),
    (group({"id": "g", "resources": []}), "group[0].resources", "expected at least one resource id, got 0"),
    (group({"id": "g", "resources": ["vip", "vip"]}), "group[0].resources[1]",
     '"vip" is listed twice (also group[0].resources[0])'),
    (group({"id": "g", "resources": ["vip"]}, {"id": "h", "resources": ["web", "vip"]}), "group[1].resources[1]",
     '"vip" is already in group "g" (group[0].resources[0]): a resource belongs to at most one group'),
    (group({"id": "g", "resources": ["vip"]}, {"id": "h", "resources": ["g"]}), "group[1].resources[0]",
     '"g" is a group: a group holds resources, not groups'),
    (group({"id": "vip", "resources": ["web"]}), "group[0].id",
     'duplicate id "vip": resource[0].id has it already (resources and groups share one set of ids)'),
    (group({"id": "g"}), "group[0].resources", "missing: every [[group]] needs one"),
    (group({"id": "g", "resources": ["vip"], "members": ["web"]}), "group[0].members", "unknown key"),
])
def test_group_mistakes(data: dict[str, Any], path: str, reason: str) -> None:
    assert only_problem(data) == (path, reason)


def constraint(**keys: Any) -> dict[str, Any]:
    return with_(constraint=[keys], group=[{"id": "g", "resources": ["vip", "web"]}])


@pytest.mark.parametrize("data, path, reason", [
    (constraint(kind="location", resource="vip", node="n11", score=100), "constraint[0].node",
     'no node named "n11" (did you mean "n1"?)'),
    (constraint(kind="location", resource="vip", node="far", score=100), "constraint[0].node",
     'no node named "far"'),
    (constraint(kind="location", resource="gg", node="n1", score=100), "constraint[0].resource",
     'no resource or group named "gg" (did you mean "g"?)'),
    (constraint(kind="location", resource="vip", node="n1"), "constraint[0].score",
     "missing: a location constraint needs one"),
    (constraint(kind="location", resource="vip", node="n1", score="INFINITE"), "constraint[0].score",
     '"INFINITE" is not a score (an integer, "INFINITY" or "-INFINITY")'),
    (constraint(kind="location", resource="vip", node="n1", score=1.5), "constraint[0].score",
     'expected a score (an integer, "INFINITY" or "-INFINITY"), got float 1.5'),
    (constraint(kind="location", resource="vip", node="n1", score=1, with_="web"), "constraint[0].with_",
     'unknown key'),
    (constraint(kind="location", resource="vip", node="n1", score=1, **{"with": "web"}), "constraint[0].with",
     "not a key of a location constraint (it belongs in a colocation constraint)"),
    (constraint(kind="colocation", resource="vip", **{"with": "vpi"}), "constraint[0].with",
     'no resource or group named "vpi" (did you mean "vip"?)'),
    (constraint(kind="colocation", resource="g", **{"with": "g"}), "constraint[0].with",
     '"g" cannot be colocated with itself'),
    (constraint(kind="colocation", resource="g", **{"with": "vip"}, node="n1"), "constraint[0].node",
     "not a key of a colocation constraint (it belongs in a location constraint)"),
    (constraint(kind="order", first="vip", then="vip"), "constraint[0].then", '"vip" cannot be ordered after itself'),
    (constraint(kind="order", first="vip", then="web", order_kind="Serialize"), "constraint[0].order_kind",
     '"Serialize" is not one of mandatory, optional'),
    (constraint(kind="order", first="vip"), "constraint[0].then", "missing: an order constraint needs one"),
    (constraint(kind="order", first="vip", then="web", symetrical=False), "constraint[0].symetrical",
     'unknown key (did you mean "symmetrical"?)'),
    (constraint(kind="locaton", resource="vip", node="n1", score=1), "constraint[0].kind",
     'expected one of "location", "colocation", "order", got string "locaton" (did you mean "location"?)'),
    (constraint(resource="vip", node="n1", score=1), "constraint[0].kind",
     'missing: say which kind ("location", "colocation", "order")'),
    (constraint(kind="location", id="g", resource="vip", node="n1", score=1), "constraint[0].id",
     '"g" is already a resource or group id'),
])
def test_constraint_mistakes(data: dict[str, Any], path: str, reason: str) -> None:
    assert only_problem(data) == (path, reason)


def test_constraints_with_the_same_default_id() -> None:
    same = {"kind": "location", "resource": "vip", "node": "n1", "score": 1}
    assert only_problem(with_(constraint=[same, dict(same, score=2)])) == (
        "constraint[1].id", 'duplicate constraint id "location-vip-n1": constraint[0] has it already '
        "(the default id: set `id` to tell them apart)")


def test_unknown_top_level_table() -> None:
    data = with_()
    data["nodes"] = data.pop("node")
    found = problems(data)
    assert ("nodes", 'unknown key (did you mean "node"?)') in found
    assert ("node", "missing: a cluster file needs one") in found


# --- several mistakes at once ---------------------------------------------------------------


def test_several_mistakes_are_reported_together_in_file_order() -> None:
    with pytest.raises(ConfigError) as info:
        load_file(str(CONFIGS / "several_mistakes.toml"))
    assert info.value.lines() == [
        'cluster.keepalve: unknown key (did you mean "keepalive"?)',
        "cluster.deadtime: 2s is too small compared to keepalive 1s: it must be more than 2 × keepalive (2s)",
        'resource[1].agent: "ocf:gproxy": an OCF agent is written "ocf:PROVIDER:TYPE" (e.g. "ocf:heartbeat:IPaddr2")',
        'group[0].resources[2]: no resource named "tsl" (did you mean "tls"?)',
        'constraint[0].node: no node named "esup-proxy1" (did you mean "esup-proxy-1"?)',
    ]


def test_a_bad_resource_does_not_make_references_to_it_errors() -> None:
    data = with_(resource=[{"id": "vip", "agent": "nope"}, {"id": "web", "agent": "lsb:apache2"}],
                 group=[{"id": "g", "resources": ["vip", "web"]}],
                 constraint=[{"kind": "location", "resource": "vip", "node": "n1", "score": 1}])
    assert [p for p, _ in problems(data)] == ["resource[0].agent"]


# --- files and TOML --------------------------------------------------------------------------


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as info:
        load_file("/nonexistent/cluster.toml")
    assert info.value.lines() == ["/nonexistent/cluster.toml: cannot read the file: No such file or directory"]


def test_invalid_toml_names_the_line() -> None:
    path = str(CONFIGS / "bad_syntax.toml")
    with pytest.raises(ConfigError) as info:
        load_file(path)
    [(where, reason)] = info.value.problems
    assert where == path
    assert reason.startswith("invalid TOML: ") and reason.endswith("(line 3, column 14)")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[cluster]\nname = "é"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_file(str(path))
    assert info.value.lines() == [f"{path}: cannot read the file: it is not UTF-8 text"]


def test_load_dict_refuses_a_non_table() -> None:
    with pytest.raises(ConfigError) as info:
        load_dict([], source="x")  # type: ignore[arg-type]
    assert info.value.problems == [("x", "expected a TOML document (a table), got list")]


# --- warnings: the auth key file ---------------------------------------------------------------


def keyed(path: Path) -> ClusterConfig:
    return load_dict(cluster(auth_key_file=str(path)))


def test_private_key_file_gives_no_warning(tmp_path: Path) -> None:
    key = tmp_path / "authkey"
    key.write_text("1 sha256 secret\n")
    key.chmod(0o600)
    assert warnings_for(keyed(key)) == []


def test_missing_key_file_warns(tmp_path: Path) -> None:
    key = tmp_path / "authkey"
    assert warnings_for(keyed(key)) == [
        f'cluster.auth_key_file: "{key}" does not exist: heartbeat cannot start without its shared key']


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_open_to_others_warns(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "authkey"
    key.write_text("1 sha256 secret\n")
    key.chmod(mode)
    assert warnings_for(keyed(key)) == [
        f'cluster.auth_key_file: "{key}" is open to group or others (mode {mode:04o}): '
        "use mode 0600, as Heartbeat requires for its keys"]


def test_key_file_that_is_a_directory_warns(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o700)
    assert warnings_for(keyed(tmp_path)) == [f'cluster.auth_key_file: "{tmp_path}" is not a regular file']
