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
