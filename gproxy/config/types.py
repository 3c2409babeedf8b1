"""Value types of the configuration schema.

Each type checks one raw TOML value and returns the parsed Python value, or
raises ValueError with a reason a user can act on. A type also knows how it
reads an HAProxy word (`from_haproxy`, for `gproxy convert`), how it writes one
back (`to_haproxy`) and how the docs name it (`describe`). The schema pairs
every key with one of these, so checking, docs and conversion share them.

The generic scalar types (and `show`/`kind_of`) live in gsuite.config_types,
shared with heartbeat; the classes of the same names here add the HAProxy
hooks on top, so gproxy code only ever imports from this module.

Composite types (`Table`, `TableList`) only describe structure: the loader
walks them, so an error deep inside a table gets its full key path.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gproxy.durations import format_duration
from gproxy.config.model import Address, StatusRange
from gsuite import config_types as shared
from gsuite.config_types import MAX_FILE_MODE, kind_of, show

if TYPE_CHECKING:
    from gproxy.config.schema import Section

__all__ = [
    "MAX_FILE_MODE", "MAX_PORT", "TOKEN_PATTERN", "AddressType", "BindList", "Bool", "Choice", "Duration",
    "FileMode", "FreeTable", "Int", "LogTargetType", "Network", "Size", "StatusRanges", "Str", "StrList", "Table",
    "TableList", "UserOrId", "ValueType", "kind_of", "parse_address", "show",
]

MAX_PORT = 65535
HTTP_STATUS_MIN = 100
HTTP_STATUS_MAX = 599
SYSLOG_PORT = 514

# RFC 9110 token: header names, methods, cookie names.
TOKEN_PATTERN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$")
_DOTTED_NUMBERS_RE = re.compile(r"^[0-9.]+$")


class ValueType(shared.ValueType):
    """A scalar type with the HAProxy hooks: subclasses override `parse`, and
    the hooks if the default (a word is the TOML value itself) does not fit."""

    def from_haproxy(self, word: str) -> object:
        """The TOML value for one HAProxy argument (validated by `parse`)."""
        self.parse(word)
        return word

    def to_haproxy(self, value: Any) -> str:
        return str(value)

    def placeholder(self) -> str:
        """How the HAProxy directive's argument is written in the docs."""
        return "<value>"


# The shared types come first in each MRO, so their `parse`/`describe` win
# and ValueType above supplies the HAProxy hooks; the dataclass fields and
# frozen behaviour are inherited unchanged.

class Bool(shared.Bool, ValueType):
    def placeholder(self) -> str:
        return ""


class Int(shared.Int, ValueType):
    def from_haproxy(self, word: str) -> object:
        try:
            number = int(word, 10)
        except ValueError:
            raise ValueError(f"{show(word)} is not an integer") from None
        return self.parse(number)

    def placeholder(self) -> str:
        return "<number>"


# HAProxy's size suffixes (tune.bufsize, maxrewrite...): binary multiples.
SIZE_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3}
_SIZE_RE = re.compile(r"^([0-9]+)([kmgKMG]?)$")


@dataclass(frozen=True)
class Size(ValueType):
    """A number of bytes: an integer, or a string with HAProxy's suffixes
    (`"512k"`, `"10m"`, `"1g"`: multiples of 1024)."""

    low: int = 1

    def describe(self) -> str:
        return f'size in bytes (integer, or "10k", "10m", "1g"; >= {self.low})'

    def parse(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f'expected a size (bytes, or a string like "10m"), got {kind_of(value)}')
        if isinstance(value, str):
            match = _SIZE_RE.match(value.strip())
            if match is None:
                raise ValueError(f'{show(value)} is not a size (digits, optionally followed by k, m or g)')
            number = int(match.group(1)) * SIZE_UNITS.get(match.group(2).lower(), 1)
        else:
            number = value
        if number < self.low:
            raise ValueError(f"{show(value)} is too small (the minimum is {self.low} bytes)")
        return number

    def from_haproxy(self, word: str) -> object:
        self.parse(word)
        return int(word) if word.isdigit() else word

    def placeholder(self) -> str:
        return "<size>"


class Duration(shared.Duration, ValueType):
    """Milliseconds, through the suite's one duration parser."""

    def from_haproxy(self, word: str) -> object:
        return format_duration(self.parse(word))

    def to_haproxy(self, value: Any) -> str:
        return format_duration(int(value))

    def placeholder(self) -> str:
        return "<time>"


class Str(shared.Str, ValueType):
    """A non-empty string, optionally matching `pattern` (explained by `hint`)."""

    def placeholder(self) -> str:
        return "<" + self.what.split()[-1] + ">"


class Choice(shared.Choice, ValueType):
    def placeholder(self) -> str:
        return "<" + "|".join(self.values) + ">"


class StrList(shared.StrList, ValueType):
    """One string or an array of strings (e.g. several cookie domains)."""


class FileMode(shared.FileMode, ValueType):
    """A Unix permission: TOML octal 0o600, or an octal string "600"/"0600"."""

    def from_haproxy(self, word: str) -> object:
        return self.parse(word)

    def to_haproxy(self, value: Any) -> str:
        return format(int(value), "o")

    def placeholder(self) -> str:
        return "<octal>"


class UserOrId(ValueType):
    """A numeric id or a user/group name."""

    def describe(self) -> str:
        return "integer id or name"

    def parse(self, value: object) -> int | str:
        if isinstance(value, bool):
            raise ValueError(f"expected an id or a name, got {kind_of(value)}")
        if isinstance(value, int):
            if value < 0:
                raise ValueError(f"{value} is not a valid id (ids are >= 0)")
            return value
        if isinstance(value, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*\$?", value):
            return value
        raise ValueError(f"expected an id or a name, got {kind_of(value)}")

    def from_haproxy(self, word: str) -> object:
        return int(word) if word.isdigit() else self.parse(word)


def parse_address(text: str, *, bind: bool) -> Address:
    """"host:port" or "[v6]:port"; for a bind, "*:80" and ":80" mean every address."""
    example = '"[::1]:80"' if text.count(":") > 1 else '"host:port"'
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"{show(text)} has no port (write {example})")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{show(text)}: {show(host)} is not an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError(f"{show(text)} has no port (write {example})")
        if ":" in host:
            raise ValueError(f"{show(text)}: write IPv6 addresses in brackets, e.g. \"[::1]:80\"")
        if host in ("", "*"):
            if not bind:
                raise ValueError(f"{show(text)} has no host (a server needs an address)")
        elif _DOTTED_NUMBERS_RE.match(host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise ValueError(f"{show(text)}: {show(host)} is not an IPv4 address") from None
        elif not _HOSTNAME_RE.match(host):
            raise ValueError(f"{show(text)}: {show(host)} is not a host name or address")
    if not port_text.isdigit():
        raise ValueError(f"{show(text)}: the port {show(port_text)} is not a number")
    port = int(port_text)
    if not 1 <= port <= MAX_PORT:
        raise ValueError(f"{show(text)}: port {port} is out of range 1..{MAX_PORT}")
    return Address(host, port)


@dataclass(frozen=True)
class AddressType(ValueType):
    bind: bool = False

    def describe(self) -> str:
        return '"host:port"'

    def parse(self, value: object) -> Address:
        if not isinstance(value, str):
            raise ValueError(f'expected an address "host:port", got {kind_of(value)}')
        return parse_address(value, bind=self.bind)

    def to_haproxy(self, value: Any) -> str:
        return str(value)

    def placeholder(self) -> str:
        return "<addr:port>"


class BindList(ValueType):
    """The addresses a frontend listens on: ["addr:port", ...] (a lone string is
    accepted). Items may also be tables of schema.BIND (TLS, PROXY protocol):
    the loader walks those, so their problems get full key paths; `parse` here
    checks the plain-string form."""

    def describe(self) -> str:
        return 'array of "addr:port" or of tables ([bind](#bind))'

    def parse(self, value: object) -> tuple[Address, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise ValueError(f'expected an array of addresses such as ["*:80"], got {kind_of(value)}')
        addresses = []
        reasons = []
        for item in items:
            try:
                if not isinstance(item, str):
                    raise ValueError(f'expected an address "addr:port", got {kind_of(item)}')
                addresses.append(parse_address(item, bind=True))
            except ValueError as exc:
                reasons.append(str(exc))
        if reasons:
            raise ValueError("; ".join(reasons))
        return tuple(addresses)


class LogTargetType(ValueType):
    """Where syslog lines go: "udp://host[:port]" (port 514 by default),
    "unix:///dev/log", "stderr" or "stdout"."""

    def describe(self) -> str:
        return '"udp://host:port" | "unix:///path" | "stderr" | "stdout"'

    def parse(self, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a log target string, got {kind_of(value)}")
        if value in ("stderr", "stdout"):
            return value
        if value.startswith("unix://"):
            if not value[len("unix://"):].startswith("/"):
                raise ValueError(f"{show(value)}: a unix socket path must be absolute (unix:///dev/log)")
            return value
        if value.startswith("udp://"):
            hostport = value[len("udp://"):]
            has_port = "]:" in hostport if hostport.startswith("[") else ":" in hostport
            if not has_port:
                hostport += f":{SYSLOG_PORT}"
            address = parse_address(hostport, bind=False)
            return f"udp://{address}"
        raise ValueError(f'{show(value)} is not a log target (use "udp://host:port", "unix:///dev/log" or "stderr")')


class Network(ValueType):
    """An address or a network "ADDR[/MASK]", IPv4 or IPv6."""

    def describe(self) -> str:
        return '"addr[/mask]"'

    def parse(self, value: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        if not isinstance(value, str):
            raise ValueError(f"expected an address or network string, got {kind_of(value)}")
        try:
            return ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{show(value)} is not an address or network (e.g. \"192.0.2.15\" or \"10.0.0.0/8\")") from None

    def to_haproxy(self, value: Any) -> str:
        return str(value)


class StatusRanges(ValueType):
    """HTTP statuses that pass a check: "200", "200-399", "200,301-302" or an array of those."""

    def describe(self) -> str:
        return 'statuses ("200", "200-399", "200,301-302" or an array)'

    def parse(self, value: object) -> tuple[StatusRange, ...]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise ValueError("expected at least one status")
        ranges: list[StatusRange] = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (int, str)):
                raise ValueError(f"expected a status such as \"200\" or \"200-399\", got {kind_of(item)}")
            for part in str(item).split(","):
                ranges.append(self._range(part.strip(), item))
        return tuple(ranges)

    @staticmethod
    def _range(part: str, item: object) -> StatusRange:
        match = re.fullmatch(r"(\d{3})(?:-(\d{3}))?", part)
        if not match:
            raise ValueError(f"{show(item)} is not a status list (e.g. \"200\", \"200-399\", \"200,301-302\")")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        for status in (low, high):
            if not HTTP_STATUS_MIN <= status <= HTTP_STATUS_MAX:
                raise ValueError(f"{status} is not an HTTP status ({HTTP_STATUS_MIN}..{HTTP_STATUS_MAX})")
        if low > high:
            raise ValueError(f"{show(part)} is an empty range (write low-high)")
        return StatusRange(low, high)

    def to_haproxy(self, value: Any) -> str:
        return ",".join(f"{r.low}" if r.low == r.high else f"{r.low}-{r.high}" for r in value)


class FreeTable(ValueType):
    """A table whose keys another part of gproxy validates."""

    def describe(self) -> str:
        return "table"

    def parse(self, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueError(f"expected a table, got {kind_of(value)}")
        return dict(value)


@dataclass(frozen=True)
class Table:
    """A nested table checked key by key against `section`. With `switch`,
    `true` means "on, with every default" and `false` means "off"."""

    section: "Section"
    switch: bool = False

    def describe(self) -> str:
        text = f"table ([{self.section.title}](#{self.section.anchor}))"
        return text + " or boolean" if self.switch else text


@dataclass(frozen=True)
class TableList:
    """An array of tables checked against `section`. `single` also accepts one
    table; `keyword` also accepts that one string (e.g. log = "global")."""

    section: "Section"
    single: bool = False
    keyword: str | None = None

    def describe(self) -> str:
        text = f"array of tables ([{self.section.title}](#{self.section.anchor}))"
        if self.single:
            text = "table or " + text
        if self.keyword:
            text = f'"{self.keyword}" or ' + text
        return text

