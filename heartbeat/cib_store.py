"""The CIB's runtime part: administrators' changes, versioned, persisted.

The configuration comes from the TOML file (identical on every node, like
Heartbeat's haresources); what administrators change at run time (standby,
moves, maintenance, unmanaged resources) lives here, with Pacemaker's
version triple. Changes are made only by the DC (`apply_change` bumps the
epoch); every node adopts a received CIB whose version is higher than its
own (`newer`), and writes it atomically so a restarted node comes back with
it. Fail counts are not stored here: each node reports its own in its
heartbeats (see controller.py), as Pacemaker keeps them in the status section.

`Cib.unmanaged` also holds what the file declares `managed = false` (the
is-managed meta attribute): added whenever a CIB is built here, never
written or sent (each node reads it from its own copy of the file), and
`manage` refuses to undo it, since the file would bring it back.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from heartbeat.errors import HeartbeatError
from heartbeat.model import Cib, CibVersion, ClusterConfig, MoveConstraint

CIB_FILE = "cib.json"


class ChangeRejected(HeartbeatError):
    """An administrator's change names something that does not exist."""


def runtime_to_dict(cib: Cib) -> dict:
    return {
        "version": list(cib.version.as_tuple()),
        "standby": sorted(cib.standby),
        "moves": [{"resource": m.resource, "node": m.node, "expires": m.expires} for m in cib.moves],
        "maintenance": cib.maintenance,
        "unmanaged": sorted(cib.unmanaged - cib.config.configured_unmanaged()),
    }


def runtime_from_dict(config: ClusterConfig, data: dict) -> Cib:
    """Rebuild a Cib from its runtime dict; entries naming things the config
    no longer has are dropped (the config file wins)."""
    names = {n.name for n in config.nodes}
    targets = {r.id for r in config.resources} | {g.id for g in config.groups}
    admin_epoch, epoch, num_updates = (int(x) for x in data.get("version", (0, 0, 0)))
    moves = tuple(
        MoveConstraint(m["resource"], m["node"], m.get("expires"))
        for m in data.get("moves", ())
        if m.get("resource") in targets and m.get("node") in names
    )
    return Cib(
        config=config,
        version=CibVersion(admin_epoch, epoch, num_updates),
        standby=frozenset(n for n in data.get("standby", ()) if n in names),
        moves=moves,
        maintenance=bool(data.get("maintenance", False)),
        unmanaged=frozenset(r for r in data.get("unmanaged", ()) if r in targets) | config.configured_unmanaged(),
    )


def load(config: ClusterConfig, state_dir: str) -> Cib:
    """The persisted runtime state, or a fresh CIB if there is none (or it is unreadable)."""
    path = Path(state_dir) / CIB_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return Cib(config=config, unmanaged=config.configured_unmanaged())
    return runtime_from_dict(config, data)


def save(cib: Cib, state_dir: str) -> None:
    """Write atomically: a crash leaves either the old file or the new one."""
    directory = Path(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (CIB_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(runtime_to_dict(cib), handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, directory / CIB_FILE)


def newer(candidate: CibVersion, current: CibVersion) -> bool:
    return candidate.as_tuple() > current.as_tuple()


def _bump(cib: Cib, **changes) -> Cib:
    version = cib.version
    return replace(cib, version=CibVersion(version.admin_epoch, version.epoch + 1, 0), **changes)


def apply_change(cib: Cib, request: dict, now: float) -> Cib:
    """An administrator's request (the status socket's JSON) -> the new CIB.
    Raises ChangeRejected with a one-line reason."""
    config = cib.config
    cmd = request.get("cmd")
    node = request.get("node")
    resource = request.get("resource")
    nodes = {n.name for n in config.nodes}
    targets = {r.id for r in config.resources} | {g.id for g in config.groups}

    def need_node() -> str:
        if node not in nodes:
            raise ChangeRejected(f"no such node: {node}")
        return node

    def need_resource() -> str:
        if resource not in targets:
            raise ChangeRejected(f"no such resource: {resource}")
        return resource

    if cmd == "move":
        rid, target = need_resource(), need_node()
        lifetime = request.get("lifetime_ms")
        expires = now + lifetime / 1000.0 if lifetime else None
        moves = tuple(m for m in cib.moves if m.resource != rid) + (MoveConstraint(rid, target, expires),)
        return _bump(cib, moves=moves)
    if cmd == "clear":
        rid = need_resource()
        return _bump(cib, moves=tuple(m for m in cib.moves if m.resource != rid))
    if cmd == "standby":
        return _bump(cib, standby=cib.standby | {need_node()})
    if cmd == "online":
        return _bump(cib, standby=cib.standby - {need_node()})
    if cmd == "maintenance":
        return _bump(cib, maintenance=bool(request.get("on")))
    if cmd == "manage":
        rid = need_resource()
        if request.get("on", True):
            _refuse_if_declared(config, rid)
        unmanaged = cib.unmanaged - {rid} if request.get("on", True) else cib.unmanaged | {rid}
        return _bump(cib, unmanaged=unmanaged)
    raise ChangeRejected(f"unknown command: {cmd}")


def _refuse_if_declared(config: ClusterConfig, rid: str) -> None:
    """`manage` cannot undo `managed = false` in the file (on the resource or its group)."""
    group = config.group_of(rid)
    for name in (rid, group.id if group else None):
        if name is not None and name in config.configured_unmanaged():
            whose = "" if name == rid else f" (its group {name})"
            raise ChangeRejected(f"{rid}{whose} is declared managed = false in the configuration file: "
                                 "change the file to manage it")
