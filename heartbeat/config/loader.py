"""The cluster file loader: TOML -> a validated `heartbeat.model.ClusterConfig`.

Every value is checked against its declaration in schema.py (walk.py); then
come the rules that span several tables: Heartbeat's timing rules (deadtime
more than 2 x keepalive, initdead at least deadtime, warntime between
keepalive and deadtime), 2 to 16 nodes with unique names, ids and addresses,
one namespace for resource and group ids, a resource in at most one group,
and constraints and groups that name things which exist. Every problem is
collected with its key path (`constraint[0].node: no node named "esup-proxy3"
(did you mean "esup-proxy-3"?)`) and all are raised at once in one
ConfigError, so `heartbeat check` shows the whole list in one run.

The auth key file is not read here (membership reads it when it starts);
`warnings_for` only looks at whether it exists and at its mode.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from typing import Any

from gsuite.config_types import did_you_mean, show
from gsuite.durations import format_duration
from gsuite.snmp_config import SnmpConfig, parse_snmp
from gsuite import config_load
from heartbeat.config.schema import (
    CLUSTER,
    DEFAULT_OP_TIMEOUT,
    FENCING,
    MAX_NODES,
    MIN_NODES,
    MONITOR,
    TOP_LEVEL,
)
from heartbeat.config.walk import Walker
from heartbeat.errors import ConfigError
from heartbeat.model import (
    INFINITY,
    ClusterConfig,
    ColocationConstraint,
    FencingConfig,
    Constraint,
    GroupConfig,
    LocationConstraint,
    NodeConfig,
    Operation,
    OrderConstraint,
    ResourceConfig,
)

INITDEAD_FACTOR = 3  # default initdead = 3 x deadtime: the model's 5s/15s pair; Heartbeat asks for >= 2x
KEY_FILE_PRIVATE_BITS = 0o077  # any group/other permission on the key file (Heartbeat wants 0600)
_PATH_HEAD_RE = re.compile(r"([A-Za-z_]+)(?:\[(\d+)\])?")
_TOP_KEYS = TOP_LEVEL.keys()


def load_file(path: str) -> ClusterConfig:
    """Load and validate a cluster file; raise ConfigError listing every problem."""
    return load_string(config_load.file_text(path, ConfigError), source=path)


def load_string(text: str, source: str = "<string>") -> ClusterConfig:
    """Load TOML text (`source` names it in messages and in the config)."""
    data = config_load.document(text, source, ConfigError)
    return load_dict(data, source=source)


def load_dict(data: dict[str, Any], source: str = "<dict>") -> ClusterConfig:
    """Validate an already parsed TOML document."""
    if not isinstance(data, dict):
        raise ConfigError([(source, f"expected a TOML document (a table), got {type(data).__name__}")])
    return _Loader(source).load(data)


def summary(config: ClusterConfig) -> str:
    """A one-line census: 'cluster "esup-proxy": 2 nodes, 3 resources, 1 group, 1 constraint'."""
    counts = [(len(config.nodes), "node"), (len(config.resources), "resource"),
              (len(config.groups), "group"), (len(config.constraints), "constraint")]
    return f"cluster {show(config.name)}: " + ", ".join(f"{n} {word}{'' if n == 1 else 's'}" for n, word in counts)


def warnings_for(config: ClusterConfig) -> list[str]:
    """Non-fatal findings, as `path: reason` lines: the auth key file is
    missing, not a file, or open to group or others. The daemon reads the
    file when it starts; `heartbeat check` only warns, since the file may be
    installed after the configuration."""
    path = config.auth_key_file
    where = "cluster.auth_key_file"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return [f"{where}: {show(path)} does not exist: heartbeat cannot start without its shared key"]
    except OSError as exc:
        return [f"{where}: cannot look at {show(path)}: {exc.strerror or exc}"]
    if not stat.S_ISREG(info.st_mode):
        return [f"{where}: {show(path)} is not a regular file"]
    mode = stat.S_IMODE(info.st_mode)
    if mode & KEY_FILE_PRIVATE_BITS:
        return [f"{where}: {show(path)} is open to group or others (mode {mode:04o}): "
                "use mode 0600, as Heartbeat requires for its keys"]
    return []



def _file_order(problem: tuple[str, str]) -> tuple[int, int]:
    """Sort key grouping problems by table, then by array index, as the file
    reads; the sort is stable, so one item's problems keep their order."""
    match = _PATH_HEAD_RE.match(problem[0])
    if match is None or match.group(1) not in _TOP_KEYS:
        return (len(_TOP_KEYS), 0)
    return (_TOP_KEYS.index(match.group(1)), int(match.group(2) or 0))


def _raw_items(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The tables of an array as written, valid or not (for name lookups)."""
    items = data.get(key)
    if not isinstance(items, (list, tuple)):
        return []
    return [item for item in items if isinstance(item, dict)]


def _raw_names(data: dict[str, Any], table: str, key: str) -> list[str]:
    """Every string written as `key` in the `table` array. References are
    checked against these, so one bad resource does not make every
    reference to it an error too."""
    return [item[key] for item in _raw_items(data, table) if isinstance(item.get(key), str)]


class _Loader:
    """One validation run: accumulates problems instead of stopping at the first."""

    def __init__(self, source: str):
        self.source = source
        self.walker = Walker()
        self.problem = self.walker.problem

    def failed(self, path: str) -> bool:
        return self.walker.has_problem_under(path)

    def load(self, data: dict[str, Any]) -> ClusterConfig:
        doc = self.walker.table(data, TOP_LEVEL, "") or {}
        self.node_names = _raw_names(data, "node", "name")
        self.resource_ids = _raw_names(data, "resource", "id")
        self.group_ids = _raw_names(data, "group", "id")

        cluster = self.build_cluster(doc.get("cluster"))
        numbered_nodes = self.build_nodes(doc.get("node"), "node" in data)
        self.check_links(numbered_nodes, cluster.get("multicast"))
        nodes = [node for _, node in numbered_nodes]
        resources = self.build_resources(doc.get("resource") or [])
        groups = self.build_groups(doc.get("group") or [])
        self.check_id_namespace(data)
        constraints = self.build_constraints(doc.get("constraint") or [])
        self.check_clones(resources, groups, constraints)
        snmp = self.build_snmp(doc["snmp"]) if "snmp" in doc else None
        if self.walker.problems:
            raise ConfigError(sorted(self.walker.problems, key=_file_order))
        return ClusterConfig(nodes=tuple(nodes), resources=tuple(resources), groups=tuple(groups),
                             constraints=tuple(constraints), source=self.source, snmp=snmp, **cluster)

    def build_snmp(self, raw: dict[str, Any]) -> SnmpConfig | None:
        """[snmp]: checked by gsuite.snmp_config, which gproxy's loader shares."""
        config, problems = parse_snmp(raw, "snmp")
        for path, reason in problems:
            self.problem(path, reason)
        return config

    # --- [cluster] ---------------------------------------------------------------

    def build_cluster(self, values: dict[str, Any] | None) -> dict[str, Any]:
        """ClusterConfig's cluster-wide fields, with the computed defaults."""
        values = values or {}
        fields = {s.key: values.get(s.key, s.default) for s in CLUSTER.settings}
        keepalive, deadtime = fields["keepalive"], fields["deadtime"]
        fields["warntime"] = values.get("warntime", (deadtime + 1) // 2)  # rounded up: stays above keepalive
        fields["initdead"] = values.get("initdead", INITDEAD_FACTOR * deadtime)
        self.check_timing(values, keepalive, deadtime, fields["warntime"], fields["initdead"])
        if "resource_stickiness" not in values:
            fields["resource_stickiness"] = 0 if fields["auto_failback"] else INFINITY
        if fields["failure_timeout"] == 0:
            fields["failure_timeout"] = None  # Pacemaker's failure-timeout 0: never expire
        fields["ping"] = tuple(p for p in fields["ping"] or () if p is not None)
        fencing = fields["fencing"]
        fields["fencing"] = None
        if isinstance(fencing, dict) and fencing.get("command"):
            fields["fencing"] = FencingConfig(command=tuple(fencing["command"]),
                                              timeout=fencing.get("timeout", FENCING["timeout"].default))
        return fields

    def check_timing(self, values: dict[str, Any], keepalive: int, deadtime: int, warntime: int,
                     initdead: int) -> None:
        """Heartbeat's rules between the timers (its config.c checks the first
        two). A rule is skipped when one of its timers did not parse."""
        ok = {key: not self.failed(f"cluster.{key}") for key in ("keepalive", "deadtime", "warntime", "initdead")}

        def shown(key: str, millis: int) -> str:
            return format_duration(millis) + ("" if key in values else " (the default)")

        if not (ok["keepalive"] and ok["deadtime"]):
            return
        if deadtime <= 2 * keepalive:
            self.problem("cluster.deadtime", f"{shown('deadtime', deadtime)} is too small compared to keepalive "
                         f"{shown('keepalive', keepalive)}: it must be more than 2 × keepalive "
                         f"({format_duration(2 * keepalive)})")
            return  # the other rules would only repeat that the timers disagree
        if "initdead" in values and ok["initdead"] and initdead < deadtime:
            self.problem("cluster.initdead", f"{format_duration(initdead)} is smaller than deadtime "
                         f"{shown('deadtime', deadtime)}: right after start-up a node waits at least deadtime "
                         "before declaring its peers dead")
        if "warntime" in values and ok["warntime"]:
            if warntime <= keepalive:
                self.problem("cluster.warntime", f"{format_duration(warntime)} must be more than keepalive "
                             f"{shown('keepalive', keepalive)}: a heartbeat is only late after keepalive")
            elif warntime >= deadtime:
                self.problem("cluster.warntime", f"{format_duration(warntime)} must be less than deadtime "
                             f"{shown('deadtime', deadtime)}: a late heartbeat is reported before its node "
                             "is declared dead")

    # --- [[node]] ------------------------------------------------------------------

    def build_nodes(self, items: Any, written: bool) -> list[tuple[int, NodeConfig]]:
        """The valid nodes, each with its index in the file."""
        if not isinstance(items, list):
            return []  # missing or not an array: reported already
        if written and not MIN_NODES <= len(items) <= MAX_NODES:
            self.problem("node", f"a cluster has {MIN_NODES} to {MAX_NODES} nodes, this one has {len(items)}")
        nodes: list[tuple[int, NodeConfig]] = []
        names: dict[str, str] = {}
        ids: dict[int, tuple[str, bool]] = {}
        for index, values in enumerate(items):
            if values is None:
                continue
            path = f"node[{index}]"
            name = values.get("name")
            if name is not None:
                if name in names:
                    self.problem(f"{path}.name", f"duplicate node name {show(name)} (also {names[name]})")
                else:
                    names[name] = path
            node_id, explicit = values.get("id", index + 1), "id" in values
            if not self.failed(f"{path}.id"):
                if node_id in ids:
                    other, other_explicit = ids[node_id]
                    how = "" if other_explicit else " by its position"
                    self.problem(f"{path}.id", f"duplicate node id {node_id}: {other} has it{how}"
                                 + ("" if explicit else " (a node without `id` gets its 1-based position)"))
                else:
                    ids[node_id] = (path, explicit)
            addresses = values.get("addresses")
            if name is not None and addresses is not None and None not in addresses:
                nodes.append((index, NodeConfig(name=name, addresses=tuple(addresses), id=node_id,
                                                votes=values.get("votes", 1))))
        return nodes

    def check_links(self, nodes: list[tuple[int, NodeConfig]], multicast: str | None) -> None:
        """Addresses are unique, and address N of every node is on link N, so
        all of one family (the multicast group's, if any)."""
        owners: dict[str, str] = {}
        families: dict[int, tuple[int, str]] = {}
        for index, node in nodes:
            for link, address in enumerate(node.addresses):
                path = f"node[{index}].addresses[{link}]"
                if address in owners:
                    self.problem(path, f"{address} is also {owners[address]}: every node needs its own addresses")
                owners.setdefault(address, path)
                host = address.rsplit(":", 1)[0] if address.count(":") == 1 else address
                version = ipaddress.ip_address(host).version
                first = families.setdefault(link, (version, path))
                if first[0] != version:
                    self.problem(path, f"{address} is IPv{version} but {first[1]} is IPv{first[0]}: "
                                 f"address {link} of every node is on link {link}, so all of one family")
        if multicast is not None:
            group_family = ipaddress.ip_address(multicast).version
            for link_family, path in families.values():
                if link_family != group_family:
                    self.problem("cluster.multicast", f"an IPv{group_family} group cannot reach IPv{link_family} "
                                 f"links ({path} is IPv{link_family})")
                    break

    # --- [[resource]] and [[group]] -------------------------------------------------------

    def build_resources(self, items: list[dict[str, Any] | None]) -> list[ResourceConfig]:
        resources: list[ResourceConfig] = []
        for values in items:
            if values is None or "id" not in values or "agent" not in values:
                continue
            monitor = values.get("monitor")
            start = values.get("start") or {}
            stop = values.get("stop") or {}
            failure_timeout = values.get("failure_timeout")
            resources.append(ResourceConfig(
                id=values["id"],
                agent=values["agent"],
                params=values.get("params", ()),
                monitor=None if monitor is None or "interval" not in monitor else Operation(
                    "monitor",
                    interval=monitor["interval"],
                    timeout=monitor.get("timeout", MONITOR["timeout"].default),
                    on_fail=monitor.get("on_fail", MONITOR["on_fail"].default),
                ),
                start=Operation("start", timeout=start.get("timeout", DEFAULT_OP_TIMEOUT)),
                stop=Operation("stop", timeout=stop.get("timeout", DEFAULT_OP_TIMEOUT)),
                resource_stickiness=values.get("resource_stickiness"),
                migration_threshold=values.get("migration_threshold"),
                failure_timeout=None if not failure_timeout else failure_timeout,
                target_role=values.get("target_role", "started"),
                clone_max=values.get("clone_max"),
                managed=values.get("managed", True),
                make_before_break=values.get("make_before_break", False),
            ))
        return resources

    def build_groups(self, items: list[dict[str, Any] | None]) -> list[GroupConfig]:
        groups: list[GroupConfig] = []
        member_of: dict[str, tuple[str, str]] = {}  # resource id -> (group id, path of its mention)
        for index, values in enumerate(items):
            if values is None:
                continue
            members = values.get("resources")
            if members is None:
                continue
            gid = values.get("id", "")
            for position, rid in enumerate(members):
                path = f"group[{index}].resources[{position}]"
                if rid is None:
                    continue
                if rid in self.group_ids:
                    self.problem(path, f"{show(rid)} is a group: a group holds resources, not groups")
                elif rid not in self.resource_ids:
                    self.problem(path, f"no resource named {show(rid)}" + did_you_mean(rid, self.resource_ids))
                elif rid in member_of:
                    other_group, other_path = member_of[rid]
                    self.problem(path, f"{show(rid)} is already in group {show(other_group)} ({other_path}): "
                                 "a resource belongs to at most one group")
                else:
                    member_of[rid] = (gid, path)
            if "id" in values and None not in members:
                groups.append(GroupConfig(id=gid, resources=tuple(members), clone_max=values.get("clone_max"),
                                          managed=values.get("managed", True)))
        return groups

    def check_id_namespace(self, data: dict[str, Any]) -> None:
        """Resources and groups share one namespace of ids, as in Pacemaker's CIB."""
        seen: dict[str, str] = {}
        for table in ("resource", "group"):
            raw = data.get(table)
            for index, item in enumerate(raw if isinstance(raw, (list, tuple)) else []):
                rid = item.get("id") if isinstance(item, dict) else None
                if not isinstance(rid, str):
                    continue
                path = f"{table}[{index}].id"
                if rid in seen:
                    self.problem(path, f"duplicate id {show(rid)}: {seen[rid]} has it already "
                                 "(resources and groups share one set of ids)")
                else:
                    seen[rid] = path

    def check_clones(self, resources: list[ResourceConfig], groups: list[GroupConfig],
                     constraints: list[Constraint]) -> None:
        """A group member is cloned with its group. Besides location, a clone
        (or a member of a cloned group) may be `with` of a colocation and
        `first` of an order, and a whole clone `then` of an order after a
        resource that does not itself follow that clone (the policy's
        clone_links.py); anything else naming a clone is refused, naming the key."""
        cloned: set[str] = set()
        for index, res in enumerate(resources):
            if res.clone_max is None:
                continue
            cloned.add(res.id)
            for group in groups:
                if res.id in group.resources:
                    self.problem(f"resource[{index}].clone_max", f"{show(res.id)} is in group {show(group.id)}: "
                                 "set clone_max on the group")
        for group in groups:
            if group.clone_max is not None:
                cloned.update({group.id, *group.resources})
        for index, constraint in enumerate(constraints):
            path = f"constraint[{index}]"
            if isinstance(constraint, ColocationConstraint) and constraint.resource in cloned:
                other = "another clone" if constraint.with_resource in cloned else "a resource"
                self.problem(f"{path}.resource", f"{show(constraint.resource)} is a clone: colocating a clone "
                             f"with {other} is not supported (a clone is placed before everything else); "
                             "colocate the other resource with the clone instead")
            elif isinstance(constraint, OrderConstraint) and constraint.then in cloned:
                self.check_order_before_clone(constraints, constraint, path, cloned, groups)

    def check_order_before_clone(self, constraints: list[Constraint], order: OrderConstraint, path: str,
                                 cloned: set[str], groups: list[GroupConfig]) -> None:
        """`then` is a clone: `first` must be a resource or group that is not a
        clone, `then` the whole clone, and `first` must not follow that clone
        (it would wait for itself)."""
        then, first = order.then, order.first
        clone_group = next((g for g in groups if then in g.resources and g.clone_max is not None), None)
        if first in cloned:
            self.problem(f"{path}.then", f"{show(then)} is a clone: ordering a clone after another clone is "
                         "not supported (copies are ordered with their own group only)")
        elif clone_group is not None:
            self.problem(f"{path}.then", f"{show(then)} is a member of the cloned group {show(clone_group.id)}: "
                         f"order the whole clone ({show(clone_group.id)}) after {show(first)}")
        else:
            # first's whole group: its members start in order, so one that
            # follows the clone makes the others wait for it too
            group = next((g for g in groups if g.id == first or first in g.resources), None)
            own = {first} if group is None else {group.id, *group.resources}
            clone = {then, *(m for g in groups if g.id == then for m in g.resources)}
            for index, other in enumerate(constraints):
                follows = ((isinstance(other, ColocationConstraint) and other.resource in own
                            and other.with_resource in clone)
                           or (isinstance(other, OrderConstraint) and other.then in own and other.first in clone))
                if follows:
                    self.problem(f"{path}.then", f"{show(then)} cannot be ordered after {show(first)}: "
                                 f"{show(first)} already follows {show(then)} (constraint[{index}]), "
                                 "so each would wait for the other")
                    return

    # --- [[constraint]] ----------------------------------------------------------------

    def check_reference(self, path: str, name: str | None) -> None:
        if name is None:
            return
        known = self.resource_ids + self.group_ids
        if name not in known:
            self.problem(path, f"no resource or group named {show(name)}" + did_you_mean(name, known))

    def build_constraints(self, items: list[tuple[str, dict[str, Any]] | None]) -> list[Constraint]:
        constraints: list[Constraint] = []
        ids: dict[str, str] = {}
        taken = set(self.resource_ids + self.group_ids)
        for index, item in enumerate(items):
            if item is None:
                continue
            kind, values = item
            path = f"constraint[{index}]"
            constraint = self.build_constraint(kind, values, path)
            if constraint is None:
                continue
            id_path = f"{path}.id"
            explicit = "" if "id" in values else " (the default id: set `id` to tell them apart)"
            if constraint.id in ids:
                self.problem(id_path, f"duplicate constraint id {show(constraint.id)}: {ids[constraint.id]} "
                             f"has it already{explicit}")
            elif constraint.id in taken:
                self.problem(id_path, f"{show(constraint.id)} is already a resource or group id{explicit}")
            else:
                ids[constraint.id] = path
                constraints.append(constraint)
        return constraints

    def build_constraint(self, kind: str, values: dict[str, Any], path: str) -> Constraint | None:
        """One constraint with its references checked; None when it cannot be built."""
        if kind == "location":
            self.check_reference(f"{path}.resource", values.get("resource"))
            node = values.get("node")
            if node is not None and node not in self.node_names:
                self.problem(f"{path}.node", f"no node named {show(node)}" + did_you_mean(node, self.node_names))
            if not {"resource", "node", "score"} <= values.keys():
                return None
            return LocationConstraint(
                id=values.get("id", f"location-{values['resource']}-{node}"),
                resource=values["resource"], node=values["node"], score=values["score"])
        if kind == "colocation":
            self.check_reference(f"{path}.resource", values.get("resource"))
            self.check_reference(f"{path}.with", values.get("with"))
            if not {"resource", "with"} <= values.keys():
                return None
            if values["resource"] == values["with"]:
                self.problem(f"{path}.with", f"{show(values['with'])} cannot be colocated with itself")
                return None
            return ColocationConstraint(
                id=values.get("id", f"colocation-{values['resource']}-{values['with']}"),
                resource=values["resource"], with_resource=values["with"], score=values.get("score", INFINITY))
        self.check_reference(f"{path}.first", values.get("first"))
        self.check_reference(f"{path}.then", values.get("then"))
        if not {"first", "then"} <= values.keys():
            return None
        if values["first"] == values["then"]:
            self.problem(f"{path}.then", f"{show(values['then'])} cannot be ordered after itself")
            return None
        return OrderConstraint(
            id=values.get("id", f"order-{values['first']}-{values['then']}"),
            first=values["first"], then=values["then"],
            kind=values.get("order_kind", "mandatory"), symmetrical=values.get("symmetrical", True))
