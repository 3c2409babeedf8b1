"""The runtime API with several workers, with a real gproxy: a state change
sent on the stats socket reaches one worker, which relays it through the
master to the others. Fresh stats connections (each reaches whichever
worker accepts it) must all see the change within a bounded time, and the
traffic of every worker must follow it; an error is answered and relayed
nowhere. Workers are told apart by `show info`'s Pid on the stats socket
and by the pid in their access log lines (syslog)."""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from pathlib import Path

from test_reload import children, cli, reload_config, server, wait_until
from test_reuseport_workers import logged_requests

WORKERS = 2
REQUESTS = 120  # one connection each: the odds that a worker gets none are 2**-119
STATS_ROUND = 20  # fresh stats connections per look at the workers' states
MAX_STATS_CONNECTIONS = 400  # to meet every worker on the stats socket (each accept goes to one of them)
PROPAGATION = 5.0  # seconds a relayed change may take to be seen everywhere (it takes milliseconds)
ACCESS_RE = re.compile(r"gproxy\[(\d+)\]: \S+ \[[^\]]*\] \S+ app/(\S+) ")  # an httplog line: pid, server
MAINT = "1"  # srv_admin_state of `show servers state`: SRV_ADMF_FMAINT
READY = "0"


def look(stats: Path) -> tuple[int, dict[str, list[str]]]:
    """One fresh stats connection: the answering worker's pid and its
    `show servers state` rows by server name (both from the same worker)."""
    answer = cli(stats, "show info;show servers state")
    pid = next(int(line.split()[1]) for line in answer.splitlines() if line.startswith("Pid: "))
    rows = {fields[3]: fields for line in answer.splitlines()
            if len(fields := line.split()) > 7 and fields[0].isdigit() and fields[2].isdigit()}
    return pid, rows


def everywhere(stats: Path, workers: set[int], check) -> None:
    """Poll until STATS_ROUND fresh connections in a row pass `check(rows)`,
    then go on until every worker in `workers` was met, each passing it."""
    def a_round() -> bool:
        return all(check(look(stats)[1]) for _ in range(STATS_ROUND))
    wait_until(a_round, timeout=PROPAGATION, what="the change on fresh stats connections")
    met: set[int] = set()
    for _ in range(MAX_STATS_CONNECTIONS):
        pid, rows = look(stats)
        assert check(rows), (pid, rows)  # once seen, the change never goes away
        met.add(pid)
        if met == workers:
            return
    raise AssertionError(f"the stats socket reached workers {met} only, of {workers}")


def traffic(port: int, syslog) -> Counter[tuple[int, str]]:
    """REQUESTS requests, one connection each: (worker pid, server) of each, from the access log."""
    return Counter((int(m.group(1)), m.group(2)) for m in logged_requests(syslog, port, REQUESTS, ACCESS_RE))


def start(tmp_path, start_backend, start_gproxy, syslog, port):
    s1, s2 = start_backend("s1"), start_backend("s2")
    stats = tmp_path / "admin.sock"
    config = reload_config(port, stats, tmp_path / "g.pid", [server("s1", s1), server("s2", s2)], workers=WORKERS)
    config["global"]["log"] = [{"target": syslog.target, "facility": "local0"}]
    config["defaults"]["log"] = "global"
    config["defaults"]["httplog"] = True
    process = start_gproxy(config, [port])
    wait_until(lambda: (tmp_path / "g.pid").exists(), what="the pid file")  # written once the workers serve
    wait_until(lambda: len(children(process.proc.pid)) == WORKERS, what=f"{WORKERS} workers")
    return process, stats


def admin(rows: dict[str, list[str]], name: str) -> str:
    return rows[name][6]


def test_maint_and_ready_reach_every_worker(tmp_path, start_backend, start_gproxy, syslog, port):
    process, stats = start(tmp_path, start_backend, start_gproxy, syslog, port)
    workers = children(process.proc.pid)
    assert {pid for pid, _ in traffic(port, syslog)} == workers

    assert cli(stats, "set server app/s1 state maint") == "\n"
    everywhere(stats, workers, lambda rows: admin(rows, "s1") == MAINT and admin(rows, "s2") == READY)
    served = traffic(port, syslog)
    assert {server for _, server in served} == {"s2"}, served  # no worker sends s1 anything
    assert {pid for pid, _ in served} == workers, served  # and both did answer

    assert cli(stats, "set server app/s1 state ready") == "\n"
    everywhere(stats, workers, lambda rows: admin(rows, "s1") == READY)
    served = traffic(port, syslog)
    assert {pid for pid, server in served if server == "s1"} == workers, served  # s1 again, from both

    # The deprecated words and the weight go the same way.
    assert cli(stats, "disable server app/s2") == "\n"
    assert cli(stats, "set weight app/s1 7") == "\n"
    everywhere(stats, workers, lambda rows: admin(rows, "s2") == MAINT and rows["s1"][7] == "7")
    assert cli(stats, "enable server app/s2") == "\n"
    everywhere(stats, workers, lambda rows: admin(rows, "s2") == READY)
    assert "Traceback" not in process.stderr()


def test_a_failing_command_is_answered_and_relayed_nowhere(tmp_path, start_backend, start_gproxy, syslog, port):
    process, stats = start(tmp_path, start_backend, start_gproxy, syslog, port)
    workers = children(process.proc.pid)
    assert cli(stats, "set server app/nope state maint") == "No such server.\n\n"
    assert cli(stats, "set server app/s1 state sleeping").startswith("'set server <srv> state' expects")
    assert cli(stats, "set server app/s1 weight 300") == "Absolute weight can only be between 0 and 256 inclusive.\n\n"
    # Then a good one: once every worker has it, the bad ones (sent before it,
    # on the same path) would have been run too, and a sibling logs a relayed
    # command that fails.
    assert cli(stats, "set server app/s2 weight 3") == "\n"
    everywhere(stats, workers, lambda rows: admin(rows, "s1") == READY and rows["s1"][7] == "1"
               and rows["s2"][7] == "3")
    assert "relayed command" not in process.stderr()
    assert "Traceback" not in process.stderr()


def test_a_relayed_change_survives_a_reload_in_every_new_worker(tmp_path, start_backend, start_gproxy, syslog,
                                                                port):
    process, stats = start(tmp_path, start_backend, start_gproxy, syslog, port)
    workers = children(process.proc.pid)
    assert cli(stats, "set server app/s1 state maint") == "\n"
    everywhere(stats, workers, lambda rows: admin(rows, "s1") == MAINT)
    os.kill(process.proc.pid, signal.SIGHUP)
    wait_until(lambda: "reload complete: generation 2 serving" in process.stderr(), what="the reload")
    wait_until(lambda: not children(process.proc.pid) & workers, what="the old workers' exit")
    new = children(process.proc.pid)
    assert len(new) == WORKERS
    everywhere(stats, new, lambda rows: admin(rows, "s1") == MAINT)
    served = traffic(port, syslog)
    assert {server for _, server in served} == {"s2"}, served
    assert {pid for pid, _ in served} == new, served
