"""The local resource manager (heartbeat/lrm/lrm.py) with a fake executor:
lifecycle bookkeeping, per-resource serialisation, probes and recurring
monitors, without running any agent."""

from __future__ import annotations

from collections import deque

import gevent
import pytest
from gevent.event import Event

from heartbeat.errors import AgentError, IllegalTransition
from heartbeat.lrm.codes import OcfRc
from heartbeat.lrm.lrm import LocalResourceManager
from heartbeat.lrm.runner import ActionResult
from heartbeat.model import AgentSpec, Operation, ResourceConfig, ResourceState as S

WAIT = 5.0  # seconds: only a bound against hangs, never a timing assertion


def resource(rid: str, interval: int = 10_000, timeout: int = 3000) -> ResourceConfig:
    monitor = Operation("monitor", interval=interval, timeout=timeout) if interval is not None else None
    return ResourceConfig(id=rid, agent=AgentSpec("ocf", "test", "Dummy"), monitor=monitor,
                          start=Operation("start", timeout=1111), stop=Operation("stop", timeout=2222))


class FakeExecutor:
    """Answers from per-(resource, action) scripts of codes; records every call."""

    def __init__(self):
        self.codes: dict[tuple[str, str], deque] = {}
        self.default: dict[str, int] = {"start": 0, "stop": 0, "monitor": 0, "probe": OcfRc.NOT_RUNNING}
        self.calls: list[tuple[str, str, int, int, dict]] = []
        self.gates: dict[tuple[str, str], Event] = {}
        self.running: set[str] = set()
        self.overlaps = 0

    def script(self, rid: str, action: str, *codes) -> None:
        self.codes[(rid, action)] = deque(codes)

    def __call__(self, res, action, timeout_ms, interval_ms=0, ocf_root=None, extra_env=None):
        self.calls.append((res.id, action, timeout_ms, interval_ms, dict(extra_env or {})))
        if res.id in self.running:
            self.overlaps += 1
        self.running.add(res.id)
        try:
            gate = self.gates.get((res.id, action))
            if gate is not None:
                gate.wait(WAIT)
            queue = self.codes.get((res.id, action))
            code = queue.popleft() if queue else self.default[action]
            timed_out = code == "timeout"
            rc = OcfRc.ERR_GENERIC if timed_out else code
            reason = "timed out" if timed_out else ("ok" if rc == 0 else f"exit {rc}")
            return ActionResult(res.id, action, rc, timed_out, 1, "", reason, interval_ms)
        finally:
            self.running.discard(res.id)

    def actions(self, rid: str | None = None) -> list[str]:
        return [c[1] for c in self.calls if rid is None or c[0] == rid]


@pytest.fixture
def fake():
    return FakeExecutor()


@pytest.fixture
def reports():
    return []


@pytest.fixture
def make_lrm(fake, reports):
    made = []

    def make(*resources):
        lrm = LocalResourceManager("n1", resources, reports.append, ocf_root="/x", executor=fake)
        made.append(lrm)
        return lrm

    yield make
    for lrm in made:
        lrm.stop_monitors()


def states(lrm):
    return {s.resource: s.state for s in lrm.status()}


# ---- probes ----------------------------------------------------------------------

def test_probe_all_learns_what_runs(make_lrm, fake):
    lrm = make_lrm(resource("a"), resource("b"), resource("c"), resource("d"))
    fake.script("a", "probe", 0)
    fake.script("b", "probe", 7)
    fake.script("c", "probe", 1)
    fake.script("d", "probe", 5)  # not installed here: cannot be running here
    found = lrm.probe_all()
    assert {rid: st.state for rid, st in found.items()} == {
        "a": S.STARTED, "b": S.STOPPED, "c": S.FAILED, "d": S.STOPPED}
    assert found["d"].rc == OcfRc.ERR_INSTALLED and found["d"].node == "n1"
    assert found["c"].reason == "exit 1"
    # A resource found running is monitored from then on; the others are not.
    assert lrm.monitor_armed("a") and not lrm.monitor_armed("b") and not lrm.monitor_armed("c")
    assert all(c[3] == 0 for c in fake.calls)  # probes have interval 0
    assert all(c[4] == {"OCF_RESKEY_CRM_meta_on_node": "n1"} for c in fake.calls)


def test_probe_uses_the_monitor_timeout(make_lrm, fake):
    lrm = make_lrm(resource("a", timeout=4321), resource("b", interval=None))
    lrm.probe_all()
    timeouts = {c[0]: c[2] for c in fake.calls}
    assert timeouts == {"a": 4321, "b": 20_000}


# ---- start / stop ------------------------------------------------------------------

def test_start_then_stop(make_lrm, fake, reports):
    lrm = make_lrm(resource("a"))
    result = lrm.execute("start", "a")
    assert result.rc == 0 and lrm.state("a") is S.STARTED
    assert lrm.monitor_armed("a")
    assert fake.calls[-1][1:4] == ("start", 1111, 0)
    result = lrm.execute("stop", "a")
    assert result.rc == 0 and lrm.state("a") is S.STOPPED
    assert not lrm.monitor_armed("a")
    assert fake.calls[-1][1:3] == ("stop", 2222)
    assert reports == []  # execute() returns its results; the callback is for monitors


def test_no_monitor_op_means_no_recurring_monitor(make_lrm):
    lrm = make_lrm(resource("a", interval=None), resource("b", interval=0))
    lrm.execute("start", "a")
    lrm.execute("start", "b")
    assert not lrm.monitor_armed("a") and not lrm.monitor_armed("b")


def test_a_failed_start_must_be_stopped_before_starting_again(make_lrm, fake):
    lrm = make_lrm(resource("a"))
    fake.script("a", "start", OcfRc.ERR_CONFIGURED)
    result = lrm.execute("start", "a")
    assert result.rc == OcfRc.ERR_CONFIGURED and lrm.state("a") is S.FAILED
    assert not lrm.monitor_armed("a")
    calls = len(fake.calls)
    with pytest.raises(IllegalTransition):
        lrm.execute("start", "a")
    assert len(fake.calls) == calls  # refused before any agent ran
    lrm.execute("stop", "a")
    assert lrm.state("a") is S.STOPPED
    lrm.execute("start", "a")
    assert lrm.state("a") is S.STARTED


def test_a_start_timeout_is_a_failure(make_lrm, fake):
    lrm = make_lrm(resource("a"))
    fake.script("a", "start", "timeout")
    result = lrm.execute("start", "a")
    assert result.timed_out and lrm.state("a") is S.FAILED
    status = lrm.status()[0]
    assert status.rc == OcfRc.ERR_GENERIC and status.reason == "timed out"


def test_a_failed_stop_leaves_the_resource_failed(make_lrm, fake):
    lrm = make_lrm(resource("a"))
    lrm.execute("start", "a")
    fake.script("a", "stop", 1)
    lrm.execute("stop", "a")
    assert lrm.state("a") is S.FAILED and not lrm.monitor_armed("a")


def test_monitor_of_a_stopped_resource_is_a_probe(make_lrm, fake):
    lrm = make_lrm(resource("a"))
    result = lrm.execute("monitor", "a")
    assert result.action == "probe" and result.rc == OcfRc.NOT_RUNNING
    assert lrm.state("a") is S.STOPPED
    lrm.execute("start", "a")
    fake.script("a", "monitor", 7)
    result = lrm.execute("monitor", "a")
    assert result.action == "monitor" and result.interval_ms == 10_000
    assert lrm.state("a") is S.FAILED


def test_unknown_resource_and_action(make_lrm):
    lrm = make_lrm(resource("a"))
    with pytest.raises(AgentError):
        lrm.execute("start", "nope")
    with pytest.raises(ValueError):
        lrm.execute("promote", "a")


# ---- serialisation -------------------------------------------------------------------

def test_actions_on_one_resource_never_overlap(make_lrm, fake):
    lrm = make_lrm(resource("a"))
    gate = fake.gates[("a", "start")] = Event()
    starting = gevent.spawn(lrm.execute, "start", "a")
    gevent.sleep(0)  # let the start begin and block in the agent
    assert lrm.state("a") is S.STARTING
    stopping = gevent.spawn(lrm.execute, "stop", "a")
    gevent.sleep(0)
    assert fake.actions("a") == ["start"]  # the stop waits for the start
    gate.set()
    gevent.joinall([starting, stopping], timeout=WAIT, raise_error=True)
    assert fake.actions("a") == ["start", "stop"]
    assert fake.overlaps == 0
    assert lrm.state("a") is S.STOPPED


def test_different_resources_run_in_parallel(make_lrm, fake):
    lrm = make_lrm(resource("a"), resource("b"))
    gate = fake.gates[("a", "start")] = Event()
    slow = gevent.spawn(lrm.execute, "start", "a")
    gevent.sleep(0)
    fast = lrm.execute("start", "b")  # not blocked by a's start in flight
    assert fast.rc == 0 and lrm.state("b") is S.STARTED
    assert lrm.state("a") is S.STARTING
    gate.set()
    slow.join(WAIT)
    assert lrm.state("a") is S.STARTED


# ---- recurring monitors ------------------------------------------------------------------

def test_recurring_monitor_reports_changes_only(make_lrm, fake, reports):
    lrm = make_lrm(resource("a"))
    lrm.execute("start", "a")
    fake.script("a", "monitor", 0, 7, 7, 1, 0)
    assert lrm.run_monitor_once("a").rc == 0
    assert reports == [] and lrm.state("a") is S.STARTED
    lrm.run_monitor_once("a")
    assert [(r.action, r.rc, r.interval_ms) for r in reports] == [("monitor", 7, 10_000)]
    assert lrm.state("a") is S.FAILED
    lrm.run_monitor_once("a")  # the same failure again: no second report
    assert len(reports) == 1
    lrm.run_monitor_once("a")  # a different failure
    assert [r.rc for r in reports] == [7, 1]
    lrm.run_monitor_once("a")  # it came back by itself: reported, but still failed until stopped
    assert [r.rc for r in reports] == [7, 1, 0]
    assert lrm.state("a") is S.FAILED
    assert fake.calls[-1][1:4] == ("monitor", 3000, 10_000)


def test_a_monitor_timeout_is_reported(make_lrm, fake, reports):
    lrm = make_lrm(resource("a"))
    lrm.execute("start", "a")
    fake.script("a", "monitor", "timeout")
    lrm.run_monitor_once("a")
    assert len(reports) == 1 and reports[0].timed_out
    assert lrm.state("a") is S.FAILED


def test_the_monitor_greenlet_runs_every_interval(make_lrm, fake, reports):
    lrm = make_lrm(resource("a", interval=1))
    failed = Event()
    lrm._on_result = lambda result: (reports.append(result), failed.set())
    fake.script("a", "monitor", 0, 0, 1)
    lrm.execute("start", "a")
    assert failed.wait(WAIT), "the recurring monitor never reported"
    assert fake.actions("a")[:4] == ["start", "monitor", "monitor", "monitor"]
    assert reports[0].rc == 1 and lrm.state("a") is S.FAILED


def test_stop_disarms_the_monitor(make_lrm, fake):
    lrm = make_lrm(resource("a", interval=1))
    lrm.execute("start", "a")
    greenlet = lrm._entries["a"].monitor.greenlet
    lrm.execute("stop", "a")
    greenlet.join(WAIT)
    assert greenlet.dead
    count = len(fake.calls)
    assert lrm.run_monitor_once("a") is None
    assert len(fake.calls) == count


def test_a_broken_callback_does_not_stop_monitoring(make_lrm, fake):
    lrm = make_lrm(resource("a"))

    def broken(result):
        raise RuntimeError("controller bug")

    lrm._on_result = broken
    lrm.execute("start", "a")
    fake.script("a", "monitor", 7, 0)
    assert lrm.run_monitor_once("a").rc == 7
    assert lrm.run_monitor_once("a").rc == 0


def test_stop_monitors(make_lrm, fake):
    lrm = make_lrm(resource("a", interval=1), resource("b", interval=1))
    lrm.execute("start", "a")
    lrm.execute("start", "b")
    greenlets = [lrm._entries[rid].monitor.greenlet for rid in ("a", "b")]
    lrm.stop_monitors()
    assert not lrm.monitor_armed("a") and not lrm.monitor_armed("b")
    assert all(g.dead for g in greenlets)  # stop_monitors() waits for them
    assert states(lrm) == {"a": S.STARTED, "b": S.STARTED}  # stopping monitors stops no resource


# ---- configuration changes -------------------------------------------------------------

def test_update_resources(make_lrm, fake):
    lrm = make_lrm(resource("a"), resource("b"))
    lrm.execute("start", "a")
    lrm.execute("start", "b")
    old_monitor = lrm._entries["a"].monitor
    lrm.update_resources([resource("a", interval=20_000), resource("c")])
    assert [s.resource for s in lrm.status()] == ["a", "c"]
    assert lrm.state("a") is S.STARTED and lrm.state("c") is S.STOPPED
    new_monitor = lrm._entries["a"].monitor
    assert new_monitor is not old_monitor and new_monitor.op.interval == 20_000
    assert old_monitor.cancelled.is_set()
    with pytest.raises(AgentError):
        lrm.execute("stop", "b")


def test_update_without_monitor_change_keeps_the_monitor(make_lrm):
    lrm = make_lrm(resource("a"))
    lrm.execute("start", "a")
    monitor = lrm._entries["a"].monitor
    changed = ResourceConfig(id="a", agent=AgentSpec("ocf", "test", "Dummy"), params=(("x", "1"),),
                             monitor=Operation("monitor", interval=10_000, timeout=3000))
    lrm.update_resources([changed])
    assert lrm._entries["a"].monitor is monitor
    assert lrm._entries["a"].config.param("x") == "1"
