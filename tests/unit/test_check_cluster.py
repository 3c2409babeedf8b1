"""check_heartbeat's model and rules: heartbeat's JSON status, crm_mon XML, and what is a problem."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from checks import cluster_eval, pacemaker
from checks.cluster_eval import CRITICAL, OK, UNKNOWN, WARNING
from checks.cluster_model import (BLOCKED, FAILED, OFFLINE, ONLINE, STANDBY, STARTED, STOPPED, UNCLEAN, UNMANAGED,
                                  ClusterResource, ClusterStatus, Move, Node, StatusFormatError, from_status_json)

DATA = Path(__file__).resolve().parents[1] / "checks_data"
NOW = 1795532418.25


def doc(name: str) -> dict:
    return json.loads((DATA / f"heartbeat-{name}.json").read_text())


def crm(name: str, preferred: str | None = "esup-proxy-1") -> ClusterStatus:
    return pacemaker.parse_crm_mon((DATA / f"crm_mon-{name}.xml").read_text(), preferred)


def states(findings) -> dict[str, int]:
    return {f.subject: f.state for f in findings}


# ------------------------------------------------------------------ heartbeat's JSON

def test_status_document_as_documented():
    status = from_status_json(doc("ok"))
    assert (status.name, status.reporter, status.dc, status.quorum, status.maintenance) == (
        "esup-proxy", "esup-proxy-1", "esup-proxy-1", None, False)
    assert [(n.name, n.state, n.is_dc) for n in status.nodes] == [("esup-proxy-1", ONLINE, True),
                                                                  ("esup-proxy-2", ONLINE, False)]
    assert status.nodes[1].links[0].address == "192.0.2.12" and status.nodes[1].links[0].age_ms == 412
    vip = status.resources[0]
    assert (vip.id, vip.group, vip.state, vip.node, vip.preferred_node, vip.should_run) == (
        "vip", "esup", STARTED, "esup-proxy-1", "esup-proxy-1", True)
    assert status.groups == (("esup", ("vip", "proxy", "tls")),)
    failover = from_status_json(doc("failover")).last_failover
    assert failover is not None and (failover.from_node, failover.to_node, failover.at) == (
        "esup-proxy-1", "esup-proxy-2", 1795532400.5)


@pytest.mark.parametrize("document, message", [
    ([], "not a JSON object"),
    ({"ok": False, "error": "not the DC"}, "the daemon refused: not the DC"),
    ({"nodes": []}, "no 'resources'"),
    ({"nodes": "x", "resources": []}, "'nodes' has the wrong type"),
    ({"nodes": [{"name": "a", "state": "dancing"}], "resources": []}, "unknown state 'dancing'"),
    ({"nodes": [], "resources": [{"id": "vip"}]}, "resource vip: no 'state'"),
    ({"nodes": [], "resources": [{"id": "vip", "state": "started", "fail_counts": []}]}, "'fail_counts'"),
])
def test_malformed_status_documents(document, message):
    with pytest.raises(StatusFormatError, match=message):
        from_status_json(document)


# ------------------------------------------------------------------ crm_mon XML

def test_crm_mon_ok():
    status = crm("2.1-ok")
    assert (status.dc, status.quorum, status.maintenance) == ("esup-proxy-1", True, False)
    assert [(n.name, n.state, n.is_dc) for n in status.nodes] == [("esup-proxy-1", ONLINE, True),
                                                                  ("esup-proxy-2", ONLINE, False)]
    assert [(r.id, r.group, r.state, r.node, r.preferred_node) for r in status.resources] == [
        ("vip", "esup", STARTED, "esup-proxy-1", "esup-proxy-1"),
        ("proxy", "esup", STARTED, "esup-proxy-1", "esup-proxy-1"),
        ("tls", "esup", STARTED, "esup-proxy-1", "esup-proxy-1")]
    assert status.resources[0].started_at == pacemaker.parse_time("Tue Nov 24 15:20:12 2026")
    assert status.groups == (("esup", ("vip", "proxy", "tls")),)


def test_crm_mon_failures_fail_counts_bans_and_standby():
    status = crm("2.1-failed")
    assert [n.state for n in status.nodes] == [ONLINE, STANDBY]
    proxy, tls = status.resources[1], status.resources[2]
    assert proxy.fail_counts == (("esup-proxy-1", 2),) and tls.fail_counts == (("esup-proxy-1", 1000000),)
    assert tls.state == STOPPED and tls.last_failure is not None
    assert (tls.last_failure.operation, tls.last_failure.rc, tls.last_failure.reason) == (
        "start", 1, "stunnel4 failed to start")
    assert tls.last_failure.at == pacemaker.parse_time("2026-11-24 17:02:39 +01:00")
    assert proxy.last_failure.reason == "not running" and proxy.last_failure.rc == 7
    assert proxy.moves == (Move("esup-proxy-2", "ban", None, "cli-ban-esup-on-esup-proxy-2"),)


def test_crm_mon_legacy_root_unclean_node_and_no_quorum():
    status = crm("1.1-legacy")
    assert status.quorum is False and status.dc == "esup-proxy-2"
    assert [n.state for n in status.nodes] == [UNCLEAN, ONLINE]
    assert {r.state for r in status.resources} == {STOPPED}


def test_crm_mon_pacemaker_regression_shapes():
    # Clones of groups, promotable clones, a disabled group, a bundle and an unmanaged failed resource,
    # shaped like the XML of Pacemaker's own crm_mon regression tests.
    xml = """<pacemaker-result api-version="2.3" request="crm_mon --output-as=xml">
      <summary><current_dc present="false" with_quorum="true"/>
        <cluster_options maintenance-mode="false"/></summary>
      <nodes>
        <node name="c1" id="1" online="true" standby="false" maintenance="true" unclean="false" is_dc="false" type="member"/>
        <node name="c2" id="2" online="true" standby="false" maintenance="false" unclean="false" is_dc="false" type="member"/>
        <node name="p" id="p" online="true" type="ping"/>
      </nodes>
      <resources>
        <clone id="mysql-clone-group" multi_state="false" unique="false" managed="true" disabled="false" failed="false">
          <group id="mysql-group:0" number_resources="1" managed="true" disabled="false">
            <resource id="mysql-proxy" role="Started" active="true" managed="true" failed="false" nodes_running_on="1">
              <node name="c2" id="2" cached="true"/></resource></group>
          <group id="mysql-group:1" number_resources="1" managed="true" disabled="false">
            <resource id="mysql-proxy" role="Stopped" active="false" managed="true" failed="false" nodes_running_on="0"/>
          </group>
        </clone>
        <clone id="promotable-clone" multi_state="true" unique="false" managed="true" disabled="false" failed="false">
          <resource id="promotable-rsc" role="Promoted" active="true" managed="true" failed="false" nodes_running_on="1">
            <node name="c2" id="2" cached="true"/></resource>
          <resource id="promotable-rsc" role="Unpromoted" active="true" managed="true" failed="false" nodes_running_on="1">
            <node name="c1" id="1" cached="true"/></resource>
        </clone>
        <group id="inactive-group" number_resources="1" managed="true" disabled="true">
          <resource id="inactive-dummy-1" role="Stopped" target_role="stopped" active="false" managed="true" failed="false" nodes_running_on="0"/>
        </group>
        <bundle id="httpd-bundle" type="docker" image="pcmk:http" unique="false" managed="true" failed="false">
          <replica id="0"><resource id="httpd" role="Started" active="true" managed="true" failed="false" nodes_running_on="1">
            <node name="httpd-bundle-0" id="httpd-bundle-0" cached="true"/></resource></replica>
        </bundle>
        <resource id="odd" role="Started" active="true" managed="false" failed="true" nodes_running_on="2">
          <node name="c1" id="1" cached="true"/><node name="c2" id="2" cached="true"/></resource>
        <resource id="stuck" role="Started" active="true" blocked="true" managed="true" failed="false" nodes_running_on="1">
          <node name="c1" id="1" cached="true"/></resource>
      </resources>
    </pacemaker-result>"""
    status = pacemaker.parse_crm_mon(xml, None)
    assert status.dc is None and [n.name for n in status.nodes] == ["c1", "c2"]
    by_id = [(r.id, r.clone, r.group, r.state, r.should_run) for r in status.resources]
    assert by_id[:2] == [("mysql-proxy", "mysql-clone-group", "mysql-group", STARTED, True),
                         ("mysql-proxy", "mysql-clone-group", "mysql-group", STOPPED, True)]
    assert by_id[4] == ("inactive-dummy-1", None, "inactive-group", STOPPED, False)
    assert by_id[5][:2] == ("httpd", "httpd-bundle")
    assert by_id[6][3] == FAILED and status.resources[6].nodes_running == ("c1", "c2")
    assert by_id[7][3] == BLOCKED
    found = states(cluster_eval.resource_findings(status, NOW, failover_ok=False))
    assert found == {"rsc:odd": CRITICAL, "rsc:stuck": CRITICAL}  # stopped clone instances are normal
    nodes = states(cluster_eval.node_findings(status, standby_ok=False, offline_state=CRITICAL))
    assert nodes == {"node:c1": WARNING, "dc": WARNING}


@pytest.mark.parametrize("text, message", [
    ("not xml", "not XML"),
    ("<cib/>", "unexpected root <cib>"),
    ("<pacemaker-result><summary/></pacemaker-result>", "no summary or nodes"),
])
def test_crm_mon_garbage(text, message):
    with pytest.raises(StatusFormatError, match=message):
        pacemaker.parse_crm_mon(text)


def test_crm_mon_error_document():
    with pytest.raises(StatusFormatError, match=r"crm_mon failed \(code 102\): crm_mon: Error: cluster is not"):
        crm("2.1-not-connected")


@pytest.mark.parametrize("text, expected", [
    ("Tue Jan 15 22:19:14 2019", time.mktime((2019, 1, 15, 22, 19, 14, 0, 0, -1))),
    ("Thu Nov  5 10:23:45 2020", time.mktime((2020, 11, 5, 10, 23, 45, 0, 0, -1))),
    ("'Wed Jul 27 05:27:57 2022'", time.mktime((2022, 7, 27, 5, 27, 57, 0, 0, -1))),
    ("2022-07-27 05:27:57Z", 1658899677.0),
    ("1600708714", 1600708714.0),
    ("", None), (None, None), ("yesterday", None),
])
def test_parse_time(text, expected):
    assert pacemaker.parse_time(text) == expected


# ------------------------------------------------------------------ the rules

def test_nodes_rules_on_saved_documents():
    assert cluster_eval.node_findings(from_status_json(doc("ok")), standby_ok=False, offline_state=CRITICAL) == []
    failover = from_status_json(doc("failover"))
    assert states(cluster_eval.node_findings(failover, standby_ok=False, offline_state=CRITICAL)) == {
        "node:esup-proxy-1": CRITICAL}  # its links are down too, but a dead node's links are not news
    assert cluster_eval.node_findings(failover, standby_ok=False, offline_state=OK) == []
    standby = from_status_json(doc("standby-link-down"))
    found = cluster_eval.node_findings(standby, standby_ok=False, offline_state=CRITICAL)
    assert [(f.subject, f.state, f.text) for f in found] == [
        ("node:esup-proxy-2", WARNING, "esup-proxy-2 in standby"),
        ("links:esup-proxy-2", WARNING, "esup-proxy-2: link 198.51.100.12 down")]
    assert states(cluster_eval.node_findings(standby, standby_ok=True, offline_state=CRITICAL))[
        "node:esup-proxy-2"] == OK
    quiet = from_status_json(doc("maintenance-no-dc"))
    assert states(cluster_eval.node_findings(quiet, standby_ok=False, offline_state=CRITICAL)) == {
        "dc": WARNING, "maintenance": WARNING}
    assert cluster_eval.node_findings(ClusterStatus("", None, None, None, False, (), ()), standby_ok=False,
                                      offline_state=CRITICAL)[0].state == UNKNOWN


def test_resources_rules_on_saved_documents():
    assert cluster_eval.resource_findings(from_status_json(doc("ok")), NOW, failover_ok=False) == []
    failover = cluster_eval.resource_findings(from_status_json(doc("failover")), NOW, failover_ok=False)
    assert len(failover) == 1 and failover[0].state == WARNING
    assert failover[0].text.startswith("esup on esup-proxy-2, not on preferred esup-proxy-1, since failover at ")
    assert failover[0].text.endswith("(node esup-proxy-1 lost)")
    assert cluster_eval.format_when(1795532400.5) in failover[0].text
    assert cluster_eval.resource_findings(from_status_json(doc("failover")), NOW, failover_ok=True) == []
    stopped = cluster_eval.resource_findings(from_status_json(doc("stopped")), NOW, failover_ok=False)
    assert [(f.subject, f.state) for f in stopped] == [("rsc:proxy", CRITICAL)]  # tls is stopped on purpose
    assert stopped[0].text.startswith("proxy stopped (last failure: start rc 1 'config not found' on esup-proxy-2 at ")
    split = states(cluster_eval.resource_findings(from_status_json(doc("split")), NOW, failover_ok=False))
    assert split == {"rsc:tls": CRITICAL, "split:esup": CRITICAL}
    moved = cluster_eval.resource_findings(from_status_json(doc("moved")), NOW, failover_ok=False)
    assert [(f.subject, f.state) for f in moved] == [("move:esup:0", WARNING)]  # once for the group
    assert moved[0].text.startswith("esup: manual move to esup-proxy-2 still in place, expires ")
    quiet = states(cluster_eval.resource_findings(from_status_json(doc("maintenance-no-dc")), NOW, failover_ok=False))
    assert quiet == {"maintenance": WARNING}


def test_resources_rules_on_crm_mon():
    assert cluster_eval.resource_findings(crm("2.1-ok"), NOW, failover_ok=False) == []
    away = cluster_eval.resource_findings(crm("2.1-failover"), NOW, failover_ok=False)
    assert [(f.subject, f.state) for f in away] == [("away:esup", WARNING)]
    assert away[0].text == ("esup on esup-proxy-2, not on preferred esup-proxy-1, since "
                            + cluster_eval.format_when(pacemaker.parse_time("Tue Nov 24 15:58:32 2026")))
    assert cluster_eval.resource_findings(crm("2.1-failover", None), NOW, failover_ok=False) == []
    failed = states(cluster_eval.resource_findings(crm("2.1-failed"), NOW, failover_ok=False))
    assert failed == {"rsc:tls": CRITICAL, "move:esup:0": WARNING}
    legacy = cluster_eval.resource_findings(crm("1.1-legacy"), NOW, failover_ok=False)
    assert [(f.subject, f.state, f.text) for f in legacy] == [("stopped:esup", CRITICAL, "esup stopped (vip, proxy, tls)")]


def test_only_some_resources():
    status = from_status_json(doc("split"))
    assert cluster_eval.resource_findings(status, NOW, failover_ok=False, only=frozenset({"vip"})) == []
    assert states(cluster_eval.resource_findings(status, NOW, failover_ok=False, only=frozenset({"tls"}))) == {
        "rsc:tls": CRITICAL}
    assert states(cluster_eval.resource_findings(status, NOW, failover_ok=False, only=frozenset({"esup"}))) == {
        "rsc:tls": CRITICAL, "split:esup": CRITICAL}
    status = ClusterStatus("", None, "a", None, False, (Node("a", ONLINE),), (
        ClusterResource("x", STOPPED), ClusterResource("y", UNMANAGED, node="a")))
    assert states(cluster_eval.resource_findings(status, NOW, failover_ok=False, only=frozenset({"y"}))) == {
        "rsc:y": WARNING}


def test_fail_counts_and_texts():
    status = from_status_json(doc("stopped"))
    counts = {r.id: (node, count) for r, node, count in cluster_eval.fail_counts(status)}
    assert counts == {"vip": ("esup-proxy-1", 0), "proxy": ("esup-proxy-2", 1000000), "tls": ("esup-proxy-1", 0)}
    assert cluster_eval.format_count(1000000) == "INFINITY" and cluster_eval.format_count(3) == "3"
    assert cluster_eval.resources_summary(status) == "1/2 resources started on esup-proxy-1"
    assert cluster_eval.nodes_summary(from_status_json(doc("ok"))) == "2/2 nodes up, DC esup-proxy-1, all links up"
    lines = cluster_eval.resource_lines(from_status_json(doc("failover")), NOW)
    assert lines[-1].startswith("last failover: vip, proxy, tls from esup-proxy-1 to esup-proxy-2 at ")
    assert lines[-1].endswith("(17s ago) (node esup-proxy-1 lost)")
    node_lines = cluster_eval.node_lines(from_status_json(doc("failover")))
    assert node_lines[0] == "esup-proxy-1: offline; links 192.0.2.11 DOWN (48211 ms)"


def test_format_when():
    assert cluster_eval.format_when(None) == "an unknown time"
    assert cluster_eval.format_when(NOW - 30, NOW).endswith("(30s ago)")
    assert cluster_eval.format_when(NOW - 600, NOW).endswith("(10m ago)")
    assert cluster_eval.format_when(NOW - 3 * 3600, NOW).endswith("(3h ago)")
    assert cluster_eval.format_when(NOW - 3 * 86400, NOW).endswith("(3d ago)")
    assert OFFLINE == "offline"
