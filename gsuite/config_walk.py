"""Checking raw TOML tables against a schema, one key at a time, the same
way for every daemon of the suite.

`Walker.table(raw, section, path)` returns the valid keys of a table, parsed,
and records every problem with its key path (`listen.web.server[1].weight`,
`resource[1].monitor.interval`) instead of stopping at the first, so
`gproxy check` and `heartbeat check` list them all in one run. Arrays keep
invalid items as None, so the indexes of the valid ones still match the file.

Each package subclasses `Walker`: its `value` dispatches the package's own
composite types (tables, arrays of tables...) and calls `scalar` for the
rest; its `unknown_key` adds the package's hints. Nothing here knows about a
daemon (gsuite imports neither package). Nothing here does I/O.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from gsuite.config_schema import Setting
from gsuite.config_types import Choice, ValueType, did_you_mean, kind_of

INVALID: Any = object()  # a value that failed validation (its problem is recorded already)

Problem = tuple[str, str]  # (key path, reason)


class Section(Protocol):
    """What the walker needs of a package's section (gsuite.config_schema)."""

    @property
    def settings(self) -> tuple[Setting, ...]: ...

    @property
    def noun(self) -> str:
        """How messages name its tables: "every [[node]]", "every server"."""
        ...

    def get(self, key: str) -> Setting | None: ...

    def keys(self) -> list[str]: ...


class Walker:
    """Accumulates (key path, reason) problems over one validation run."""

    #: Add ' (did you mean "x"?)' to a value that is not one of a Choice:
    #: heartbeat's messages do, gproxy's never did.
    choice_hints = False

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, path: str, reason: str) -> None:
        self.problems.append((path, reason))

    def has_problem_under(self, path: str) -> bool:
        """Was anything at `path`, or inside it (`path.key`, `path[0]`), reported already?"""
        return any(p == path or p.startswith((path + ".", path + "[")) for p, _ in self.problems)

    def table(self, raw: object, section: Section, path: str, *,
              accept: Callable[[Any, str], bool] | None = None,
              siblings: tuple[Section, ...] = ()) -> dict[str, Any] | None:
        """The valid keys of one table, parsed; None if `raw` is not a table.
        `accept(setting, key_path)` may refuse a known key where it stands
        (recording why); `siblings` are sections an unknown key may belong to."""
        if not isinstance(raw, dict):
            self.problem(path, f"expected a table, got {kind_of(raw)}")
            return None
        values: dict[str, Any] = {}
        for key, value in raw.items():
            key_path = join(path, key)
            setting = section.get(key)
            if setting is None:
                self.unknown_key(key_path, key, section, siblings)
            elif accept is None or accept(setting, key_path):
                parsed = self.value(value, setting.type, key_path)
                if parsed is not INVALID:
                    values[key] = parsed
        for setting in section.settings:
            if setting.required and setting.key not in raw:
                self.problem(join(path, setting.key), f"missing: {section.noun} needs one")
        return values

    def unknown_key(self, path: str, key: str, section: Section, siblings: tuple[Section, ...]) -> None:
        self.problem(path, "unknown key" + did_you_mean(key, section.keys()))

    def value(self, raw: object, typ: Any, path: str) -> Any:
        """The parsed value, or INVALID. Subclasses dispatch their composite
        types first and leave the scalars to this."""
        return self.scalar(raw, typ, path)

    def nested(self, raw: object, section: Section, path: str) -> Any:
        """A nested table's valid keys, or INVALID if it is not a table."""
        values = self.table(raw, section, path)
        return INVALID if values is None else values

    def scalar(self, raw: object, typ: ValueType, path: str) -> Any:
        try:
            return typ.parse(raw)
        except ValueError as exc:
            hint = ""
            if self.choice_hints and isinstance(typ, Choice) and isinstance(raw, str):
                hint = did_you_mean(raw, typ.values)
            self.problem(path, f"{exc}{hint}")
            return INVALID


def join(path: str, key: str) -> str:
    """`path.key`, or `key` at the top of the file."""
    return f"{path}.{key}" if path else key
