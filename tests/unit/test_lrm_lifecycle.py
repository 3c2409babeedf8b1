"""The resource lifecycle table (heartbeat/lrm/lifecycle.py)."""

from __future__ import annotations

import itertools

import pytest

from heartbeat.errors import IllegalTransition
from heartbeat.lrm.lifecycle import TABLE, LifecycleEvent as E, process_event, result_event
from heartbeat.model import ResourceState as S


def run(state, *events):
    for event in events:
        state = process_event(state, event)
    return state


def test_start_stop_cycle():
    assert run(S.STOPPED, E.START) is S.STARTING
    assert run(S.STOPPED, E.START, E.START_OK) is S.STARTED
    assert run(S.STOPPED, E.START, E.START_OK, E.STOP) is S.STOPPING
    assert run(S.STOPPED, E.START, E.START_OK, E.STOP, E.STOP_OK) is S.STOPPED


def test_failures():
    assert run(S.STOPPED, E.START, E.START_FAILED) is S.FAILED
    assert run(S.STARTED, E.STOP, E.STOP_FAILED) is S.FAILED
    assert run(S.STARTED, E.MONITOR_NOT_RUNNING) is S.FAILED
    assert run(S.STARTED, E.MONITOR_FAILED) is S.FAILED
    assert run(S.STARTED, E.MONITOR_OK) is S.STARTED


def test_a_failed_resource_is_stopped_before_it_starts_again():
    with pytest.raises(IllegalTransition, match="can't handle start when failed"):
        process_event(S.FAILED, E.START)
    assert run(S.FAILED, E.STOP, E.STOP_OK, E.START, E.START_OK) is S.STARTED


def test_monitor_results_keep_a_failure():
    for event in (E.MONITOR_OK, E.MONITOR_NOT_RUNNING, E.MONITOR_FAILED):
        assert process_event(S.FAILED, event) is S.FAILED


def test_idempotent_start_and_stop_are_allowed():
    assert process_event(S.STARTED, E.START) is S.STARTING
    assert process_event(S.STOPPED, E.STOP) is S.STOPPING


def test_probes_learn_the_state_from_any_settled_state():
    for state in (S.STOPPED, S.STARTED, S.FAILED):
        assert process_event(state, E.PROBE_RUNNING) is S.STARTED
        assert process_event(state, E.PROBE_NOT_RUNNING) is S.STOPPED
        assert process_event(state, E.PROBE_FAILED) is S.FAILED


def test_nothing_happens_in_the_middle_of_an_action():
    for state in (S.STARTING, S.STOPPING):
        for event in (E.START, E.STOP, E.MONITOR_OK, E.PROBE_RUNNING):
            with pytest.raises(IllegalTransition):
                process_event(state, event)
    with pytest.raises(IllegalTransition):
        process_event(S.STARTING, E.STOP_OK)
    with pytest.raises(IllegalTransition):
        process_event(S.STOPPING, E.START_OK)


def test_every_pair_is_either_in_the_table_or_illegal():
    for state, event in itertools.product(S, E):
        if event in TABLE[state]:
            assert process_event(state, event) is TABLE[state][event]
        else:
            with pytest.raises(IllegalTransition):
                process_event(state, event)
    # Monitor results never arrive for a stopped resource (monitors are disarmed).
    with pytest.raises(IllegalTransition):
        process_event(S.STOPPED, E.MONITOR_OK)


@pytest.mark.parametrize("action, ok, not_running, event", [
    ("start", True, False, E.START_OK), ("start", False, False, E.START_FAILED),
    ("stop", True, False, E.STOP_OK), ("stop", False, False, E.STOP_FAILED),
    ("probe", True, False, E.PROBE_RUNNING), ("probe", False, True, E.PROBE_NOT_RUNNING),
    ("probe", False, False, E.PROBE_FAILED),
    ("monitor", True, False, E.MONITOR_OK), ("monitor", False, True, E.MONITOR_NOT_RUNNING),
    ("monitor", False, False, E.MONITOR_FAILED),
])
def test_result_event(action, ok, not_running, event):
    assert result_event(action, ok, not_running) is event


def test_result_event_rejects_other_actions():
    with pytest.raises(ValueError):
        result_event("reload", True, False)
