"""Server state carried across reloads and upgrades (HAProxy's server-state-file).

Pure: text in, decisions out. The master reads `show servers state` (the
runtime API's format, version 1) from a worker before replacing it; the new
workers get that text and `plan()` says which runtime changes to re-apply
before they accept traffic.

What is carried, and why the configuration sometimes wins (the complaints
collected in reference/haproxy.md 3.2: state files that silently undo a
configuration change):

* admin state: a server put in maint or drain on the CLI stays so. A maint
  that came from the configuration's `disabled` (CMAINT) is not carried: the
  new configuration decides.
* weight: a weight set on the CLI is kept while the configured weight is the
  same as when it was set; a new configured weight wins.
* health: a server that checks found DOWN (or NOLB) starts DOWN (NOLB) in
  the new workers, so they do not send it traffic before their first check
  (HAProxy's "changed from server-state after a reload"); only when checks
  are on and the address and port are unchanged (else it is another server).

Servers are matched by backend and server *name*: ids shift when servers are
added or removed. Addresses are never carried: the configuration wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gproxy.config.model import Config

STATE_FORMAT_VERSION = "1"
MIN_COLUMNS = 19  # up to srv_port, the last column read here

# HAProxy's SRV_ST_* and SRV_ADMF_* values (reference/haproxy.md 1.6); the
# health module owns them as enums, repeated here as plain ints so this
# module reads text without importing the state machine.
OP_STOPPED = 0
OP_STOPPING = 3
ADMIN_FMAINT = 0x01
ADMIN_CMAINT = 0x04
ADMIN_FDRAIN = 0x08

AdminRestore = Literal["maint", "drain"]
HealthRestore = Literal["down", "stopping"]


@dataclass(frozen=True)
class SavedServer:
    """One row of `show servers state`, the columns this module uses."""

    backend: str
    server: str
    addr: str
    port: int
    op_state: int
    admin: int
    uweight: int
    iweight: int


@dataclass(frozen=True)
class Restore:
    """What to re-apply to one server of the new configuration (None: nothing)."""

    backend: str
    server: str
    admin: AdminRestore | None = None
    weight: int | None = None
    health: HealthRestore | None = None


def parse(text: str) -> tuple[list[SavedServer], list[str]]:
    """The rows of a `show servers state` answer, and one problem per line
    that could not be read (the rest is still used)."""
    rows: list[SavedServer] = []
    problems: list[str] = []
    lines = text.splitlines()
    if lines and lines[0].strip() and not lines[0].startswith("#"):
        if lines[0].strip() != STATE_FORMAT_VERSION:
            return [], [f"server state: unknown format version {lines[0].strip()!r}"]
        lines = lines[1:]
    for number, line in enumerate(lines, start=2):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < MIN_COLUMNS:
            problems.append(f"server state line {number}: {len(fields)} columns, expected {MIN_COLUMNS} or more")
            continue
        try:
            rows.append(SavedServer(
                backend=fields[1], server=fields[3], addr=fields[4], port=int(fields[18]),
                op_state=int(fields[5]), admin=int(fields[6]), uweight=int(fields[7]), iweight=int(fields[8])))
        except ValueError:
            problems.append(f"server state line {number}: a numeric column is not a number")
    return rows, problems


def plan(saved: list[SavedServer], config: Config) -> list[Restore]:
    """The changes that bring `config`'s servers back to their saved state."""
    restores: list[Restore] = []
    for row in saved:
        backend = config.backends.get(row.backend)
        cfg = backend.server(row.server) if backend is not None else None
        if cfg is None:
            continue  # removed by the new configuration
        admin: AdminRestore | None = None
        if row.admin & ADMIN_FMAINT and not row.admin & ADMIN_CMAINT:
            admin = "maint"
        elif row.admin & ADMIN_FDRAIN:
            admin = "drain"
        weight = row.uweight if row.iweight == cfg.weight and row.uweight != cfg.weight else None
        health: HealthRestore | None = None
        same_server = (row.addr, row.port) == (cfg.address.host, cfg.address.port)
        in_maint = row.admin & (ADMIN_FMAINT | ADMIN_CMAINT)
        if cfg.check and same_server and not in_maint and admin != "maint" and not cfg.disabled:
            if row.op_state == OP_STOPPED:
                health = "down"
            elif row.op_state == OP_STOPPING:
                health = "stopping"
        if admin or weight is not None or health:
            restores.append(Restore(row.backend, row.server, admin, weight, health))
    return restores
