"""Split brain reported by the controller: a node back from a partition
whose first report shows a primitive that also runs here."""

from __future__ import annotations

from dataclasses import replace

from test_hb_controller import Harness, config

from heartbeat.model import Cib, ResourceState, ResourceStatus

BOTH_RUNNING = [{"resource": "a", "state": "started"}, {"resource": "b", "state": "started"}]


def run_here(h: Harness, *resources: str) -> None:
    for rid in resources:
        h.controller.local_resources[rid] = ResourceStatus(rid, h.controller.local, ResourceState.STARTED)


def hb(h: Harness, sender: str, seq: int, resources: list[dict]) -> None:
    h.controller.on_message("hb", sender, {"lrm_seq": seq, "cib_version": [0, 0, 0], "resources": resources})


def partition_then_heal(h: Harness) -> None:
    h.controller.set_online(frozenset({"n1", "n2"}))
    hb(h, "n2", 1, [])
    h.controller.set_online(frozenset({"n1"}), lost=("n2",))
    run_here(h, "a", "b")
    h.controller.set_online(frozenset({"n1", "n2"}))


def test_a_primitive_running_on_both_sides_after_a_partition_is_split_brain():
    h = Harness()
    partition_then_heal(h)
    assert h.controller.split_brain is None
    hb(h, "n2", 5, BOTH_RUNNING)
    assert h.controller.split_brain == {"detected": True, "at": h.now, "nodes": ["n1", "n2"],
                                        "resources": ["a", "b"]}


def test_the_flag_stays_after_the_dc_stops_one_copy():
    h = Harness()
    partition_then_heal(h)
    hb(h, "n2", 5, BOTH_RUNNING)
    hb(h, "n2", 6, [])
    assert h.controller.split_brain["detected"] is True


def test_no_split_brain_when_the_returning_node_runs_nothing_or_other_things():
    h = Harness()
    partition_then_heal(h)
    hb(h, "n2", 5, [{"resource": "a", "state": "stopped"}])
    assert h.controller.split_brain is None


def test_stale_reports_in_normal_operation_are_not_split_brain():
    """During a migration a peer's heartbeat may still show what it just
    stopped while this node starts it: not a partition, not reported."""
    h = Harness()
    h.controller.set_online(frozenset({"n1", "n2"}))
    hb(h, "n2", 1, [])
    run_here(h, "a")
    hb(h, "n2", 2, BOTH_RUNNING)
    assert h.controller.split_brain is None


def test_clones_run_on_both_sides_by_design():
    base = config()
    cloned = replace(base, resources=tuple(replace(r, clone_max=0) if r.id == "a" else r for r in base.resources),
                     groups=())
    h = Harness(cib=Cib(cloned))
    partition_then_heal(h)
    hb(h, "n2", 5, BOTH_RUNNING)
    assert h.controller.split_brain == {"detected": True, "at": h.now, "nodes": ["n1", "n2"], "resources": ["b"]}


def test_a_peers_report_is_adopted_and_carried_in_heartbeats():
    seen = Harness()
    partition_then_heal(seen)
    hb(seen, "n2", 5, BOTH_RUNNING)
    assert seen.controller.heartbeat_body()["split_brain"] == seen.controller.split_brain
    other = Harness(local="n2")
    other.controller.set_online(frozenset({"n1", "n2"}))
    other.controller.on_message("hb", "n1", seen.controller.heartbeat_body())
    assert other.controller.split_brain == seen.controller.split_brain
    assert "split_brain" not in Harness().controller.heartbeat_body()


def test_clear_split_brain_is_refused_when_none_is_recorded():
    h = Harness()
    assert h.controller.apply_request({"cmd": "clear-split-brain"}) == {
        "ok": False, "error": "no split brain is recorded"}
    assert h.controller.split_brain is None


def test_a_cleared_split_brain_travels_to_every_node_and_does_not_come_back():
    dc = Harness()
    partition_then_heal(dc)
    hb(dc, "n2", 5, BOTH_RUNNING)
    detected_body = dc.controller.heartbeat_body()
    peer = Harness(local="n2")
    peer.controller.set_online(frozenset({"n1", "n2"}))
    peer.controller.on_message("hb", "n1", detected_body)
    assert peer.controller.split_brain["detected"] is True

    dc.now += 60
    assert dc.controller.apply_request({"cmd": "clear-split-brain"}) == {"ok": True}
    assert dc.controller.split_brain == {"detected": False, "cleared": True, "at": dc.now}
    kind, body, to = dc.sent[-1]
    assert (kind, to) == ("hb", None) and body["split_brain"]["detected"] is False  # sent at once
    peer.controller.on_message("hb", "n1", body)
    assert peer.controller.split_brain["detected"] is False
    # An older heartbeat still carrying the detection does not bring it back, on either node.
    peer.controller.on_message("hb", "n1", detected_body)
    dc.controller.on_message("hb", "n2", {**detected_body, "lrm_seq": 7})
    assert not peer.controller.split_brain["detected"] and not dc.controller.split_brain["detected"]
    # A node that never saw the split brain does not take a clearing as one.
    fresh = Harness(local="n2")
    fresh.controller.on_message("hb", "n1", body)
    assert not (fresh.controller.split_brain or {}).get("detected")


def test_a_new_split_brain_after_a_clearing_is_recorded_again():
    h = Harness()
    partition_then_heal(h)
    hb(h, "n2", 5, BOTH_RUNNING)
    h.now += 10
    h.controller.clear_split_brain(h.now)
    h.now += 10
    h.controller.set_online(frozenset({"n1"}), lost=("n2",))
    h.controller.set_online(frozenset({"n1", "n2"}))
    hb(h, "n2", 9, BOTH_RUNNING)
    assert h.controller.split_brain == {"detected": True, "at": h.now, "nodes": ["n1", "n2"],
                                        "resources": ["a", "b"]}
