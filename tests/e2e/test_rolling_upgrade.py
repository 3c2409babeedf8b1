"""Rolling upgrade of heartbeat under load, and unmanaged resources.

`heartbeat maintenance on`, then heartbeat is stopped and started again on
node 1, then on node 2 (the daemon only: the VIP and both gproxy copies keep
running untouched), then `maintenance off`: the restarted nodes' probes find
everything running, nothing is started, stopped or moved, and a client
sending requests back to back the whole time (a new connection per request,
and one keep-alive series) sees no failure. The figures are printed
(pytest -s) and recorded in docs/reliability.md.

An unmanaged resource (`heartbeat unmanage`, or `managed = false` in the
file) keeps being monitored: its failure is reported, nothing recovers it
until it is managed again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from test_cluster import OK, PROXY_PORT, REPO, WHY
from test_make_before_break import ClonedCluster, cloned, print_figures  # noqa: F401 (the fixture)
from vip_load import VipLoad

pytestmark = pytest.mark.skipif(not OK, reason=WHY)


def cli(cluster: ClonedCluster, index: int, *argv: str) -> None:
    """The real command line, against node `index`'s status socket."""
    result = subprocess.run([sys.executable, "-m", "heartbeat", *argv, "-s", cluster.socket(index)],
                            capture_output=True, text=True, cwd=REPO, timeout=30)
    assert result.returncode == 0, result.stderr


def gproxy_pids(cluster: ClonedCluster) -> dict[str, int]:
    return {name: int((cluster.tmp / f"gproxy-{name}.pid").read_text()) for name in cluster.names}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(what: str, check, timeout: float = 30, cluster: ClonedCluster | None = None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last})\n{cluster.logs() if cluster else ''}")


def both_online(cluster: ClonedCluster, index: int) -> bool:
    return [n["state"] for n in cluster.status(index)["nodes"]] == ["online", "online"]


def actions_logged(cluster: ClonedCluster) -> list[str]:
    """Every start, stop or quiesce the nodes ran, as logged."""
    lines = []
    for name in cluster.names:
        for line in (cluster.tmp / f"{name}.log").read_text(errors="replace").splitlines():
            if any(f"]: {kind} " in line for kind in ("start", "stop", "quiesce")) and "rc=" in line:
                lines.append(line)
    return lines


def test_rolling_restart_of_heartbeat_under_load_loses_nothing(cloned):
    cluster = cloned()
    first, second = cluster.names
    cluster.start(0)
    cluster.start(1)
    cluster.wait_vip(1, first)
    pids = gproxy_pids(cluster)
    before = actions_logged(cluster)
    load = VipLoad(cluster.vip, PROXY_PORT, timeout=3.0).start()
    restarted = []
    try:
        time.sleep(1)
        load.phase("upgrade")
        cli(cluster, 1, "maintenance", "on")
        wait_for("maintenance on both nodes", lambda: all(cluster.status(i)["maintenance"] for i in (0, 1)),
                 cluster=cluster)
        for index in (0, 1):
            began = time.monotonic()
            cluster.procs[index].terminate()  # SIGTERM: a graceful stop, which stops resources when managed
            assert cluster.procs[index].wait(20) == 0
            assert cluster.holders() == [first]  # the VIP stayed where it was
            assert all(alive(pid) for pid in pids.values())
            cluster.start(index)  # the upgraded daemon
            wait_for(f"{cluster.names[index]} back with both nodes online", lambda: both_online(cluster, index),
                     cluster=cluster)
            status = cluster.status(index)
            assert status["maintenance"] is True  # its persisted CIB, and the peer's
            resources = {r["id"]: r for r in status["resources"]}
            assert resources["vip"]["state"] == "unmanaged" and resources["vip"]["node"] == first
            assert resources["proxy"]["clone"]["nodes"] == [first, second]  # the probes found both copies
            restarted.append(time.monotonic() - began)
        cli(cluster, 0, "maintenance", "off")
        wait_for("maintenance off", lambda: not any(cluster.status(i)["maintenance"] for i in (0, 1)),
                 cluster=cluster)
        time.sleep(2)  # several DC decisions: none may act
    finally:
        figures = load.stop()
    assert cluster.placement(0) == (first, [first, second])
    assert cluster.holders() == [first]
    assert gproxy_pids(cluster) == pids and all(alive(pid) for pid in pids.values())
    assert actions_logged(cluster) == before, "nothing is started, stopped or moved"
    print_figures(f"rolling restart of heartbeat: node restarts took {', '.join(f'{t:.2f}' for t in restarted)} s "
                  "(stop, start, both online again)", figures)
    for mode in ("close", "keepalive"):
        counts = figures["upgrade"][mode]
        assert counts["requests"] > 100, (mode, counts)
        assert counts["failed"] == 0, (mode, counts["failures"])


def test_an_unmanaged_resource_is_monitored_and_not_recovered(cloned):
    cluster = cloned()
    first, second = cluster.names
    cluster.start(0)
    cluster.start(1)
    cluster.wait_vip(1, first)
    cli(cluster, 0, "unmanage", "proxy")
    wait_for("proxy unmanaged", lambda: next(r for r in cluster.status(1)["resources"]
                                             if r["id"] == "proxy")["managed"] is False, cluster=cluster)
    pid = gproxy_pids(cluster)[second]
    os.kill(pid, 9)

    def failure_reported():
        proxy = next(r for r in cluster.status(0)["resources"] if r["id"] == "proxy")
        return proxy if proxy["fail_counts"][second] >= 1 else None

    proxy = wait_for("the monitor's failure reported", failure_reported, cluster=cluster)
    assert proxy["state"] == "unmanaged" and proxy["managed"] is False
    assert proxy["last_failure"]["node"] == second
    time.sleep(3)  # several monitor intervals and DC decisions
    assert not alive(int((cluster.tmp / f"gproxy-{second}.pid").read_text()))  # nobody restarted it
    text = subprocess.run([sys.executable, "-m", "heartbeat", "status", "-s", cluster.socket(1)],
                          capture_output=True, text=True, cwd=REPO, timeout=30).stdout
    assert "Unmanaged" in text
    # Managed again: the failed copy is recovered (stop, start) in place.
    cli(cluster, 1, "manage", "proxy")
    wait_for("proxy recovered on the second node", lambda: alive(gproxy_pids(cluster)[second])
             and cluster.placement(0)[1] == [first, second], cluster=cluster)


def test_managed_false_in_the_file_is_monitored_and_never_recovered(cloned):
    import tomllib

    import tomli_w
    cluster = cloned()
    first, second = cluster.names
    data = tomllib.loads(cluster.path.read_text())
    data["resource"].append({"id": "batch", "agent": "ocf:heartbeat:Dummy", "managed": False,
                             "params": {"state": f"{cluster.tmp}/batch-{{node}}.state"},
                             "monitor": {"interval": "1s", "timeout": "10s"}})
    cluster.path.write_text(tomli_w.dumps(data))
    state = cluster.tmp / f"batch-{first}.state"
    state.write_text("")  # started by hand before heartbeat: the probe finds it running
    cluster.start(0)
    cluster.start(1)
    cluster.wait_vip(1, first)

    def batch():
        return next(r for r in cluster.status(1)["resources"] if r["id"] == "batch")

    found = batch()
    assert found["managed"] is False and found["state"] == "unmanaged" and found["node"] == first
    state.unlink()  # it stops behind heartbeat's back
    failed = wait_for("the monitor's failure reported", lambda: batch()["fail_counts"][first] >= 1 and batch(),
                      cluster=cluster)
    assert failed["last_failure"]["node"] == first and failed["state"] == "unmanaged"
    time.sleep(3)
    assert not state.exists() and not (cluster.tmp / f"batch-{second}.state").exists()  # neither recovered nor moved
    # A file setting cannot be undone at run time.
    result = subprocess.run([sys.executable, "-m", "heartbeat", "manage", "batch", "-s", cluster.socket(0)],
                            capture_output=True, text=True, cwd=REPO, timeout=30)
    assert result.returncode == 1 and "batch" in result.stderr
