"""`managed = false` in the file (Pacemaker's is-managed=false) and cluster-wide
maintenance: nothing is started, stopped or recovered, failures are still
counted and reported; the file's attribute and `heartbeat unmanage` share one path."""

from __future__ import annotations

from dataclasses import replace

import pytest

from heartbeat import cib_store
from heartbeat.config.loader import load_string
from heartbeat.model import Cib, ClusterStatus, FailRecord, ResourceState, ResourceStatus
from heartbeat.policy import schedule

NOW = 10_000.0
BASE = """
[cluster]
name = "c"
initdead = "5s"
[[node]]
name = "n1"
addresses = ["10.0.0.1"]
[[node]]
name = "n2"
addresses = ["10.0.0.2"]
[[resource]]
id = "legacy"
agent = "ocf:heartbeat:Dummy"
monitor = { interval = "1s" }
managed = false
[[resource]]
id = "proxy"
agent = "ocf:heartbeat:Dummy"
monitor = { interval = "1s" }
clone_max = 0
[[resource]]
id = "vip"
agent = "ocf:heartbeat:Dummy"
[[resource]]
id = "web"
agent = "ocf:heartbeat:Dummy"
[[group]]
id = "front"
resources = ["vip", "web"]
"""


def entries(state: ResourceState = ResourceState.STARTED, **where) -> tuple[ResourceStatus, ...]:
    return tuple(ResourceStatus(rid, node, state, rc=1 if state == ResourceState.FAILED else 0)
                 for node, rids in where.items() for rid in rids)


def failed_legacy() -> ClusterStatus:
    return ClusterStatus(online=frozenset({"n1", "n2"}),
                         resources=entries(n1=["vip", "web", "proxy"], n2=["proxy"])
                         + entries(ResourceState.FAILED, n1=["legacy"]))


def test_the_file_declares_resources_and_groups_unmanaged():
    config = load_string(BASE)
    assert config.resource("legacy").managed is False and config.resource("vip").managed is True
    assert config.configured_unmanaged() == frozenset({"legacy"})
    grouped = load_string(BASE.replace('resources = ["vip", "web"]', 'resources = ["vip", "web"]\nmanaged = false'))
    assert grouped.configured_unmanaged() == frozenset({"legacy", "front"})


def test_a_failed_unmanaged_resource_is_reported_not_recovered():
    config = load_string(BASE)
    cib = Cib(config, failures=(FailRecord("legacy", "n1", 1, NOW - 1, 1, "not running"),))
    t = schedule(cib, failed_legacy(), NOW)
    assert t.actions == ()
    assert "legacy: unmanaged: left on n1" in t.reasons
    # the same file with managed = true: recovered in place
    managed = replace(config, resources=tuple(replace(r, managed=True) for r in config.resources))
    t = schedule(replace(cib, config=managed), failed_legacy(), NOW)
    assert [str(a) for a in t.actions] == ["stop legacy on n1", "start legacy on n1"]


def test_an_unmanaged_resource_is_neither_started_nor_stopped():
    config = load_string(BASE)
    stopped = ClusterStatus(online=frozenset({"n1", "n2"}), resources=entries(n1=["vip", "web", "proxy"],
                                                                              n2=["proxy"]))
    assert schedule(Cib(config), stopped, NOW).actions == ()  # not started although it could run
    standby = Cib(config, standby=frozenset({"n1"}))
    running = ClusterStatus(online=frozenset({"n1", "n2"}), resources=entries(n1=["legacy"]))
    t = schedule(standby, running, NOW)
    assert not [a for a in t.actions if a.resource == "legacy"]
    assert "legacy: unmanaged: left on n1" in t.reasons  # said: the cluster would have moved it


def test_a_group_declared_unmanaged_leaves_every_member():
    config = load_string(BASE.replace('resources = ["vip", "web"]', 'resources = ["vip", "web"]\nmanaged = false'))
    status = ClusterStatus(online=frozenset({"n1", "n2"}),
                           resources=entries(n1=["vip", "proxy"], n2=["proxy"])
                           + entries(ResourceState.FAILED, n1=["web"]))
    t = schedule(Cib(config, standby=frozenset({"n1"})), status, NOW)
    assert not [a for a in t.actions if a.resource in ("vip", "web")]


def test_an_unmanaged_clone_copy_is_left_alone():
    config = load_string(BASE.replace("clone_max = 0", "clone_max = 0\nmanaged = false"))
    status = ClusterStatus(online=frozenset({"n1", "n2"}),
                           resources=entries(n1=["vip", "web", "legacy"]) + entries(ResourceState.FAILED,
                                                                                   n2=["proxy"]))
    t = schedule(Cib(config), status, NOW)
    assert not [a for a in t.actions if a.resource == "proxy"]


@pytest.mark.parametrize("unmanaged_at_run_time", [False, True])
def test_maintenance_acts_on_nothing(unmanaged_at_run_time: bool):
    config = load_string(BASE)
    cib = Cib(config, maintenance=True, standby=frozenset({"n1"}),
              unmanaged=frozenset({"vip"}) if unmanaged_at_run_time else frozenset(),
              failures=(FailRecord("proxy", "n2", 1, NOW - 1), FailRecord("web", "n1", 3, NOW - 1)))
    status = ClusterStatus(online=frozenset({"n1", "n2"}),
                           resources=entries(n1=["vip", "proxy", "legacy"])
                           + entries(ResourceState.FAILED, n1=["web"], n2=["proxy"]))
    t = schedule(cib, status, NOW)
    assert t.steps == () and t.reasons == ("maintenance mode: no actions",)
    assert t.target("vip") == "n1" and t.target("web") == "n1"  # what runs is shown where it runs
    assert schedule(replace(cib, maintenance=False), status, NOW).actions  # leaving it acts again


# ---- the CIB: the file's attribute and `heartbeat unmanage` share Cib.unmanaged ----

def test_cib_store_adds_the_files_unmanaged_and_never_persists_them(tmp_path):
    config = load_string(BASE)
    cib = cib_store.load(config, str(tmp_path))  # no file yet
    assert cib.unmanaged == frozenset({"legacy"})
    cib = cib_store.apply_change(cib, {"cmd": "manage", "resource": "vip", "on": False}, NOW)
    assert cib.unmanaged == frozenset({"legacy", "vip"})
    assert cib_store.runtime_to_dict(cib)["unmanaged"] == ["vip"]
    cib_store.save(cib, str(tmp_path))
    assert cib_store.load(config, str(tmp_path)).unmanaged == frozenset({"legacy", "vip"})
    # the file changed to managed = true: the persisted state does not keep it unmanaged
    managed = replace(config, resources=tuple(replace(r, managed=True) for r in config.resources))
    assert cib_store.load(managed, str(tmp_path)).unmanaged == frozenset({"vip"})
    assert cib_store.runtime_from_dict(config, {"unmanaged": []}).unmanaged == frozenset({"legacy"})


def test_manage_cannot_undo_the_file():
    config = load_string(BASE.replace('resources = ["vip", "web"]', 'resources = ["vip", "web"]\nmanaged = false'))
    cib = cib_store.load(config, "/nonexistent")
    for rid, words in (("legacy", "legacy is declared managed = false"),
                       ("web", "web (its group front) is declared managed = false"),
                       ("front", "front is declared managed = false")):
        with pytest.raises(cib_store.ChangeRejected, match=words.replace("(", r"\(").replace(")", r"\)")):
            cib_store.apply_change(cib, {"cmd": "manage", "resource": rid, "on": True}, NOW)
    assert cib_store.apply_change(cib, {"cmd": "manage", "resource": "legacy", "on": False}, NOW).unmanaged \
        >= {"legacy", "front"}


# ---- the controller and status: monitor failures reported, nothing run -------------

def controller(config, executed: list):
    from heartbeat.controller import Controller
    c = Controller("n1", cib_store.load(config, "/nonexistent"), send=lambda *a: None,
                   execute=lambda *a: executed.append(a[1:]), clock=lambda: NOW, schedule=schedule)
    c.started = NOW - 60
    return c


@pytest.mark.parametrize("managed", [False, True])
def test_monitor_failure_of_an_unmanaged_resource_is_counted_and_shown_not_acted_on(managed: bool):
    from heartbeat.status import build_status
    executed: list = []
    c = controller(load_string(BASE.replace("managed = false", f"managed = {str(managed).lower()}")), executed)
    c.set_local_status(entries(n1=["legacy", "vip", "web", "proxy"]))
    c.set_online(frozenset({"n1", "n2"}))
    c.on_message("hb", "n2", {"lrm_seq": 1, "resources": [{"resource": "proxy", "state": "started"}]})
    c.action_done(None, "monitor", "legacy", 7, "not running", ResourceState.FAILED, True)  # a recurring monitor
    c.pulse()
    assert c.last_transition is not None
    if managed:  # the contrast: a managed resource is recovered
        assert executed == [("stop", "legacy")]
        return
    assert executed == []
    doc = build_status(c, lambda node: {}, {}, now=NOW)
    legacy = next(r for r in doc["resources"] if r["id"] == "legacy")
    assert legacy["state"] == "unmanaged" and legacy["managed"] is False
    assert legacy["fail_counts"]["n1"] == 1 and legacy["last_failure"]["rc"] == 7


def test_maintenance_counts_monitor_failures_and_runs_nothing():
    executed: list = []
    c = controller(load_string(BASE), executed)
    c.cib = replace(c.cib, maintenance=True)
    c.set_local_status(entries(n1=["legacy", "vip", "web", "proxy"]))
    c.set_online(frozenset({"n1", "n2"}))
    c.on_message("hb", "n2", {"lrm_seq": 1, "resources": []})  # n2's proxy copy missing
    c.action_done(None, "monitor", "vip", 7, "not running", ResourceState.FAILED, True)
    c.pulse()
    assert executed == [] and c.failures["vip"].count == 1
    assert c.last_transition is not None and c.last_transition.reasons == ("maintenance mode: no actions",)
