"""The cluster schema: one declaration per key, defaults that agree with
heartbeat.model, and value types that parse what the docs promise. Also the
shared scalar types of gsuite.config_types, which gproxy builds on."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest

from gsuite import config_types as shared
from heartbeat import model
from heartbeat.config.schema import (
    ALL_SECTIONS,
    CLUSTER,
    COLOCATION,
    GROUP,
    LOCATION,
    MONITOR,
    NODE,
    ORDER,
    RESOURCE,
    START,
    STOP,
    TOP_LEVEL,
    Section,
)
from heartbeat.config.types import AgentType, MulticastAddress, NodeAddress, ParamValue, Score
from heartbeat.model import INFINITY, MINUS_INFINITY, AgentSpec

# Schema keys whose model field has another name.
RENAMED = {"with": "with_resource", "order_kind": "kind"}
# Model fields that no key sets directly (computed, or the operation's fixed name).
UNSET_FIELDS = {"source", "name", "interval", "on_fail", "nodes", "resources", "groups", "constraints"}


def model_fields(cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("section, cls", [
    (CLUSTER, model.ClusterConfig),
    (NODE, model.NodeConfig),
    (RESOURCE, model.ResourceConfig),
    (MONITOR, model.Operation),
    (START, model.Operation),
    (STOP, model.Operation),
    (GROUP, model.GroupConfig),
    (LOCATION, model.LocationConstraint),
    (COLOCATION, model.ColocationConstraint),
    (ORDER, model.OrderConstraint),
], ids=lambda v: getattr(v, "anchor", getattr(v, "__name__", "")))
def test_every_key_is_a_model_field_with_the_same_default(section: Section, cls: type) -> None:
    fields = model_fields(cls)
    for setting in section.settings:
        if setting.key == "kind" and section in (LOCATION, COLOCATION, ORDER):
            continue  # which constraint class, not a field
        name = RENAMED.get(setting.key, setting.key)
        assert name in fields, f"{section.anchor}.{setting.key} has no model field"
        default = fields[name]
        if setting.required or setting.default_doc is not None or default is dataclasses.MISSING:
            continue  # required, computed by the loader, or a factory default
        if setting.key == "params":
            assert setting.default == () == default
            continue
        if section in (MONITOR, START, STOP) and setting.key == "timeout":
            assert setting.default == 20_000
            continue
        assert setting.default == default, f"{section.anchor}.{setting.key}: {setting.default!r} != {default!r}"


def test_every_cluster_field_has_a_key() -> None:
    keys = {RENAMED.get(k, k) for k in CLUSTER.keys()}
    fields = set(model_fields(model.ClusterConfig)) - {"source", "nodes", "resources", "groups", "constraints", "snmp"}
    assert fields == keys


def test_every_resource_field_has_a_key() -> None:
    assert set(model_fields(model.ResourceConfig)) == set(RESOURCE.keys())


@pytest.mark.parametrize("section, key, cls, field", [
    (MONITOR, "on_fail", model.Operation, "on_fail"),
    (RESOURCE, "target_role", model.ResourceConfig, "target_role"),
    (ORDER, "order_kind", model.OrderConstraint, "kind"),
])
def test_choices_match_the_model_literals(section: Section, key: str, cls: type, field: str) -> None:
    choice = section[key].type
    assert isinstance(choice, shared.Choice)
    assert set(choice.values) == set(typing.get_args(typing.get_type_hints(cls)[field]))


def test_keys_are_unique_and_documented() -> None:
    for section in ALL_SECTIONS:
        assert len(section.keys()) == len(section.settings), section.anchor
        for setting in section.settings:
            assert setting.doc.strip(), f"{section.anchor}.{setting.key}"
            assert not (setting.required and setting.default not in (None, ())), f"{section.anchor}.{setting.key}"


def test_top_level_tables() -> None:
    assert TOP_LEVEL.keys() == ["cluster", "node", "resource", "group", "constraint", "snmp"]


# --- heartbeat's value types ---------------------------------------------------------------


@pytest.mark.parametrize("raw, score", [
    (0, 0), (100, 100), (-100, -100), (INFINITY, INFINITY), (MINUS_INFINITY, MINUS_INFINITY),
    ("INFINITY", INFINITY), ("+INFINITY", INFINITY), ("-INFINITY", MINUS_INFINITY), ("infinity", INFINITY),
    (" -Infinity ", MINUS_INFINITY),
])
def test_score(raw: object, score: int) -> None:
    assert Score().parse(raw) == score


@pytest.mark.parametrize("raw", [True, 1.0, "100", "INF", "", INFINITY + 1, MINUS_INFINITY - 1, None, [1]])
def test_not_a_score(raw: object) -> None:
    with pytest.raises(ValueError):
        Score().parse(raw)


@pytest.mark.parametrize("raw, spec", [
    ("ocf:heartbeat:IPaddr2", AgentSpec("ocf", "heartbeat", "IPaddr2")),
    ("ocf:gproxy:gproxy", AgentSpec("ocf", "gproxy", "gproxy")),
    ("ocf:pacemaker:ping", AgentSpec("ocf", "pacemaker", "ping")),
    ("lsb:stunnel4", AgentSpec("lsb", None, "stunnel4")),
    ("lsb:apache2.service-x_1", AgentSpec("lsb", None, "apache2.service-x_1")),
])
def test_agent(raw: str, spec: AgentSpec) -> None:
    assert AgentType().parse(raw) == spec
    assert str(spec) == raw


@pytest.mark.parametrize("raw", [
    "ocf:heartbeat", "ocf:a:b:c", "ocf:heartbeat:", "lsb:", "lsb:a:b", "lsb:../../bin/sh", "ocf:a/b:c",
    "ocf:..:x", "stonith:fence_xvm", "heartbeat", "", "OCF:heartbeat:IPaddr2", 1,
])
def test_not_an_agent(raw: object) -> None:
    with pytest.raises(ValueError):
        AgentType().parse(raw)


def test_addresses() -> None:
    assert NodeAddress().parse("192.0.2.11") == "192.0.2.11"
    assert NodeAddress().parse("2001:DB8::0:1") == "2001:db8::1"
    assert MulticastAddress().parse("239.0.0.1") == "239.0.0.1"
    assert MulticastAddress().parse("FF02::1") == "ff02::1"
    not_nodes: tuple[object, ...] = ("192.0.2", "host.example", "::", "ff02::1", 3)
    for bad in not_nodes:
        with pytest.raises(ValueError):
            NodeAddress().parse(bad)
    not_groups: tuple[object, ...] = ("192.0.2.1", "2001:db8::1", "239.0.0", None)
    for bad in not_groups:
        with pytest.raises(ValueError):
            MulticastAddress().parse(bad)


def test_param_values() -> None:
    assert [ParamValue().parse(v) for v in ("x", "", 24, -1, True, False)] == ["x", "", "24", "-1", "true", "false"]
    not_params: tuple[object, ...] = (1.5, [], {}, None)
    for bad in not_params:
        with pytest.raises(ValueError):
            ParamValue().parse(bad)


# --- the shared scalar types ------------------------------------------------------------------


def test_shared_types() -> None:
    assert shared.Int(1, 10).parse(10) == 10
    assert shared.Duration().parse("1.5s") == 1500
    assert shared.Duration(minimum=0).parse(0) == 0
    assert shared.Str("name", r"[a-z]+").parse("abc") == "abc"
    assert shared.Choice(("a", "b")).parse("b") == "b"
    assert shared.StrList().parse("x") == ("x",)
    assert shared.FileMode().parse("600") == 0o600
    assert shared.Bool().parse(False) is False
    for typ, bad in [(shared.Int(1, 10), 11), (shared.Int(), True), (shared.Duration(), 0),
                     (shared.Str("name", r"[a-z]+"), "A"), (shared.Choice(("a",)), "b"), (shared.Bool(), 1),
                     (shared.FileMode(), 0o1000), (shared.StrList(), [""])]:
        with pytest.raises(ValueError):
            typ.parse(bad)


def test_show_kind_of_did_you_mean() -> None:
    assert shared.show('a"b') == '"a\\"b"'
    assert shared.show([1, "x"]) == '[1, "x"]'
    assert shared.kind_of(True) == "boolean true"
    assert shared.kind_of(1.5) == "float 1.5"
    assert shared.did_you_mean("keepalve", ["keepalive", "deadtime"]) == ' (did you mean "keepalive"?)'
    assert shared.did_you_mean("zzz", ["keepalive"]) == ""


def test_gproxy_types_are_the_shared_ones_with_haproxy_hooks() -> None:
    # heartbeat never imports gproxy; this only checks that the move kept one implementation.
    from gproxy.config import types as gtypes

    for name in ("Bool", "Int", "Duration", "Str", "Choice", "StrList", "FileMode"):
        assert issubclass(getattr(gtypes, name), getattr(shared, name)), name
    assert gtypes.show is shared.show and gtypes.kind_of is shared.kind_of
    assert gtypes.Duration().from_haproxy("50000") == "50s"
