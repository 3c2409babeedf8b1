"""SNMP traps received by Debian's snmptrapd, for real events of a real gproxy and a real two-node
heartbeat cluster on loopback.

snmptrapd listens on a loopback port with GPROXY-SUITE-MIB loaded (the log shows symbolic names),
accepts v2c community "public" and the v3 user "nms" (SHA + AES, authPriv only) bound to each
sender's engine ID. Every daemon sends each trap twice, once per version, and both copies must
arrive, with the same values, within 1 s of the event (the trap's own gproxySuiteEventTime, to the
tenth of a second, against the moment the line appears in snmptrapd's log).

Events are caused, never faked: backends are killed and restarted, servers drained through the
stats socket, a Dummy resource's state file deleted, a node frozen (SIGSTOP) past warntime,
then killed, a forged heartbeat packet sent, a group moved by `heartbeat move`.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

from cluster_harness import (  # noqa: F401 (DUMMY, udp_port: re-exported to test_no_secrets.py)
    DUMMY,
    HeartbeatNodes,
    cluster_doc,
    dummies,
    require_dummy,
    udp_port,
    write_authkey,
)
from harness import REPO, BackendProcess, GproxyProcess, free_port, stop_process
from nagios_harness import NAGIOS4, NAGIOS_DIR, main_cfg
from trap_receiver import (  # noqa: F401 (re-exported to test_no_secrets.py)
    BASE_MIBS,
    MIB_DIR,
    SNMPTRAPD,
    WAIT,
    ReceivedTrap,
    Snmptrapd,
    check_pair,
    report_latencies,
    require_snmptrapd,
    snmp_table,
    start_snmptrapd,
)
from gsuite.snmp_config import DEFAULT_ENTERPRISE_OID, default_engine_id

QUIET = 1.5  # how long a test watches for a trap that must not come


# ------------------------------------------------------------------- every v3 protocol, once

NET_SNMP_AUTH = {"SHA224": "SHA-224", "SHA256": "SHA-256", "SHA384": "SHA-384", "SHA512": "SHA-512"}


def test_every_v3_protocol_is_understood_by_snmptrapd(tmp_path):
    """Each auth and priv protocol the config accepts, against net-snmp's own USM (its AES192/256
    are the Blumenthal variants, which the sender uses)."""
    from checks.snmp.mapping import to_trap
    from checks.snmp.sender import TrapSender
    from gproxy.events import BackendStateChanged
    from gsuite.snmp_config import AUTH_PROTOCOLS, PRIV_PROTOCOLS, TrapTarget

    combos = list(zip(AUTH_PROTOCOLS, PRIV_PROTOCOLS + PRIV_PROTOCOLS[-2:]))
    assert {a for a, _ in combos} == set(AUTH_PROTOCOLS) and {p for _, p in combos} == set(PRIV_PROTOCOLS)
    engine_id = "0x80007ed904" + b"protocols".hex()
    port = udp_port()
    conf = tmp_path / "snmptrapd.conf"
    conf.write_text("".join(f"createUser -e {engine_id} user{i} {NET_SNMP_AUTH.get(a, a)} auth-key-{i} "
                            f"{p} priv-key-{i}\nauthUser log user{i} priv\n" for i, (a, p) in enumerate(combos))
                    + "format2 %P\\n\n")
    log = tmp_path / "traps.log"
    trapd = start_snmptrapd(conf, log, port, tmp_path / "persist", mibs=["-m", ""])
    reports: list[str] = []
    sender = TrapSender(tuple(TrapTarget(host="127.0.0.1", port=port, version="v3", user=f"user{i}",
                                         auth_protocol=a, auth_key=f"auth-key-{i}", priv_protocol=p,
                                         priv_key=f"priv-key-{i}") for i, (a, p) in enumerate(combos)),
                        engine_id, 10, 100, reports.append)
    try:
        deadline = time.monotonic() + WAIT
        sender.start()
        sender.submit(to_trap(BackendStateChanged(backend="b", up=False, message="m", at=time.time()), "gproxy",
                              "lb1", DEFAULT_ENTERPRISE_OID))
        expected = {f"TRAP2, SNMP v3, user user{i}, context" for i in range(len(combos))}
        while True:
            got = {line.strip() for line in log.read_text(errors="replace").splitlines()} & expected
            if got == expected:
                break
            assert time.monotonic() < deadline, f"received only {sorted(got)}; {reports}"
            time.sleep(0.02)
    finally:
        sender.close()
        stop_process(trapd)
    assert reports == [] and sender.stats.sent == len(combos)


# ------------------------------------------------------------------------------------- gproxy

NODE = "lb1"


def ctl(sock: Path, command: str) -> str:
    done = subprocess.run([sys.executable, "-m", "gproxy", "ctl", "-s", str(sock), command], capture_output=True,
                          text=True, cwd=REPO, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_gproxy_server_backend_and_admin_traps(tmp_path):
    receiver = Snmptrapd(tmp_path, [default_engine_id(DEFAULT_ENTERPRISE_OID, "gproxy", NODE)])
    backends = [BackendProcess(name).start() for name in ("s1", "s2")]
    sock = tmp_path / "admin.sock"
    port = free_port()
    server = {"check": True, "inter": "100ms", "rise": 1, "fall": 1}
    config = {
        "global": {"node": NODE, "stats_socket": {"path": str(sock), "level": "admin"}},
        "snmp": snmp_table(receiver),
        "defaults": {"mode": "http", "timeout": {"connect": "1s", "client": "5s", "server": "5s"}},
        "listen": {"app": {"bind": [f"127.0.0.1:{port}"],
                           "server": [{"name": b.name, "address": b.address, **server} for b in backends]}},
    }
    (tmp_path / "gp").mkdir()
    proxy = GproxyProcess(config, tmp_path / "gp")
    revived = None
    try:
        proxy.start([port])
        deadline = time.monotonic() + WAIT
        while "SNMP traps to" not in proxy.stderr():
            assert time.monotonic() < deadline, proxy.stderr()
            time.sleep(0.02)
        wait_sock(sock)

        trigger = time.time()
        backends[0].kill()
        down = check_pair(receiver.wait("gproxyServerDown", trigger), trigger,
                          gproxySuiteSender=NODE, gproxyBackendName="app", gproxyServerName="s1",
                          gproxyServerOldStatus="UP", gproxyServerNewStatus="DOWN", gproxyCheckStatus="L4CON",
                          gproxyReason="Layer4 connection problem", gproxyActiveServersLeft="1",
                          gproxyBackupServersLeft="0")
        assert down.values["gproxySuiteMessage"].startswith("Server app/s1 is DOWN, reason: Layer4 connection problem")

        trigger = time.time()
        backends[1].kill()
        check_pair(receiver.wait("gproxyServerDown", trigger), trigger, gproxyServerName="s2",
                   gproxyActiveServersLeft="0")
        check_pair(receiver.wait("gproxyBackendDown", trigger), trigger, gproxyBackendName="app",
                   gproxySuiteMessage="backend app has no server available!")

        trigger = time.time()
        revived = BackendProcess("s2", port=backends[1].port).start()
        check_pair(receiver.wait("gproxyServerUp", trigger), trigger, gproxyServerName="s2",
                   gproxyServerOldStatus="DOWN", gproxyServerNewStatus="UP", gproxyActiveServersLeft="1")
        check_pair(receiver.wait("gproxyBackendUp", trigger), trigger, gproxyBackendName="app")

        trigger = time.time()
        ctl(sock, "set server app/s2 state drain")
        check_pair(receiver.wait("gproxyServerAdminChange", trigger), trigger, gproxyServerName="s2",
                   gproxyServerAdminState="drain(2)", gproxyServerOldStatus="UP", gproxyServerNewStatus="DRAIN")

        trigger = time.time()
        ctl(sock, "set server app/s2 state ready")
        check_pair(receiver.wait("gproxyServerAdminChange", trigger), trigger, gproxyServerName="s2",
                   gproxyServerAdminState="ready(1)", gproxyServerOldStatus="DRAIN", gproxyServerNewStatus="UP")

        trigger = time.time()
        ctl(sock, "set server app/s2 state maint")
        check_pair(receiver.wait("gproxyServerAdminChange", trigger), trigger, gproxyServerName="s2",
                   gproxyServerAdminState="maint(3)", gproxyServerNewStatus="MAINT", gproxyActiveServersLeft="0")
        check_pair(receiver.wait("gproxyBackendDown", trigger), trigger, gproxyBackendName="app")
        report_latencies(receiver)
    finally:
        proxy.stop()
        for b in backends + ([revived] if revived else []):
            b.stop()
        receiver.stop()


def wait_sock(path: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists():
        assert time.monotonic() < deadline, f"no {path}"
        time.sleep(0.02)


# ------------------------------------------------------------------------------------- heartbeat

FREEZE = 0.8  # seconds n1 is stopped: past warntime (0.5 s), well short of deadtime (2 s), even on a busy machine


class LoopbackCluster(HeartbeatNodes):
    """Two heartbeat nodes sharing 127.0.0.1 (`{node}` keeps their sockets and state apart)."""

    log_tail = 3000

    def __init__(self, tmp: Path, snmp: dict):
        super().__init__(tmp, ["n1", "n2"], tmp / "cluster.toml")
        self.ports = {"n1": free_port(), "n2": free_port()}
        write_authkey(tmp / "authkey", "snmp-e2e-secret")
        doc = cluster_doc(tmp, "snmp-e2e", {name: f"127.0.0.1:{port}" for name, port in self.ports.items()},
                          keepalive="200ms", warntime="500ms", deadtime="2s", initdead="2s", port=free_port())
        doc |= dummies(tmp, ["d1", "d2"], "n1", "300ms", "5s", group="g")
        self.path.write_text(tomli_w.dumps(doc | {"snmp": snmp}))

    def heartbeat(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "heartbeat", *args, "-s", self.socket("n2")],
                              capture_output=True, text=True, cwd=REPO, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


def forged_heartbeat(cluster: str) -> bytes:
    """A heartbeat from "n1" signed with a key the cluster does not have."""
    from heartbeat.protocol import Message, encode
    return encode(Message(kind="hb", sender="n1", cluster=cluster, generation=1, seq=1, body={}), 1, b"not-the-key")


def test_heartbeat_cluster_traps(tmp_path):
    require_dummy()
    receiver = Snmptrapd(tmp_path, [default_engine_id(DEFAULT_ENTERPRISE_OID, "heartbeat", n) for n in ("n1", "n2")])
    cluster = LoopbackCluster(tmp_path, snmp_table(receiver))
    try:
        trigger = time.time()
        cluster.start("n1")
        cluster.start("n2")
        def n2_saw_n1(trap: ReceivedTrap) -> bool:
            return (trap.values["gproxySuiteSender"], trap.values["heartbeatNodeName"]) == ("n2", "n1")

        check_pair(receiver.wait("heartbeatNodeJoined", trigger, n2_saw_n1), trigger,
                   heartbeatClusterName="snmp-e2e", gproxySuiteMessage="node n1 joined")
        cluster.wait_placed("n2", "n1")

        # A resource fails where it runs (its state file vanishes: monitor says "not running"), then restarts.
        trigger = time.time()
        (tmp_path / "n1-d1.state").unlink()
        check_pair(receiver.wait("heartbeatResourceFailed", trigger), trigger, gproxySuiteSender="n1",
                   heartbeatResourceName="d1", heartbeatNodeName="n1", heartbeatAgent="ocf:heartbeat:Dummy",
                   heartbeatOperation="monitor", heartbeatReturnCode="7")
        check_pair(receiver.wait("heartbeatResourceRecovered", trigger), trigger, gproxySuiteSender="n1",
                   heartbeatResourceName="d1", heartbeatNodeName="n1", gproxySuiteMessage="d1 recovered on n1")

        # n1 freezes past warntime: n2 hears a late heartbeat, and nothing fails over.
        trigger = time.time()
        cluster.freeze("n1", True)
        time.sleep(FREEZE)
        cluster.freeze("n1", False)
        late = check_pair(receiver.wait("heartbeatLateHeartbeat", trigger,
                                        lambda t: t.values["gproxySuiteSender"] == "n2"), trigger,
                          heartbeatNodeName="n1")
        gap, unit = late.values["heartbeatGap"].split()
        assert 500 < int(gap) < 2000 and unit == "milliseconds"  # the MIB's UNITS, so the MIB is loaded

        # Someone without the key sends heartbeats to n2.
        trigger = time.time()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as forger:
            forger.sendto(forged_heartbeat("snmp-e2e"), ("127.0.0.1", cluster.ports["n2"]))
        check_pair(receiver.wait("heartbeatAuthFailuresReport", trigger), trigger, gproxySuiteSender="n2",
                   heartbeatReason="bad-hmac", heartbeatAuthFailures="1")

        # The active node dies: n2 declares it lost and takes the resources.
        trigger = time.time()
        cluster.kill("n1")
        lost = check_pair(receiver.wait("heartbeatNodeLost", trigger), trigger, gproxySuiteSender="n2",
                          heartbeatNodeName="n1")
        assert int(lost.values["heartbeatSilence"].split()[0]) >= 2000
        check_pair(receiver.wait("heartbeatFailover", trigger), trigger, heartbeatResources="d1,d2",
                   heartbeatFromNode="n1", heartbeatToNode="n2", heartbeatReason="node n1 lost")
        cluster.wait_placed("n2", "n2")

        # It comes back, rebooted (what ran there is gone: its Dummy state files with it): it joins,
        # and the resources fail back to the preferred node.
        for state in tmp_path.glob("n1-*.state"):
            state.unlink()
        trigger = time.time()
        cluster.start("n1")
        check_pair(receiver.wait("heartbeatNodeJoined", trigger, lambda t: t.values["gproxySuiteSender"] == "n2"),
                   trigger, heartbeatNodeName="n1")
        check_pair(receiver.wait("heartbeatFailover", trigger), trigger, heartbeatResources="d1,d2",
                   heartbeatFromNode="n2", heartbeatToNode="n1")
        cluster.wait_placed("n2", "n1")

        # An administrator moves them: that is no failover, and no trap says otherwise.
        trigger = time.time()
        cluster.heartbeat("move", "g", "n2")
        cluster.wait_placed("n2", "n2")
        time.sleep(QUIET)
        assert receiver.traps("heartbeatFailover", since=trigger) == []
        assert receiver.traps("heartbeatResourceFailed", since=trigger) == []

        # The move is cleared: the cluster places the group again (back on n1), its own decision.
        trigger = time.time()
        cluster.heartbeat("clear", "g")
        check_pair(receiver.wait("heartbeatFailover", trigger), trigger, heartbeatFromNode="n2",
                   heartbeatToNode="n1")
        cluster.wait_placed("n2", "n1")

        # n1 is put in standby: the cluster empties it, and says where the resources went.
        trigger = time.time()
        cluster.heartbeat("standby", "n1")
        check_pair(receiver.wait("heartbeatFailover", trigger), trigger, heartbeatResources="d1,d2",
                   heartbeatFromNode="n1", heartbeatToNode="n2", heartbeatReason="node n1 in standby")
        report_latencies(receiver)
    finally:
        cluster.stop()
        receiver.stop()


# ------------------------------------------------------------------------ snmptt -> Nagios

SNMPTT = shutil.which("snmptt") or "/usr/sbin/snmptt"
SNMPTT_CONF = MIB_DIR / "snmptt" / "snmptt.conf.gproxy-suite"
TRAP2NAGIOS = MIB_DIR / "snmptt" / "trap2nagios"

SNMPTT_INI = """[General]
snmptt_system_name = test
mode = standalone
multiple_event = 1
dns_enable = 0
net_snmp_perl_enable = 0
[Logging]
stdout_enable = 0
log_enable = 1
log_file = {d}/snmptt.log
log_system_enable = 0
unknown_trap_log_enable = 1
unknown_trap_log_file = {d}/snmptt-unknown.log
syslog_enable = 0
syslog_system_enable = 0
[Exec]
exec_enable = 1
pre_exec_enable = 0
exec_escape = 1
[Debugging]
DEBUGGING = 0
[TrapFiles]
snmptt_conf_files = <<END
{d}/snmptt.conf
END
"""

# Passive results only: the traps are the checks.
PASSIVE_CFG = """command_check_interval=-1
execute_service_checks=0
execute_host_checks=0
accept_passive_service_checks=1
log_passive_checks=1
log_service_retries=1
"""


class TrapsToNagios:
    """snmptrapd -> snmptt (standalone, the shipped EVENT lines) -> trap2nagios -> a private nagios4
    running the shipped example objects, active checks off (forced re-checks hit stub plugins)."""

    def __init__(self, d: Path):
        require_snmptrapd()
        for tool_path, what in ((SNMPTT, "snmptt"), (NAGIOS4, "nagios4")):
            if not Path(tool_path).exists():
                pytest.fail(f"{what} is missing: run scripts/install-debian-deps.sh (make test does)")
        self.d = d
        plugins = d / "plugins"
        plugins.mkdir()
        for name in ("check_gproxy", "check_heartbeat", "check_http", "check_nrpe", "check_ping"):
            stub = plugins / name
            stub.write_text("#!/bin/sh\necho 'OK - stub plugin'\nexit 0\n")
            stub.chmod(0o755)
        (d / "checkresults").mkdir()
        (d / "resource.cfg").write_text(f"$USER1$={plugins}\n")
        (d / "nagios.cfg").write_text(main_cfg(d, NAGIOS_DIR / "example" / "objects" / "esup-proxy.cfg",
                                               PASSIVE_CFG))
        (d / "snmptt.conf").write_text(SNMPTT_CONF.read_text().replace(
            "/usr/local/bin/trap2nagios", f"{TRAP2NAGIOS} -c {d}/nagios.cmd"))
        (d / "snmptt.ini").write_text(SNMPTT_INI.format(d=d))
        verify = subprocess.run([NAGIOS4, "-v", str(d / "nagios.cfg")], capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stdout
        self.nagios = subprocess.Popen([NAGIOS4, str(d / "nagios.cfg")], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + WAIT
        while not (d / "nagios.cmd").exists():
            assert self.nagios.poll() is None and time.monotonic() < deadline, "nagios4 did not start"
            time.sleep(0.05)
        self.port = udp_port()
        (d / "snmptrapd.conf").write_text(
            "authCommunity log,execute public\n"
            "# snmptt matches numeric OIDs\n"
            "outputOption n\n"
            f"traphandle default {SNMPTT} --ini={d}/snmptt.ini\n")
        self.trapd = start_snmptrapd(d / "snmptrapd.conf", d / "traps.log", self.port, d / "persist",
                                     stderr=open(d / "snmptrapd.stderr", "wb"))

    @property
    def target(self) -> str:
        return f"udp://127.0.0.1:{self.port}"

    def wait_log(self, pattern: str, timeout: float = WAIT) -> float:
        """When (epoch, seen by this poll) a nagios.log line matching `pattern` appeared."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = (self.d / "nagios.log").read_text(errors="replace") if (self.d / "nagios.log").exists() else ""
            for line in text.splitlines():
                if regex.search(line):
                    return time.time()
            time.sleep(0.02)
        tail = (self.d / "nagios.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"nagios.log has no line matching {pattern!r}:\n{tail}")

    def stop(self) -> None:
        for proc in (self.trapd, self.nagios):
            stop_process(proc)


def test_traps_become_nagios_passive_results(tmp_path):
    chain = TrapsToNagios(tmp_path)
    backend = BackendProcess("ents3").start()
    port = free_port()
    config = {
        "global": {"node": "esup-proxy-1"},
        "snmp": {"traps": [{"target": chain.target, "community": "public"}]},
        "defaults": {"mode": "http", "timeout": {"connect": "1s", "client": "5s", "server": "5s"}},
        "listen": {"esup-proxy": {"bind": [f"127.0.0.1:{port}"], "server": [
            {"name": "ents3", "address": backend.address, "check": True, "inter": "100ms", "rise": 1, "fall": 1}]}},
    }
    (tmp_path / "gp").mkdir()
    proxy = GproxyProcess(config, tmp_path / "gp")
    notifier = None
    try:
        proxy.start([port])
        killed = time.time()
        backend.kill()
        warned = chain.wait_log(r"SERVICE ALERT: esup-proxy;esup-proxy backend;WARNING;SOFT;1;SNMP TRAP WARNING - "
                                r"Server esup-proxy/ents3 is DOWN, reason: Layer4 connection problem")
        critical = chain.wait_log(r"SERVICE ALERT: esup-proxy;esup-proxy backend;CRITICAL;SOFT;\d;SNMP TRAP CRITICAL - "
                                  r"backend esup-proxy has no server available!")
        print(f"backend killed -> Nagios WARNING {warned - killed:.2f} s, CRITICAL {critical - killed:.2f} s "
              "(gproxy's detection, inter 100 ms, included)")
        assert warned <= critical

        # heartbeat's traps, from a notifier fed with heartbeat's own event objects (the cluster itself
        # is exercised in test_heartbeat_cluster_traps): host = the sending node, as in the example.
        from checks.snmp.notifier import attach
        from gsuite.events import EventBus
        from gsuite.snmp_config import parse_snmp
        from heartbeat.events import Failover, NodeLost, ResourceFailed, ResourceRecovered
        snmp, problems = parse_snmp({"traps": [{"target": chain.target}]})
        assert problems == []
        bus = EventBus()
        notifier = attach(bus, snmp, source="heartbeat", node="esup-proxy-2", log=lambda m: None)
        now = time.time()
        bus.publish(NodeLost(cluster="esup-proxy", node="esup-proxy-1", silent_ms=5000, at=now))
        bus.publish(Failover(cluster="esup-proxy", resources=("vip", "proxy", "tls"), source="esup-proxy-1",
                             target="esup-proxy-2", reason="node esup-proxy-1 lost", at=now))
        bus.publish(ResourceFailed(cluster="esup-proxy", resource="tls", node="esup-proxy-2", agent="lsb:stunnel4",
                                   operation="start", rc=1, reason="generic error", at=now))
        bus.publish(ResourceRecovered(cluster="esup-proxy", resource="tls", node="esup-proxy-2", at=now))
        chain.wait_log(r"SERVICE ALERT: esup-proxy-2;cluster nodes;CRITICAL;SOFT;1;SNMP TRAP CRITICAL - "
                       r"node esup-proxy-1 lost: silent for 5000 ms")
        chain.wait_log(r"SERVICE ALERT: esup-proxy-2;cluster resources;WARNING;SOFT;1;SNMP TRAP WARNING - "
                       r"vip,proxy,tls failed over from esup-proxy-1 to esup-proxy-2: node esup-proxy-1 lost")
        chain.wait_log(r"SERVICE ALERT: esup-proxy-2;cluster resources;CRITICAL;SOFT;\d;SNMP TRAP CRITICAL - "
                       r"start of tls on esup-proxy-2 failed: rc=1 \(generic error\)")
        chain.wait_log(r"SERVICE ALERT: esup-proxy-2;cluster resources;OK;SOFT;\d;SNMP TRAP OK - "
                       r"tls recovered on esup-proxy-2")
        # The partition traps, from the other node (its services start OK).
        from heartbeat.events import Fencing, QuorumChanged, SplitBrain
        bus = EventBus()
        other = attach(bus, snmp, source="heartbeat", node="esup-proxy-1", log=lambda m: None)
        try:
            now = time.time()
            bus.publish(QuorumChanged(cluster="esup-proxy", node="esup-proxy-1", have=False, votes=1, expected=2,
                                      reason="tie-breaker lost: 0 ping targets, peer 1", at=now))
            bus.publish(SplitBrain(cluster="esup-proxy", nodes=("esup-proxy-1", "esup-proxy-2"), resources=("vip",),
                                   at=now))
            chain.wait_log(r"SERVICE ALERT: esup-proxy-1;cluster nodes;CRITICAL;SOFT;1;SNMP TRAP CRITICAL - "
                           r"partition of esup-proxy-1 lost quorum: 1 of 2 votes \(tie-breaker lost")
            chain.wait_log(r"SERVICE ALERT: esup-proxy-1;cluster resources;CRITICAL;SOFT;1;SNMP TRAP CRITICAL - "
                           r"split brain: vip ran on esup-proxy-1 and esup-proxy-2 at once")
            # The second CRITICAL of "cluster nodes" is HARD: gproxy-cluster-service has 2 attempts.
            bus.publish(Fencing(cluster="esup-proxy", node="esup-proxy-2", ok=False, reason="sh exited 1", at=now))
            chain.wait_log(r"SERVICE ALERT: esup-proxy-1;cluster nodes;CRITICAL;HARD;2;SNMP TRAP CRITICAL - "
                           r"node esup-proxy-2 NOT fenced, takeover blocked: sh exited 1")
        finally:
            other.close()
        assert not (tmp_path / "snmptt-unknown.log").exists()
    finally:
        if notifier is not None:
            notifier.close()
        proxy.stop()
        backend.stop()
        chain.stop()
