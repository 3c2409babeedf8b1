"""docs/heartbeat-configuration.md, generated from the schema declarations.

`python -m heartbeat.config.docs > docs/heartbeat-configuration.md` rewrites
the file; a unit test compares the committed file with `render_markdown()`,
so the reference can never drift from what the loader accepts.
"""

from __future__ import annotations

from typing import Any

from gsuite.config_types import Duration, ValueType
from gsuite.config_docs import default_text, render_reference, table
from heartbeat.config.schema import (
    ALL_SECTIONS,
    CLUSTER,
    COLOCATION,
    FENCING,
    GROUP,
    LOCATION,
    MAX_NODES,
    MIN_NODES,
    MONITOR,
    NODE,
    ORDER,
    RESOURCE,
    START,
    STOP,
    TOP_LEVEL,
    Section,
    Setting,
)
from heartbeat.config.types import MappingOf, Score
from heartbeat.model import INFINITY

_INTRO = f"""\
# heartbeat configuration reference

<!-- Generated from heartbeat/config/schema.py by
     `python -m heartbeat.config.docs > docs/heartbeat-configuration.md`.
     Do not edit by hand: change the schema and regenerate. -->

heartbeat reads one TOML file, the same on every node: Heartbeat's `ha.cf`
and `authkeys` settings and Pacemaker's CIB configuration in one place.
`heartbeat check FILE` validates it and prints every problem at once;
`heartbeat run FILE [--node NAME]` runs a node of it. The seed's cluster,
`../shared/spec/esup-cluster.toml`, is the reference example:

```toml
[cluster]
name = "esup-proxy"
keepalive = "1s"
warntime = "3s"
deadtime = "5s"
initdead = "15s"
port = 694
auth_key_file = "/etc/heartbeat/authkey"
auto_failback = true
status_socket = "/run/heartbeat/status.sock"

[[node]]
name = "esup-proxy-1"
addresses = ["192.0.2.11"]

[[node]]
name = "esup-proxy-2"
addresses = ["192.0.2.12"]

[[resource]]
id = "vip"
agent = "ocf:heartbeat:IPaddr2"
params = {{ ip = "192.0.2.15", cidr_netmask = "24" }}
monitor = {{ interval = "5s", timeout = "20s" }}

[[resource]]
id = "proxy"
agent = "ocf:gproxy:gproxy"
params = {{ config = "/etc/gproxy/esup-proxy.toml" }}
monitor = {{ interval = "5s", timeout = "10s" }}

[[resource]]
id = "tls"
agent = "lsb:stunnel4"
monitor = {{ interval = "10s", timeout = "20s" }}

[[group]]
id = "esup"
resources = ["vip", "proxy", "tls"]

[[constraint]]
kind = "location"
resource = "esup"
node = "esup-proxy-1"
score = 100
```

## Tables

| Table | What it is |
| --- | --- |
| `[cluster]` | membership timing, transport, authentication, cluster-wide defaults ([reference](#cluster)) |
| `[[node]]` | one per member, {MIN_NODES} to {MAX_NODES} ([reference](#node)) |
| `[[resource]]` | one per service the cluster runs: its agent, parameters and operations ([reference](#resource)) |
| `[[group]]` | resources started in order on one node, stopped in reverse ([reference](#group)) |
| `[[constraint]]` | `kind = "location"`, `"colocation"` or `"order"` ([location](#location), [colocation](#colocation), [order](#order)) |

## Values

- **Durations** are strings with a unit, `"100us"`, `"200ms"`, `"5s"`, `"2m"`,
  `"1h"`, `"1d"`, or integers of milliseconds (`5000`). Unlike ha.cf, a bare
  number is milliseconds, not seconds. Timers and operation timeouts must be
  greater than zero.
- **Scores** are integers from -{INFINITY} to {INFINITY}, or `"INFINITY"`
  (also `"+INFINITY"`) and `"-INFINITY"`, as in Pacemaker. INFINITY is
  {INFINITY}; anything plus INFINITY is INFINITY, and -INFINITY wins over
  INFINITY.
- **Agents** are `"ocf:PROVIDER:TYPE"` (`$OCF_ROOT/resource.d/PROVIDER/TYPE`,
  OCF_ROOT defaulting to /usr/lib/ocf; the provider `gproxy` is built in) or
  `"lsb:NAME"` (`/etc/init.d/NAME`).
- **Ids** of resources, groups and constraints start with a letter or `_`,
  then letters, digits, `_`, `.` and `-`. **Node names** are host names, as
  `uname -n` prints them.
- **Agent parameters** are strings; integers and booleans are converted
  (`true` becomes `"true"`), floats must be quoted.

## Rules between settings

- Heartbeat's timing rules: `deadtime` must be more than 2 × `keepalive`;
  `initdead` at least `deadtime`; `warntime` more than `keepalive` and less
  than `deadtime`. Unset, `warntime` is `deadtime` / 2 and `initdead` is
  3 × `deadtime`.
- `auto_failback = true` means a default `resource_stickiness` of 0 (the
  preferred node takes its resources back), `false` means INFINITY (they stay
  where they are); an explicit `resource_stickiness` wins.
- A cluster has {MIN_NODES} to {MAX_NODES} nodes with unique names, ids and
  addresses. Address N of every node is on link N, so the addresses of one
  link are all IPv4 or all IPv6 (and of the `multicast` group's family).
- Resources and groups share one set of ids. A resource belongs to at most
  one group; a group holds resources only.
- Constraints name existing resources or groups, and existing nodes. A
  constraint without `id` gets `location-RESOURCE-NODE`,
  `colocation-RESOURCE-WITH` or `order-FIRST-THEN`; ids are unique.
- The meta settings of a resource (`resource_stickiness`,
  `migration_threshold`, `failure_timeout`) default to the cluster's.
- `auth_key_file` is read by the daemon when it starts. `heartbeat check`
  only warns, and still exits 0, if the file is missing or open to group or
  others (use mode 0600).

## Errors

`heartbeat check` (and `heartbeat run`) report every problem of a file in
one run, one line each, with the key path and the reason, then exit with
status 1:

```
cluster.keepalve: unknown key (did you mean "keepalive"?)
cluster.deadtime: 2s is too small compared to keepalive 1s: it must be more than 2 × keepalive (2s)
resource[1].agent: "ocf:gproxy": an OCF agent is written "ocf:PROVIDER:TYPE" (e.g. "ocf:heartbeat:IPaddr2")
group[0].resources[2]: no resource named "tsl" (did you mean "tls"?)
constraint[0].node: no node named "esup-proxy1" (did you mean "esup-proxy-1"?)
```

Indexes count from 0, as positions in the TOML arrays.

## From ha.cf and Pacemaker

The column *Heartbeat / Pacemaker* names what a key stands for: an ha.cf
directive (or the authkeys file), or a Pacemaker CIB option or attribute.
`ucast` lines become each node's `addresses`; `bcast` and `serial` have no
equivalent. haresources groups become `[[group]]` plus a location
constraint for their preferred node.
"""


def _default(setting: Setting) -> str:
    if setting.required:
        return "required"
    if setting.default_doc is not None:
        return setting.default_doc
    value: Any = setting.default
    if isinstance(setting.type, Score) and isinstance(value, int) and abs(value) == INFINITY:
        return '`"INFINITY"`' if value > 0 else '`"-INFINITY"`'
    return default_text(value, duration=isinstance(setting.type, Duration),
                        empty="`{}`" if isinstance(setting.type, MappingOf) else "`[]`")


def _origin(setting: Setting) -> str:
    names = []
    if setting.hacf is not None:
        names.append(f"ha.cf `{setting.hacf}`" if not setting.hacf.startswith("/") else f"`{setting.hacf}`")
    if setting.pacemaker is not None:
        names.append(f"Pacemaker `{setting.pacemaker}`")
    return "; ".join(names) or "—"


def _type(setting: Setting) -> str:
    described = setting.type.describe()
    if isinstance(setting.type, ValueType) and described.startswith('"'):
        return f"`{described}`"
    return described


def _section_table(section: Section) -> list[str]:
    header = ["Key", "Type", "Default", "Heartbeat / Pacemaker", "Description"]
    return table(header, ([f"`{setting.key}`", _type(setting), _default(setting), _origin(setting), setting.doc]
                          for setting in section.settings))


# Where each table lives in a file, in the order the reference presents them.
_LOCATIONS: tuple[tuple[Section, str], ...] = (
    (TOP_LEVEL, "the top level of the file"),
    (CLUSTER, "`[cluster]`"),
    (FENCING, "`fencing = { ... }` in `[cluster]`"),
    (NODE, "`[[node]]`, one per member"),
    (RESOURCE, "`[[resource]]`, one per resource"),
    (MONITOR, "`monitor = { ... }` in a resource"),
    (START, "`start = { ... }` in a resource"),
    (STOP, "`stop = { ... }` in a resource"),
    (GROUP, "`[[group]]`"),
    (LOCATION, '`[[constraint]]` with `kind = "location"`'),
    (COLOCATION, '`[[constraint]]` with `kind = "colocation"`'),
    (ORDER, '`[[constraint]]` with `kind = "order"`'),
)
assert {s.anchor for s, _ in _LOCATIONS} == {s.anchor for s in ALL_SECTIONS}, "document every section"


def render_markdown() -> str:
    """The whole of docs/heartbeat-configuration.md."""
    return render_reference(_INTRO, _LOCATIONS, _section_table)


if __name__ == "__main__":
    print(render_markdown(), end="")
