"""Policy case files: one scheduler input (a cluster, its runtime state and
what runs where) as a TOML file, for the golden corpus and `simulate`.

A case file is a cluster file (the same `[cluster]`, `[[node]]`,
`[[resource]]`, `[[group]]`, `[[constraint]]` tables as esup-cluster.toml,
validated by heartbeat.config) plus:

    [case]
    description = "esup-proxy-1 returns; stickiness 0: failback"
    now = 10000.0                 # epoch seconds given to schedule()
    base = "_esup-cluster.toml"   # optional: cluster tables this file does not define
                                  # come from there ([cluster] keys merge, the case's win)
    [meta.tls]                    # optional: meta attributes merged into a resource
    target_role = "stopped"

    [cib]                         # administrators' runtime state
    standby = ["esup-proxy-1"]
    maintenance = false
    unmanaged = ["tls"]
    moves = [{ resource = "esup", node = "esup-proxy-2", expires = 9000.0 }]
    failures = [{ resource = "proxy", node = "esup-proxy-1", count = 3, last_failure = 9990.0,
                  rc = 1, hard = false, reason = "not running" }]

    [status]                      # membership and the LRMs' reports
    online = ["esup-proxy-1", "esup-proxy-2"]
    started = { esup-proxy-1 = ["vip", "proxy", "tls"] }
    failed = { esup-proxy-1 = ["proxy"] }   # also starting, stopping, unmanaged
    quorum = false                # optional (default true): this partition has no quorum
    unclean = ["esup-proxy-2"]    # optional: lost nodes not fenced; their `started` entries block

Unknown keys in the case's own tables are errors: a typo must not silently
change what a golden case tests.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heartbeat.config.loader import load_dict
from heartbeat.errors import ConfigError
from heartbeat.model import Cib, ClusterStatus, FailRecord, MoveConstraint, ResourceState, ResourceStatus

CASE_TABLES = ("case", "meta", "cib", "status")
CLUSTER_TABLES = ("cluster", "node", "resource", "group", "constraint")
CASE_KEYS = {"description", "now", "base"}
CIB_KEYS = {"standby", "maintenance", "unmanaged", "moves", "failures"}
MOVE_KEYS = {"resource", "node", "expires"}
FAILURE_KEYS = {"resource", "node", "count", "last_failure", "rc", "hard", "reason"}
STATE_KEYS = {"started": ResourceState.STARTED, "starting": ResourceState.STARTING,
              "stopping": ResourceState.STOPPING, "failed": ResourceState.FAILED,
              "unmanaged": ResourceState.UNMANAGED}
FAILED_RC = 1  # OCF_ERR_GENERIC: what a failed monitor usually returns


class CaseError(ValueError):
    """A case file that cannot be read or does not make sense."""


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    cib: Cib
    status: ClusterStatus
    now: float


def load_case(path: str | Path) -> Case:
    path = Path(path)
    doc = _read(path)
    case = _table(doc, "case", path)
    _only(case, CASE_KEYS, f"{path}: [case]")
    if "base" in case:
        doc = _merge(_read(path.parent / str(case["base"])), doc)
    for rid, meta in _table(doc, "meta", path).items():
        _patch_resource(doc, rid, meta, path)
    cluster = {key: value for key, value in doc.items() if key in CLUSTER_TABLES}
    unknown = set(doc) - set(CLUSTER_TABLES) - set(CASE_TABLES)
    if unknown:
        raise CaseError(f"{path}: unknown table(s): {', '.join(sorted(unknown))}")
    try:
        config = load_dict(cluster, source=str(path))
    except ConfigError as exc:
        raise CaseError(f"{path}: {exc}") from None
    cib = _cib(_table(doc, "cib", path), config, path)
    status = _status(_table(doc, "status", path), path)
    return Case(name=path.stem, description=str(case.get("description", "")), cib=cib, status=status,
                now=float(case.get("now", 0.0)))


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CaseError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(f"{path}: {exc}") from None


def _merge(base: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    merged = {key: value for key, value in base.items() if key in CLUSTER_TABLES}
    for key, value in case.items():
        if key == "cluster":
            merged["cluster"] = {**base.get("cluster", {}), **value}
        else:
            merged[key] = value
    return merged


def _patch_resource(doc: dict[str, Any], rid: str, meta: Any, path: Path) -> None:
    for res in doc.get("resource", ()):
        if isinstance(res, dict) and res.get("id") == rid and isinstance(meta, dict):
            res.update(meta)
            return
    raise CaseError(f"{path}: [meta.{rid}]: no resource {rid!r}")


def _table(doc: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise CaseError(f"{path}: [{key}] must be a table")
    return value


def _only(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise CaseError(f"{where}: unknown key(s): {', '.join(sorted(unknown))}")


def _cib(table: dict[str, Any], config: Any, path: Path) -> Cib:
    where = f"{path}: [cib]"
    _only(table, CIB_KEYS, where)
    moves = []
    for item in table.get("moves", ()):
        _only(item, MOVE_KEYS, f"{where}.moves")
        expires = item.get("expires")
        moves.append(MoveConstraint(str(item["resource"]), str(item["node"]),
                                    None if expires is None else float(expires)))
    failures = []
    for item in table.get("failures", ()):
        _only(item, FAILURE_KEYS, f"{where}.failures")
        try:
            failures.append(FailRecord(resource=str(item["resource"]), node=str(item["node"]),
                                       count=int(item["count"]), last_failure=float(item["last_failure"]),
                                       last_rc=int(item.get("rc", FAILED_RC)), last_reason=str(item.get("reason", "")),
                                       hard=bool(item.get("hard", False))))
        except KeyError as exc:
            raise CaseError(f"{where}.failures: missing {exc.args[0]!r}") from None
    return Cib(config=config, standby=frozenset(table.get("standby", ())), moves=tuple(moves),
               failures=tuple(failures), maintenance=bool(table.get("maintenance", False)),
               unmanaged=frozenset(table.get("unmanaged", ())))


def _status(table: dict[str, Any], path: Path) -> ClusterStatus:
    where = f"{path}: [status]"
    _only(table, {"online", "quorum", "unclean", *STATE_KEYS}, where)
    entries = []
    for key, state in STATE_KEYS.items():
        for node, resources in table.get(key, {}).items():
            for rid in resources:
                rc = FAILED_RC if state == ResourceState.FAILED else 0
                entries.append(ResourceStatus(resource=rid, node=node, state=state, rc=rc))
    return ClusterStatus(online=frozenset(table.get("online", ())), resources=tuple(entries),
                         quorum=bool(table.get("quorum", True)), unclean=frozenset(table.get("unclean", ())))
