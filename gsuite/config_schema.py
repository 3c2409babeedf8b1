"""The declaration of a setting and of a section, shared by the suite's schemas.

A `Setting` is one TOML key: its type, documentation, default and whether a
table needs it. gproxy's and heartbeat's schemas (their `config.schema`
modules) subclass it with what only they know: the HAProxy directive and the
proxy side a key applies to, or the ha.cf directive and Pacemaker option.

A section is a table of settings. Each package declares its own `Section` as
a frozen dataclass, with its fields in the order its schema writes them
(heartbeat names a section's tables, `noun`, before its `doc`), and inherits
the lookups by key from `SettingIndex`.

Nothing here knows about a daemon, so both may import it (DESIGN.md: gproxy
and heartbeat never import each other). Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar


@dataclass(frozen=True)
class Setting:
    """One TOML key. `type` parses its value (a gsuite.config_types scalar,
    or a package's composite that the loader walks)."""

    key: str
    type: Any
    doc: str
    default: Any = None
    required: bool = False


S = TypeVar("S", bound=Setting)


class SettingIndex(Generic[S]):
    """Lookups by key over a section's `settings`, in declaration order. A
    subclass is a frozen dataclass that declares `settings` itself."""

    settings: tuple[S, ...]
    _index: dict[str, S]

    def __post_init__(self) -> None:
        # Not a dataclass field: it stays out of the section's repr, == and hash.
        object.__setattr__(self, "_index", {s.key: s for s in self.settings})

    def get(self, key: str) -> S | None:
        return self._index.get(key)

    def __getitem__(self, key: str) -> S:
        return self._index[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def defaults(self) -> dict[str, Any]:
        return {s.key: s.default for s in self.settings}
