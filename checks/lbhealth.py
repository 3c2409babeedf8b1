"""How healthy a backend and its servers are, from `show stat` rows.

Pure: rows in, frozen verdicts and phrases out. HAProxy's rules: active
servers carry the traffic; backup servers serve only when no active server
is usable (in the seed, the backup is a maintenance page); servers that an
administrator drained or put in maintenance, or that the application soft-
stopped (NOLB), are out of the pool on purpose, and `--maint-ok` says not to
count them as failures.
"""

from __future__ import annotations

from dataclasses import dataclass

from checks.haproxy_csv import DOWN, Backend, StatRow

PASSED_CHECKS = frozenset({"L4OK", "L6OK", "L7OK", "L7OKC", "PROCOK"})  # HAProxy's check_status codes of success
MAX_NAMES_IN_STATUS_LINE = 2  # the status line (best under 80 columns) names a few servers; long output all


@dataclass(frozen=True, slots=True)
class BackendHealth:
    """The verdict inputs for one backend.

    `pool` holds the servers whose "up" count is thresholded: the active
    servers (or the backup servers when a backend has no active server at
    all); with `maint_ok`, servers out of the pool on purpose are left out.
    """

    name: str
    status: str  # the BACKEND row's status: UP, DOWN, or '' without that row
    active: tuple[StatRow, ...]
    backups: tuple[StatRow, ...]
    counted: tuple[StatRow, ...]
    maint_ok: bool
    row: StatRow | None  # the BACKEND summary row, if the CSV has one

    @property
    def up(self) -> int:
        return sum(1 for row in self.counted if row.status.serving)

    @property
    def failing(self) -> tuple[StatRow, ...]:
        """Counted servers that do not serve."""
        return tuple(row for row in self.counted if not row.status.serving)

    @property
    def administrative(self) -> tuple[StatRow, ...]:
        """Servers out of the pool on purpose (DRAIN, MAINT, NOLB), active or backup."""
        return tuple(row for row in self.active + self.backups if row.status.administrative)

    @property
    def serving_backups(self) -> tuple[str, ...]:
        """Backup servers up (they carry the traffic when no active server is up)."""
        return tuple(row.name for row in self.backups if row.status.serving)

    @property
    def backups_down(self) -> tuple[StatRow, ...]:
        return tuple(row for row in self.backups
                     if not row.status.serving and not (self.maint_ok and row.status.administrative))

    @property
    def sessions(self) -> int:
        return self.row_count("scur")

    @property
    def queue(self) -> int:
        return self.row_count("qcur")

    def row_count(self, column: str) -> int:
        """A gauge of the BACKEND row, or the servers' sum when the CSV lacks that row."""
        if self.row is not None:
            return self.row.count(column)
        return sum(row.count(column) for row in self.active + self.backups)

    @property
    def session_limit(self) -> int | None:
        return self.row.number("slim") if self.row is not None else None


def assess(backend: Backend, maint_ok: bool) -> BackendHealth:
    """Split a backend's servers into active/backup and pick the counted pool."""
    active = tuple(row for row in backend.servers if not row.backup)
    backups = tuple(row for row in backend.servers if row.backup)
    pool = active or backups
    counted = tuple(row for row in pool if not (maint_ok and row.status.administrative))
    status = backend.row.status.text if backend.row is not None else ""
    return BackendHealth(backend.name, status, active, backups, counted, maint_ok, backend.row)


def format_age(seconds: int | None) -> str:
    """A short duration: 42s, 5m02s, 3h02m, 2d04h ('?' when unknown)."""
    if seconds is None or seconds < 0:
        return "?"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def check_text(row: StatRow) -> str:
    """The last health check's outcome: `L7OK/200 in 1ms`, `L4CON (Connection refused)`."""
    status = row.text("check_status").lstrip("* ").strip()  # `* ` marks a check in progress
    if not status:
        return ""
    code = row.text("check_code")
    text = f"{status}/{code}" if code else status
    if status in PASSED_CHECKS:
        duration = row.number("check_duration")
        return text + (f" in {duration}ms" if duration is not None else "")
    reason = row.text("last_chk") or row.text("check_desc")
    return text + (f" ({reason})" if reason else "")


def describe_server(row: StatRow) -> str:
    """One server as the long output shows it: `ents1 DOWN for 12s, check L4CON (Connection refused)`."""
    text = f"{row.name}{' (backup)' if row.backup else ''} {row.status.text or '?'}"
    if row.number("lastchg") is not None:
        text += f" for {format_age(row.number('lastchg'))}"
    check = check_text(row)
    if check:
        text += f", check {check}"
    return text


def _names(rows: tuple[StatRow, ...]) -> str:
    """`ents1 DOWN` for one or two servers, `3 DOWN, 1 MAINT` for more (the status line stays short)."""
    if len(rows) <= MAX_NAMES_IN_STATUS_LINE:
        return ", ".join(f"{row.name} {row.status.text}" for row in rows)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status.kind] = counts.get(row.status.kind, 0) + 1
    return ", ".join(f"{count} {kind}" for kind, count in counts.items())


def problem_text(health: BackendHealth) -> str:
    """The status-line phrase for a backend that is not fine."""
    total = len(health.counted)
    if health.up == 0 and total == 0 and health.status != DOWN:
        return f"{health.name}: every server out of the pool on purpose ({_names(health.administrative)})"
    if health.up == 0:
        backups = health.serving_backups if health.active else ()
        if backups:
            serving = f"backup {', '.join(backups)} serving"
        elif health.active and health.backups:
            serving = "no backup server up either"
        else:
            serving = "nothing serves"
        if health.failing and any(row.status.kind != DOWN for row in health.failing):
            return f"{health.name}: no active server up ({_names(health.failing)}), {serving}"
        return f"{health.name}: no active server up, {serving}"
    text = f"{health.name}: {health.up}/{total} active servers up"
    if health.failing:
        text += f" ({_names(health.failing)})"
    return text


def summary_text(health: BackendHealth) -> str:
    """The long-output headline of a backend: state, counts, sessions and queue."""
    parts = [f"{health.name}: {health.status or 'no BACKEND row'}",
             f"{health.up}/{len(health.counted)} active up"]
    if health.backups:
        parts.append(f"{len(health.serving_backups)}/{len(health.backups)} backup up")
    limit = health.session_limit
    parts.append(f"sessions {health.sessions}" + (f"/{limit}" if limit else ""))
    parts.append(f"queue {health.queue}")
    return ", ".join(parts)
