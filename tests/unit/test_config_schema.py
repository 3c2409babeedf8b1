"""The schema declarations and their value types: one declaration per key,
defaults that agree with the model, types that parse what the docs promise."""

from __future__ import annotations

import dataclasses
from ipaddress import ip_network

import pytest

from gproxy.config import model
from gproxy.config.model import Address, StatusRange
from gproxy.config.schema import (
    ALL_SECTIONS,
    COOKIE,
    GLOBAL,
    HTTPCHK,
    LOG_TARGET,
    PROXY,
    SERVER,
    STATS_SOCKET,
    TIMEOUT,
    TUNE,
    Section,
)
from gproxy.config.types import (
    BindList,
    Duration,
    FileMode,
    Int,
    LogTargetType,
    Network,
    StatusRanges,
    StrList,
    Table,
    TableList,
    UserOrId,
    ValueType,
    parse_address,
)

# Schema keys whose model field has another name.
RENAMED = {"port": "check_port", "stats_socket": "stats_sockets", "balance_uri_whole": "uri_whole",
           "except": "except_net"}


def model_defaults(cls: type) -> dict[str, object]:
    values: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            values[f.name] = f.default
    return values


@pytest.mark.parametrize("section, cls", [
    (GLOBAL, model.GlobalConfig),
    (TUNE, model.Tune),
    (LOG_TARGET, model.LogTarget),
    (STATS_SOCKET, model.StatsSocket),
    (TIMEOUT, model.Timeouts),
    (COOKIE, model.CookieConfig),
    (HTTPCHK, model.HttpCheck),
    (SERVER, model.ServerConfig),
    (PROXY, model.BackendConfig),
    (PROXY, model.FrontendConfig),
], ids=lambda x: getattr(x, "__name__", getattr(x, "anchor", "")))
def test_schema_defaults_agree_with_the_model(section: Section, cls: type) -> None:
    defaults = model_defaults(cls)
    compared = 0
    for setting in section.settings:
        name = RENAMED.get(setting.key, setting.key)
        if name in defaults and not isinstance(setting.type, (Table, TableList)):
            assert setting.default == defaults[name], f"{section.anchor}.{setting.key}"
            compared += 1
    assert compared > 0


def test_every_model_field_has_a_setting() -> None:
    """The loader can only fill what the schema declares."""
    pairs = [(model.GlobalConfig, GLOBAL), (model.Tune, TUNE), (model.LogTarget, LOG_TARGET),
             (model.StatsSocket, STATS_SOCKET), (model.Timeouts, TIMEOUT), (model.CookieConfig, COOKIE),
             (model.HttpCheck, HTTPCHK)]
    for cls, section in pairs:
        keys = {RENAMED.get(k, k) for k in section.keys()}
        missing = {f.name for f in dataclasses.fields(cls)} - keys
        assert not missing, f"{cls.__name__}: {missing}"
    server_fields = {f.name for f in dataclasses.fields(model.ServerConfig)} - {"id"}
    assert server_fields <= {RENAMED.get(k, k) for k in SERVER.keys()}
    for cls in (model.BackendConfig, model.FrontendConfig):
        derived = {"name", "id", "servers", "timeouts", "log", "is_listen", "uri_whole", "binds"}
        proxy_fields = {f.name for f in dataclasses.fields(cls)} - derived
        assert proxy_fields <= set(PROXY.keys()), cls.__name__


def test_every_setting_is_documented_once() -> None:
    for section in ALL_SECTIONS:
        keys = [s.key for s in section.settings]
        assert len(keys) == len(set(keys)), section.anchor
        for setting in section.settings:
            assert setting.doc.strip().endswith("."), f"{section.anchor}.{setting.key}"
            assert not (setting.required and setting.default is not None)


def test_defaults_are_valid_values_of_their_type() -> None:
    for section in ALL_SECTIONS:
        for setting in section.settings:
            typ = setting.type
            if setting.default is None or not isinstance(typ, ValueType) or isinstance(typ, StrList):
                continue
            assert typ.parse(setting.default) == setting.default, f"{section.anchor}.{setting.key}"


@pytest.mark.parametrize("text, bind, expected", [
    ("127.0.0.1:80", False, Address("127.0.0.1", 80)),
    ("[::1]:8080", False, Address("::1", 8080)),
    ("backend.example.org:443", False, Address("backend.example.org", 443)),
    ("*:80", True, Address("*", 80)),
    (":80", True, Address("", 80)),
    ("[::]:65535", True, Address("::", 65535)),
])
def test_parse_address(text: str, bind: bool, expected: Address) -> None:
    assert parse_address(text, bind=bind) == expected


def test_durations_go_through_the_one_parser() -> None:
    assert Duration().parse("5s") == 5000
    assert Duration().parse(5000) == 5000
    assert Duration().parse("100us") == 1
    assert Duration(minimum=0).parse(0) == 0
    with pytest.raises(ValueError, match="is too short"):
        Duration().parse(0)
    with pytest.raises(ValueError, match='^"5 seconds" is not a duration'):
        Duration().parse("5 seconds")
    assert Duration().from_haproxy("50000") == "50s"
    assert Duration().to_haproxy(1500) == "1500ms"


def test_status_ranges() -> None:
    assert StatusRanges().parse("200") == (StatusRange(200, 200),)
    assert StatusRanges().parse("200,301-302") == (StatusRange(200, 200), StatusRange(301, 302))
    assert StatusRanges().parse(["200-399", 404]) == (StatusRange(200, 399), StatusRange(404, 404))
    assert StatusRanges().to_haproxy(StatusRanges().parse("200,301-302")) == "200,301-302"
    with pytest.raises(ValueError, match="empty range"):
        StatusRanges().parse("399-200")
    with pytest.raises(ValueError, match="expected at least one status"):
        StatusRanges().parse([])


def test_small_types() -> None:
    assert FileMode().parse("600") == 0o600 and FileMode().parse("0640") == 0o640
    assert FileMode().from_haproxy("600") == 0o600 and FileMode().to_haproxy(0o600) == "600"
    assert UserOrId().parse("haproxy") == "haproxy" and UserOrId().from_haproxy("99") == 99
    assert Int(0, 256).from_haproxy("256") == 256
    with pytest.raises(ValueError, match="not an integer"):
        Int(0, 256).from_haproxy("heavy")
    assert Network().parse("192.0.2.15") == ip_network("192.0.2.15/32")
    assert Network().parse("10.1.2.3/8") == ip_network("10.0.0.0/8")
    assert BindList().parse("*:80") == (Address("*", 80),)
    assert StrList().parse(".a.org") == (".a.org",)
    assert LogTargetType().parse("udp://[::1]") == "udp://[::1]:514"
    assert LogTargetType().parse("udp://log.example.org:1514") == "udp://log.example.org:1514"
    with pytest.raises(ValueError, match="must be absolute"):
        LogTargetType().parse("unix://dev/log")
