"""What heartbeat costs per node in a 16-node cluster: CPU and packets per second.

Starts N heartbeat nodes (default 16) in network namespaces (tests/e2e's Lab:
one veth per node on a bridge), each with the test cluster's group (an
IPaddr2 VIP and a Dummy) so the DC runs its monitors too, waits until every
node sees every other online, then measures over a window: each node's CPU
time (utime + stime of its process, /proc/PID/stat) and the packets on its
eth0 (`ip -s link`, received + sent). Every node sends its heartbeat to
every peer each keepalive (unicast), so packets grow as N x (N - 1).

    .venv/bin/python bench/cluster_scale.py [--nodes 16] [--keepalive 1s 200ms] [--window 10]

Needs root (namespaces). Prints a table; no pass/fail. Figures are in
docs/heartbeat.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from netns import Lab  # noqa: E402
from test_cluster_quorum import MiniCluster  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
CONVERGE_TIMEOUT_S = 60


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def packets(lab: Lab, index: int) -> int:
    out = subprocess.run(["ip", "-n", lab.namespaces[index], "-s", "-j", "link", "show", "eth0"],
                         capture_output=True, text=True, check=True).stdout
    stats = json.loads(out)[0]["stats64"]
    return stats["rx"]["packets"] + stats["tx"]["packets"]


def measure(nodes: int, keepalive_ms: int, window_s: float) -> dict:
    deadtime_ms = max(5 * keepalive_ms, 1000)
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(nodes)
        cluster = None
        try:
            cluster = MiniCluster(Path(tmp), lab, keepalive=f"{keepalive_ms}ms", deadtime=f"{deadtime_ms}ms",
                                  initdead=f"{2 * deadtime_ms}ms")
            cluster.start_all()
            everyone = set(cluster.names)
            cluster.wait("convergence", lambda: all(
                (d := cluster.try_status(i)) and {n["name"] for n in d["nodes"] if n["state"] == "online"}
                == everyone for i in range(nodes)), timeout=CONVERGE_TIMEOUT_S, interval=0.5)
            time.sleep(2 * keepalive_ms / 1000)  # the start-up burst is over
            pids = [cluster.procs[i].pid for i in range(nodes)]
            cpu0 = [cpu_seconds(p) for p in pids]
            pk0 = [packets(lab, i) for i in range(nodes)]
            t0 = time.monotonic()
            time.sleep(window_s)
            elapsed = time.monotonic() - t0
            cpu = [(cpu_seconds(p) - c) / elapsed * 100 for p, c in zip(pids, cpu0)]
            pps = [(packets(lab, i) - p) / elapsed for i, p in enumerate(pk0)]
            return {"nodes": nodes, "keepalive_ms": keepalive_ms, "cpu_median": statistics.median(cpu),
                    "cpu_max": max(cpu), "cpu_dc": cpu[0], "pps_median": statistics.median(pps),
                    "pps_max": max(pps)}
        finally:
            if cluster is not None:
                cluster.stop()
            lab.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--keepalive", nargs="+", default=["1s", "200ms"])
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    from gsuite.durations import parse_duration
    print(f"{'nodes':>5} {'keepalive':>9} {'CPU % median':>12} {'CPU % max':>9} {'CPU % DC':>8} "
          f"{'pkt/s median':>12} {'pkt/s max':>9}")
    for text in args.keepalive:
        r = measure(args.nodes, parse_duration(text), args.window)
        print(f"{r['nodes']:>5} {text:>9} {r['cpu_median']:>12.1f} {r['cpu_max']:>9.1f} {r['cpu_dc']:>8.1f} "
              f"{r['pps_median']:>12.0f} {r['pps_max']:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
