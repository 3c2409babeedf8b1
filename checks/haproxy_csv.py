"""Parse HAProxy's `show stat` CSV and `show info` text into frozen values.

Pure: text in, values out, no I/O. Columns are found by their header names,
never by position, because fields were added and moved between HAProxy
versions (and gproxy may print fewer of them). Server status strings are
decoded the way HAProxy 2.6 prints them: `UP`, `UP 1/3`, `DOWN`, `DOWN 1/2`,
`DOWN (agent)`, `NOLB`, `DRAIN`, `MAINT`, `MAINT (via be/srv)`,
`MAINT (resolution)`, `no check`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterable, Mapping

ROW_TYPES = {"0": "frontend", "1": "backend", "2": "server", "3": "listener"}
REQUIRED_COLUMNS = ("pxname", "svname")

# Server status kinds (the first word of HAProxy's status column).
UP = "UP"
DOWN = "DOWN"
NOLB = "NOLB"
DRAIN = "DRAIN"
MAINT = "MAINT"
NO_CHECK = "no check"
OTHER = "other"  # a status this parser does not know: treated as not serving
STATUS_WORDS = frozenset({UP, DOWN, NOLB, DRAIN, MAINT})


class StatsFormatError(ValueError):
    """The text is not what `show stat` or `show info` prints."""


def _excerpt(text: str, limit: int = 60) -> str:
    """The first line of an unexpected answer, shortened for a status line."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return repr(first[:limit] + ("..." if len(first) > limit else ""))


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """A decoded status column.

    `kind` is one of UP, DOWN, NOLB, DRAIN, MAINT, "no check" or "other";
    `progress` is the `n/m` of a transition in progress (`UP 2/3` is still
    up and failing checks, `DOWN 1/2` is down and passing them); `detail`
    is the parenthesised part (`via be/srv`, `agent`, `resolution`).
    """

    text: str
    kind: str
    progress: tuple[int, int] | None = None
    detail: str | None = None

    @property
    def serving(self) -> bool:
        """Whether the server takes new traffic (UP, even while failing checks, or unchecked)."""
        return self.kind in (UP, NO_CHECK)

    @property
    def administrative(self) -> bool:
        """Whether an administrator (or the application) took it out: drain, maintenance, soft stop."""
        return self.kind in (DRAIN, MAINT, NOLB)


def parse_status(text: str) -> ServerStatus:
    """Decode one status column value (see the module docstring for the forms)."""
    clean = text.strip()
    if clean == NO_CHECK:
        return ServerStatus(clean, NO_CHECK)
    word, _, rest = clean.partition(" ")
    if word not in STATUS_WORDS:
        return ServerStatus(clean, OTHER)
    rest = rest.strip()
    progress: tuple[int, int] | None = None
    detail: str | None = None
    if rest.startswith("(") and rest.endswith(")"):
        detail = rest[1:-1].strip()
    elif rest:
        done, slash, total = rest.partition("/")
        if slash and done.isdigit() and total.isdigit():
            progress = (int(done), int(total))
        else:
            return ServerStatus(clean, OTHER)
    return ServerStatus(clean, word, progress, detail)


@dataclass(frozen=True, slots=True)
class StatRow:
    """One line of `show stat`: a frontend, backend, server or listener."""

    proxy: str
    name: str
    kind: str  # frontend, backend, server, listener
    fields: Mapping[str, str]

    def text(self, column: str) -> str:
        """The column's raw text, '' when the column is absent or empty."""
        return self.fields.get(column, "")

    def number(self, column: str) -> int | None:
        """The column as an integer, None when absent, empty or not a number."""
        value = self.fields.get(column, "")
        try:
            return int(value)
        except ValueError:
            return None

    def count(self, column: str) -> int:
        """The column as an integer, 0 when absent or empty (counters and gauges)."""
        value = self.number(column)
        return 0 if value is None else value

    @property
    def status(self) -> ServerStatus:
        return parse_status(self.text("status"))

    @property
    def backup(self) -> bool:
        """A server row flagged as backup (`bck` is 1)."""
        return self.kind == "server" and self.text("bck") == "1"


@dataclass(frozen=True, slots=True)
class Backend:
    """A backend's summary row (None if the CSV lacks it) and its server rows, in order."""

    name: str
    row: StatRow | None
    servers: tuple[StatRow, ...]


@dataclass(frozen=True, slots=True)
class Stats:
    """A whole `show stat` answer."""

    columns: tuple[str, ...]
    rows: tuple[StatRow, ...]

    def of_kind(self, kind: str) -> tuple[StatRow, ...]:
        return tuple(row for row in self.rows if row.kind == kind)

    def backends(self) -> tuple[Backend, ...]:
        """Backends in CSV order with their servers (a `listen` section is a frontend plus a backend)."""
        order: list[str] = []
        summary: dict[str, StatRow] = {}
        servers: dict[str, list[StatRow]] = {}
        for row in self.rows:
            if row.kind not in ("backend", "server"):
                continue
            if row.proxy not in servers:
                order.append(row.proxy)
                servers[row.proxy] = []
            if row.kind == "backend":
                summary[row.proxy] = row
            else:
                servers[row.proxy].append(row)
        return tuple(Backend(name, summary.get(name), tuple(servers[name])) for name in order)

    def server(self, backend: str, server: str) -> StatRow | None:
        for row in self.rows:
            if row.kind == "server" and row.proxy == backend and row.name == server:
                return row
        return None


def _row_kind(fields: Mapping[str, str]) -> str:
    """The row's type column, or a guess from svname when the column is missing."""
    kind = ROW_TYPES.get(fields.get("type", ""))
    if kind:
        return kind
    svname = fields.get("svname", "")
    if svname == "FRONTEND":
        return "frontend"
    if svname == "BACKEND":
        return "backend"
    return "server"


def parse_stat_csv(text: str) -> Stats:
    """Parse `show stat` output (or the stats page's `;csv`).

    The first line is `# ` followed by the column names; every line ends
    with a comma (an empty last column, dropped here); values containing a
    comma are double-quoted. Short lines are padded with empty values.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("#"):
        raise StatsFormatError(f"not a `show stat` CSV (it starts with {_excerpt(text)})")
    header = next(csv.reader([lines[0].lstrip("#").strip()]))
    while header and header[-1] == "":
        header.pop()
    columns = tuple(name.strip() for name in header)
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise StatsFormatError(f"not a `show stat` CSV (no column {', '.join(missing)})")
    rows: list[StatRow] = []
    for values in csv.reader(lines[1:]):
        if len(values) < 2:
            raise StatsFormatError(f"malformed `show stat` line {_excerpt(','.join(values))}")
        fields = dict(zip(columns, values))
        for name in columns[len(values):]:
            fields[name] = ""
        rows.append(StatRow(fields["pxname"], fields["svname"], _row_kind(fields),
                            MappingProxyType(fields)))
    return Stats(columns, tuple(rows))


def parse_info(text: str) -> Mapping[str, str]:
    """Parse `show info` (`Key: value` lines) into a read-only mapping."""
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key.strip():
            info[key.strip()] = value.strip()
    if "Maxconn" not in info and "CurrConns" not in info:
        raise StatsFormatError(f"not a `show info` answer (it starts with {_excerpt(text)})")
    return MappingProxyType(info)


def select(names: Iterable[str], include: Iterable[str], exclude: Iterable[str]) -> list[str]:
    """The names kept by `-b` (include, all when empty) and `--exclude` filters, in order."""
    wanted = set(include)
    unwanted = set(exclude)
    return [name for name in names if (not wanted or name in wanted) and name not in unwanted]
