"""The sample cluster of docs/heartbeat.md ("gproxy cloned on both nodes, only
the VIP moving") loads, and the policy does with it what the text says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from heartbeat.config.loader import load_string
from heartbeat.model import Cib, ClusterConfig, ClusterStatus, FailRecord, ResourceState, ResourceStatus, Transition
from heartbeat.policy import schedule
from heartbeat.policy.make_before_break import opted_in, reorder

DOC = Path(__file__).resolve().parents[2] / "docs" / "heartbeat.md"
HEADING = "### Sample: gproxy cloned on both nodes, only the VIP moving"
NOW = 10_000.0


@pytest.fixture(scope="module")
def config() -> ClusterConfig:
    text = DOC.read_text(encoding="utf-8")
    assert HEADING in text
    block = re.search(r"```toml\n(.*?)```", text.split(HEADING, 1)[1], re.S)
    assert block is not None
    return load_string(block.group(1), source="docs/heartbeat.md")


def status(online=("lb1", "lb2"), failed=(), **where) -> ClusterStatus:
    entries = [ResourceStatus(r, n, ResourceState.STARTED) for n, rids in where.items() for r in rids]
    entries += [ResourceStatus(r, n, ResourceState.FAILED, rc=1) for r, n in failed]
    return ClusterStatus(online=frozenset(online), resources=tuple(entries))


def run(config: ClusterConfig, st: ClusterStatus, cib: Cib | None = None) -> list[list[str]]:
    """The steps as the controller runs them: the policy's, then make-before-break."""
    transition: Transition = schedule(cib or Cib(config), st, NOW)
    transition = reorder(transition, config, opted_in(config))
    return [[str(a) for a in step] for step in transition.steps]


def test_sample_layout(config: ClusterConfig):
    assert config.clone_max_of("gproxy") == 2 and config.clone_max_of("vip") is None
    assert opted_in(config) == frozenset({"vip"})


def test_cold_start(config: ClusterConfig):
    steps = run(config, status())
    assert ["start gproxy on lb1", "start gproxy on lb2"] in steps and ["start vip on lb1"] in steps


def test_lb1_lost_the_vip_starts_where_gproxy_runs(config: ClusterConfig):
    assert run(config, status(online=("lb2",), lb1=["gproxy", "vip"], lb2=["gproxy"])) == [["start vip on lb2"]]


def test_lb1_back_copy_first_then_the_vip_before_it_leaves_lb2(config: ClusterConfig):
    assert run(config, status(lb2=["gproxy", "vip"])) == [
        ["start gproxy on lb1"], ["quiesce vip on lb2"], ["start vip on lb1"], ["stop vip on lb2"]]


def test_gproxy_fails_under_the_vip(config: ClusterConfig):
    cib = Cib(config, failures=(FailRecord("gproxy", "lb1", 1, NOW - 1),))
    steps = run(config, status(failed=[("gproxy", "lb1")], lb1=["vip"], lb2=["gproxy"]), cib)
    assert steps == [["quiesce vip on lb1"], ["start vip on lb2"], ["stop vip on lb1"], ["stop gproxy on lb1"]]


def test_gproxy_fails_on_the_backup(config: ClusterConfig):
    cib = Cib(config, failures=(FailRecord("gproxy", "lb2", 1, NOW - 1),))
    assert run(config, status(failed=[("gproxy", "lb2")], lb1=["gproxy", "vip"]), cib) == [["stop gproxy on lb2"]]
