"""The first two steps of every loader of the suite: a file's text, then its
TOML document, each stopping with the package's own ConfigError (gsuite
imports neither package, so the loader passes its error class in). What
comes after, the walk against the schema, is each package's.
"""

from __future__ import annotations

from typing import Any, Callable

from gsuite import tomlfile
from gsuite.tomlfile import Problem

# A package's ConfigError: built from the (path, reason) problems it reports.
ErrorType = Callable[[list[Problem]], Exception]


def file_text(path: str, error: ErrorType) -> str:
    """The file's text; raise `error` if it cannot be read."""
    text, problems = tomlfile.read_text(path)
    if text is None:
        raise error(problems)
    return text


def document(text: str, source: str, error: ErrorType) -> dict[str, Any]:
    """The TOML document; raise `error` with its syntax error (line, column)."""
    data, problems = tomlfile.parse(text, source)
    if data is None:
        raise error(problems)
    return data
