"""The controller without sockets: fake transport, fake agents, a manual clock."""

from __future__ import annotations

from heartbeat import cib_store
from heartbeat.controller import Controller
from heartbeat.model import (AgentSpec, Cib, ClusterConfig, GroupConfig, LocationConstraint, NodeConfig,
                             ResourceConfig, ResourceState)
from heartbeat.policy import schedule


def config(**extra) -> ClusterConfig:
    dummy = AgentSpec("ocf", "heartbeat", "Dummy")
    return ClusterConfig(
        name="t", nodes=(NodeConfig("n1", ("10.0.0.1",), 1), NodeConfig("n2", ("10.0.0.2",), 2)),
        resources=(ResourceConfig("a", dummy), ResourceConfig("b", dummy)),
        groups=(GroupConfig("g", ("a", "b")),),
        constraints=(LocationConstraint("loc", "g", "n1", 100),), initdead=0, **extra)


class Harness:
    def __init__(self, local="n1", cib=None):
        self.now = 1000.0
        self.sent = []
        self.executed = []
        self.controller = Controller(local, cib or Cib(config()), send=self.send, execute=self.execute,
                                     clock=lambda: self.now, schedule=schedule)

    def send(self, kind, body, to):
        self.sent.append((kind, body, to))

    def execute(self, action_id, kind, resource):
        self.executed.append((action_id, kind, resource))

    def finish(self, index=-1, rc=0):
        action_id, kind, resource = self.executed[index]
        state = ResourceState.STARTED if kind == "start" and rc == 0 else (
            ResourceState.FAILED if rc else ResourceState.STOPPED)
        self.controller.action_done(action_id, kind, resource, rc, "ok" if rc == 0 else "error", state, rc != 0)


def test_dc_is_the_first_online_node_in_config_order():
    h = Harness(local="n2")
    assert h.controller.dc == "n2"
    h.controller.set_online(frozenset({"n1", "n2"}))
    assert h.controller.dc == "n1" and not h.controller.is_dc


def test_dc_starts_group_members_one_step_at_a_time():
    h = Harness()
    h.controller.set_online(frozenset({"n1", "n2"}))
    h.controller.pulse()
    assert [e[1:] for e in h.executed] == [("start", "a")]
    h.controller.pulse()  # nothing new while the step runs
    assert len(h.executed) == 1
    h.finish()
    h.controller.pulse()
    assert [e[1:] for e in h.executed] == [("start", "a"), ("start", "b")]


def test_remote_actions_are_sent_and_retransmitted_until_a_result():
    h = Harness()
    h.controller.set_online(frozenset({"n1", "n2"}))
    h.controller.cib = cib_store.apply_change(h.controller.cib, {"cmd": "move", "resource": "g", "node": "n2"},
                                              h.now)
    h.controller.pulse()
    actions = [s for s in h.sent if s[0] == "action"]
    assert actions and actions[0][2] == "n2" and actions[0][1]["kind"] == "start"
    h.controller.pulse()
    assert len([s for s in h.sent if s[0] == "action"]) == 2  # retransmitted
    action_id = actions[0][1]["id"]
    h.controller.on_message("result", "n2", {"id": action_id, "rc": 0, "failed": False, "lrm_seq": 1,
                                              "resources": [{"resource": "a", "state": "started"}]})
    assert not h.controller.pending


def test_a_node_runs_an_action_id_once_and_resends_its_result():
    h = Harness(local="n2")
    h.controller.set_online(frozenset({"n1", "n2"}))
    body = {"id": "n1:1:a1", "kind": "start", "resource": "a"}
    h.controller.on_message("action", "n1", body)
    h.controller.on_message("action", "n1", body)
    assert len(h.executed) == 1
    h.finish()
    results = [s for s in h.sent if s[0] == "result"]
    assert results[-1][2] == "n1"
    h.controller.on_message("action", "n1", body)
    assert len(h.executed) == 1
    assert [s for s in h.sent if s[0] == "result"][-1][1]["id"] == "n1:1:a1"


def test_monitor_failure_counts_and_is_reported_in_heartbeats():
    h = Harness()
    h.controller.action_done(None, "monitor", "a", 7, "not running", ResourceState.FAILED, True)
    body = h.controller.heartbeat_body()
    assert body["failures"][0]["resource"] == "a" and body["failures"][0]["count"] == 1
    h.controller.cleanup("a", None)
    assert h.controller.heartbeat_body()["failures"] == []


def test_requests_are_refused_with_a_reason():
    h = Harness()
    assert h.controller.apply_request({"cmd": "move", "resource": "nope", "node": "n2"}) == {
        "ok": False, "error": "no such resource: nope"}
    assert h.controller.apply_request({"cmd": "standby", "node": "n9"})["ok"] is False
    before = h.controller.cib.version
    assert h.controller.apply_request({"cmd": "standby", "node": "n2"}) == {"ok": True}
    assert cib_store.newer(h.controller.cib.version, before)


def test_a_higher_cib_version_is_adopted_and_a_lower_one_ignored():
    h = Harness(local="n2")
    newer = cib_store.apply_change(Cib(config()), {"cmd": "standby", "node": "n1"}, 0)
    h.controller.on_message("cib", "n1", cib_store.runtime_to_dict(newer))
    assert h.controller.cib.standby == {"n1"}
    h.controller.on_message("cib", "n1", cib_store.runtime_to_dict(Cib(config())))
    assert h.controller.cib.standby == {"n1"}


def test_failover_is_recorded_when_the_running_node_is_lost():
    h = Harness(local="n2")
    h.controller.set_online(frozenset({"n1", "n2"}))
    h.controller.on_message("hb", "n1", {"lrm_seq": 3, "cib_version": [0, 0, 0], "resources": [
        {"resource": "a", "state": "started"}, {"resource": "b", "state": "started"}]})
    h.controller.pulse()
    h.controller.set_online(frozenset({"n2"}), lost=("n1",))
    h.controller.pulse()
    assert h.controller.last_failover["from"] == "n1"
    assert h.controller.last_failover["to"] == "n2"
    assert h.controller.last_failover["reason"] == "node n1 lost"


def test_cib_store_roundtrip_and_atomic_save(tmp_path):
    cib = cib_store.apply_change(Cib(config()), {"cmd": "move", "resource": "g", "node": "n2",
                                                 "lifetime_ms": 60000}, 100.0)
    cib_store.save(cib, str(tmp_path))
    loaded = cib_store.load(config(), str(tmp_path))
    assert loaded.version == cib.version and loaded.moves == cib.moves
    assert loaded.moves[0].expires == 160.0
    assert not (tmp_path / "cib.json.tmp").exists()
    (tmp_path / "cib.json").write_text("{garbage")
    assert cib_store.load(config(), str(tmp_path)).version.as_tuple() == (0, 0, 0)


def test_status_text_shows_split_brain():
    from heartbeat.status import render_text
    doc = {"cluster": "c", "node": "n1", "dc": "n1", "cib_version": {"admin_epoch": 0, "epoch": 1, "num_updates": 0},
           "nodes": [], "resources": [], "groups": [],
           "split_brain": {"detected": True, "nodes": ["n1", "n2"], "resources": ["vip"]}}
    assert "*** SPLIT BRAIN: vip ran on n1 and n2 at once ***" in render_text(doc)
    doc["split_brain"] = {"detected": False}
    assert "SPLIT BRAIN" not in render_text(doc)
