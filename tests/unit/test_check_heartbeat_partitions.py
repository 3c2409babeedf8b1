"""check_heartbeat on partitions: quorum (by no_quorum_policy), fencing results, split brain and clone
placement, from status documents built by heartbeat.status itself (tests/checks_data/heartbeat-*.json:
a three-node cluster with the fencing of a lost node failed, a node alone, a healed partition)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from checks import cluster_eval
from checks.cluster_eval import CRITICAL, WARNING
from checks.cluster_model import (ClonePlacement, Quorum, StatusFormatError, from_status_json)
import test_check_heartbeat
from test_check_heartbeat import first, run_check

cluster = test_check_heartbeat.cluster  # the fixture serving a saved document as heartbeat's status socket

DATA = Path(__file__).resolve().parents[1] / "checks_data"
NOW = 1795532418.25


def doc(name: str) -> dict:
    return json.loads((DATA / f"heartbeat-{name}.json").read_text())


def states(findings) -> dict[str, int]:
    return {f.subject: f.state for f in findings}


# ------------------------------------------------------------------ the model

def test_partition_fields_are_read():
    status = from_status_json(doc("fencing-failed"))
    assert status.quorum is True
    assert status.quorum_detail == Quorum(True, 2, 3, "majority of votes", "stop")
    (run,) = status.fencing
    assert (run.node, run.state, run.at) == ("esup-proxy-1", "failed", 1795532400.0)
    assert run.reason.startswith("/usr/sbin/fence_ipmilan exited 1")
    assert status.split_brain is None
    assert status.clones == (ClonePlacement("proxy", 3, ("esup-proxy-1", "esup-proxy-2", "esup-proxy-3"),
                                            ("esup-proxy-2", "esup-proxy-3"), ()),)
    split = from_status_json(doc("split-brain-clone")).split_brain
    assert split is not None and split.nodes == ("esup-proxy-1", "esup-proxy-2") and split.resources == ("vip",)


def test_older_and_malformed_partition_fields():
    base = doc("ok")
    assert from_status_json(base).quorum_detail is None  # documents before quorum existed
    assert from_status_json({**base, "quorum": False}).quorum is False  # a bare boolean
    with pytest.raises(StatusFormatError, match="'quorum' has no boolean 'have'"):
        from_status_json({**base, "quorum": {"votes": 1}})
    with pytest.raises(StatusFormatError, match="'fencing' is not an object"):
        from_status_json({**base, "fencing": []})
    assert from_status_json({**base, "split_brain": {"detected": False}}).split_brain is None


def test_a_cloned_group_is_one_clone_complete_where_every_member_runs():
    base = doc("ok")
    members = []
    for item, nodes in zip(base["resources"], (["a", "b"], ["a", "b"], ["b"])):
        members.append({**item, "clone": {"max": 2, "nodes": nodes, "failed": []}, "clone_eligible": ["a", "b"]})
    status = from_status_json({**base, "resources": members})
    assert status.clones == (ClonePlacement("esup", 2, ("b",), ("a", "b"), ()),)
    assert states(cluster_eval.clone_findings(status)) == {"clone:esup": WARNING}
    assert cluster_eval.clone_findings(status, frozenset({"tls"}))[0].text == (
        "clone esup on 1 of 2 nodes (b; eligible: a, b)")
    assert cluster_eval.clone_findings(status, frozenset({"nothing-else"})) == []


# ------------------------------------------------------------------ the rules

@pytest.mark.parametrize("policy, state, consequence", [
    ("stop", CRITICAL, ": its resources are stopped (no_quorum_policy stop)"),
    ("freeze", WARNING, ": resources kept, nothing started or recovered (no_quorum_policy freeze)"),
    ("ignore", WARNING, ": resources still managed, a split brain is possible (no_quorum_policy ignore)"),
    (None, CRITICAL, ""),
])
def test_no_quorum_by_policy(policy, state, consequence):
    status = from_status_json({**doc("no-quorum"), "no_quorum_policy": policy})
    finding = cluster_eval.quorum_finding(status)
    assert finding is not None and finding.state == state
    assert finding.text == f"partition WITHOUT quorum (1 of 3 votes: no majority){consequence}"
    bare = replace(status, quorum_detail=Quorum(False, 1, 3))
    assert cluster_eval.quorum_finding(bare).text == "partition WITHOUT quorum (1 of 3 votes)"
    assert cluster_eval.quorum_finding(from_status_json(doc("fencing-failed"))) is None


def test_fencing_failed_pending_done():
    status = from_status_json(doc("fencing-failed"))
    found = states(cluster_eval.node_findings(status, standby_ok=False, offline_state=CRITICAL))
    assert found == {"node:esup-proxy-1": CRITICAL, "fencing:esup-proxy-1": CRITICAL}
    (failed,) = cluster_eval.fencing_findings(status)
    assert failed.text.startswith("fencing of esup-proxy-1 FAILED at ")
    assert failed.text.endswith(": /usr/sbin/fence_ipmilan exited 1: Failed: Unable to obtain correct plug status "
                                "(its resources are not taken over)")
    pending = from_status_json({**doc("fencing-failed"), "fencing": {
        "esup-proxy-1": {"state": "pending", "at": None, "reason": ""}}})
    assert [(f.state, f.text) for f in cluster_eval.fencing_findings(pending)] == [
        (WARNING, "fencing of esup-proxy-1 pending")]
    done = from_status_json({**doc("fencing-failed"), "fencing": {
        "esup-proxy-1": {"state": "done", "at": 1795532405.0, "reason": "fence exited 0"}}})
    assert cluster_eval.fencing_findings(done) == []
    assert "fencing of esup-proxy-1: done at " in "\n".join(cluster_eval.node_lines(done))


def test_split_brain_in_both_modes_and_degraded_clone():
    status = from_status_json(doc("split-brain-clone"))  # vip still runs on both sides
    nodes = cluster_eval.node_findings(status, standby_ok=False, offline_state=CRITICAL, now=NOW)
    assert states(nodes) == {"split_brain": CRITICAL}
    assert nodes[0].text.startswith("SPLIT BRAIN: vip on esup-proxy-1 and esup-proxy-2 (detected at ")
    resources = cluster_eval.resource_findings(status, NOW, failover_ok=False)
    assert states(resources) == {"split_brain": CRITICAL, "clone:proxy": WARNING, "rsc:vip": CRITICAL}
    assert resources[1].text == ("clone proxy on 1 of 3 nodes (esup-proxy-1; "
                                 "eligible: esup-proxy-1, esup-proxy-2, esup-proxy-3)")
    assert resources[2].text == "vip active on esup-proxy-1 and esup-proxy-2"


def resolved() -> dict:
    """The split brain document once the DC stopped the extra copy of vip."""
    document = doc("split-brain-clone")
    for item in document["resources"]:
        if item["id"] == "vip":
            item["running_on"] = ["esup-proxy-1"]
    return document


def test_a_resolved_split_brain_is_kept_for_the_hold_then_only_in_the_long_output():
    status = from_status_json(resolved())
    detected = status.split_brain.at
    assert cluster_eval.split_brain_findings(status, detected + 1) == []
    (held,) = cluster_eval.split_brain_findings(status, detected + 59, hold=60)
    assert held.state == CRITICAL and held.text.startswith("SPLIT BRAIN at ")
    assert held.text.endswith(": vip ran on esup-proxy-1 and esup-proxy-2 at once")
    assert cluster_eval.split_brain_findings(status, detected + 61, hold=60) == []
    assert states(cluster_eval.node_findings(status, standby_ok=False, offline_state=CRITICAL, now=NOW)) == {}
    assert any(line.startswith("last split brain at ") for line in cluster_eval.node_lines(status))
    assert any(line.startswith("last split brain at ") for line in cluster_eval.resource_lines(status, NOW))


def test_clone_wanted_is_clone_max_or_fewer_eligible_nodes():
    three = ClonePlacement("web", 3, ("a", "b"), ("a", "b"))
    assert three.wanted == 2 and cluster_eval.clone_findings(replace_clones(three)) == []  # c is down: not here
    assert ClonePlacement("web", 2, ("a",), ("a", "b", "c")).wanted == 2
    assert ClonePlacement("web", 2, ("a",)).wanted == 2  # eligibility not reported (older heartbeat)
    assert cluster_eval.clone_findings(replace_clones(ClonePlacement("web", 2, (), ("a", "b")))) == []  # stopped


def replace_clones(*clones: ClonePlacement):
    return replace(from_status_json(doc("ok")), clones=clones)


# ------------------------------------------------------------------ the plugin

def test_plugin_nodes_without_quorum_has_votes_perfdata(cluster, capsys):
    rc, out = run_check(capsys, "nodes", "-s", cluster("no-quorum"))
    assert rc == 2
    assert first(out).startswith("HEARTBEAT NODES CRITICAL - ")
    assert ("partition WITHOUT quorum (1 of 3 votes: no majority): its resources are stopped "
            "(no_quorum_policy stop)") in first(out)
    assert "quorum: NO, 1 of 3 votes (1 of 3 votes: no majority), no_quorum_policy stop" in out
    assert out.rstrip().endswith("| expected_votes=3;;;0 nodes_online=1;;3:;0;3 quorum_votes=1;;;0;3")


def test_plugin_fencing_failed_and_split_brain(cluster, capsys):
    rc, out = run_check(capsys, "nodes", "-s", cluster("fencing-failed"), "-c", "2:")
    assert rc == 2 and first(out).startswith("HEARTBEAT NODES CRITICAL - fencing of esup-proxy-1 FAILED at ")
    assert "quorum_votes=2;;;0;3" in out
    rc, out = run_check(capsys, "resources", "-s", cluster("split-brain-clone"))
    assert rc == 2 and first(out).startswith("HEARTBEAT RESOURCES CRITICAL - SPLIT BRAIN: vip on esup-proxy-1 and ")
    assert "clone proxy on 1 of 3 nodes" in first(out)
    assert "clone proxy: 1 of 3 copies [ esup-proxy-1 ], eligible esup-proxy-1 esup-proxy-2 esup-proxy-3" in out
    assert "proxy_copies=1;;;0;3" in out
    rc, out = run_check(capsys, "resources", "-s", cluster("fencing-failed"))
    assert "proxy_copies=3;;;0;3" in out and "clone:" not in out


def test_plugin_split_brain_hold(cluster, capsys):
    answer = json.dumps(resolved()).encode() + b"\n"
    rc, out = run_check(capsys, "nodes", "-s", cluster(answer))
    assert rc == 0 and "last split brain at " in out
    rc, out = run_check(capsys, "nodes", "-s", cluster(answer), "--split-brain-hold", "1000d")
    assert rc == 2 and first(out).startswith("HEARTBEAT NODES CRITICAL - SPLIT BRAIN at ")
    rc, out = run_check(capsys, "nodes", "-s", cluster(answer), "--split-brain-hold", "soon")
    assert rc == 3 and "is not a duration" in out


def test_no_secret_of_the_fencing_command_in_the_status_or_the_check(cluster, capsys):
    # The documents were built from a configuration whose fencing command has a password.
    for name in ("fencing-failed", "no-quorum", "split-brain-clone"):
        assert "s3cret" not in (DATA / f"heartbeat-{name}.json").read_text()
    rc, out = run_check(capsys, "nodes", "-v", "-s", cluster("fencing-failed"))
    assert rc == CRITICAL and "fence_ipmilan exited 1" in out
    assert "s3cret" not in out and "--password" not in out
