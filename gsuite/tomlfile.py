"""Reading a TOML configuration file, the same way for every daemon: the
file's problems come back as (path, reason) pairs, each package raises its
own ConfigError with them (gsuite depends on neither package)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

_TOML_POSITION_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")

Problem = tuple[str, str]


def read_text(path: str) -> tuple[str | None, list[Problem]]:
    """The file's text, or None and the one problem that prevented reading it."""
    try:
        return Path(path).read_text(encoding="utf-8"), []
    except OSError as exc:
        return None, [(path, f"cannot read the file: {exc.strerror or exc}")]
    except UnicodeDecodeError:
        return None, [(path, "cannot read the file: it is not UTF-8 text")]


def parse(text: str, source: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The TOML document, or None and its syntax error with line and column."""
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as exc:
        return None, [(source, toml_reason(exc))]


def toml_reason(exc: tomllib.TOMLDecodeError) -> str:
    """tomllib's message, reworded: `invalid TOML: ... (line 3, column 7)`."""
    message = str(exc)
    where = ""
    match = _TOML_POSITION_RE.search(message)
    if match:
        message = message[: match.start()]
        where = f" (line {match.group(1)}, column {match.group(2)})"
    return f"invalid TOML: {message[:1].lower()}{message[1:]}{where}"
