"""Scalar value types shared by the suite's TOML configurations.

A type checks one raw TOML value and returns the parsed Python value, or
raises ValueError with a reason a user can act on; `describe` names it in the
generated docs. gproxy and heartbeat each declare their settings with these
(their `schema` modules, on gsuite.config_schema's `Setting`) and keep what is
theirs alone on top: nested tables and arrays of them (walked by their
loaders through gsuite.config_walk), and file-format hooks such as gproxy's
HAProxy words.

Nothing here knows about a daemon, so both may import it (DESIGN.md: gproxy
and heartbeat never import each other).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Iterable

from gsuite.durations import format_duration, parse_duration

MAX_FILE_MODE = 0o777


def show(value: object) -> str:
    """A raw value as the user wrote it in TOML, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array" if len(value) > 3 else "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def kind_of(value: object) -> str:
    """The TOML kind of a raw value: "string \"x\"", "integer 3", "a table"..."""
    if isinstance(value, bool):
        return f"boolean {show(value)}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        return f"string {show(value)}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' for the closest choice, or "" when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


class ValueType:
    """A scalar type: subclasses implement `describe` and `parse`."""

    def describe(self) -> str:
        raise NotImplementedError

    def parse(self, value: object) -> Any:
        raise NotImplementedError


class Bool(ValueType):
    def describe(self) -> str:
        return "boolean"

    def parse(self, value: object) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected a boolean (true or false), got {kind_of(value)}")
        return value


@dataclass(frozen=True)
class Int(ValueType):
    low: int = 0
    high: int | None = None

    def describe(self) -> str:
        return f"integer {self.low}..{self.high}" if self.high is not None else f"integer >= {self.low}"

    def parse(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {kind_of(value)}")
        if self.high is not None and not self.low <= value <= self.high:
            raise ValueError(f"{value} is out of range {self.low}..{self.high}")
        if value < self.low:
            raise ValueError(f"{value} is too small (the minimum is {self.low})")
        return value


@dataclass(frozen=True)
class Duration(ValueType):
    """Milliseconds, through the suite's one duration parser."""

    minimum: int = 1  # most durations must be > 0 (a zero timeout never fires)

    def describe(self) -> str:
        return "duration" if self.minimum > 0 else "duration (0 allowed)"

    def parse(self, value: object) -> int:
        try:
            millis = parse_duration(value)  # type: ignore[arg-type]
        except ValueError as exc:
            reason = str(exc)
            if isinstance(value, str) and reason.startswith(repr(value)):
                reason = show(value) + reason[len(repr(value)):]
            raise ValueError(reason) from None
        if millis < self.minimum:
            raise ValueError(f"{show(value)} is too short: it must be at least {format_duration(self.minimum)}")
        return millis


@dataclass(frozen=True)
class Str(ValueType):
    """A non-empty string, optionally matching `pattern` (explained by `hint`)."""

    what: str = "string"
    pattern: str | None = None
    hint: str = ""

    def describe(self) -> str:
        return self.what

    def parse(self, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a {self.what}, got {kind_of(value)}")
        if not value:
            raise ValueError(f"expected a {self.what}, got an empty string")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise ValueError(f"{show(value)} is not a valid {self.what}{self.hint}")
        return value


@dataclass(frozen=True)
class Choice(ValueType):
    values: tuple[str, ...]

    def describe(self) -> str:
        return " | ".join(f'"{v}"' for v in self.values)

    def parse(self, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected one of {self._list()}, got {kind_of(value)}")
        if value not in self.values:
            raise ValueError(f"{show(value)} is not one of {self._list()}")
        return value

    def _list(self) -> str:
        return ", ".join(self.values)


class StrList(ValueType):
    """One string or an array of strings (e.g. several cookie domains)."""

    def describe(self) -> str:
        return "string or array of strings"

    def parse(self, value: object) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
            raise ValueError(f"expected a string or an array of non-empty strings, got {kind_of(value)}")
        return tuple(items)


class FileMode(ValueType):
    """A Unix permission: TOML octal 0o600, or an octal string "600"/"0600"."""

    def describe(self) -> str:
        return "file mode (0o600 or \"600\")"

    def parse(self, value: object) -> int:
        if isinstance(value, str) and re.fullmatch(r"0?[0-7]{1,3}", value):
            value = int(value, 8)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a file mode such as 0o600, got {kind_of(value)}")
        if not 0 <= value <= MAX_FILE_MODE:
            raise ValueError(f"{oct(value)} is not a file mode (0o000..0o777)")
        return value
