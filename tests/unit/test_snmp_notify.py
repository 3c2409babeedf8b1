"""checks.snmp.notify: the notify command gets the event in its environment, runs in order off the
caller's thread, and failures (exit status, timeout, missing program) are reported."""

from __future__ import annotations

import sys
import time

from checks.snmp.mapping import to_trap
from checks.snmp.notify import CommandRunner
from heartbeat.events import Failover, NodeLost

ENT = "1.3.6.1.4.1.32473"


def lost(node: str = "n1"):
    return to_trap(NodeLost(cluster="esup", node=node, silent_ms=1000, at=1.7e9), "heartbeat", "n2", ENT)


def script(tmp_path, body: str) -> tuple[str, ...]:
    path = tmp_path / "notify.py"
    path.write_text("import os, sys, time\n" + body)
    return (sys.executable, str(path))


def test_the_event_is_in_the_environment(tmp_path):
    out = tmp_path / "env.txt"
    argv = script(tmp_path, f"open({str(out)!r}, 'w').write(repr({{k: v for k, v in os.environ.items() "
                            "if k.startswith('GSUITE_')}))\n")
    reports = []
    runner = CommandRunner(argv, 5000, 10, reports.append)
    trap = to_trap(Failover(cluster="esup", resources=("vip", "proxy"), source="n1", target="n2",
                            reason="node n1 lost", at=1.7e9), "heartbeat", "n2", ENT)
    assert runner.run_one(trap) == 0
    env = eval(out.read_text())
    assert env == dict(trap.environment)
    assert env["GSUITE_EVENT"] == "failover" and env["GSUITE_RESOURCES"] == "vip,proxy"
    assert reports == [] and runner.ran == 1


def test_commands_run_in_order_in_their_thread(tmp_path):
    out = tmp_path / "order.txt"
    go = tmp_path / "go"
    # Each run waits for the test's go-ahead, so submits that returned first prove they never waited.
    argv = script(tmp_path, f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
                            f"open({str(out)!r}, 'a').write(os.environ['GSUITE_NODE'] + '\\n')\n")
    runner = CommandRunner(argv, 30_000, 10, lambda m: None)
    runner.start()
    assert all(runner.submit(lost(f"n{i}")) for i in range(5))
    assert not out.exists()
    go.touch()
    runner.close(timeout=30)
    assert out.read_text().split() == [f"n{i}" for i in range(5)]
    assert runner.ran == 5 and runner.failed == 0


def test_a_failing_command_is_reported_with_its_stderr(tmp_path):
    argv = script(tmp_path, "sys.stderr.write('snmp helper: no route\\nmore\\n'); sys.exit(3)\n")
    reports = []
    runner = CommandRunner(argv, 5000, 10, reports.append)
    assert runner.run_one(lost()) == 3
    assert runner.failed == 1
    assert reports == [f"notify command {argv[0]} exited with 3 (node-lost): snmp helper: no route"]


def test_a_slow_command_is_killed_with_its_children(tmp_path):
    pidfile = tmp_path / "child.pid"
    argv = script(tmp_path, "import subprocess\n"
                            "child = subprocess.Popen(['sleep', '60'])\n"
                            f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
                            "time.sleep(60)\n")
    reports = []
    runner = CommandRunner(argv, 300, 10, reports.append)
    assert runner.run_one(lost()) is None
    assert reports and "killed after 0.3 s (node-lost)" in reports[0]
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{child}/stat") as stat:
                if stat.read().split()[2] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.02)
    else:
        raise AssertionError("the command's child survived")


def test_a_missing_program_is_reported():
    reports = []
    runner = CommandRunner(("/nonexistent/notify",), 1000, 10, reports.append)
    assert runner.run_one(lost()) is None
    assert reports == ["notify command /nonexistent/notify cannot run: No such file or directory"]


def test_a_full_queue_drops():
    runner = CommandRunner(("/bin/true",), 1000, 2, lambda m: None)
    assert [runner.submit(lost()) for _ in range(4)] == [True, True, False, False]
    assert runner.dropped == 2
