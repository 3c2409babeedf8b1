"""heartbeat's value types: what the cluster file holds beyond the suite's
generic scalars (gsuite.config_types).

Scalars (`Score`, `AgentType`, `NodeAddress`, `MulticastAddress`,
`ParamValue`) parse one raw TOML value or raise ValueError with a reason a
user can act on. Composites (`Table`, `TableList`, `TaggedTableList`,
`ListOf`, `MappingOf`) only describe structure: the loader walks them, so an
error inside gets its full key path (`resource[1].params.ip`,
`node[0].addresses[1]`). Nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gsuite.config_types import ValueType, kind_of, show
from heartbeat.model import INFINITY, MINUS_INFINITY, AgentSpec

if TYPE_CHECKING:
    from heartbeat.config.schema import Section

# Pacemaker's spellings of the infinite scores (compared case-insensitively, as Pacemaker does).
_PLUS_INFINITY_WORDS = ("infinity", "+infinity")
_MINUS_INFINITY_WORDS = ("-infinity",)

# An agent's provider and type become path components under OCF_ROOT or /etc/init.d.
_AGENT_PART_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
AGENT_STANDARDS = ("ocf", "lsb")

# Instance parameters reach the agent as environment variables OCF_RESKEY_<name>.
PARAM_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"


class Score(ValueType):
    """A Pacemaker score: an integer, or "INFINITY" / "+INFINITY" / "-INFINITY"."""

    def describe(self) -> str:
        return 'score (integer or "INFINITY", "-INFINITY")'

    def parse(self, value: object) -> int:
        if isinstance(value, str):
            word = value.strip().lower()
            if word in _PLUS_INFINITY_WORDS:
                return INFINITY
            if word in _MINUS_INFINITY_WORDS:
                return MINUS_INFINITY
            raise ValueError(f'{show(value)} is not a score (an integer, "INFINITY" or "-INFINITY")')
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f'expected a score (an integer, "INFINITY" or "-INFINITY"), got {kind_of(value)}')
        if not MINUS_INFINITY <= value <= INFINITY:
            raise ValueError(f"{value} is beyond INFINITY ({INFINITY}): write \"INFINITY\" or \"-INFINITY\"")
        return value


class AgentType(ValueType):
    """A resource agent: "ocf:PROVIDER:TYPE" or "lsb:NAME"."""

    def describe(self) -> str:
        return '"ocf:PROVIDER:TYPE" or "lsb:NAME"'

    def parse(self, value: object) -> AgentSpec:
        if not isinstance(value, str):
            raise ValueError(f'expected an agent such as "ocf:heartbeat:IPaddr2" or "lsb:stunnel4", got {kind_of(value)}')
        standard, _, rest = value.partition(":")
        parts = rest.split(":")
        if standard == "ocf":
            if len(parts) != 2:
                raise ValueError(f'{show(value)}: an OCF agent is written "ocf:PROVIDER:TYPE" (e.g. "ocf:heartbeat:IPaddr2")')
            self._check_parts(value, parts)
            return AgentSpec("ocf", parts[0], parts[1])
        if standard == "lsb":
            if len(parts) != 1:
                raise ValueError(f'{show(value)}: an LSB agent is written "lsb:NAME" (the script /etc/init.d/NAME)')
            self._check_parts(value, parts)
            return AgentSpec("lsb", None, parts[0])
        if rest:
            raise ValueError(f'{show(value)}: unsupported agent class {show(standard)} '
                             f'(heartbeat runs "ocf:PROVIDER:TYPE" and "lsb:NAME" agents)')
        raise ValueError(f'{show(value)} is not an agent (write "ocf:PROVIDER:TYPE" or "lsb:NAME")')

    @staticmethod
    def _check_parts(value: str, parts: list[str]) -> None:
        for part in parts:
            if not _AGENT_PART_RE.fullmatch(part):
                what = "an empty name" if not part else f"{show(part)} is not a valid name"
                raise ValueError(f"{show(value)}: {what} (letters, digits, '_', '.', '+' and '-' only)")


class NodeAddress(ValueType):
    """A node's unicast IPv4 or IPv6 address on one link."""

    def describe(self) -> str:
        return "IP address"

    def parse(self, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected an IP address, got {kind_of(value)}")
        host, port = value, None
        # "IPv4:PORT" lets several nodes share one host (tests, `make demo`).
        if value.count(":") == 1:
            host, _, port = value.partition(":")
            if not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"{show(value)}: the port must be 1..65535")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{show(value)} is not an IPv4 or IPv6 address") from None
        if port is not None:
            return f"{address}:{int(port)}"
        if address.is_multicast or address.is_unspecified:
            what = "a multicast" if address.is_multicast else "the unspecified"
            raise ValueError(f"{show(value)} is {what} address: a node needs its own unicast address")
        return str(address)


class MulticastAddress(ValueType):
    """An IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast group."""

    def describe(self) -> str:
        return "multicast address"

    def parse(self, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a multicast address such as \"239.0.0.1\", got {kind_of(value)}")
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{show(value)} is not an IPv4 or IPv6 address") from None
        if not address.is_multicast:
            raise ValueError(f"{show(value)} is not a multicast address (IPv4 224.0.0.0/4, IPv6 ff00::/8)")
        return str(address)


class ParamValue(ValueType):
    """An agent parameter: a string; integers and booleans become strings,
    since agents only ever see environment variables."""

    def describe(self) -> str:
        return "string (integers and booleans are converted)"

    def parse(self, value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int) or isinstance(value, str):
            return str(value)
        hint = ": write it as a string" if isinstance(value, float) else ""
        raise ValueError(f"expected a string, an integer or a boolean, got {kind_of(value)}{hint}")


# ---- structure: walked by the loader ------------------------------------------


def plural(what: str) -> str:
    """"address" -> "addresses", "resource id" -> "resource ids"."""
    return what + ("es" if what.endswith("s") else "s")


@dataclass(frozen=True)
class Table:
    """A nested table checked key by key against `section`."""

    section: "Section"

    def describe(self) -> str:
        return f"table ([`{self.section.title}`](#{self.section.anchor}))"


@dataclass(frozen=True)
class TableList:
    """An array of tables (`[[node]]`) each checked against `section`."""

    section: "Section"

    def describe(self) -> str:
        return f"array of tables ([`{self.section.title}`](#{self.section.anchor}))"


@dataclass(frozen=True)
class TaggedTableList:
    """An array of tables whose `tag` key picks the section that checks the
    rest (`[[constraint]]` with kind = "location" | "colocation" | "order")."""

    tag: str
    sections: tuple[tuple[str, "Section"], ...]  # (tag value, section), in docs order

    def section_for(self, value: str) -> "Section | None":
        for tag_value, section in self.sections:
            if tag_value == value:
                return section
        return None

    def tag_values(self) -> tuple[str, ...]:
        return tuple(value for value, _ in self.sections)

    def describe(self) -> str:
        links = ", ".join(f"[`{s.title}`](#{s.anchor})" for _, s in self.sections)
        return f"array of tables ({links})"


@dataclass(frozen=True)
class ListOf:
    """An array of `item` values, at least `min_items` of them, no value twice.
    A lone value stands for an array of one."""

    item: ValueType
    what: str  # the docs' and messages' name of one item ("address", "resource id")
    min_items: int = 1

    def describe(self) -> str:
        text = f"array of {plural(self.what)}"
        if self.min_items == 0:
            return text
        return text + (" (at least one)" if self.min_items == 1 else f" (at least {self.min_items})")


@dataclass(frozen=True)
class MappingOf:
    """A table of free keys (matching `key_pattern`) to `value` values, kept in file order."""

    key_pattern: str
    key_hint: str
    value: ValueType

    def describe(self) -> str:
        return f"table of {self.value.describe()}"
