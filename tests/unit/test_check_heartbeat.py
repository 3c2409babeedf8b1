"""check_heartbeat in-process: saved status documents on a unix socket, saved crm_mon XML
(as a file and through a stand-in crm_mon), and every failure as UNKNOWN without a traceback."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import nagiosplugin.runtime
import pytest

from checks import heartbeat_check
from test_check_statesock import FakeSocketServer

DATA = Path(__file__).resolve().parents[1] / "checks_data"
BIN = Path(sys.executable).parent


@pytest.fixture
def cluster(tmp_path):
    """Serve a saved status document (or raw bytes) as heartbeat's status socket does."""
    servers = []

    def serve(name_or_bytes: str | bytes, **kwargs) -> str:
        if isinstance(name_or_bytes, str):
            document = json.loads((DATA / f"heartbeat-{name_or_bytes}.json").read_text())
            answer = json.dumps(document).encode() + b"\n"
        else:
            answer = name_or_bytes
        server = FakeSocketServer(tmp_path / f"hb{len(servers)}.sock", answers={'{"cmd": "status"}': answer},
                                  **kwargs)
        servers.append(server)
        return server.path

    yield serve
    for server in servers:
        server.close()


def run_check(capsys, *argv: str) -> tuple[int, str]:
    nagiosplugin.runtime.Runtime.instance = None
    with pytest.raises(SystemExit) as exit_info:
        heartbeat_check.main(list(argv))
    out = capsys.readouterr().out
    assert "Traceback" not in out
    return exit_info.value.code, out


def first(out: str) -> str:
    return out.splitlines()[0]


def test_nodes_ok_and_request_sent(cluster, capsys, tmp_path):
    path = cluster("ok")
    rc, out = run_check(capsys, "nodes", "-s", path)
    assert rc == 0
    assert out == ("HEARTBEAT NODES OK - 2/2 nodes up, DC esup-proxy-1, all links up\n"
                   "esup-proxy-1: online DC; links 192.0.2.11 up (0 ms)\n"
                   "esup-proxy-2: online; links 192.0.2.12 up (412 ms)\n"
                   "| nodes_online=2;;2:;0;2\n")


def test_nodes_offline_is_critical_or_a_warning_with_c(cluster, capsys):
    path = cluster("failover")
    rc, out = run_check(capsys, "nodes", "-s", path)
    assert rc == 2 and first(out) == "HEARTBEAT NODES CRITICAL - 1/2 nodes up (esup-proxy-1 offline)"
    rc, out = run_check(capsys, "-s", path, "-c", "1:")
    assert rc == 1 and first(out) == "HEARTBEAT NODES WARNING - esup-proxy-1 offline"
    assert "nodes_online=1;;1:;0;2" in out


def test_nodes_standby_and_link_down(cluster, capsys):
    path = cluster("standby-link-down")
    rc, out = run_check(capsys, "nodes", "-s", path)
    assert rc == 1
    assert first(out) == "HEARTBEAT NODES WARNING - esup-proxy-2 in standby; esup-proxy-2: link 198.51.100.12 down"
    rc, out = run_check(capsys, "nodes", "-s", path, "--standby-ok")
    assert rc == 1 and first(out) == "HEARTBEAT NODES WARNING - esup-proxy-2: link 198.51.100.12 down"


def test_resources_ok(cluster, capsys):
    rc, out = run_check(capsys, "resources", "-s", cluster("ok"))
    assert rc == 0 and first(out) == "HEARTBEAT RESOURCES OK - 3/3 resources started on esup-proxy-1"
    assert out.splitlines()[1] == "vip [esup]: started on esup-proxy-1 (prefers esup-proxy-1)"
    assert "vip_failcount=0;0;;0" in out and "resources_started=3;;;0;3" in out


def test_resources_after_failover_name_node_and_time(cluster, capsys):
    rc, out = run_check(capsys, "resources", "-s", cluster("failover"))
    assert rc == 1
    assert first(out).startswith("HEARTBEAT RESOURCES WARNING - esup on esup-proxy-2, not on preferred esup-proxy-1, "
                                 "since failover at ")
    assert first(out).endswith(" (node esup-proxy-1 lost)")
    assert "last failover: vip, proxy, tls from esup-proxy-1 to esup-proxy-2" in out
    rc, out = run_check(capsys, "resources", "-s", cluster("failover"), "--failover-ok")
    assert rc == 0


def test_resources_stopped_failed_split_and_fail_counts(cluster, capsys):
    rc, out = run_check(capsys, "resources", "-s", cluster("stopped"))
    assert rc == 2
    assert first(out).startswith("HEARTBEAT RESOURCES CRITICAL - proxy stopped (last failure: start rc 1 ")
    assert first(out).endswith("; proxy: fail count INFINITY on esup-proxy-2")
    assert "proxy_failcount=1000000;0;;0" in out
    rc, out = run_check(capsys, "resources", "-s", cluster("stopped"), "-r", "vip")
    assert rc == 0
    rc, out = run_check(capsys, "resources", "-s", cluster("split"))
    assert rc == 2 and "group esup split: vip on esup-proxy-1, proxy on esup-proxy-2" in first(out)
    assert "tls FAILED on esup-proxy-1" in first(out)


def test_fail_count_thresholds(cluster, capsys):
    path = cluster("split")  # tls failed once
    rc, out = run_check(capsys, "resources", "-s", path, "-r", "proxy")
    assert rc == 0
    rc, out = run_check(capsys, "resources", "-s", path, "-r", "tls", "-w", "5", "-c", "10")
    assert rc == 2  # failed, whatever the fail count
    assert "tls_failcount=1;5;10;0" in out


def test_resources_manual_move_and_unknown_resource(cluster, capsys):
    rc, out = run_check(capsys, "resources", "-s", cluster("moved"))
    assert rc == 1 and first(out).startswith("HEARTBEAT RESOURCES WARNING - esup: manual move to esup-proxy-2 "
                                             "still in place, expires ")
    rc, out = run_check(capsys, "resources", "-s", cluster("moved"), "-r", "nope")
    assert rc == 3 and "no resource or group named 'nope'" in first(out)


@pytest.mark.parametrize("answer, message", [
    (b"", "empty answer to the status request"),
    (b"garbage\n", "not a JSON status (it starts with 'garbage')"),
    (b'{"ok": false, "error": "busy"}\n', "the daemon refused: busy"),
    (b'{"nodes": []}\n', "status: no 'resources'"),
    (b"\xff\xfe\n", "not a JSON status"),
])
def test_bad_answers_are_unknown(cluster, capsys, answer, message):
    rc, out = run_check(capsys, "-s", cluster(answer))
    assert rc == 3 and first(out).startswith("HEARTBEAT NODES UNKNOWN - socket ") and message in first(out)


def test_missing_socket_and_timeout(cluster, capsys, tmp_path):
    rc, out = run_check(capsys, "-s", str(tmp_path / "none.sock"))
    assert rc == 3 and "no such socket" in first(out)
    gate, answered = threading.Event(), threading.Event()
    path = cluster(b"", handler=lambda conn, request: (gate.wait(30), answered.set()))
    try:
        rc, out = run_check(capsys, "resources", "-s", path, "-t", "1")
        assert not answered.is_set()  # the plugin gave up while the socket still held its answer back
    finally:
        gate.set()
    assert rc == 3 and first(out).endswith("no complete answer within 0.5s")


# ------------------------------------------------------------------ --pacemaker

def test_pacemaker_from_saved_documents(capsys):
    rc, out = run_check(capsys, "nodes", "--crm-mon-file", str(DATA / "crm_mon-2.1-ok.xml"))
    assert rc == 0 and first(out) == "PACEMAKER NODES OK - 2/2 nodes up, DC esup-proxy-1"
    rc, out = run_check(capsys, "resources", "--crm-mon-file", str(DATA / "crm_mon-2.1-failover.xml"),
                        "--preferred-node", "esup-proxy-1")
    assert rc == 1 and first(out).startswith("PACEMAKER RESOURCES WARNING - esup on esup-proxy-2, not on preferred "
                                             "esup-proxy-1, since 2026-11-24 ")
    rc, out = run_check(capsys, "nodes", "--crm-mon-file", str(DATA / "crm_mon-2.1-failover.xml"))
    assert rc == 2 and first(out) == "PACEMAKER NODES CRITICAL - 1/2 nodes up (esup-proxy-1 offline)"
    rc, out = run_check(capsys, "resources", "--crm-mon-file", str(DATA / "crm_mon-2.1-failed.xml"))
    assert rc == 2 and first(out).startswith("PACEMAKER RESOURCES CRITICAL - tls stopped (last failure: start rc 1 "
                                             "'stunnel4 failed to start' on esup-proxy-1 at ")
    assert "esup: manual ban from esup-proxy-2 (cli-ban-esup-on-esup-proxy-2) still in place" in first(out)
    rc, out = run_check(capsys, "nodes", "--crm-mon-file", str(DATA / "crm_mon-1.1-legacy.xml"))
    assert rc == 2 and first(out) == ("PACEMAKER NODES CRITICAL - 1/2 nodes up; esup-proxy-1 unclean (lost, not fenced); "
                                      "partition WITHOUT quorum")


def test_pacemaker_clone_placement(capsys):
    """crm_mon lists every clone instance, the stopped ones too: a clone (or a
    cloned group, a copy counting only when all its members run on one node)
    on fewer nodes than it has instances, or than the online nodes no ban
    keeps it from, is reported, with its copies in perfdata."""
    degraded = str(DATA / "crm_mon-2.1-clone-degraded.xml")
    rc, out = run_check(capsys, "resources", "--crm-mon-file", degraded, "-r", "web-clone")
    assert rc == 1 and first(out) == ("PACEMAKER RESOURCES WARNING - clone web-clone on 1 of 2 nodes (esup-proxy-1; "
                                      "eligible: esup-proxy-1, esup-proxy-3)")
    assert "clone web-clone: 1 of 3 copies [ esup-proxy-1 ], eligible esup-proxy-1 esup-proxy-3" in out
    assert "'web-clone_copies'=1;;;0;3" in out and "proxy-clone_copies" not in out
    rc, out = run_check(capsys, "resources", "--crm-mon-file", degraded)
    assert rc == 2 and "proxy FAILED on esup-proxy-2" in first(out) and "clone web-clone on 1 of 2" in first(out)
    assert ("clone proxy-clone: 3 of 3 copies [ esup-proxy-1 esup-proxy-2 esup-proxy-3 ], eligible esup-proxy-1 "
            "esup-proxy-2 esup-proxy-3, failed on esup-proxy-2") in out
    rc, out = run_check(capsys, "resources", "--crm-mon-file", str(DATA / "crm_mon-2.1-ok.xml"))
    assert rc == 0 and "clone" not in out


def test_pacemaker_file_errors(capsys, tmp_path):
    rc, out = run_check(capsys, "--crm-mon-file", str(tmp_path / "none.xml"))
    assert rc == 3 and first(out) == f"PACEMAKER NODES UNKNOWN - file {tmp_path}/none.xml: No such file or directory"
    rc, out = run_check(capsys, "--crm-mon-file", str(DATA / "crm_mon-2.1-not-connected.xml"))
    assert rc == 3 and "crm_mon failed (code 102): crm_mon: Error: cluster is not available on this node" in out
    bad = tmp_path / "bad.xml"
    bad.write_text("<nope")
    rc, out = run_check(capsys, "--crm-mon-file", str(bad))
    assert rc == 3 and "crm_mon output is not XML" in out


def stand_in(tmp_path: Path, body: str) -> str:
    """A fake crm_mon: a shell script printing what a real one would."""
    script = tmp_path / "crm_mon"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_pacemaker_runs_crm_mon(capsys, tmp_path):
    args_file = tmp_path / "args"
    crm_mon = stand_in(tmp_path, f'echo "$@" > {args_file}; cat {DATA / "crm_mon-2.1-ok.xml"}')
    rc, out = run_check(capsys, "resources", "--pacemaker", "--crm-mon", crm_mon, "--preferred-node", "esup-proxy-1")
    assert rc == 0 and first(out) == "PACEMAKER RESOURCES OK - 3/3 resources started on esup-proxy-1"
    assert args_file.read_text() == "--output-as=xml\n"


def test_pacemaker_crm_mon_failures(capsys, tmp_path):
    crm_mon = stand_in(tmp_path, 'echo "crm_mon: Error: cluster is not available on this node" >&2; exit 102')
    rc, out = run_check(capsys, "--pacemaker", "--crm-mon", crm_mon)
    assert rc == 3 and first(out) == (f"PACEMAKER NODES UNKNOWN - {crm_mon} --output-as=xml: exit 102: crm_mon: Error: "
                                      "cluster is not available on this node (is this user in group haclient?)")
    crm_mon = stand_in(tmp_path, f'cat {DATA / "crm_mon-2.1-not-connected.xml"}; exit 102')
    rc, out = run_check(capsys, "--pacemaker", "--crm-mon", crm_mon)
    assert rc == 3 and "crm_mon failed (code 102)" in first(out)
    rc, out = run_check(capsys, "--pacemaker", "--crm-mon", str(tmp_path / "absent"))
    assert rc == 3 and "not found (is Pacemaker installed? see --crm-mon)" in first(out)
    finished = tmp_path / "crm_mon-finished"
    crm_mon = stand_in(tmp_path, f"sleep 30; touch {finished}")
    rc, out = run_check(capsys, "--pacemaker", "--crm-mon", crm_mon, "-t", "1")
    assert rc == 3 and first(out).endswith("--output-as=xml: no answer within 0.5s")
    assert not finished.exists()  # the plugin gave up (and killed crm_mon) instead of waiting for it


def test_arguments_and_console_script(capsys):
    rc, out = run_check(capsys, "-w", "x")
    assert rc == 3 and first(out).startswith("HEARTBEAT UNKNOWN - argument -w/--warning: bad range 'x'")
    version = subprocess.run([str(BIN / "check_heartbeat"), "-V"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 3 and version.stdout == "check_heartbeat 0.1.0 (gproxy suite)\n"
    assert os.access(BIN / "check_heartbeat", os.X_OK)
