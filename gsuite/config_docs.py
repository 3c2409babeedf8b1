"""Markdown for the configuration references (docs/configuration.md and
docs/heartbeat-configuration.md), shared by both generators: each package
knows its settings, this module knows how a reference page is laid out."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from gsuite.durations import format_duration


def cell(text: str) -> str:
    """A table cell: pipes escaped, one line."""
    return text.replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines.extend("| " + " | ".join(cell(c) for c in row) + " |" for row in rows)
    return lines


def default_text(value: Any, *, duration: bool = False, empty: str = "`[]`") -> str:
    """How a default reads in the reference: `true`, `"5s"`, `"text"`, `[]`..."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if duration and isinstance(value, int):
        return f'`"{format_duration(value)}"`' if value else "`0`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if value == ():
        return empty
    return f"`{value}`"


def render_reference(intro: str, locations: Sequence[tuple[Any, str]],
                     section_table: Callable[[Any], list[str]]) -> str:
    """The page: the intro, then each section (anchor, title, where, table)."""
    parts = [intro, "## Reference\n"]
    for section, location in locations:
        parts.append(f'<a id="{section.anchor}"></a>\n')
        parts.append(f"### {section.title}\n")
        parts.append(f"Where: {location}. {section.doc}\n")
        parts.append("\n".join(section_table(section)) + "\n")
    return "\n".join(parts)
