"""Make-before-break moves: the policy's transition rewritten start-first, and the controller running it."""

from __future__ import annotations

from dataclasses import replace

from heartbeat.controller import Controller
from heartbeat.model import (Action, AgentSpec, Cib, ClusterConfig, ClusterStatus, GroupConfig, LocationConstraint,
                             MoveConstraint, NodeConfig, OrderConstraint, ResourceConfig, ResourceState,
                             ResourceStatus)
from heartbeat.policy import schedule
from heartbeat.policy.make_before_break import DRAIN_MS, drains, opted_in, reorder, why_not

NODES = (NodeConfig("n1", ("10.0.0.1",), 1), NodeConfig("n2", ("10.0.0.2",), 2))
VIP = ResourceConfig("vip", AgentSpec("ocf", "gproxy", "vip"))
PROXY = ResourceConfig("proxy", AgentSpec("ocf", "gproxy", "gproxy"), clone_max=0)


def config(**extra) -> ClusterConfig:
    values = dict(name="t", nodes=NODES, resources=(VIP, PROXY),
                  constraints=(LocationConstraint("loc", "vip", "n1", 100),), initdead=0)
    values.update(extra)
    return ClusterConfig(**values)


def running(*pairs: tuple[str, str], online=("n1", "n2")) -> ClusterStatus:
    return ClusterStatus(online=frozenset(online),
                         resources=tuple(ResourceStatus(r, n, ResourceState.STARTED) for r, n in pairs))


def steps(transition) -> list[list[str]]:
    return [[str(a) for a in step] for step in transition.steps]


def test_a_move_starts_on_the_new_node_before_stopping_on_the_old():
    cfg = config()
    cib = Cib(cfg, moves=(MoveConstraint("vip", "n2"),))
    plain = schedule(cib, running(("vip", "n1"), ("proxy", "n1"), ("proxy", "n2")), 0.0)
    assert steps(plain) == [["stop vip on n1"], ["start vip on n2"]]
    moved = reorder(plain, cfg, frozenset({"vip"}))
    assert steps(moved) == [["quiesce vip on n1"], ["start vip on n2"], ["stop vip on n1"]]
    assert moved.placement == plain.placement
    assert any("make-before-break" in r for r in moved.reasons)


def test_without_the_setting_the_transition_is_unchanged():
    cfg = config()
    cib = Cib(cfg, moves=(MoveConstraint("vip", "n2"),))
    plain = schedule(cib, running(("vip", "n1"), ("proxy", "n1"), ("proxy", "n2")), 0.0)
    assert reorder(plain, cfg, frozenset()) is plain
    assert reorder(plain, cfg, frozenset({"other"})) == plain


def test_failback_starts_the_clone_on_the_returning_node_before_the_address():
    cfg = config()
    # n1 is back: the clone runs only on n2 so far, and so does the address.
    plain = schedule(Cib(cfg), running(("vip", "n2"), ("proxy", "n2")), 0.0)
    assert steps(plain) == [["stop vip on n2"], ["start vip on n1"], ["start proxy on n1"]]
    moved = reorder(plain, cfg, frozenset({"vip"}))
    assert steps(moved) == [["start proxy on n1"], ["quiesce vip on n2"], ["start vip on n1"], ["stop vip on n2"]]


def test_standby_keeps_the_clone_on_the_old_node_until_the_address_left():
    cfg = config()
    cib = Cib(cfg, standby=frozenset({"n1"}))
    plain = schedule(cib, running(("vip", "n1"), ("proxy", "n1"), ("proxy", "n2")), 0.0)
    assert steps(plain) == [["stop proxy on n1"], ["stop vip on n1"], ["start vip on n2"]]
    moved = reorder(plain, cfg, frozenset({"vip"}))
    assert steps(moved) == [["quiesce vip on n1"], ["start vip on n2"], ["stop vip on n1"], ["stop proxy on n1"]]


def test_a_failover_from_a_lost_node_is_a_plain_start():
    cfg = config()
    plain = schedule(Cib(cfg), running(("proxy", "n2"), online=("n2",)), 0.0)
    assert reorder(plain, cfg, frozenset({"vip"})) == plain
    assert steps(plain) == [["start vip on n2"]]


def test_a_recovery_in_place_stops_first():
    cfg = config()
    status = ClusterStatus(online=frozenset({"n1", "n2"}), resources=(
        ResourceStatus("vip", "n1", ResourceState.FAILED, 1), ResourceStatus("proxy", "n1", ResourceState.STARTED),
        ResourceStatus("proxy", "n2", ResourceState.STARTED)))
    plain = schedule(Cib(cfg), status, 0.0)
    assert steps(plain) == [["stop vip on n1"], ["start vip on n1"]]
    assert reorder(plain, cfg, frozenset({"vip"})) == plain


def test_group_members_clones_and_ordered_resources_cannot_opt_in():
    dummy = AgentSpec("ocf", "heartbeat", "Dummy")
    cfg = config(resources=(VIP, PROXY, ResourceConfig("a", dummy), ResourceConfig("b", dummy),
                            ResourceConfig("c", dummy)),
                 groups=(GroupConfig("g", ("a", "b")),),
                 constraints=(OrderConstraint("o1", "vip", "c"),))
    assert "group g" in why_not(cfg, "a")
    assert "order constraint o1" in why_not(cfg, "vip")
    assert "clone" in why_not(cfg, "proxy")
    assert why_not(cfg, "c") is not None and why_not(cfg, "nope") == "nope: no such resource"
    assert opted_in(cfg, ("a", "vip", "proxy", "c")) == frozenset()
    assert opted_in(config(), ("vip",)) == frozenset({"vip"})
    # Ordered after the clone it fronts (the recommended layout): allowed.
    assert why_not(config(constraints=(OrderConstraint("o", "proxy", "vip"),)), "vip") is None


def test_the_configuration_key_opts_in():
    flagged = ResourceConfig("vip", VIP.agent, make_before_break=True)
    assert opted_in(config(resources=(flagged, PROXY))) == frozenset({"vip"})


def test_only_the_stop_after_the_start_elsewhere_drains():
    start, stop = Action("start", "vip", "n2"), Action("stop", "vip", "n1")
    assert drains((stop,), (start,), frozenset({"vip"}))
    assert not drains((stop,), (start,), frozenset())
    assert not drains((stop,), (Action("start", "vip", "n1"),), frozenset({"vip"}))
    assert not drains((Action("stop", "proxy", "n1"),), (stop,), frozenset({"vip"}))


class Harness:
    def __init__(self, cib: Cib, names=("vip",)):
        self.now = 1000.0
        self.executed: list[tuple[str, str, str]] = []
        self.sent: list[tuple[str, dict, str | None]] = []
        self.controller = Controller("n1", cib, send=lambda k, b, t: self.sent.append((k, b, t)),
                                     execute=lambda i, k, r: self.executed.append((i, k, r)),
                                     clock=lambda: self.now, schedule=schedule, make_before_break=frozenset(names))
        self.controller.set_online(frozenset({"n1", "n2"}))

    def finish_quiesce(self) -> None:
        action_id, kind, resource = self.executed[-1]
        assert kind == "quiesce"
        self.controller.action_done(action_id, kind, resource, 0, "ok", ResourceState.STARTED, False)

    def report(self, node: str, *resources: str, seq: int = 1) -> None:
        self.controller.on_message("hb", node, {"lrm_seq": seq, "cib_version": list(
            self.controller.cib.version.as_tuple()), "resources": [
            {"resource": r, "state": "started"} for r in resources]})


def test_the_controller_runs_the_start_on_the_new_node_then_the_stop_on_the_old():
    h = Harness(Cib(config(), moves=(MoveConstraint("vip", "n2"),)))
    h.controller.set_local_status([ResourceStatus("vip", "n1", ResourceState.STARTED),
                                   ResourceStatus("proxy", "n1", ResourceState.STARTED)])
    h.report("n2", "proxy")
    h.controller.pulse()
    assert [(k, r) for _, k, r in h.executed] == [("quiesce", "vip")]  # no new connections on n1
    h.finish_quiesce()
    h.controller.pulse()
    actions = [(b["kind"], b["resource"], to) for k, b, to in h.sent if k == "action"]
    assert actions == [("start", "vip", "n2")]
    action_id = next(b["id"] for k, b, _ in h.sent if k == "action")
    h.controller.on_message("result", "n2", {"id": action_id, "rc": 0, "failed": False, "lrm_seq": 2,
                                              "resources": [{"resource": "vip", "state": "started"},
                                                            {"resource": "proxy", "state": "started"}]})
    h.controller.pulse()
    assert len(h.executed) == 1  # the old node keeps the address while requests in flight there finish
    h.now += DRAIN_MS / 1000 - 0.01
    h.controller.pulse()
    assert len(h.executed) == 1
    h.now += 0.02
    h.controller.pulse()
    assert [(k, r) for _, k, r in h.executed] == [("quiesce", "vip"), ("stop", "vip")]


def test_a_failed_start_on_the_new_node_leaves_the_address_where_it_was():
    h = Harness(Cib(config(), moves=(MoveConstraint("vip", "n2"),)))
    h.controller.set_local_status([ResourceStatus("vip", "n1", ResourceState.STARTED),
                                   ResourceStatus("proxy", "n1", ResourceState.STARTED)])
    h.report("n2", "proxy")
    h.controller.pulse()
    h.finish_quiesce()
    h.controller.pulse()
    action_id = next(b["id"] for k, b, _ in h.sent if k == "action")
    # The result carries the fail count (INFINITY after a failed start): n2 is banned at once.
    h.controller.on_message("result", "n2", {"id": action_id, "rc": 1, "failed": True, "lrm_seq": 2,
                                              "resources": [{"resource": "vip", "state": "failed"},
                                                            {"resource": "proxy", "state": "started"}],
                                              "failures": [{"resource": "vip", "count": 1_000_000, "at": h.now,
                                                            "rc": 1}]})
    h.controller.pulse()
    assert [k for _, k, _ in h.executed] == ["quiesce"]  # the transition failed: the stop on n1 never ran
    assert [b["kind"] for k, b, _ in h.sent if k == "action"][-1] == "stop"  # only the failed copy on n2


def test_the_controller_without_the_setting_stops_first():
    h = Harness(Cib(config(), moves=(MoveConstraint("vip", "n2"),)), names=())
    h.controller.set_local_status([ResourceStatus("vip", "n1", ResourceState.STARTED)])
    h.report("n2", "proxy")
    h.controller.pulse()
    assert [(k, r) for _, k, r in h.executed] == [("stop", "vip")]
    assert replace(h.controller.cib).moves  # the move is still asked for


def _lrm_with(rc: int):
    """An LRM whose agent answers `rc` to quiesce (start succeeds)."""
    from heartbeat.lrm.lrm import LocalResourceManager
    from heartbeat.lrm.runner import ActionResult

    calls = []

    def executor(res, action, timeout_ms, interval_ms=0, ocf_root=None, extra_env=None):
        calls.append(action)
        code = rc if action == "quiesce" else 0
        return ActionResult(res.id, action, code, False, 1, "", "ok" if code == 0 else f"exit {code}", 0)

    lrm = LocalResourceManager("n1", (VIP,), lambda result: None, executor=executor)
    lrm.execute("start", "vip")
    return lrm, calls


def test_quiesce_runs_the_agent_and_leaves_the_state_alone():
    lrm, calls = _lrm_with(0)
    result = lrm.execute("quiesce", "vip")
    assert result.rc == 0 and calls == ["start", "quiesce"]
    assert lrm.state("vip") == ResourceState.STARTED


def test_an_agent_without_quiesce_or_a_failed_quiesce_does_not_stop_the_move():
    for rc in (3, 1):
        lrm, _ = _lrm_with(rc)
        result = lrm.execute("quiesce", "vip")
        assert result.rc == 0 and ("no quiesce action" in result.reason or "ignored" in result.reason)
        assert lrm.state("vip") == ResourceState.STARTED
