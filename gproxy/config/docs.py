"""docs/configuration.md, generated from the schema declarations.

`python -m gproxy.config.docs > docs/configuration.md` rewrites the file; a
unit test compares the committed file with `render_markdown()`, so the
reference can never drift from what the loader accepts.
"""

from __future__ import annotations

from typing import Any

from gsuite.config_docs import default_text, render_reference, table
from gproxy.config.schema import (
    ALL_SECTIONS,
    BACKEND,
    BIND,
    BOTH,
    COOKIE,
    DEFAULT_SERVER,
    FORWARDFOR,
    FRONTEND,
    GLOBAL,
    HTTPCHK,
    LOG_TARGET,
    PROMETHEUS,
    PROXY,
    SERVER,
    STATS_PAGE,
    STATS_SOCKET,
    TIMEOUT,
    TUNE,
    Section,
    Setting,
)
from gproxy.config.types import Duration, FileMode, Table, TableList

_INTRO = """\
# Configuration reference

<!-- Generated from gproxy/config/schema.py by `python -m gproxy.config.docs > docs/configuration.md`.
     Do not edit by hand: change the schema and regenerate. -->

gproxy reads one TOML file. `gproxy check FILE` validates it and prints every
problem at once; `gproxy run FILE` runs it; `gproxy convert FILE.cfg` turns an
HAProxy configuration into this format. The seed's setup,
`../shared/spec/esup-proxy.toml`, is the reference example:

```toml
[global]
maxconn = 4096
log = [{ target = "udp://192.0.2.14:514", facility = "local3" }]
stats_socket = { path = "/run/gproxy/admin.sock", mode = 0o600, level = "admin" }

[defaults]
mode = "http"
log = "global"
httplog = true
timeout = { connect = "5s", client = "50s", server = "50s" }

[listen.esup-proxy]
bind = ["192.0.2.15:80"]
cookie = { name = "JSESSIONID", mode = "prefix" }
httpchk = { method = "OPTIONS", path = "/" }

[[listen.esup-proxy.server]]
name = "ents3"
address = "192.0.2.16:80"
cookie = "s3"
weight = 256
check = true
inter = "5s"
```

## Sections

| Section | What it is |
| --- | --- |
| `[global]` | process-wide settings ([reference](#global)) |
| `[defaults]` | default values for every proxy: any [proxy setting](#proxy) but `bind` and `server` |
| `[frontend.NAME]` | accepts client connections on `bind` addresses and sends requests to `default_backend` |
| `[backend.NAME]` | a set of servers, with `[[backend.NAME.server]]` tables, a balance algorithm, persistence and checks |
| `[listen.NAME]` | a frontend and a backend of the same name in one section, like HAProxy's `listen` |
| `[snmp]` | SNMP traps and a notify command on state changes, the same table as heartbeat's ([SNMP traps](snmp.md)) |

## Values

- **Durations** are strings with a unit, `"100us"`, `"200ms"`, `"5s"`, `"2m"`,
  `"1h"`, `"1d"`, or integers of milliseconds (`5000`), as in HAProxy.
  Timeouts and check intervals must be greater than zero.
- **Addresses** are `"host:port"`; IPv6 hosts go in brackets, `"[::1]:80"`. In
  `bind`, `"*:80"` and `":80"` listen on every address.
- **Names** of proxies and servers use letters, digits, `_`, `.`, `:` and `-`.
- **File modes** are TOML octal integers (`0o600`) or octal strings (`"600"`).

## How sections combine

- Every key of `[defaults]` applies to each proxy that does not set it.
  `timeout` and `default_server` merge key by key; other tables (`cookie`,
  `httpchk`, `forwardfor`...) are replaced whole by a proxy's own.
- A key applies to the frontend side, the backend side or both (column
  *Side* below). A `[frontend]` refuses backend keys and a `[backend]`
  frontend keys; a `[listen]` takes both. `[defaults]` takes everything and
  each proxy uses the keys of its side.
- A `[listen.NAME]` becomes a frontend and a backend named NAME with the same
  id; its frontend sends requests to its own servers.
- Proxy ids (the `iid` of `show stat`) are 2, 3, ... in file order, as in
  HAProxy; server ids are 1, 2, ... in the order of their backend's array.
- `log = "global"` copies the targets of `global.log`.
- HTTP-only settings (marked *http*) in a proxy whose mode is `tcp` are
  errors; inherited from `[defaults]` they simply do not apply there, and an
  inherited `httplog` becomes `tcplog`, as HAProxy does. `balance = "uri"` is
  HTTP-only too.
- `httplog` and `tcplog` exclude each other; a proxy's own choice beats the
  one of `[defaults]`.
- A frontend's `default_backend` must name a backend or listen of the same
  mode. A frontend or listen needs at least one `bind` address. A backend may
  have no servers (it answers 503).
- Proxy names are unique across `frontend`, `backend` and `listen`; server
  names are unique within their backend.

## Errors

`gproxy check` (and `gproxy run`) report every problem of a file in one run,
one line each, with the key path and the reason, then exit with status 1:

```
listen.esup-proxy.server[1].weight: 300 is out of range 0..256
listen.esup-proxy.balancee: unknown key (did you mean "balance"?)
defaults.timeout.connect: "5 seconds" is not a duration (use e.g. "200ms", "5s", "2m" or an integer of ms)
frontend.www.default_backend: no backend named "app" (did you mean "apps"?)
esup-proxy.toml: invalid TOML: invalid value (line 3, column 7)
```

Server indexes count from 0, as positions in the TOML array.

## Converting from HAProxy

`gproxy convert haproxy.cfg > gproxy.toml` reads HAProxy 1.x and 2.x syntax:
`global`, `defaults`, `frontend`, `backend` and `listen` (including 1.x
`listen NAME ADDR:PORT`), and every directive named in the *HAProxy* column
below, with the older spellings `contimeout`, `clitimeout`, `srvtimeout`,
`redispatch`, `option forceclose`, `uid` and `gid`, plus `no option X`,
`http-check expect status`, `http-check send`, `http-check disable-on-404`
and `log-tag`. Any other directive is reported with its line number and
nothing is written. HAProxy's default mode is `tcp` and gproxy's is `http`, so
the converted file always states the mode. Several `defaults` sections are
folded into the proxies that use them.
"""


def _default(setting: Setting) -> str:
    if setting.required:
        return "required"
    value: Any = setting.default
    if isinstance(setting.type, FileMode) and value is not None:
        return f"`0o{value:o}`"
    return default_text(value, duration=isinstance(setting.type, Duration))


def _haproxy(setting: Setting) -> str:
    if setting.haproxy is None:
        return "—"
    spellings = [setting.haproxy] + [a for a in setting.aliases]
    return ", ".join(f"`{s}`" for s in spellings)


def _side(setting: Setting) -> str:
    side = {BOTH: "both", FRONTEND: "frontend", BACKEND: "backend"}[setting.scope]
    notes = [side]
    if setting.http_only:
        notes.append("*http*")
    if not setting.in_defaults:
        notes.append("not in `[defaults]`")
    return ", ".join(notes)


def _section_table(section: Section) -> list[str]:
    with_side = section in (PROXY, TIMEOUT)
    header = ["Key", "Type", "Default"] + (["Side"] if with_side else []) + ["HAProxy", "Description"]
    rows = []
    for setting in section.settings:
        typ = setting.type
        described = typ.describe()
        if not isinstance(typ, (Table, TableList)):
            described = f"`{described}`" if described.startswith('"') else described
        cells = [f"`{setting.key}`", described, _default(setting)]
        if with_side:
            cells.append(_side(setting))
        cells += [_haproxy(setting), setting.doc]
        rows.append(cells)
    return table(header, rows)


# Where each table lives in a file, in the order the reference presents them.
_LOCATIONS: tuple[tuple[Section, str], ...] = (
    (GLOBAL, "`[global]`"),
    (LOG_TARGET, "items of `global.log` and of a proxy's `log`"),
    (STATS_SOCKET, "`global.stats_socket`"),
    (TUNE, "`global.tune`"),
    (PROXY, "`[defaults]`, `[frontend.NAME]`, `[backend.NAME]`, `[listen.NAME]`"),
    (BIND, "items of a frontend's or listen's `bind` array"),
    (TIMEOUT, "`timeout = { ... }` in a proxy or `[defaults]`"),
    (SERVER, "`[[backend.NAME.server]]`, `[[listen.NAME.server]]`"),
    (DEFAULT_SERVER, "`default_server = { ... }` in a backend, listen or `[defaults]`"),
    (COOKIE, "`cookie = { ... }` in a backend, listen or `[defaults]`"),
    (HTTPCHK, "`httpchk = { ... }` in a backend, listen or `[defaults]`"),
    (FORWARDFOR, "`forwardfor = { ... }` in any proxy or `[defaults]`"),
    (STATS_PAGE, "`stats = { ... }` in a frontend, listen or `[defaults]`"),
    (PROMETHEUS, "`prometheus = { ... }` in a frontend, listen or `[defaults]`"),
)
assert {s.anchor for s, _ in _LOCATIONS} == {s.anchor for s in ALL_SECTIONS}, "document every section"


def render_markdown() -> str:
    """The whole of docs/configuration.md."""
    return render_reference(_INTRO, _LOCATIONS, _section_table)


if __name__ == "__main__":
    print(render_markdown(), end="")
