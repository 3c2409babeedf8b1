"""The cluster file's schema: every TOML key declared once.

Each `Setting` carries its key, type, default, documentation and the
Heartbeat ha.cf directive or Pacemaker option it stands for. The loader
validates against these declarations and docs.py renders
docs/heartbeat-configuration.md from them, so the two never disagree
(gunicorn's `Setting` classes are the model, as in gproxy's schema).
Defaults agree with heartbeat.model's; a default the loader computes from
other keys is `None` here with its rule in `default_doc`. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from gsuite import config_schema as shared
from gsuite.config_schema import SettingIndex
from gsuite.config_types import Bool, Choice, Duration, Int, Str, StrList, ValueType
from gsuite.snmp_config import SnmpTable
from heartbeat.config.types import (
    PARAM_NAME_PATTERN,
    AgentType,
    ListOf,
    MappingOf,
    MulticastAddress,
    NodeAddress,
    ParamValue,
    Score,
    Table,
    TableList,
    TaggedTableList,
)
from heartbeat.model import INFINITY

MAX_PORT = 65535
MIN_NODES = 2  # a failover cluster needs somewhere to fail over to
MAX_NODES = 16  # the bound (Heartbeat's own MAXNODE is far higher)
MAX_NODE_ID = 2**32 - 1  # Pacemaker and Corosync node ids are unsigned 32-bit, 0 meaning unset
DEFAULT_OP_TIMEOUT = 20_000  # Pacemaker's default operation timeout, in ms

# Pacemaker ids are XML ids; ':' is kept out because Pacemaker reserves it for clone instances.
ID_PATTERN = r"[A-Za-z_][A-Za-z0-9_.-]*"
ID_HINT = " (a letter or '_', then letters, digits, '_', '.' and '-')"
# Node names are host names (`uname -n`), as in ha.cf's `node` lines.
NODE_NAME_PATTERN = r"[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?)*"
NODE_NAME_HINT = " (a host name: letters, digits, '-', '_' and dots)"

ON_FAIL = ("restart", "ignore", "block", "stop", "standby", "fence")
TARGET_ROLES = ("started", "stopped")
CONSTRAINT_KINDS = ("location", "colocation", "order")
ORDER_KINDS = ("mandatory", "optional")
NO_QUORUM_POLICIES = ("stop", "freeze", "ignore")
MAX_VOTES = 255  # Corosync's quorum_votes is one byte's worth in practice
DEFAULT_FENCING_TIMEOUT = 20_000


@dataclass(frozen=True)
class Setting(shared.Setting):
    """One TOML key. `hacf` is the ha.cf directive (or file) it replaces and
    `pacemaker` the CIB option or attribute, each as that tool spells it."""

    type: ValueType | Table | TableList | TaggedTableList | ListOf | MappingOf
    default_doc: str | None = None  # a default the loader computes, in words
    hacf: str | None = None
    pacemaker: str | None = None


@dataclass(frozen=True)
class Section(SettingIndex[Setting]):
    """A table of settings. `title` is how the docs name it, `anchor` its
    link, `noun` how error messages name its tables ("every [[node]]")."""

    anchor: str
    title: str
    noun: str
    doc: str
    settings: tuple[Setting, ...]


RESOURCE_ID = Str("id", ID_PATTERN, ID_HINT)
NODE_NAME = Str("node name", NODE_NAME_PATTERN, NODE_NAME_HINT)
PATH = Str("path")

FENCING = Section("fencing", "fencing", "the fencing table", (
    "The fencing hook: `{node}` in the command stands for the node to fence; exit status 0 within "
    "`timeout` means the node is fenced and its resources may be taken."), (
    Setting("command", StrList(), "The command and its arguments (not run by a shell).", required=True,
            pacemaker="stonith primitive"),
    Setting("timeout", Duration(), "Most time the command may take; then fencing has failed.",
            DEFAULT_FENCING_TIMEOUT, pacemaker="stonith-timeout"),
))

# --- [cluster] ------------------------------------------------------------------

CLUSTER = Section("cluster", "[cluster]", "[cluster]", "Cluster-wide settings: membership timing, transport, defaults.", (
    Setting("name", Str("cluster name", r"[A-Za-z0-9_.-]+", " (letters, digits, '_', '.' and '-')"),
            "Name of the cluster; packets of another cluster are dropped.", required=True,
            hacf="cluster", pacemaker="cluster-name"),
    Setting("keepalive", Duration(), "Interval between two heartbeats sent to every peer.", 1000,
            hacf="keepalive"),
    Setting("warntime", Duration(), "A heartbeat later than this is logged as late (and trapped). "
            "More than `keepalive`, less than `deadtime`.", default_doc="`deadtime` / 2", hacf="warntime"),
    Setting("deadtime", Duration(), "Silence after which a node is declared dead. "
            "More than 2 × `keepalive`.", 5000, hacf="deadtime"),
    Setting("initdead", Duration(), "`deadtime` right after start-up, while the network settles. "
            "At least `deadtime`.", default_doc="3 × `deadtime`", hacf="initdead"),
    Setting("port", Int(1, MAX_PORT), "UDP port of the heartbeats (unicast and multicast).", 694,
            hacf="udpport"),
    Setting("multicast", MulticastAddress(), "Send heartbeats to this group on every link instead of "
            "unicast to every peer address.", hacf="mcast"),
    Setting("auth_key_file", PATH, "File with the shared keys that authenticate every packet "
            "(mode 0600; read by the daemon, `heartbeat check` only looks at its mode).",
            "/etc/heartbeat/authkey", hacf="/etc/ha.d/authkeys"),
    Setting("auto_failback", Bool(), "Resources go back to their preferred node when it returns. "
            "Shorthand for `resource_stickiness`: true = 0, false = INFINITY.", True,
            hacf="auto_failback", pacemaker="resource-stickiness"),
    Setting("resource_stickiness", Score(), "Default score for staying on the current node; "
            "overrides `auto_failback`.", default_doc="0 if `auto_failback`, else INFINITY",
            pacemaker="rsc_defaults resource-stickiness"),
    Setting("migration_threshold", Int(0), "Default number of failures on a node before a resource "
            "leaves it; 0 never moves a resource for failures.", 0,
            pacemaker="rsc_defaults migration-threshold"),
    Setting("failure_timeout", Duration(minimum=0), "Default time without a new failure after which a "
            "resource's failures are forgotten; unset or 0: never.", pacemaker="rsc_defaults failure-timeout"),
    Setting("status_socket", PATH, "Unix socket answering status and commands in JSON "
            "(`heartbeat status`, the checks).", "/run/heartbeat/status.sock"),
    Setting("state_dir", PATH, "Directory where the node keeps its copy of the CIB.", "/var/lib/heartbeat",
            pacemaker="/var/lib/pacemaker/cib"),
    Setting("no_quorum_policy", Choice(NO_QUORUM_POLICIES), "What a partition without quorum (half of the "
            "configured votes or less, clusters of 3 or more nodes) does: `stop` its resources, `freeze` "
            "(keep what runs, start nothing) or `ignore` quorum.", "stop", pacemaker="no-quorum-policy"),
    Setting("ping", ListOf(NodeAddress(), "ping target"), "Tie-breaker of a two-node cluster: when the peer "
            "is lost, the node that reaches more of these targets keeps or takes the resources (equal: the "
            "preferred node). `IP` is probed with ICMP (`ping -c1 -W1`), `IP:PORT` with a TCP connect.", (),
            hacf="ping", pacemaker="ocf:pacemaker:ping"),
    Setting("fencing", Table(FENCING), "A command run before resources are taken from a node nobody can see; "
            "its failure blocks the takeover.", hacf="stonith_host", pacemaker="stonith-enabled"),
))

# --- [[node]] --------------------------------------------------------------------

NODE = Section("node", "[[node]]", "every [[node]]", (
    "A cluster member, named as `uname -n` names it. Address number N of every node is on link N; "
    "a node is alive while any of its links carries its heartbeats."), (
    Setting("name", NODE_NAME, "Node name, unique in the cluster.", required=True, hacf="node"),
    Setting("addresses", ListOf(NodeAddress(), "IP address"), "Its addresses, one per link (redundant links).",
            required=True, hacf="ucast DEV ADDRESS"),
    Setting("id", Int(1, MAX_NODE_ID), "Node id, unique in the cluster.", default_doc="its 1-based position",
            pacemaker="node id"),
    Setting("votes", Int(0, MAX_VOTES), "Its quorum votes: a partition has quorum with more than half "
            "of all nodes' votes.", 1, pacemaker="corosync quorum_votes"),
))

# --- [[resource]] and its operations -----------------------------------------------

MONITOR = Section("monitor", "monitor", "a monitor table", "The recurring monitor operation of a resource.", (
    Setting("interval", Duration(), "Time between two monitors.", required=True,
            pacemaker="op monitor interval"),
    Setting("timeout", Duration(), "Most time one monitor may take; then it has failed.", DEFAULT_OP_TIMEOUT,
            pacemaker="op monitor timeout"),
    Setting("on_fail", Choice(ON_FAIL), "What a failed monitor does: `restart` (then move after "
            "`migration_threshold`), `ignore`, `block`, `stop`, `standby` the node, `fence` it.", "restart",
            pacemaker="op monitor on-fail"),
))

START = Section("start", "start", "a start table", "The start operation of a resource.", (
    Setting("timeout", Duration(), "Most time a start may take; then it has failed.", DEFAULT_OP_TIMEOUT,
            pacemaker="op start timeout"),
))

STOP = Section("stop", "stop", "a stop table", "The stop operation of a resource.", (
    Setting("timeout", Duration(), "Most time a stop may take; then it has failed.", DEFAULT_OP_TIMEOUT,
            pacemaker="op stop timeout"),
))

RESOURCE = Section("resource", "[[resource]]", "every [[resource]]", (
    "A service the cluster keeps running on one node, through its agent."), (
    Setting("id", RESOURCE_ID, "Resource id, unique among resources and groups.", required=True,
            pacemaker="primitive id"),
    Setting("agent", AgentType(), 'The agent: "ocf:PROVIDER:TYPE" runs $OCF_ROOT/resource.d/PROVIDER/TYPE, '
            '"lsb:NAME" runs /etc/init.d/NAME.', required=True, pacemaker="primitive class:provider:type"),
    Setting("params", MappingOf(PARAM_NAME_PATTERN, " (letters, digits and '_', not starting with a digit)",
                                ParamValue()),
            "Agent parameters, passed as OCF_RESKEY_name=value.", (), pacemaker="instance_attributes"),
    Setting("monitor", Table(MONITOR), "The recurring monitor; unset, the resource is never monitored.",
            pacemaker="op monitor"),
    Setting("start", Table(START), "The start operation.", default_doc="timeout 20s", pacemaker="op start"),
    Setting("stop", Table(STOP), "The stop operation.", default_doc="timeout 20s", pacemaker="op stop"),
    Setting("resource_stickiness", Score(), "Score for staying where it runs.",
            default_doc="`cluster.resource_stickiness`", pacemaker="meta resource-stickiness"),
    Setting("migration_threshold", Int(0), "Failures on a node before it leaves that node; 0: never.",
            default_doc="`cluster.migration_threshold`", pacemaker="meta migration-threshold"),
    Setting("failure_timeout", Duration(minimum=0), "Time without a new failure after which its failures "
            "are forgotten; 0: never.", default_doc="`cluster.failure_timeout`",
            pacemaker="meta failure-timeout"),
    Setting("target_role", Choice(TARGET_ROLES), "`stopped` keeps it stopped everywhere.", "started",
            pacemaker="meta target-role"),
    Setting("clone_max", Int(0, MAX_NODES), "Make it a clone: run it on this many nodes at once, at most one "
            "copy per node (0: on every node). Unset: on one node. For a group member, set it on the group.",
            pacemaker="clone meta clone-max"),
    Setting("make_before_break", Bool(), "When it moves, start it on the new node before stopping it on the "
            "old one (a VIP in front of a cloned service: no request lost). Only for a resource outside groups, "
            "ordered against nothing but clones.", False),
    Setting("managed", Bool(), "`false`: heartbeat never starts, stops or recovers it, keeps monitoring it "
            "and reports its failures (status shows it unmanaged); as `heartbeat unmanage`, but from the file, "
            "so `heartbeat manage` cannot undo it.", True, pacemaker="meta is-managed"),
))

# --- [[group]] ---------------------------------------------------------------------

GROUP = Section("group", "[[group]]", "every [[group]]", (
    "Resources kept together on one node: started in order, stopped in reverse; if one cannot run, "
    "the ones after it stop. Constraints may name the group."), (
    Setting("id", RESOURCE_ID, "Group id, unique among resources and groups.", required=True,
            pacemaker="group id"),
    Setting("resources", ListOf(RESOURCE_ID, "resource id"), "Its resources, in start order; "
            "a resource belongs to at most one group.", required=True, pacemaker="group primitives"),
    Setting("clone_max", Int(0, MAX_NODES), "Clone the whole group: run it on this many nodes at once "
            "(0: on every node). A clone may be named by a location, as `with` of a colocation and in an "
            "order (see kind = \"order\").", pacemaker="clone meta clone-max"),
    Setting("managed", Bool(), "`false`: every member is left alone, as with `managed = false` on each.", True,
            pacemaker="meta is-managed"),
))

# --- [[constraint]] -------------------------------------------------------------------

_KIND = Choice(CONSTRAINT_KINDS)

LOCATION = Section("location", 'kind = "location"', "a location constraint", (
    "Where a resource or group prefers to run: a positive score attracts it to the node, "
    "-INFINITY bans it from there."), (
    Setting("kind", _KIND, "The constraint's kind.", required=True),
    Setting("id", RESOURCE_ID, "Constraint id.", default_doc='`"location-RESOURCE-NODE"`',
            pacemaker="rsc_location id"),
    Setting("resource", RESOURCE_ID, "A resource or group.", required=True, pacemaker="rsc_location rsc"),
    Setting("node", NODE_NAME, "A node.", required=True, pacemaker="rsc_location node"),
    Setting("score", Score(), "Preference for the node.", required=True, pacemaker="rsc_location score"),
))

COLOCATION = Section("colocation", 'kind = "colocation"', "a colocation constraint", (
    "Run `resource` where `with` runs (INFINITY: only there), or never with it (-INFINITY); "
    "finite scores are preferences. `with` is placed first. `with` may be a clone: `resource` then runs "
    "only on (INFINITY), never on (-INFINITY) or preferably on a node where a copy of it runs; "
    "`resource` may not be a clone."), (
    Setting("kind", _KIND, "The constraint's kind.", required=True),
    Setting("id", RESOURCE_ID, "Constraint id.", default_doc='`"colocation-RESOURCE-WITH"`',
            pacemaker="rsc_colocation id"),
    Setting("resource", RESOURCE_ID, "A resource or group.", required=True, pacemaker="rsc_colocation rsc"),
    Setting("with", RESOURCE_ID, "The resource or group it goes with.", required=True,
            pacemaker="rsc_colocation with-rsc"),
    Setting("score", Score(), "How much it wants to be with it.", INFINITY, pacemaker="rsc_colocation score"),
))

ORDER = Section("order", 'kind = "order"', "an order constraint", (
    "Start `first` before `then` (and, if symmetrical, stop `then` before `first`). "
    "Order is not colocation: use both, or a group. `first` may be a clone: `then` starts only if a copy "
    "runs somewhere, after the copy on its own node (else after every copy being started), stops before "
    "that copy stops, and restarts when it restarts. `then` may be a whole clone after a resource or group "
    "that does not follow it: the clone runs only while `first` runs, its copies start after `first` and "
    "restart when it (re)starts or moves."), (
    Setting("kind", _KIND, "The constraint's kind.", required=True),
    Setting("id", RESOURCE_ID, "Constraint id.", default_doc='`"order-FIRST-THEN"`', pacemaker="rsc_order id"),
    Setting("first", RESOURCE_ID, "The resource or group started first.", required=True,
            pacemaker="rsc_order first"),
    Setting("then", RESOURCE_ID, "The resource or group started after it.", required=True,
            pacemaker="rsc_order then"),
    Setting("order_kind", Choice(ORDER_KINDS), "`mandatory`: `then` waits for `first` and stops when it stops; "
            "`optional`: only when both change at once. (`kind` names the constraint's kind.)", "mandatory",
            pacemaker="rsc_order kind"),
    Setting("symmetrical", Bool(), "Stop in the reverse order.", True, pacemaker="rsc_order symmetrical"),
))

CONSTRAINT_SECTIONS = (("location", LOCATION), ("colocation", COLOCATION), ("order", ORDER))

# --- the file ------------------------------------------------------------------------

TOP_LEVEL = Section("file", "the file", "a cluster file", "The tables of a cluster file.", (
    Setting("cluster", Table(CLUSTER), "Cluster-wide settings (ha.cf's directives).", required=True),
    Setting("node", TableList(NODE), f"The members: {MIN_NODES} to {MAX_NODES} nodes.", required=True,
            hacf="node"),
    Setting("resource", TableList(RESOURCE), "The resources.", (), pacemaker="primitive"),
    Setting("group", TableList(GROUP), "Groups of resources.", (), pacemaker="group"),
    Setting("constraint", TaggedTableList("kind", CONSTRAINT_SECTIONS), "Placement and order constraints.",
            (), pacemaker="constraints"),
    Setting("snmp", SnmpTable(), "SNMP traps and a notify command on cluster events: the same table "
            "as gproxy's `[snmp]`, described in [SNMP traps](snmp.md).", pacemaker="alerts"),
))

ALL_SECTIONS = (TOP_LEVEL, CLUSTER, FENCING, NODE, RESOURCE, MONITOR, START, STOP, GROUP, LOCATION, COLOCATION, ORDER)
