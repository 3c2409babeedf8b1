"""Server health and admin state: the pure state machine behind a server's
`show stat` status column, `show servers state` fields and the UP/DOWN logs.

No I/O and no clock: every event comes with `now` (seconds, any monotonic or
wall-clock origin as long as the caller is consistent).

Theory of operation
-------------------
As in HAProxy, a server carries two independent pieces of state:

* the operational state (`OpState`), moved by health checks and by
  `set server health`: RUNNING (UP), STOPPING (NOLB, soft-stopped by a 404
  with `disable-on-404` or by `health stopping`) and STOPPED (DOWN);
* admin flags (`Admin`), moved by `set server state` and by the config's
  `disabled`: ready (no flag), drain (FDRAIN), maint (FMAINT, plus CMAINT when
  the config said `disabled`).

Checks move a health counter `h` in 0..rise+fall-1 (haproxy.md 2.2): a failure
decrements it and drops it to 0 as soon as it falls below `rise`; a success
increments it and jumps it to rise+fall-1 as soon as it reaches `rise`. A
server starts UP with h = rise, so its very first failed check downs it.
The counter turns into an op-state *signal* (`_OpSignal`), and `_OP_TABLE`
says where each signal leads from each op state. Admin commands go through
`_ADMIN_TABLE`. Which check events are legal depends on the check mode
(`_CHECK_TABLE`: not configured, disabled, paused by maint, idle, running).
A pair missing from a table raises `IllegalTransition`.

Maintenance forces the op state to STOPPED with h = 0 and pauses checks;
leaving it comes back RUNNING with h = rise ("check immediately"). Drain keeps
checks running: a drained server can go DOWN and comes back DRAIN.

Every state change is reported as a `Transition` (old and new status text,
HAProxy's reason wording, a kind); the caller turns those into events and logs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum, IntEnum, IntFlag
from typing import Callable, Literal

from gproxy.errors import IllegalTransition

# -- check statuses (HAProxy's HCHK_STATUS_* numbers, shown by `show servers state`)


class CheckResultKind(IntEnum):
    """HAProxy's CHK_RES_* (`srv_check_result`)."""

    UNKNOWN = 0
    NEUTRAL = 1
    FAILED = 2
    PASSED = 3
    CONDPASS = 4


class CheckStatus(IntEnum):
    """HAProxy's HCHK_STATUS_* values; `.name` is the `check_status` text."""

    UNK = 0
    INI = 1
    START = 2
    CHECKED = 3
    HANA = 4
    SOCKERR = 5
    L4OK = 6
    L4TOUT = 7
    L4CON = 8
    L6OK = 9
    L6TOUT = 10
    L6RSP = 11
    L7TOUT = 12
    L7RSP = 13
    # 14 is HAProxy's L57DATA, a dummy separator that no check ever reports.
    L7OK = 15
    L7OKC = 16
    L7STS = 17
    PROCERR = 18
    PROCTOUT = 19
    PROCOK = 20

    @property
    def desc(self) -> str:
        """The `check_desc` text, also the reason of a check-driven transition."""
        return _STATUS_INFO[self][0]

    @property
    def result(self) -> CheckResultKind:
        return _STATUS_INFO[self][1]


_R = CheckResultKind
_STATUS_INFO: dict[CheckStatus, tuple[str, CheckResultKind]] = {
    CheckStatus.UNK: ("Unknown", _R.UNKNOWN),
    CheckStatus.INI: ("Initializing", _R.UNKNOWN),
    CheckStatus.START: ("", _R.UNKNOWN),  # a special marker in HAProxy too
    CheckStatus.CHECKED: ("No status change", _R.NEUTRAL),
    CheckStatus.HANA: ("Health analyze", _R.FAILED),
    CheckStatus.SOCKERR: ("Socket error", _R.FAILED),
    CheckStatus.L4OK: ("Layer4 check passed", _R.PASSED),
    CheckStatus.L4TOUT: ("Layer4 timeout", _R.FAILED),
    CheckStatus.L4CON: ("Layer4 connection problem", _R.FAILED),
    CheckStatus.L6OK: ("Layer6 check passed", _R.PASSED),
    CheckStatus.L6TOUT: ("Layer6 timeout", _R.FAILED),
    CheckStatus.L6RSP: ("Layer6 invalid response", _R.FAILED),
    CheckStatus.L7TOUT: ("Layer7 timeout", _R.FAILED),
    CheckStatus.L7RSP: ("Layer7 invalid response", _R.FAILED),
    CheckStatus.L7OK: ("Layer7 check passed", _R.PASSED),
    CheckStatus.L7OKC: ("Layer7 check conditionally passed", _R.CONDPASS),
    CheckStatus.L7STS: ("Layer7 wrong status", _R.FAILED),
    CheckStatus.PROCERR: ("External check error", _R.FAILED),
    CheckStatus.PROCTOUT: ("External check timeout", _R.FAILED),
    CheckStatus.PROCOK: ("External check passed", _R.PASSED),
}


# HAProxy prints `code:` only for statuses past its L57DATA marker (L7OK and later).
_FIRST_STATUS_WITH_CODE = 14


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one check. `info` is HAProxy's `last_chk` text: the
    socket error ("Connection refused") or the HTTP reason phrase of a wrong
    status ("File not found"); empty for passes and timeouts."""

    status: CheckStatus
    code: int | None = None
    duration_ms: int = 0
    info: str = ""


# -- operational and admin state


class OpState(IntEnum):
    """HAProxy's SRV_ST_* (`srv_op_state`). STARTING (slowstart) is never entered."""

    STOPPED = 0
    STARTING = 1
    RUNNING = 2
    STOPPING = 3


class Admin(IntFlag):
    """HAProxy's SRV_ADMF_* bits (`srv_admin_state`)."""

    FMAINT = 0x01  # forced by the CLI (and set with CMAINT by config `disabled`)
    IMAINT = 0x02  # inherited through `track` (not used yet)
    CMAINT = 0x04  # config `disabled`
    FDRAIN = 0x08
    IDRAIN = 0x10  # inherited through `track` (not used yet)


MAINT_FLAGS = Admin.FMAINT | Admin.IMAINT | Admin.CMAINT
DRAIN_FLAGS = Admin.FDRAIN | Admin.IDRAIN
# Combined once: Flag.__or__ is slow.
_NO_NEW_TRAFFIC = MAINT_FLAGS | DRAIN_FLAGS


class CheckStateBit(IntFlag):
    """HAProxy's CHK_ST_* bits (`srv_check_state`): 6 = normal, 7 = running, 14 = paused."""

    INPROGRESS = 0x01
    CONFIGURED = 0x02
    ENABLED = 0x04
    PAUSED = 0x08


class AdminState(Enum):
    """The three admin states an operator can ask for (`set server state`)."""

    READY = "ready"
    DRAIN = "drain"
    MAINT = "maint"


class TransitionKind(str, Enum):
    WENT_DOWN = "went_down"
    WENT_UP = "went_up"
    STOPPING = "stopping"
    ENTERED_DRAIN = "entered_drain"
    LEFT_DRAIN = "left_drain"
    ENTERED_MAINT = "entered_maint"
    LEFT_MAINT = "left_maint"


@dataclass(frozen=True)
class Transition:
    """One state change. `old`/`new` are `status_text()` before and after;
    `reason` is HAProxy's wording ("Layer4 connection problem", "changed from
    CLI", "leaving forced maintenance"); `outcome` is the check that caused it."""

    kind: TransitionKind
    old: str
    new: str
    reason: str
    outcome: CheckOutcome | None = None

    @property
    def detail(self) -> str:
        """The part of HAProxy's log line after "is DOWN" / "is UP" (srv_append_status):
        `reason: Layer7 wrong status, code: 404, info: "File not found", check
        duration: 0ms` for a check, else the bare reason ("changed from CLI")."""
        outcome = self.outcome
        if outcome is None:
            return self.reason
        parts = [f"reason: {self.reason}"]
        if outcome.status >= _FIRST_STATUS_WITH_CODE and outcome.code is not None:
            parts.append(f"code: {outcome.code}")
        if outcome.info:
            escaped = outcome.info.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'info: "{escaped}"')
        parts.append(f"check duration: {outcome.duration_ms}ms")
        return ", ".join(parts)


# -- events (the only inputs of `ServerHealth.process_event`)

AdminCommand = Literal["ready", "drain", "maint"]
HealthCommand = Literal["up", "stopping", "down"]


@dataclass(frozen=True)
class StartCheck:
    """A check has just been sent (shown as `* L7OK` until it is done)."""


@dataclass(frozen=True)
class CheckDone:
    outcome: CheckOutcome


@dataclass(frozen=True)
class SetAdmin:
    """`set server <b>/<s> state ready|drain|maint` (and enable/disable server)."""

    state: AdminCommand

    def __post_init__(self) -> None:
        if self.state not in ("ready", "drain", "maint"):
            raise ValueError(f"admin state must be ready, drain or maint, not {self.state!r}")


@dataclass(frozen=True)
class ForceHealth:
    """`set server <b>/<s> health up|stopping|down`."""

    state: HealthCommand

    def __post_init__(self) -> None:
        if self.state not in ("up", "stopping", "down"):
            raise ValueError(f"health must be up, stopping or down, not {self.state!r}")


@dataclass(frozen=True)
class EnableChecks:
    """`enable health <b>/<s>`."""


@dataclass(frozen=True)
class DisableChecks:
    """`disable health <b>/<s>`."""


HealthEvent = StartCheck | CheckDone | SetAdmin | ForceHealth | EnableChecks | DisableChecks

# -- the tables


class _OpSignal(Enum):
    CHECK_UP = "health reached rise on a pass"
    CHECK_NOLB = "health reached rise on a conditional pass"
    CHECK_DOWN = "health fell to 0"
    FORCE_UP = "set server health up"
    FORCE_STOPPING = "set server health stopping"
    FORCE_DOWN = "set server health down"
    MAINT_ON = "entering maintenance"
    MAINT_OFF = "leaving maintenance"


_S = _OpSignal
_UP_ROW: dict[_OpSignal, OpState] = {
    _S.CHECK_UP: OpState.RUNNING,
    _S.CHECK_NOLB: OpState.STOPPING,
    _S.CHECK_DOWN: OpState.STOPPED,
    _S.FORCE_UP: OpState.RUNNING,
    _S.FORCE_STOPPING: OpState.STOPPING,
    _S.FORCE_DOWN: OpState.STOPPED,
    _S.MAINT_ON: OpState.STOPPED,
    # no MAINT_OFF: a server in maintenance is always STOPPED
}
# {op state: {signal: next op state}}
_OP_TABLE: dict[OpState, dict[_OpSignal, OpState]] = {
    OpState.RUNNING: _UP_ROW,
    OpState.STARTING: _UP_ROW,
    OpState.STOPPING: _UP_ROW,
    OpState.STOPPED: {**_UP_ROW, _S.MAINT_OFF: OpState.RUNNING},
}
_UP_STATES = (OpState.RUNNING, OpState.STARTING)

# What an op-state change is called, for changes caused by checks or `health`.
_OP_KINDS: dict[tuple[bool, OpState], TransitionKind] = {
    # (was up or stopping, new state)
    (True, OpState.STOPPED): TransitionKind.WENT_DOWN,
    (True, OpState.RUNNING): TransitionKind.WENT_UP,
    (True, OpState.STOPPING): TransitionKind.STOPPING,
    (False, OpState.RUNNING): TransitionKind.WENT_UP,
    (False, OpState.STOPPING): TransitionKind.STOPPING,
}

# {admin state: {command: next admin state}}; every pair is legal, as on the CLI.
_ADMIN_TABLE: dict[AdminState, dict[str, AdminState]] = {
    AdminState.READY: {"ready": AdminState.READY, "drain": AdminState.DRAIN, "maint": AdminState.MAINT},
    AdminState.DRAIN: {"ready": AdminState.READY, "drain": AdminState.DRAIN, "maint": AdminState.MAINT},
    AdminState.MAINT: {"ready": AdminState.READY, "drain": AdminState.DRAIN, "maint": AdminState.MAINT},
}
# (old, new) -> (kind, reason); same-state pairs are no-ops.
_ADMIN_KINDS: dict[tuple[AdminState, AdminState], tuple[TransitionKind, str]] = {
    (AdminState.READY, AdminState.DRAIN): (TransitionKind.ENTERED_DRAIN, "forced drain"),
    (AdminState.DRAIN, AdminState.READY): (TransitionKind.LEFT_DRAIN, "leaving forced drain"),
    (AdminState.READY, AdminState.MAINT): (TransitionKind.ENTERED_MAINT, "forced maintenance"),
    (AdminState.DRAIN, AdminState.MAINT): (TransitionKind.ENTERED_MAINT, "forced maintenance"),
    (AdminState.MAINT, AdminState.READY): (TransitionKind.LEFT_MAINT, "leaving forced maintenance"),
    (AdminState.MAINT, AdminState.DRAIN): (TransitionKind.LEFT_MAINT, "leaving forced maintenance"),
}
_ADMIN_FLAGS: dict[AdminState, Admin] = {
    AdminState.READY: Admin(0),
    AdminState.DRAIN: Admin.FDRAIN,
    AdminState.MAINT: Admin.FMAINT,
}


class _CheckMode(Enum):
    NONE = "no check configured"
    DISABLED = "checks disabled"
    PAUSED = "checks paused by maintenance"
    IDLE = "waiting for the next check"
    RUNNING = "a check is running"


# {check mode: {event type: action}}. A result arriving while checks are
# disabled or paused was in flight when they stopped: it is dropped.
_CHECK_TABLE: dict[_CheckMode, dict[type, str]] = {
    _CheckMode.NONE: {},
    _CheckMode.DISABLED: {CheckDone: "drop", EnableChecks: "enable", DisableChecks: "none"},
    _CheckMode.PAUSED: {CheckDone: "drop", EnableChecks: "none", DisableChecks: "disable"},
    _CheckMode.IDLE: {StartCheck: "start", CheckDone: "apply", EnableChecks: "none", DisableChecks: "disable"},
    _CheckMode.RUNNING: {CheckDone: "apply", EnableChecks: "none", DisableChecks: "disable"},
}

FORCED_REASON = "changed from CLI"  # HAProxy's reason for `set server health`


class ServerHealth:
    """Health, admin state and check counters of one server."""

    def __init__(self, rise: int, fall: int, check_enabled: bool, disabled: bool, now: float):
        if rise < 1 or fall < 1:
            raise ValueError(f"rise and fall must be at least 1 (got rise={rise}, fall={fall})")
        self.rise = rise
        self.fall = fall
        self.check_configured = check_enabled
        self._checks_enabled = check_enabled
        self.check_in_progress = False
        self.last_outcome: CheckOutcome | None = None
        self.chkfail = 0  # failed checks counted while health > 0 (HAProxy's failed_checks)
        self.chkdown = 0  # transitions to DOWN (HAProxy's down_trans)
        self.last_change = now
        self._down_time = 0.0  # seconds spent STOPPED before `last_change`
        # What the request path asks, as plain booleans: recomputed by the
        # `op_state` and `admin` setters, the only places they change, rather
        # than with Flag arithmetic on every request (~0.3 us each time).
        self.usable_for_new_traffic = False
        self.usable_for_persistent = False
        self._op_state = OpState.STOPPED
        self._admin = Admin(0)
        if disabled:
            self.admin = Admin.FMAINT | Admin.CMAINT
            self.op_state = OpState.STOPPED
            self.health = 0
        else:
            self.admin = Admin(0)
            self.op_state = OpState.RUNNING
            self.health = rise  # UP, but one failure away from DOWN until checked

    # -- the two state fields, each setter refreshing the cached booleans

    @property
    def op_state(self) -> OpState:
        return self._op_state

    @op_state.setter
    def op_state(self, value: OpState) -> None:
        self._op_state = value
        self._refresh_usable()

    @property
    def admin(self) -> Admin:
        return self._admin

    @admin.setter
    def admin(self, value: Admin) -> None:
        self._admin = value
        self._refresh_usable()

    def _refresh_usable(self) -> None:
        op, admin = self._op_state, self._admin
        # New traffic: UP and neither in maintenance nor draining.
        self.usable_for_new_traffic = op in _UP_STATES and not admin & _NO_NEW_TRAFFIC
        # Cookie/stick traffic still goes to DRAIN and NOLB servers, never to MAINT.
        self.usable_for_persistent = op is not OpState.STOPPED and not admin & MAINT_FLAGS

    # -- the one entry point

    def process_event(self, event: HealthEvent, now: float) -> list[Transition]:
        """Apply `event`; return the state changes it caused (often none)."""
        handler = self._HANDLERS.get(type(event))
        if handler is None:
            raise TypeError(f"not a health event: {event!r}")
        return handler(self, event, now)

    def _on_check_event(self, event: HealthEvent, now: float) -> list[Transition]:
        mode = self._check_mode
        action = _CHECK_TABLE[mode].get(type(event))
        if action is None:
            raise IllegalTransition(f"{type(event).__name__} is not accepted when {mode.value}")
        if action == "start":
            self.check_in_progress = True
        elif action == "enable":
            self._checks_enabled = True
        elif action == "disable":
            self._checks_enabled = False
        elif action == "drop":
            self.check_in_progress = False
        elif action == "apply":
            assert isinstance(event, CheckDone)
            self.check_in_progress = False
            return self._apply_check(event.outcome, now)
        return []

    def _apply_check(self, outcome: CheckOutcome, now: float) -> list[Transition]:
        if outcome.status is CheckStatus.L7OKC and self.op_state is OpState.STOPPED:
            # disable-on-404 only soft-stops a running server; a DOWN one
            # answering 404 stays DOWN (haproxy.md 2.4).
            outcome = replace(outcome, status=CheckStatus.L7STS)
        old_text = self.status_text()
        self.last_outcome = outcome
        top = self.rise + self.fall - 1
        result = outcome.status.result
        signal: _OpSignal | None = None
        if result is CheckResultKind.FAILED:
            if self.health > 0:
                self.chkfail += 1
                self.health -= 1
                if self.health < self.rise:
                    self.health = 0
                if self.health == 0:
                    signal = _S.CHECK_DOWN
        elif result in (CheckResultKind.PASSED, CheckResultKind.CONDPASS):
            if self.health < top:
                self.health += 1
                if self.health >= self.rise:
                    self.health = top
            if self.health >= self.rise:
                signal = _S.CHECK_UP if result is CheckResultKind.PASSED else _S.CHECK_NOLB
        if signal is None:
            return []
        return self._move_op(signal, now, old_text, outcome.status.desc, outcome)

    def _on_force_health(self, event: ForceHealth, now: float) -> list[Transition]:
        if self.admin & MAINT_FLAGS:
            return []  # HAProxy ignores it too: leaving maintenance resets the health
        old_text = self.status_text()
        if event.state == "down":
            self.health = 0
            signal = _S.FORCE_DOWN
        else:
            self.health = self.rise + self.fall - 1
            signal = _S.FORCE_UP if event.state == "up" else _S.FORCE_STOPPING
        return self._move_op(signal, now, old_text, FORCED_REASON, None)

    def _on_set_admin(self, event: SetAdmin, now: float) -> list[Transition]:
        old_admin = self.admin_state
        new_admin = _ADMIN_TABLE[old_admin].get(event.state)
        if new_admin is None:
            raise IllegalTransition(f"cannot go from {old_admin.value} to {event.state}")
        if new_admin is old_admin:
            return []
        kind, reason = _ADMIN_KINDS[(old_admin, new_admin)]
        old_text = self.status_text()
        # `state ready` also clears CMAINT: it is how a config-disabled server is enabled.
        flags = self.admin & ~(MAINT_FLAGS | DRAIN_FLAGS) | _ADMIN_FLAGS[new_admin]
        if new_admin is AdminState.MAINT:
            self.health = 0
            new_op = self._next_op(_S.MAINT_ON)
            if self.op_state is not OpState.STOPPED:
                self.chkdown += 1  # HAProxy counts entering maintenance as a down transition
        elif old_admin is AdminState.MAINT:
            if self._checks_enabled:
                self.health = self.rise  # come back UP, but check at once
            new_op = self._next_op(_S.MAINT_OFF)
        else:
            new_op = self.op_state
        self._mark_change(now)
        self.admin = flags
        self.op_state = new_op
        return [Transition(kind, old_text, self.status_text(), reason)]

    _HANDLERS: dict[type, Callable[["ServerHealth", HealthEvent, float], list[Transition]]] = {
        StartCheck: _on_check_event,
        CheckDone: _on_check_event,
        EnableChecks: _on_check_event,
        DisableChecks: _on_check_event,
        ForceHealth: _on_force_health,  # type: ignore[dict-item]
        SetAdmin: _on_set_admin,  # type: ignore[dict-item]
    }

    # -- op-state moves

    def _next_op(self, signal: _OpSignal) -> OpState:
        new_op = _OP_TABLE[self.op_state].get(signal)
        if new_op is None:
            raise IllegalTransition(f"{signal.value}: not possible from {self.op_state.name}")
        return new_op

    def _move_op(
        self, signal: _OpSignal, now: float, old_text: str, reason: str, outcome: CheckOutcome | None
    ) -> list[Transition]:
        """Move the op state (health already updated); `old_text` is the status before."""
        old_op = self.op_state
        new_op = self._next_op(signal)
        if new_op is old_op:
            return []
        self._mark_change(now)
        self.op_state = new_op
        if new_op is OpState.STOPPED:
            self.chkdown += 1
        kind = _OP_KINDS[(old_op is not OpState.STOPPED, new_op)]
        return [Transition(kind, old_text, self.status_text(), reason, outcome)]

    def _mark_change(self, now: float) -> None:
        if self.op_state is OpState.STOPPED and now > self.last_change:
            self._down_time += now - self.last_change
        self.last_change = now

    # -- queries

    @property
    def _check_mode(self) -> _CheckMode:
        if not self.check_configured:
            return _CheckMode.NONE
        if not self._checks_enabled:
            return _CheckMode.DISABLED
        if self.admin & MAINT_FLAGS:
            return _CheckMode.PAUSED
        return _CheckMode.RUNNING if self.check_in_progress else _CheckMode.IDLE

    @property
    def admin_state(self) -> AdminState:
        if self.admin & MAINT_FLAGS:
            return AdminState.MAINT
        if self.admin & DRAIN_FLAGS:
            return AdminState.DRAIN
        return AdminState.READY

    @property
    def checks_enabled(self) -> bool:
        """Checks are configured and not disabled from the CLI (maint only pauses them)."""
        return self._checks_enabled

    @property
    def checks_paused(self) -> bool:
        return self._checks_enabled and bool(self.admin & MAINT_FLAGS)

    @property
    def checks_active(self) -> bool:
        """A check should run now (enabled and not paused): what the checker loop asks."""
        return self._checks_enabled and not self.admin & MAINT_FLAGS

    @property
    def is_up(self) -> bool:
        return self.op_state in _UP_STATES

    @property
    def check_status(self) -> CheckStatus:
        """The last check's status; INI until one is done (also for unchecked servers)."""
        return self.last_outcome.status if self.last_outcome else CheckStatus.INI

    @property
    def check_result(self) -> CheckResultKind:
        """`srv_check_result`: reset to UNKNOWN while a check runs, as HAProxy does."""
        if self.check_in_progress or self.last_outcome is None:
            return CheckResultKind.UNKNOWN
        return self.last_outcome.status.result

    @property
    def check_state(self) -> int:
        """`srv_check_state` bits: 0 unchecked, 6 normal, 7 running, 14 paused, 2 disabled."""
        if not self.check_configured:
            return 0
        bits = CheckStateBit.CONFIGURED
        if self._checks_enabled:
            bits |= CheckStateBit.ENABLED
        if self.admin & MAINT_FLAGS:
            bits |= CheckStateBit.PAUSED
        if self.check_in_progress:
            bits |= CheckStateBit.INPROGRESS
        return int(bits)

    @property
    def shows_check(self) -> bool:
        """`show stat` fills the check columns only for enabled, unpaused checks."""
        return self.checks_active

    def check_status_field(self) -> str:
        """The `check_status` column: "L7OK", "* L7TOUT" while a check runs, "" if not shown."""
        if not self.shows_check:
            return ""
        name = self.check_status.name
        return f"* {name}" if self.check_in_progress else name

    def downtime(self, now: float) -> float:
        """Seconds spent DOWN (op STOPPED), including the current down period."""
        if self.op_state is OpState.STOPPED and now > self.last_change:
            return self._down_time + now - self.last_change
        return self._down_time

    def seconds_since_change(self, now: float) -> float:
        return max(0.0, now - self.last_change)

    def next_interval_ms(self, inter: int, fastinter: int, downinter: int) -> int:
        """Delay before the next check (haproxy.md 2.2): fully UP -> inter,
        fully DOWN -> downinter, never checked or in between -> fastinter."""
        if self.last_outcome is None:
            return fastinter
        if self.health == self.rise + self.fall - 1:
            return inter
        if self.op_state is OpState.STOPPED and self.health == 0:
            return downinter
        return fastinter

    def status_text(self) -> str:
        """The `show stat` status column, in HAProxy's priority order (haproxy.md 1.5)."""
        if self.admin & MAINT_FLAGS:
            return "MAINT"
        top = self.rise + self.fall - 1
        checked = self._checks_enabled
        if self.op_state in _UP_STATES:
            going_down = checked and self.health < top
            fraction = f" {self.health - self.rise + 1}/{self.fall}" if going_down else ""
            if self.admin & DRAIN_FLAGS:
                return f"DRAIN{fraction}"
            if not checked:
                return "no check"
            return f"UP{fraction}"
        if self.op_state is OpState.STOPPING:
            if not checked or self.health == top:
                return "NOLB"
            return f"NOLB {self.health - self.rise + 1}/{self.fall}"
        if checked and self.health > 0:
            return f"DOWN {self.health}/{self.rise}"
        return "DOWN"

    def __repr__(self) -> str:
        return (
            f"<ServerHealth {self.status_text()!r} op={self.op_state.name} admin={int(self.admin)}"
            f" health={self.health}/{self.rise + self.fall - 1}>"
        )
