"""OCF and LSB return codes, the LSB-to-OCF mapping and the recovery class of
each code (reference cluster.md 2.2 and 2.7).

Pure values and functions: the runner feeds raw exit statuses in, everything
above it (LRM, controller, status socket) sees only `OcfRc` values. No I/O.

Theory of operation
-------------------
An agent's exit status means something only together with the action and
the standard: an LSB `status` exiting 3 is a cleanly stopped service (OCF 7),
an LSB `start` exiting 3 is "unimplemented" (OCF 3). `lsb_to_ocf()` does that
translation once, as Pacemaker's `services__lsb2ocf` does. Then `recovery()`
says how bad an unexpected OCF code is: soft errors are recovered in place or
by moving, hard errors ban the node for that resource, fatal errors stop the
resource everywhere.
"""

from __future__ import annotations

from enum import Enum, IntEnum


class OcfRc(IntEnum):
    """OCF exit codes (resource-agents' ocf-returncodes)."""

    SUCCESS = 0
    ERR_GENERIC = 1
    ERR_ARGS = 2
    ERR_UNIMPLEMENTED = 3
    ERR_PERM = 4
    ERR_INSTALLED = 5
    ERR_CONFIGURED = 6
    NOT_RUNNING = 7
    RUNNING_PROMOTED = 8
    FAILED_PROMOTED = 9
    DEGRADED = 190
    DEGRADED_PROMOTED = 191


class LsbRc(IntEnum):
    """LSB exit codes of every action but `status`."""

    OK = 0
    ERR_GENERIC = 1
    ERR_ARGS = 2
    ERR_UNIMPLEMENTED = 3
    ERR_PERM = 4
    NOT_INSTALLED = 5
    NOT_CONFIGURED = 6
    NOT_RUNNING = 7


class LsbStatusRc(IntEnum):
    """LSB exit codes of `status`; 150 and 151 are Pacemaker's application codes."""

    OK = 0
    DEAD_PIDFILE = 1  # dead, but a /var/run pid file exists
    DEAD_LOCKFILE = 2  # dead, but a /var/lock lock file exists
    NOT_RUNNING = 3
    UNKNOWN = 4
    NOT_INSTALLED = 150
    INSUFFICIENT_PRIV = 151


class Recovery(str, Enum):
    """How the cluster reacts to an unexpected result (Pacemaker's recovery type)."""

    NONE = "none"  # the expected result, or degraded-but-active
    SOFT = "soft"  # restart in place, or move after migration-threshold
    HARD = "hard"  # ban this node for this resource
    FATAL = "fatal"  # stop the resource everywhere


# Actions the LRM understands; "probe" is a monitor with interval 0.
# `quiesce` is ours, not OCF's: a make-before-break move asks the old node's
# agent to stop taking new connections just before the new node takes over.
ACTIONS = ("start", "stop", "monitor", "probe", "reload", "validate-all", "meta-data", "quiesce")
MONITOR_ACTIONS = ("monitor", "probe")

# LSB scripts know no parameters, so no meta-data or validate-all; reload is optional.
LSB_ACTION_NAMES = {"start": "start", "stop": "stop", "monitor": "status", "probe": "status",
                    "reload": "force-reload"}

_LSB_NON_STATUS_MAX = 7  # LSB codes above 7 are reserved: Pacemaker maps them to a generic error

_HARD = frozenset({OcfRc.ERR_ARGS, OcfRc.ERR_UNIMPLEMENTED, OcfRc.ERR_PERM, OcfRc.ERR_INSTALLED})
_DEGRADED = frozenset({OcfRc.DEGRADED, OcfRc.DEGRADED_PROMOTED})

_DESCRIPTIONS = {
    OcfRc.SUCCESS: "ok",
    OcfRc.ERR_GENERIC: "generic error",
    OcfRc.ERR_ARGS: "invalid parameters",
    OcfRc.ERR_UNIMPLEMENTED: "unimplemented action",
    OcfRc.ERR_PERM: "insufficient privileges",
    OcfRc.ERR_INSTALLED: "not installed",
    OcfRc.ERR_CONFIGURED: "not configured",
    OcfRc.NOT_RUNNING: "not running",
    OcfRc.RUNNING_PROMOTED: "running promoted",
    OcfRc.FAILED_PROMOTED: "failed promoted",
    OcfRc.DEGRADED: "degraded",
    OcfRc.DEGRADED_PROMOTED: "degraded promoted",
}


def as_ocf(rc: int) -> OcfRc | int:
    """The `OcfRc` member for `rc`, or `rc` itself for a custom code."""
    try:
        return OcfRc(rc)
    except ValueError:
        return rc


def describe(rc: int) -> str:
    """"not running", "generic error", ... ("exit 42" for a custom code)."""
    code = as_ocf(rc)
    return _DESCRIPTIONS[code] if isinstance(code, OcfRc) else f"exit {rc}"


def lsb_to_ocf(action: str, rc: int) -> OcfRc:
    """Pacemaker's LSB mapping. `action` is the LRM's action name (monitor and
    probe run the script's `status`): status 0 running, 1/2/3 not running,
    150 not installed, 151 no privilege, anything else (4 included) failed;
    other actions pass 0-7 through and map the reserved rest to a generic error."""
    if action in MONITOR_ACTIONS or action == "status":
        if rc == LsbStatusRc.OK:
            return OcfRc.SUCCESS
        if rc in (LsbStatusRc.DEAD_PIDFILE, LsbStatusRc.DEAD_LOCKFILE, LsbStatusRc.NOT_RUNNING):
            return OcfRc.NOT_RUNNING
        if rc == LsbStatusRc.NOT_INSTALLED:
            return OcfRc.ERR_INSTALLED
        if rc == LsbStatusRc.INSUFFICIENT_PRIV:
            return OcfRc.ERR_PERM
        return OcfRc.ERR_GENERIC
    if 0 <= rc <= _LSB_NON_STATUS_MAX:
        return OcfRc(rc)
    return OcfRc.ERR_GENERIC


def is_failure(action: str, rc: int, timed_out: bool = False) -> bool:
    """Did this result fail? A timeout always did; a probe's "not running"
    is an answer, not a failure; degraded counts as active (no recovery)."""
    if timed_out:
        return True
    if rc in _DEGRADED or rc == OcfRc.SUCCESS:
        return False
    if action == "probe" and rc == OcfRc.NOT_RUNNING:
        return False
    return True


def recovery(rc: int, timed_out: bool = False, expected: int = OcfRc.SUCCESS) -> Recovery:
    """The recovery class of a result (reference 2.2). The expected code (and
    degraded when success was expected) needs none; otherwise 2, 3, 4, 5 are
    hard, 6 fatal, and 0, 1, 7, 8, 9, custom codes and timeouts soft (0 is a
    failure too when something else was expected). For a recurring monitor
    Pacemaker ignores 3: that is the caller's call."""
    if timed_out:
        return Recovery.SOFT
    if rc == expected or (expected == OcfRc.SUCCESS and rc in _DEGRADED):
        return Recovery.NONE
    if rc == OcfRc.ERR_CONFIGURED:
        return Recovery.FATAL
    if rc in _HARD:
        return Recovery.HARD
    return Recovery.SOFT
