"""The server health / admin state machine (gproxy/health.py), against the
behaviour captured from HAProxy 2.6 in haproxy.md 1.5, 1.6, 2.1-2.4."""

from __future__ import annotations

import pytest

from gproxy.errors import IllegalTransition
from gproxy.health import (
    Admin,
    CheckDone,
    CheckOutcome,
    CheckResultKind,
    CheckStatus,
    DisableChecks,
    EnableChecks,
    ForceHealth,
    OpState,
    ServerHealth,
    SetAdmin,
    StartCheck,
    TransitionKind,
    _OpSignal,
)

L4CON = CheckOutcome(CheckStatus.L4CON, None, 0, "Connection refused")
L7OK = CheckOutcome(CheckStatus.L7OK, 200, 1, "")
L7OKC = CheckOutcome(CheckStatus.L7OKC, 404, 2, "")
L7TOUT = CheckOutcome(CheckStatus.L7TOUT, None, 2000, "")


def checked(rise: int = 2, fall: int = 3, now: float = 0.0) -> ServerHealth:
    return ServerHealth(rise, fall, check_enabled=True, disabled=False, now=now)


def fully_up(rise: int = 2, fall: int = 3) -> ServerHealth:
    h = checked(rise, fall)
    h.process_event(CheckDone(L7OK), 0.0)
    assert h.status_text() == "UP"
    return h


def feed(h: ServerHealth, outcomes: list[CheckOutcome], start: float = 1.0) -> list[str]:
    """Apply outcomes one second apart; return the status text after each."""
    texts = []
    for i, outcome in enumerate(outcomes):
        h.process_event(CheckDone(outcome), start + i)
        texts.append(h.status_text())
    return texts


# -- check statuses


def test_check_status_numbers_descriptions_and_results():
    assert int(CheckStatus.L4OK) == 6 and int(CheckStatus.L7OK) == 15 and int(CheckStatus.L7OKC) == 16
    assert int(CheckStatus.PROCOK) == 20 and int(CheckStatus.INI) == 1
    assert CheckStatus.L4CON.desc == "Layer4 connection problem"
    assert CheckStatus.L7OKC.desc == "Layer7 check conditionally passed"
    assert CheckStatus.L7TOUT.desc == "Layer7 timeout"
    assert CheckStatus.L7STS.result is CheckResultKind.FAILED
    assert CheckStatus.L7OKC.result is CheckResultKind.CONDPASS
    assert CheckStatus.L4OK.result is CheckResultKind.PASSED
    assert CheckStatus.CHECKED.result is CheckResultKind.NEUTRAL
    assert all(status.desc or status is CheckStatus.START for status in CheckStatus)


# -- initial states (haproxy.md 1.5 capture and 1.6 decoding)


def test_checked_server_starts_up_with_health_rise():
    h = checked()
    assert h.status_text() == "UP 1/3"
    assert h.op_state is OpState.RUNNING and h.health == 2
    assert h.check_status is CheckStatus.INI and h.check_status_field() == "INI"
    assert h.check_result is CheckResultKind.UNKNOWN
    assert h.check_state == 6 and int(h.admin) == 0
    assert h.is_up and h.usable_for_new_traffic and h.usable_for_persistent


def test_unchecked_server_is_no_check():
    h = ServerHealth(2, 3, check_enabled=False, disabled=False, now=0.0)
    assert h.status_text() == "no check"
    assert h.check_state == 0 and h.health == 2  # web4 in the capture: health = rise
    assert h.check_status_field() == ""
    assert h.usable_for_new_traffic


def test_config_disabled_server_is_maint_and_counts_downtime():
    h = ServerHealth(2, 3, check_enabled=True, disabled=True, now=100.0)
    assert h.status_text() == "MAINT"
    assert h.op_state is OpState.STOPPED and h.health == 0
    assert int(h.admin) == 5  # FMAINT | CMAINT, as web5 shows
    assert h.check_state == 14  # configured, enabled, paused
    assert h.checks_paused and not h.checks_active
    assert not h.usable_for_new_traffic and not h.usable_for_persistent
    assert h.downtime(110.0) == 10.0
    assert h.chkdown == 0


def test_bad_rise_or_fall_is_refused():
    with pytest.raises(ValueError):
        ServerHealth(0, 3, True, False, 0.0)


# -- rise / fall (haproxy.md 2.2)


def test_first_failed_check_downs_at_once():
    h = checked()
    [t] = h.process_event(CheckDone(L4CON), 1.0)
    assert (t.kind, t.old, t.new) == (TransitionKind.WENT_DOWN, "UP 1/3", "DOWN")
    assert t.reason == "Layer4 connection problem" and t.outcome == L4CON
    assert h.chkfail == 1 and h.chkdown == 1 and h.health == 0
    assert h.check_status is CheckStatus.L4CON and h.check_result is CheckResultKind.FAILED


def test_observed_sequence_down_then_up():
    h = fully_up()
    assert feed(h, [L4CON, L4CON, L4CON]) == ["UP 2/3", "UP 1/3", "DOWN"]
    assert feed(h, [L4CON, L4CON], start=10) == ["DOWN", "DOWN"]
    assert feed(h, [L7OK, L7OK], start=20) == ["DOWN 1/2", "UP"]
    # failures counted only while health > 0; one down transition
    assert h.chkfail == 3 and h.chkdown == 1


def test_only_real_state_changes_are_transitions():
    h = fully_up()
    kinds = []
    for i, outcome in enumerate([L4CON, L4CON, L4CON, L7OK, L7OK]):
        kinds += [t.kind for t in h.process_event(CheckDone(outcome), float(i))]
    assert kinds == [TransitionKind.WENT_DOWN, TransitionKind.WENT_UP]


def test_a_pass_while_going_down_restores_full_health():
    h = fully_up()
    assert feed(h, [L4CON, L4CON, L7OK]) == ["UP 2/3", "UP 1/3", "UP"]
    assert h.health == 4


def test_a_failure_while_rising_drops_back_to_zero():
    h = fully_up()
    feed(h, [L4CON, L4CON, L4CON])
    assert feed(h, [L7OK, L4CON], start=10) == ["DOWN 1/2", "DOWN"]
    assert h.health == 0 and h.chkfail == 4  # the rising step had health > 0
    assert h.chkdown == 1  # still DOWN: no new transition


def test_seed_rise_1_fall_3():
    h = checked(rise=1, fall=3)
    assert h.status_text() == "UP 1/3"
    assert feed(h, [L7OK, L4CON, L4CON, L4CON]) == ["UP", "UP 2/3", "UP 1/3", "DOWN"]
    [t] = h.process_event(CheckDone(L7OK), 10.0)
    assert t.kind is TransitionKind.WENT_UP and h.status_text() == "UP"


def test_neutral_result_changes_nothing():
    h = fully_up()
    assert h.process_event(CheckDone(CheckOutcome(CheckStatus.CHECKED)), 1.0) == []
    assert h.status_text() == "UP" and h.health == 4


# -- disable-on-404: NOLB (haproxy.md 2.1, 2.4)


def test_conditional_pass_soft_stops_a_running_server():
    h = fully_up()
    [t] = h.process_event(CheckDone(L7OKC), 1.0)
    assert (t.kind, t.old, t.new) == (TransitionKind.STOPPING, "UP", "NOLB")
    assert t.reason == "Layer7 check conditionally passed"
    assert h.op_state is OpState.STOPPING and not h.is_up
    assert not h.usable_for_new_traffic and h.usable_for_persistent
    assert h.check_result is CheckResultKind.CONDPASS
    assert feed(h, [L4CON], start=2) == ["NOLB 2/3"]
    [t] = h.process_event(CheckDone(L7OK), 5.0)
    assert (t.kind, t.new) == (TransitionKind.WENT_UP, "UP")


def test_nolb_server_can_go_down():
    h = fully_up()
    h.process_event(CheckDone(L7OKC), 1.0)
    texts = feed(h, [L4CON, L4CON, L4CON], start=2)
    assert texts == ["NOLB 2/3", "NOLB 1/3", "DOWN"]
    assert h.chkdown == 1


def test_404_on_a_down_server_stays_a_failure():
    h = checked()
    h.process_event(CheckDone(L4CON), 1.0)
    assert h.process_event(CheckDone(L7OKC), 2.0) == []
    assert h.status_text() == "DOWN" and h.health == 0
    assert h.check_status is CheckStatus.L7STS and h.last_outcome.code == 404


# -- admin states (haproxy.md 2.1)


def test_drain_keeps_checks_and_survives_down_and_up():
    h = fully_up()
    [t] = h.process_event(SetAdmin("drain"), 1.0)
    assert (t.kind, t.old, t.new) == (TransitionKind.ENTERED_DRAIN, "UP", "DRAIN")
    assert int(h.admin) == 8 and h.checks_active
    assert not h.usable_for_new_traffic and h.usable_for_persistent and h.is_up
    # the observed HAProxy sequence for a drained server
    texts = feed(h, [L4CON, L4CON, L4CON, L7OK, L7OK], start=2)
    assert texts == ["DRAIN 2/3", "DRAIN 1/3", "DOWN", "DOWN 1/2", "DRAIN"]
    [t] = h.process_event(SetAdmin("ready"), 10.0)
    assert (t.kind, t.new, t.reason) == (TransitionKind.LEFT_DRAIN, "UP", "leaving forced drain")


def test_maint_pauses_checks_and_leaving_it_checks_at_once():
    h = fully_up()
    [t] = h.process_event(SetAdmin("maint"), 1.0)
    assert (t.kind, t.old, t.new) == (TransitionKind.ENTERED_MAINT, "UP", "MAINT")
    assert h.op_state is OpState.STOPPED and h.health == 0 and int(h.admin) == 1
    assert h.checks_paused and h.check_state == 14 and h.check_status_field() == ""
    assert not h.usable_for_persistent
    assert h.chkdown == 1  # HAProxy counts UP -> MAINT as a down transition (golden capture)
    with pytest.raises(IllegalTransition):
        h.process_event(StartCheck(), 2.0)
    # a check that was in flight when maintenance began is dropped
    assert h.process_event(CheckDone(L4CON), 2.0) == []
    assert h.last_outcome == L7OK and h.health == 0
    [t] = h.process_event(SetAdmin("ready"), 3.0)
    assert (t.kind, t.old, t.new) == (TransitionKind.LEFT_MAINT, "MAINT", "UP 1/3")
    assert t.reason == "leaving forced maintenance"
    assert h.next_interval_ms(2000, 1000, 5000) == 1000
    [t] = h.process_event(CheckDone(L4CON), 4.0)
    assert t.kind is TransitionKind.WENT_DOWN  # health = rise: one failure downs it


def test_config_disabled_server_is_enabled_by_ready():
    h = ServerHealth(2, 3, check_enabled=True, disabled=True, now=0.0)
    [t] = h.process_event(SetAdmin("ready"), 5.0)
    assert (t.kind, t.new) == (TransitionKind.LEFT_MAINT, "UP 1/3")
    assert int(h.admin) == 0 and h.op_state is OpState.RUNNING
    assert h.downtime(100.0) == 5.0


def test_maint_to_drain_and_drain_to_maint():
    h = fully_up()
    h.process_event(SetAdmin("drain"), 1.0)
    [t] = h.process_event(SetAdmin("maint"), 2.0)
    assert (t.kind, t.old, t.new) == (TransitionKind.ENTERED_MAINT, "DRAIN", "MAINT")
    assert h.admin == Admin.FMAINT  # maint replaces drain, as `set server state maint` does
    [t] = h.process_event(SetAdmin("drain"), 3.0)
    assert (t.kind, t.new) == (TransitionKind.LEFT_MAINT, "DRAIN 1/3")
    assert h.admin == Admin.FDRAIN


def test_maint_of_a_down_server():
    h = checked()
    h.process_event(CheckDone(L4CON), 1.0)
    [t] = h.process_event(SetAdmin("maint"), 2.0)
    assert (t.old, t.new) == ("DOWN", "MAINT")


def test_same_admin_state_is_a_no_op():
    h = fully_up()
    assert h.process_event(SetAdmin("ready"), 1.0) == []
    h.process_event(SetAdmin("maint"), 1.0)
    assert h.process_event(SetAdmin("maint"), 2.0) == []


def test_admin_changes_on_an_unchecked_server():
    h = ServerHealth(2, 3, check_enabled=False, disabled=False, now=0.0)
    h.process_event(SetAdmin("drain"), 1.0)
    assert h.status_text() == "DRAIN"
    h.process_event(SetAdmin("maint"), 2.0)
    [t] = h.process_event(SetAdmin("ready"), 3.0)
    assert t.new == "no check"


# -- forced health (set server health)


def test_forced_health_from_cli():
    h = fully_up()
    [t] = h.process_event(ForceHealth("down"), 1.0)
    assert (t.kind, t.old, t.new, t.reason) == (TransitionKind.WENT_DOWN, "UP", "DOWN", "changed from CLI")
    assert t.outcome is None and h.chkdown == 1
    [t] = h.process_event(ForceHealth("stopping"), 2.0)
    assert (t.kind, t.new) == (TransitionKind.STOPPING, "NOLB")
    [t] = h.process_event(ForceHealth("up"), 3.0)
    assert (t.kind, t.new) == (TransitionKind.WENT_UP, "UP")
    assert h.process_event(ForceHealth("up"), 4.0) == []


def test_forced_health_is_ignored_in_maintenance():
    h = fully_up()
    h.process_event(SetAdmin("maint"), 1.0)
    assert h.process_event(ForceHealth("up"), 2.0) == []
    assert h.status_text() == "MAINT"


def test_forced_down_on_an_unchecked_server():
    h = ServerHealth(2, 3, check_enabled=False, disabled=False, now=0.0)
    [t] = h.process_event(ForceHealth("down"), 1.0)
    assert (t.old, t.new) == ("no check", "DOWN")


# -- check lifecycle


def test_check_in_progress_is_shown_and_resets_the_result():
    h = fully_up()
    h.process_event(StartCheck(), 1.0)
    assert h.check_in_progress and h.check_state == 7
    assert h.check_status_field() == "* L7OK"
    assert h.check_result is CheckResultKind.UNKNOWN
    with pytest.raises(IllegalTransition):
        h.process_event(StartCheck(), 1.5)
    h.process_event(CheckDone(L7TOUT), 2.0)
    assert not h.check_in_progress and h.check_status_field() == "L7TOUT"


def test_disabled_checks_show_no_check_and_drop_results():
    h = fully_up()
    feed(h, [L4CON])
    assert h.status_text() == "UP 2/3"
    assert h.process_event(DisableChecks(), 2.0) == []
    assert h.status_text() == "no check" and h.check_state == 2 and not h.checks_active
    with pytest.raises(IllegalTransition):
        h.process_event(StartCheck(), 3.0)
    assert h.process_event(CheckDone(L4CON), 3.0) == []
    h.process_event(EnableChecks(), 4.0)
    assert h.status_text() == "UP 2/3" and h.checks_active


def test_check_events_are_illegal_without_a_configured_check():
    h = ServerHealth(2, 3, check_enabled=False, disabled=False, now=0.0)
    for event in (StartCheck(), CheckDone(L7OK), EnableChecks(), DisableChecks()):
        with pytest.raises(IllegalTransition):
            h.process_event(event, 1.0)


def test_the_op_table_refuses_impossible_pairs():
    h = fully_up()
    with pytest.raises(IllegalTransition):
        h._next_op(_OpSignal.MAINT_OFF)  # a running server is never in maintenance


def test_events_validate_themselves():
    with pytest.raises(ValueError):
        SetAdmin("sleep")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ForceHealth("sideways")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        checked().process_event(object(), 0.0)  # type: ignore[arg-type]


# -- counters and intervals


def test_downtime_and_last_change():
    h = fully_up()
    h.process_event(ForceHealth("down"), 10.0)
    assert h.seconds_since_change(12.0) == 2.0
    assert h.downtime(15.0) == 5.0
    h.process_event(ForceHealth("up"), 20.0)
    assert h.downtime(30.0) == 10.0
    h.process_event(SetAdmin("maint"), 40.0)
    assert h.downtime(45.0) == 15.0
    h.process_event(SetAdmin("ready"), 50.0)
    assert h.downtime(60.0) == 20.0 and h.last_change == 50.0


@pytest.mark.parametrize(
    "outcomes, expected",
    [
        ([], 1000),  # never checked: fastinter
        ([L7OK], 2000),  # fully up: inter
        ([L7OK, L4CON], 1000),  # going down: fastinter
        ([L4CON], 5000),  # fully down: downinter
        ([L4CON, L7OK], 1000),  # rising: fastinter
    ],
)
def test_next_interval(outcomes, expected):
    h = checked()
    feed(h, outcomes)
    assert h.next_interval_ms(2000, 1000, 5000) == expected


# -- log detail (the part after "Server b/s is DOWN")


def test_transition_detail_matches_haproxys_log_wording():
    h = fully_up()
    h.process_event(SetAdmin("drain"), 0.5)
    h.process_event(SetAdmin("ready"), 0.6)
    wrong = CheckOutcome(CheckStatus.L7STS, 404, 0, "File not found")
    transitions = []
    for i in range(3):
        transitions += h.process_event(CheckDone(wrong), 1.0 + i)
    assert transitions[-1].detail == 'reason: Layer7 wrong status, code: 404, info: "File not found", check duration: 0ms'
    [up] = h.process_event(CheckDone(L7OK), 5.0) + h.process_event(CheckDone(L7OK), 6.0)
    assert up.detail == "reason: Layer7 check passed, code: 200, check duration: 1ms"
    [down] = h.process_event(ForceHealth("down"), 7.0)
    assert down.detail == "changed from CLI"


def test_transition_detail_for_timeouts_and_refusals():
    h = checked()
    [t] = h.process_event(CheckDone(L7TOUT), 1.0)
    assert t.detail == "reason: Layer7 timeout, check duration: 2000ms"
    h2 = checked()
    [t] = h2.process_event(CheckDone(L4CON), 1.0)
    assert t.detail == 'reason: Layer4 connection problem, info: "Connection refused", check duration: 0ms'


def test_cached_usability_follows_every_state_change():
    """usable_for_* are plain booleans refreshed by the state setters: after any
    sequence of events they equal what the op and admin states say."""

    def expected(h: ServerHealth) -> tuple[bool, bool]:
        up = h.op_state in (OpState.RUNNING, OpState.STARTING)
        maint = bool(h.admin & (Admin.FMAINT | Admin.IMAINT | Admin.CMAINT))
        drain = bool(h.admin & (Admin.FDRAIN | Admin.IDRAIN))
        return up and not maint and not drain, h.op_state is not OpState.STOPPED and not maint

    events = [
        CheckDone(L7OK), SetAdmin("drain"), CheckDone(L4CON), CheckDone(L7OK), CheckDone(L7OK),
        SetAdmin("maint"), SetAdmin("ready"), CheckDone(L7OKC), ForceHealth("up"), ForceHealth("down"),
        ForceHealth("stopping"), SetAdmin("maint"), SetAdmin("drain"), SetAdmin("ready"), CheckDone(L7OK),
    ]  # fmt: skip
    for disabled in (False, True):
        h = ServerHealth(2, 3, check_enabled=True, disabled=disabled, now=0.0)
        seen = {(h.usable_for_new_traffic, h.usable_for_persistent)}
        assert (h.usable_for_new_traffic, h.usable_for_persistent) == expected(h)
        for i, event in enumerate(events):
            try:
                h.process_event(event, float(i))
            except IllegalTransition:
                pass
            assert (h.usable_for_new_traffic, h.usable_for_persistent) == expected(h), (event, h)
            seen.add((h.usable_for_new_traffic, h.usable_for_persistent))
        assert seen == {(True, True), (False, True), (False, False)}
