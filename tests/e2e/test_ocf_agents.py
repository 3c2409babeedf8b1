"""Resource agents for real: Debian's ocf-tester against the project's agents,
Debian's ocf:heartbeat:IPaddr2 and lsb:stunnel4 through heartbeat's runner,
and the LRM's recurring monitor catching a dead gproxy and a vanished VIP.

Addresses live only inside a network namespace each test makes (a veth
pair with both ends inside it: this kernel may lack the dummy link type)
and deletes in its fixture's teardown; gproxy, stunnel and the backends
listen on 127.0.0.1. Needs root (namespaces, /etc/stunnel, addresses).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

import gevent
import pytest
import tomli_w
from gevent.event import Event

from harness import REPO, free_port, http_get, wait_port
from heartbeat.lrm.codes import OcfRc
from heartbeat.lrm.lrm import LocalResourceManager
from heartbeat.lrm.runner import AGENTS_DIR, run_action
from heartbeat.model import AgentSpec, Operation, ResourceConfig, ResourceState

if os.geteuid() != 0:
    pytest.skip("the agent tests need root (network namespaces, addresses, /etc/stunnel)",
                allow_module_level=True)

GPROXY_AGENT = AGENTS_DIR / "gproxy" / "gproxy"
VIP_AGENT = AGENTS_DIR / "gproxy" / "vip"
IPADDR2 = Path("/usr/lib/ocf/resource.d/heartbeat/IPaddr2")
STUNNEL_INIT = Path("/etc/init.d/stunnel4")
STUNNEL_CONF_DIR = Path("/etc/stunnel")
OCF_TESTER_TIMEOUT = 120  # seconds for a whole ocf-tester run
WAIT = 10.0  # seconds: a bound against hangs, never a timing assertion
REAP_WAIT = 30.0  # seconds init may take to reap a killed orphan


def gproxy_command() -> str:
    """The venv's gproxy script, as an administrator would name it."""
    script = Path(sys.executable).parent / "gproxy"
    return str(script) if script.exists() else f"{sys.executable} -m gproxy"


def ocf_tester(agent: Path, name: str, params: dict[str, str], netns: str | None = None) -> subprocess.CompletedProcess:
    assert shutil.which("ocf-tester"), "ocf-tester missing: install Debian's resource-agents"
    assert shutil.which("xmllint"), ("ocf-tester validates meta-data with xmllint: install libxml2-utils "
                                     "(scripts/install-debian-deps.sh)")
    argv = ["ocf-tester", "-n", name]
    for key, value in params.items():
        argv += ["-o", f"{key}={value}"]
    argv.append(str(agent))
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCF_")}
    return subprocess.run(argv, capture_output=True, text=True, timeout=OCF_TESTER_TIMEOUT, cwd="/", env=env)


def assert_passed(proc: subprocess.CompletedProcess, agent: Path) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert f"{agent} passed all tests" in output
    assert "* rc=" not in output, output  # no failed assertion at all


# ---- network namespace ---------------------------------------------------------------

class Netns:
    """One namespace with a veth pair d0/d1 inside it; d0 holds 10.213.SUBNET.1/24."""

    def __init__(self):
        self.name = f"hbocf{os.getpid() % 10000}{uuid.uuid4().hex[:4]}"
        self.subnet = 200 + os.getpid() % 50
        self.network = f"10.213.{self.subnet}"
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        try:
            for args in (["link", "add", "d0", "type", "veth", "peer", "name", "d1"],
                         ["link", "set", "lo", "up"], ["link", "set", "d0", "up"], ["link", "set", "d1", "up"],
                         ["addr", "add", f"{self.network}.1/24", "dev", "d0"]):
                self.ip(*args)
        except BaseException:
            self.delete()
            raise

    def ip(self, *args: str) -> str:
        return subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True, text=True).stdout

    def addresses(self, dev: str | None = None) -> list[str]:
        out = self.ip("-o", "-4", "addr", "show", *(["dev", dev] if dev else []))
        return [line.split()[3] for line in out.splitlines()]

    def run_python(self, code: str, *args: str) -> str:
        proc = subprocess.run(["ip", "netns", "exec", self.name, sys.executable, "-c", code, *args],
                              capture_output=True, text=True, cwd=REPO, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def delete(self) -> None:
        pids = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout.split()
        for pid in pids:  # e.g. a send_arp still announcing
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


@pytest.fixture
def netns():
    ns = Netns()
    try:
        yield ns
    finally:
        ns.delete()
    assert ns.name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


# ---- ocf:gproxy:vip ----------------------------------------------------------------------

def test_ocf_tester_passes_the_vip_agent(netns):
    vip = f"{netns.network}.50"
    proc = ocf_tester(VIP_AGENT, "vip", {"ip": vip, "cidr_netmask": "24"}, netns=netns.name)
    assert_passed(proc, VIP_AGENT)
    assert not any(a.startswith(vip + "/") for a in netns.addresses())  # ocf-tester ends stopped


def test_ocf_tester_passes_the_vip_agent_with_nic_and_label(netns):
    vip = f"{netns.network}.51"
    proc = ocf_tester(VIP_AGENT, "vip", {"ip": vip, "nic": "d1", "iflabel": "vip", "arp_count": "1"},
                      netns=netns.name)
    assert_passed(proc, VIP_AGENT)


RUN_ACTIONS = r"""
import json, sys
from heartbeat.lrm.runner import run_action
from heartbeat.model import AgentSpec, ResourceConfig
provider, kind, params, actions = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4:]
res = ResourceConfig(id="vip", agent=AgentSpec("ocf", provider, kind), params=tuple(params.items()))
results = []
for action in actions:
    r = run_action(res, action, 20000, 10000 if action == "monitor" else 0)
    results.append({"action": r.action, "rc": int(r.rc), "reason": r.reason, "timed_out": r.timed_out})
print(json.dumps(results))
"""


def actions_in(ns: Netns, provider: str, kind: str, params: dict, *actions: str) -> list[tuple[str, int]]:
    results = json.loads(ns.run_python(RUN_ACTIONS, provider, kind, json.dumps(params), *actions))
    assert not any(r["timed_out"] for r in results), results
    return [(r["action"], r["rc"]) for r in results]


@pytest.mark.parametrize("provider, kind", [("heartbeat", "IPaddr2"), ("gproxy", "vip")])
def test_ip_agents_through_run_action(netns, provider, kind):
    if provider == "heartbeat":
        assert IPADDR2.exists(), "Debian's resource-agents is not installed"
    vip = f"{netns.network}.60"
    params = {"ip": vip, "cidr_netmask": "24", "nic": "d0"}
    assert actions_in(netns, provider, kind, params, "probe", "start") == [("probe", 7), ("start", 0)]
    assert f"{vip}/24" in netns.addresses("d0")
    assert actions_in(netns, provider, kind, params, "monitor", "start", "probe") == [
        ("monitor", 0), ("start", 0), ("probe", 0)]
    assert actions_in(netns, provider, kind, params, "stop", "monitor", "stop", "probe") == [
        ("stop", 0), ("monitor", 7), ("stop", 0), ("probe", 7)]
    assert f"{vip}/24" not in netns.addresses()


LRM_VANISHING_VIP = r"""
import json, subprocess, sys
from gevent.event import Event
from heartbeat.lrm.lrm import LocalResourceManager
from heartbeat.model import AgentSpec, Operation, ResourceConfig
vip = sys.argv[1]
res = ResourceConfig(id="vip", agent=AgentSpec("ocf", "gproxy", "vip"),
                     params=(("ip", vip), ("cidr_netmask", "24")),
                     monitor=Operation("monitor", interval=200, timeout=5000))
reported, results = Event(), []
lrm = LocalResourceManager("n1", [res], lambda r: (results.append(r), reported.set()))
out = {"probe": lrm.probe_all()["vip"].state.value, "start": int(lrm.execute("start", "vip").rc)}
subprocess.run(["ip", "addr", "del", vip + "/24", "dev", "d0"], check=True)  # someone removes it
out["reported"] = reported.wait(10)
out["results"] = [(r.action, int(r.rc), r.interval_ms) for r in results]
out["state"] = lrm.state("vip").value
out["stop"] = int(lrm.execute("stop", "vip").rc)
out["final"] = lrm.state("vip").value
lrm.stop_monitors()
print(json.dumps(out))
"""


def test_the_lrm_reports_a_vanished_vip(netns):
    out = json.loads(netns.run_python(LRM_VANISHING_VIP, f"{netns.network}.70"))
    assert out == {"probe": "stopped", "start": 0, "reported": True, "results": [["monitor", 7, 200]],
                   "state": "failed", "stop": 0, "final": "stopped"}


# ---- ocf:gproxy:gproxy ---------------------------------------------------------------------

def gproxy_config(tmp_path: Path, port: int, backend: str, stats_socket: Path | None = None) -> Path:
    config: dict = {
        "global": {"maxconn": 100},
        "defaults": {"mode": "http", "timeout": {"connect": "1s", "client": "5s", "server": "5s"}},
        "listen": {"app": {"bind": [f"127.0.0.1:{port}"],
                           "server": [{"name": "x", "address": backend}]}},
    }
    if stats_socket is not None:
        config["global"]["stats_socket"] = {"path": str(stats_socket), "level": "admin"}
    path = tmp_path / "gproxy.toml"
    path.write_bytes(tomli_w.dumps(config).encode())
    return path


@pytest.fixture
def gproxy_setup(tmp_path, start_backend):
    """A demo backend, a gproxy config in front of it, and the agent's params;
    whatever gproxy the agent left running is killed at the end."""
    backend = start_backend("x")
    port = free_port()
    config = gproxy_config(tmp_path, port, backend.address)
    params = {"config": str(config), "gproxy": gproxy_command(),
              "pidfile": str(tmp_path / "gproxy.pid"), "logfile": str(tmp_path / "gproxy.log")}
    yield params, port
    kill_from_pidfile(Path(params["pidfile"]))


def children(pid: int) -> set[int]:
    """The pids of a process's children (gproxy's workers)."""
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def kill_from_pidfile(pidfile: Path) -> None:
    try:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def test_ocf_tester_passes_the_gproxy_agent(gproxy_setup):
    params, _port = gproxy_setup
    proc = ocf_tester(GPROXY_AGENT, "proxy", params)
    assert_passed(proc, GPROXY_AGENT)
    assert "does not support the reload action" not in proc.stdout  # reload is implemented
    assert not Path(params["pidfile"]).exists()  # ocf-tester ends with the resource stopped


def test_gproxy_agent_serves_traffic_and_reloads(gproxy_setup):
    params, port = gproxy_setup
    res = ResourceConfig(id="proxy", agent=AgentSpec("ocf", "gproxy", "gproxy"), params=tuple(params.items()))
    assert run_action(res, "probe", 20000).rc == OcfRc.NOT_RUNNING
    started = run_action(res, "start", 30000)
    assert started.rc == OcfRc.SUCCESS, started
    status, headers, body = http_get(port, "/")
    assert status == 200 and headers["x-backend"] == ["x"]
    pid = int(Path(params["pidfile"]).read_text())
    workers = children(pid)
    reloaded = run_action(res, "reload", 60000)
    assert reloaded.rc == OcfRc.SUCCESS, reloaded
    assert int(Path(params["pidfile"]).read_text()) == pid  # SIGHUP: the master stays...
    assert children(pid) - workers  # ...and new workers serve
    assert http_get(port, "/")[0] == 200
    assert run_action(res, "stop", 30000).rc == OcfRc.SUCCESS
    assert run_action(res, "monitor", 20000, 10000).rc == OcfRc.NOT_RUNNING
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_the_lrm_catches_a_killed_gproxy(gproxy_setup):
    params, port = gproxy_setup
    res = ResourceConfig(id="proxy", agent=AgentSpec("ocf", "gproxy", "gproxy"), params=tuple(params.items()),
                         monitor=Operation("monitor", interval=200, timeout=10_000),
                         start=Operation("start", timeout=30_000))
    reported = Event()
    results = []
    lrm = LocalResourceManager("n1", [res], lambda r: (results.append(r), reported.set()))
    try:
        assert lrm.probe_all()["proxy"].state is ResourceState.STOPPED
        assert lrm.execute("start", "proxy").rc == OcfRc.SUCCESS
        assert lrm.monitor_armed("proxy")
        os.kill(int(Path(params["pidfile"]).read_text()), signal.SIGKILL)  # gproxy crashes
        assert reported.wait(WAIT), "the recurring monitor did not report the crash"
        assert [(r.action, r.rc) for r in results] == [("monitor", OcfRc.NOT_RUNNING)]
        assert lrm.state("proxy") is ResourceState.FAILED
        # Recovery is the controller's: stop (cleans the stale pid file), start again.
        assert lrm.execute("stop", "proxy").rc == OcfRc.SUCCESS
        assert lrm.execute("start", "proxy").rc == OcfRc.SUCCESS
        assert http_get(port, "/")[0] == 200
        assert lrm.execute("stop", "proxy").rc == OcfRc.SUCCESS
    finally:
        lrm.stop_monitors()


def test_a_gproxy_in_another_namespace_is_not_ours(netns, tmp_path):
    # Cluster nodes that are namespaces of one host share /run and /proc: a
    # pid file naming another node's gproxy must not make this node "running".
    config = tmp_path / "g.toml"
    config.write_text("# only its path matters here\n")
    other = subprocess.Popen(["ip", "netns", "exec", netns.name, sys.executable, "-c",
                              "import sys, time; print(flush=True); time.sleep(60)", "run", str(config)],
                             stdout=subprocess.PIPE, text=True)
    try:
        other.stdout.readline()  # the python process is up (ip netns exec execs it in place)
        pidfile = tmp_path / "g.pid"
        pidfile.write_text(f"{other.pid}\n")
        env = {"PATH": os.environ["PATH"], "OCF_RESOURCE_INSTANCE": "proxy",
               "OCF_RESKEY_config": str(config), "OCF_RESKEY_pidfile": str(pidfile)}
        here = subprocess.run([str(GPROXY_AGENT), "monitor"], env=env, capture_output=True, text=True)
        there = subprocess.run(["ip", "netns", "exec", netns.name, str(GPROXY_AGENT), "monitor"], env=env,
                               capture_output=True, text=True)
        assert (here.returncode, there.returncode) == (OcfRc.NOT_RUNNING, OcfRc.SUCCESS), here.stderr + there.stderr
    finally:
        other.kill()
        other.wait()


def stats_socket_answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(path))
            sock.sendall(b"show info\n")
            return b"Name:" in sock.recv(65536)
    except OSError:
        return False


def test_ocf_tester_passes_the_gproxy_agent_monitoring_the_stats_socket(tmp_path, start_backend):
    backend = start_backend("x")
    port = free_port()
    sock = tmp_path / "stats.sock"
    config = gproxy_config(tmp_path, port, backend.address, stats_socket=sock)
    # Is the stats socket served by this gproxy yet (it is being built)? Ask a plain run first.
    probe = subprocess.Popen([sys.executable, "-m", "gproxy", "run", str(config), "--foreground"],
                             cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=probe)
        deadline = time.monotonic() + 5
        served = False
        while not served and time.monotonic() < deadline:
            served = stats_socket_answers(sock)
            time.sleep(0.05)
    finally:
        probe.terminate()
        probe.wait(10)
    if not served:
        pytest.skip("this gproxy does not answer `show info` on global.stats_socket yet")
    params = {"config": str(config), "gproxy": gproxy_command(), "socket": str(sock),
              "pidfile": str(tmp_path / "gproxy.pid"), "logfile": str(tmp_path / "gproxy.log")}
    try:
        assert_passed(ocf_tester(GPROXY_AGENT, "proxy", params), GPROXY_AGENT)
    finally:
        kill_from_pidfile(Path(params["pidfile"]))


# ---- lsb:stunnel4 -------------------------------------------------------------------------

@pytest.fixture
def stunnel_conf(tmp_path, start_backend):
    """A one-service stunnel config in /etc/stunnel (where Debian's init script
    looks), TLS on 127.0.0.1:PORT to a demo backend; removed afterwards, and
    its stunnel killed if a test left it running."""
    assert STUNNEL_INIT.exists(), "stunnel4 is not installed"
    foreign = [p.name for p in STUNNEL_CONF_DIR.glob("*.conf")]
    if foreign:
        pytest.skip(f"/etc/stunnel already holds {foreign}: the init script would start those too")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test", "-days", "1",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True)
    backend = start_backend("tls-backend")
    port = free_port()
    name = f"hbtest-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    pidfile = Path(f"/run/stunnel4/{name}.pid")
    conf = STUNNEL_CONF_DIR / f"{name}.conf"
    conf.write_text(f"pid = {pidfile}\nforeground = no\n\n[https]\naccept = 127.0.0.1:{port}\n"
                    f"connect = {backend.address}\ncert = {tmp_path / 'cert.pem'}\nkey = {tmp_path / 'key.pem'}\n")
    try:
        yield port, pidfile
    finally:
        conf.unlink()
        kill_from_pidfile(pidfile)
        pidfile.unlink(missing_ok=True)


def wait_stunnel(port: int, pidfile: Path) -> None:
    """Debian's init script returns once stunnel has forked, before its daemon
    listens and writes its pid file (a classic LSB shortcoming): wait for both."""
    wait_port(port)
    deadline = time.monotonic() + WAIT
    while not pidfile.exists() and time.monotonic() < deadline:
        gevent.sleep(0.02)
    assert pidfile.exists(), f"stunnel wrote no {pidfile}"


def https_get(port: int) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw) as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    return data


def test_lsb_stunnel4_through_run_action(stunnel_conf):
    port, pidfile = stunnel_conf
    res = ResourceConfig(id="tls", agent=AgentSpec("lsb", None, "stunnel4"))

    def act(action: str) -> int:
        result = run_action(res, action, 20000)
        assert not result.timed_out, result
        return int(result.rc)

    assert act("probe") == OcfRc.NOT_RUNNING  # status 1 ("no pid file") maps to 7
    assert act("start") == OcfRc.SUCCESS
    wait_stunnel(port, pidfile)
    response = https_get(port)
    assert response.startswith(b"HTTP/1.1 200") and b"hello from tls-backend" in response
    assert act("monitor") == OcfRc.SUCCESS
    assert act("start") == OcfRc.SUCCESS  # start of a running service is 0
    assert act("stop") == OcfRc.SUCCESS
    assert act("monitor") == OcfRc.NOT_RUNNING
    assert act("stop") == OcfRc.SUCCESS  # stop of a stopped service is 0
    assert not pidfile.exists()


def test_lsb_stunnel4_crash_is_seen_as_not_running(stunnel_conf):
    port, pidfile = stunnel_conf
    res = ResourceConfig(id="tls", agent=AgentSpec("lsb", None, "stunnel4"))
    assert run_action(res, "start", 20000).rc == OcfRc.SUCCESS
    wait_stunnel(port, pidfile)
    pid = int(pidfile.read_text())
    os.kill(pid, signal.SIGKILL)
    # The init script's pidofproc uses kill -0, which a zombie passes: wait
    # until init has reaped the orphan (this machine's PID 1 does it every ~2 s).
    deadline = time.monotonic() + REAP_WAIT
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        gevent.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), f"PID 1 did not reap the killed stunnel {pid} in {REAP_WAIT}s"
    result = run_action(res, "monitor", 20000, 10000)
    assert result.rc == OcfRc.NOT_RUNNING, result  # status: dead with a pid file (1) -> 7
    stop = run_action(res, "stop", 20000)
    assert stop.rc == OcfRc.SUCCESS, stop
