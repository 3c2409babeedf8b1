"""OCF/LSB codes, Pacemaker's LSB mapping and the recovery classes
(heartbeat/lrm/codes.py), against reference cluster.md 2.2 and 2.7."""

from __future__ import annotations

import pytest

from heartbeat.lrm.codes import (LsbStatusRc, OcfRc, Recovery, as_ocf, describe, is_failure, lsb_to_ocf,
                                 recovery)


def test_ocf_codes_have_the_ocf_values():
    assert [int(c) for c in (OcfRc.SUCCESS, OcfRc.ERR_GENERIC, OcfRc.ERR_ARGS, OcfRc.ERR_UNIMPLEMENTED,
                             OcfRc.ERR_PERM, OcfRc.ERR_INSTALLED, OcfRc.ERR_CONFIGURED, OcfRc.NOT_RUNNING,
                             OcfRc.RUNNING_PROMOTED, OcfRc.FAILED_PROMOTED)] == list(range(10))
    assert OcfRc.DEGRADED == 190 and OcfRc.DEGRADED_PROMOTED == 191


@pytest.mark.parametrize("rc, expected", [
    (0, OcfRc.SUCCESS),
    (1, OcfRc.NOT_RUNNING),  # dead, pid file left behind
    (2, OcfRc.NOT_RUNNING),  # dead, lock file left behind
    (3, OcfRc.NOT_RUNNING),
    (4, OcfRc.ERR_GENERIC),  # "unknown" is a failure, not "stopped"
    (5, OcfRc.ERR_GENERIC),
    (150, OcfRc.ERR_INSTALLED),
    (151, OcfRc.ERR_PERM),
    (255, OcfRc.ERR_GENERIC),
])
def test_lsb_status_mapping(rc, expected):
    for action in ("monitor", "probe", "status"):
        assert lsb_to_ocf(action, rc) is expected


@pytest.mark.parametrize("rc, expected", [(0, 0), (1, 1), (3, 3), (5, 5), (6, 6), (7, 7), (8, 1), (99, 1), (150, 1)])
def test_lsb_other_actions_pass_0_to_7_through(rc, expected):
    assert lsb_to_ocf("start", rc) == expected
    assert lsb_to_ocf("stop", rc) == expected


@pytest.mark.parametrize("rc, klass", [
    (OcfRc.SUCCESS, Recovery.NONE),
    (OcfRc.DEGRADED, Recovery.NONE),
    (OcfRc.DEGRADED_PROMOTED, Recovery.NONE),
    (OcfRc.ERR_GENERIC, Recovery.SOFT),
    (OcfRc.ERR_ARGS, Recovery.HARD),
    (OcfRc.ERR_UNIMPLEMENTED, Recovery.HARD),
    (OcfRc.ERR_PERM, Recovery.HARD),
    (OcfRc.ERR_INSTALLED, Recovery.HARD),
    (OcfRc.ERR_CONFIGURED, Recovery.FATAL),
    (OcfRc.NOT_RUNNING, Recovery.SOFT),
    (OcfRc.RUNNING_PROMOTED, Recovery.SOFT),
    (OcfRc.FAILED_PROMOTED, Recovery.SOFT),
    (42, Recovery.SOFT),
])
def test_recovery_classes(rc, klass):
    assert recovery(rc) is klass


def test_timeouts_are_soft_whatever_the_code():
    assert recovery(0, timed_out=True) is Recovery.SOFT
    assert recovery(OcfRc.ERR_CONFIGURED, timed_out=True) is Recovery.SOFT


def test_success_is_a_failure_when_something_else_was_expected():
    # A probe expected "not running" on a node where the resource must not be.
    assert recovery(OcfRc.SUCCESS, expected=OcfRc.NOT_RUNNING) is Recovery.SOFT
    assert recovery(OcfRc.NOT_RUNNING, expected=OcfRc.NOT_RUNNING) is Recovery.NONE
    assert recovery(OcfRc.DEGRADED, expected=OcfRc.NOT_RUNNING) is Recovery.SOFT


def test_is_failure():
    assert not is_failure("start", 0)
    assert is_failure("start", 0, timed_out=True)
    assert is_failure("monitor", OcfRc.NOT_RUNNING)
    assert not is_failure("probe", OcfRc.NOT_RUNNING)  # an answer, not a failure
    assert is_failure("probe", OcfRc.ERR_GENERIC)
    assert not is_failure("monitor", OcfRc.DEGRADED)
    assert is_failure("stop", 1)


def test_describe_and_as_ocf():
    assert describe(7) == "not running"
    assert describe(6) == "not configured"
    assert describe(42) == "exit 42"
    assert as_ocf(5) is OcfRc.ERR_INSTALLED
    assert as_ocf(42) == 42 and not isinstance(as_ocf(42), OcfRc)
    assert LsbStatusRc.NOT_RUNNING == 3
