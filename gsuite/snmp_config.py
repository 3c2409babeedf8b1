"""The `[snmp]` table shared by gproxy's and heartbeat's TOML: its model and its validation.

Both loaders hand the raw table to `parse_snmp()`, which returns the frozen
`SnmpConfig` and every problem with its key path (`snmp.traps[1].auth_key:
...`), so `gproxy check` and `heartbeat check` report SNMP mistakes like any
other. The notifier (checks.snmp) only ever sees a validated `SnmpConfig`.
Pure: no sockets, no pysnmp, nothing resolved (host names are looked up by
the sender, off the daemon's loop).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gsuite.config_types import ValueType, did_you_mean, kind_of, show
from gsuite.durations import parse_duration

# RFC 5612's documentation PEN: a placeholder until a site uses its own IANA
# Private Enterprise Number (the MIB's MODULE-IDENTITY line changes with it).
DEFAULT_ENTERPRISE_OID = "1.3.6.1.4.1.32473"
ENTERPRISES_PREFIX = "1.3.6.1.4.1."
DEFAULT_TRAP_PORT = 162
MAX_PORT = 65535
DEFAULT_QUEUE_SIZE = 1000  # events waiting for the sender; beyond, they are dropped and counted
MAX_QUEUE_SIZE = 100_000
DEFAULT_RATE_LIMIT = 20  # traps a second after a burst (each costs ~0.7 ms of CPU per receiver, under the GIL)
DEFAULT_NOTIFY_TIMEOUT = 5000  # ms a notify command may run before it is killed
MIN_KEY_LENGTH = 8  # RFC 3414 section 11.2: USM passphrases have at least 8 characters
MAX_ENGINE_ID_OCTETS = 32  # RFC 3411 SnmpEngineID: 5..32 octets
MIN_ENGINE_ID_OCTETS = 5

VERSIONS = ("v2c", "v3")
AUTH_PROTOCOLS = ("MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512")
PRIV_PROTOCOLS = ("DES", "AES", "AES192", "AES256")

_TARGET_RE = re.compile(r"^udp://(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+))(?::(?P<port>\d+))?$")
_OID_RE = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_ENGINE_ID_RE = re.compile(r"^0x([0-9A-Fa-f]{2})+$")
_USER_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,32}$")  # snmpAdminString, kept to what configs can quote safely


@dataclass(frozen=True)
class TrapTarget:
    """One trap receiver and the credentials traps are sent to it with.
    `str()` never shows a community or a key (it is logged)."""

    host: str
    port: int = DEFAULT_TRAP_PORT
    version: str = "v2c"
    community: str = field(default="public", repr=False)
    user: str = ""
    auth_protocol: str | None = None
    auth_key: str | None = field(default=None, repr=False)
    priv_protocol: str | None = None
    priv_key: str | None = field(default=None, repr=False)
    ipv6: bool = False

    @property
    def security_level(self) -> str:
        """USM level: noAuthNoPriv, authNoPriv or authPriv (v2c: noAuthNoPriv)."""
        if self.version != "v3" or self.auth_protocol is None:
            return "noAuthNoPriv"
        return "authPriv" if self.priv_protocol is not None else "authNoPriv"

    def __str__(self) -> str:
        host = f"[{self.host}]" if self.ipv6 else self.host
        who = f"user {self.user} {self.security_level}" if self.version == "v3" else "community ***"
        return f"udp://{host}:{self.port} ({self.version}, {who})"


@dataclass(frozen=True)
class SnmpConfig:
    traps: tuple[TrapTarget, ...] = ()
    enterprise_oid: str = DEFAULT_ENTERPRISE_OID
    engine_id: str | None = None  # "0x..." ; None: derived from enterprise_oid and the node name
    notify_command: tuple[str, ...] = ()
    notify_timeout: int = DEFAULT_NOTIFY_TIMEOUT  # ms
    queue_size: int = DEFAULT_QUEUE_SIZE
    rate_limit: int = DEFAULT_RATE_LIMIT  # traps per second

    @property
    def enabled(self) -> bool:
        return bool(self.traps or self.notify_command)


@dataclass(frozen=True)
class KeyDoc:
    """One key of the table, for docs/snmp.md and `check`'s hints."""

    key: str
    type: str
    default: str
    doc: str


SNMP_KEYS: tuple[KeyDoc, ...] = (
    KeyDoc("traps", "array of tables", "`[]`", "Trap receivers, each a table of the keys below."),
    KeyDoc("enterprise_oid", "OID string", f'`"{DEFAULT_ENTERPRISE_OID}"`',
           "Root of GPROXY-SUITE-MIB: `1.3.6.1.4.1.<PEN>`; the default is RFC 5612's documentation "
           "number, a placeholder for the site's own Private Enterprise Number."),
    KeyDoc("engine_id", 'hex string "0x..."', "derived",
           "SNMPv3 engine ID of the sender (5 to 32 octets); receivers bind v3 users to it. "
           "Unset: 0x80 + the enterprise number + 04 + \"<source>@<node>\"."),
    KeyDoc("notify_command", "array of strings", "`[]`",
           "A program (and its arguments, no shell) run for every event, with the event's fields "
           "in `GSUITE_*` environment variables, like keepalived's notify and Pacemaker's alerts."),
    KeyDoc("notify_timeout", "duration", '`"5s"`', "Most time a notify command may run; then it is killed."),
    KeyDoc("queue_size", "integer", f"`{DEFAULT_QUEUE_SIZE}`",
           "Events waiting to be sent; when full, new ones are dropped, counted and logged."),
    KeyDoc("rate_limit", "integer", f"`{DEFAULT_RATE_LIMIT}`",
           "Traps sent per second once a burst of 50 has left, so that a storm of events never "
           "takes the daemon's CPU; what waits longer than the queue allows is dropped."),
)

TRAP_KEYS: tuple[KeyDoc, ...] = (
    KeyDoc("target", '"udp://HOST[:PORT]"', "required", "The receiver; IPv6 in brackets; port 162 by default."),
    KeyDoc("version", '"v2c" or "v3"', '`"v2c"`', "SNMP version of the traps."),
    KeyDoc("community", "string", '`"public"`', "v2c community."),
    KeyDoc("user", "string", "required for v3", "v3 USM user name."),
    KeyDoc("auth_protocol", " or ".join(f'"{p}"' for p in AUTH_PROTOCOLS), "—",
           "v3 authentication (HMAC); unset: noAuthNoPriv."),
    KeyDoc("auth_key", "string", "—", f"v3 authentication passphrase, at least {MIN_KEY_LENGTH} characters."),
    KeyDoc("priv_protocol", " or ".join(f'"{p}"' for p in PRIV_PROTOCOLS), "—",
           "v3 privacy (encryption); needs `auth_protocol`; unset: authNoPriv."),
    KeyDoc("priv_key", "string", "—", f"v3 privacy passphrase, at least {MIN_KEY_LENGTH} characters."),
)

_SNMP_KEY_NAMES = tuple(k.key for k in SNMP_KEYS)
_TRAP_KEY_NAMES = tuple(k.key for k in TRAP_KEYS)
_V3_ONLY = ("user", "auth_protocol", "auth_key", "priv_protocol", "priv_key")


class SnmpTable(ValueType):
    """The schema type of `[snmp]` in both daemons' schemas: the table is
    only checked to be a table there; `parse_snmp` then checks each key."""

    def describe(self) -> str:
        return "table"

    def parse(self, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueError(f"expected a table, got {kind_of(value)}")
        return dict(value)


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, reason: str) -> None:
        self.items.append((path, reason))


def parse_snmp(raw: object, path: str = "snmp") -> tuple[SnmpConfig | None, list[tuple[str, str]]]:
    """Validate the raw `[snmp]` table. Returns (config, []) or (None, problems)."""
    problems = _Problems()
    if not isinstance(raw, dict):
        problems.add(path, f"expected a table, got {kind_of(raw)}")
        return None, problems.items
    for key in raw:
        if key not in _SNMP_KEY_NAMES:
            problems.add(f"{path}.{key}", "unknown key" + did_you_mean(key, _SNMP_KEY_NAMES))
    values: dict[str, Any] = {}
    traps_raw = raw.get("traps", [])
    if isinstance(traps_raw, dict):
        traps_raw = [traps_raw]  # one receiver written as a single table
    if not isinstance(traps_raw, list):
        problems.add(f"{path}.traps", f"expected an array of tables, got {kind_of(traps_raw)}")
        traps_raw = []
    traps = [_parse_target(item, f"{path}.traps[{i}]", problems) for i, item in enumerate(traps_raw)]
    if "enterprise_oid" in raw:
        values["enterprise_oid"] = _parse_oid(raw["enterprise_oid"], f"{path}.enterprise_oid", problems)
    if "engine_id" in raw:
        values["engine_id"] = _parse_engine_id(raw["engine_id"], f"{path}.engine_id", problems)
    if "notify_command" in raw:
        values["notify_command"] = _parse_command(raw["notify_command"], f"{path}.notify_command", problems)
    if "notify_timeout" in raw:
        try:
            values["notify_timeout"] = parse_duration(raw["notify_timeout"])
            if values["notify_timeout"] <= 0:
                problems.add(f"{path}.notify_timeout", "must be more than 0")
        except (ValueError, TypeError) as exc:
            problems.add(f"{path}.notify_timeout", str(exc) or f"{show(raw['notify_timeout'])} is not a duration")
    for key, low, high in (("queue_size", 1, MAX_QUEUE_SIZE), ("rate_limit", 1, 1_000_000)):
        if key in raw:
            value = raw[key]
            if not isinstance(value, int) or isinstance(value, bool):
                problems.add(f"{path}.{key}", f"expected an integer, got {kind_of(value)}")
            elif not low <= value <= high:
                problems.add(f"{path}.{key}", f"{value} is out of range {low}..{high}")
            else:
                values[key] = value
    _check_users(traps, f"{path}.traps", problems)
    if problems.items:
        return None, problems.items
    return SnmpConfig(traps=tuple(t for t in traps if t is not None), **values), []


def _check_users(traps: list[TrapTarget | None], path: str, problems: _Problems) -> None:
    """SNMPv3 finds a user's keys by its name: the same user must have the same keys everywhere."""
    seen: dict[str, tuple[int, tuple[str | None, ...]]] = {}
    for index, target in enumerate(traps):
        if target is None or target.version != "v3":
            continue
        keys = (target.auth_protocol, target.auth_key, target.priv_protocol, target.priv_key)
        first = seen.setdefault(target.user, (index, keys))
        if first[1] != keys:
            problems.add(f"{path}[{index}].user", f"user {show(target.user)} has other protocols or keys "
                         f"in traps[{first[0]}]: a user has one set of keys")


def _parse_target(raw: object, path: str, problems: _Problems) -> TrapTarget | None:
    if not isinstance(raw, dict):
        problems.add(path, f"expected a table, got {kind_of(raw)}")
        return None
    before = len(problems.items)
    for key in raw:
        if key not in _TRAP_KEY_NAMES:
            problems.add(f"{path}.{key}", "unknown key" + did_you_mean(key, _TRAP_KEY_NAMES))
    strings: dict[str, str] = {}
    for key in _TRAP_KEY_NAMES:
        if key in raw:
            if isinstance(raw[key], str):
                strings[key] = raw[key]
            else:
                problems.add(f"{path}.{key}", f"expected a string, got {kind_of(raw[key])}")
    if "target" not in raw:
        problems.add(f"{path}.target", 'missing: every trap receiver needs one ("udp://HOST:PORT")')
    host, port, ipv6 = "", DEFAULT_TRAP_PORT, False
    if "target" in strings:
        match = _TARGET_RE.match(strings["target"])
        if match is None:
            problems.add(f"{path}.target", f'{show(strings["target"])} is not "udp://HOST[:PORT]" '
                         '(IPv6 hosts in brackets)')
        else:
            ipv6 = match.group("v6") is not None
            host = match.group("v6") or match.group("host")
            if match.group("port") is not None:
                port = int(match.group("port"))
                if not 1 <= port <= MAX_PORT:
                    problems.add(f"{path}.target", f"port {port} is out of range 1..{MAX_PORT}")
    version = strings.get("version", "v2c")
    if version not in VERSIONS:
        problems.add(f"{path}.version", f"{show(version)} is not one of "
                     + ", ".join(f'"{v}"' for v in VERSIONS) + did_you_mean(version, VERSIONS))
    if version == "v2c":
        for key in _V3_ONLY:
            if key in raw:
                problems.add(f"{path}.{key}", 'only for version = "v3"')
        if "community" in strings and not strings["community"]:
            problems.add(f"{path}.community", "must not be empty")
    elif version == "v3":
        _check_v3(raw, strings, path, problems)
    if len(problems.items) > before:
        return None
    return TrapTarget(host=host, port=port, version=version, community=strings.get("community", "public"),
                      user=strings.get("user", ""), auth_protocol=_upper(strings.get("auth_protocol")),
                      auth_key=strings.get("auth_key"), priv_protocol=_upper(strings.get("priv_protocol")),
                      priv_key=strings.get("priv_key"), ipv6=ipv6)


def _check_v3(raw: dict[str, Any], strings: dict[str, str], path: str, problems: _Problems) -> None:
    if "community" in raw:
        problems.add(f"{path}.community", 'only for version = "v2c" (v3 uses user and keys)')
    if "user" not in raw:
        problems.add(f"{path}.user", 'missing: a version = "v3" receiver needs one')
    elif "user" in strings and not _USER_RE.match(strings["user"]):
        problems.add(f"{path}.user", f"{show(strings['user'])} is not a user name "
                     "(1 to 32 letters, digits, '_', '.', '@' and '-')")
    for proto_key, key_key, choices in (("auth_protocol", "auth_key", AUTH_PROTOCOLS),
                                        ("priv_protocol", "priv_key", PRIV_PROTOCOLS)):
        proto = strings.get(proto_key)
        if proto is not None and proto.upper() not in choices:
            problems.add(f"{path}.{proto_key}", f"{show(proto)} is not one of "
                         + ", ".join(f'"{c}"' for c in choices) + did_you_mean(proto.upper(), choices))
        if (proto_key in raw) != (key_key in raw):
            missing, given = (key_key, proto_key) if proto_key in raw else (proto_key, key_key)
            problems.add(f"{path}.{missing}", f"missing: {given} needs it")
        key = strings.get(key_key)
        if key is not None and len(key) < MIN_KEY_LENGTH:
            problems.add(f"{path}.{key_key}", f"must have at least {MIN_KEY_LENGTH} characters (RFC 3414)")
    if "priv_protocol" in raw and "auth_protocol" not in raw:
        problems.add(f"{path}.priv_protocol", "needs auth_protocol too: SNMPv3 has no privacy without authentication")


def _upper(value: str | None) -> str | None:
    return value.upper() if value is not None else None


def _parse_oid(raw: object, path: str, problems: _Problems) -> str:
    if not isinstance(raw, str):
        problems.add(path, f"expected a string, got {kind_of(raw)}")
        return DEFAULT_ENTERPRISE_OID
    oid = raw.strip().lstrip(".")
    if not _OID_RE.match(oid):
        problems.add(path, f"{show(raw)} is not a dotted OID such as \"{DEFAULT_ENTERPRISE_OID}\"")
    elif not oid.startswith(ENTERPRISES_PREFIX):
        problems.add(path, f"{show(raw)} is not under enterprises ({ENTERPRISES_PREFIX}<PEN>)")
    return oid


def _parse_engine_id(raw: object, path: str, problems: _Problems) -> str | None:
    if not isinstance(raw, str):
        problems.add(path, f"expected a string, got {kind_of(raw)}")
        return None
    if not _ENGINE_ID_RE.match(raw):
        problems.add(path, f"{show(raw)} is not a hex string such as \"0x80007ed90401\"")
        return None
    octets = (len(raw) - 2) // 2
    if not MIN_ENGINE_ID_OCTETS <= octets <= MAX_ENGINE_ID_OCTETS:
        problems.add(path, f"has {octets} octets; an engine ID has {MIN_ENGINE_ID_OCTETS} to {MAX_ENGINE_ID_OCTETS}")
    return raw.lower()


def _parse_command(raw: object, path: str, problems: _Problems) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(a, str) for a in raw):
        problems.add(path, 'expected a non-empty array of strings (["/path/to/program", "arg"...]), '
                     f"got {kind_of(raw)}")
        return ()
    if not raw[0]:
        problems.add(f"{path}[0]", "the program must not be empty")
    return tuple(raw)


def default_engine_id(enterprise_oid: str, source: str, node: str) -> str:
    """RFC 3411 engine ID, text format: 0x80 | PEN, then 04 and "source@node"
    (cut to the 32-octet maximum). Stable across restarts, as v3 traps need."""
    pen = int(enterprise_oid.split(".")[6]) if enterprise_oid.startswith(ENTERPRISES_PREFIX) else 32473
    head = (0x80000000 | pen).to_bytes(4, "big") + b"\x04"
    text = f"{source}@{node}".encode("utf-8", "replace")[: MAX_ENGINE_ID_OCTETS - len(head)]
    return "0x" + (head + text).hex()
