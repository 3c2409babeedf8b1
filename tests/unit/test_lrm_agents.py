"""The shipped OCF agents (heartbeat/agents/gproxy/*) action by action, as
far as no root and no real network are needed: meta-data against
ra-api-1.dtd, validate-all's codes, the gproxy agent's monitor (pid file,
stats socket); and `install_agents`. The full ocf-tester runs are in
tests/e2e/test_ocf_agents.py."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from heartbeat.agents_install import install_agents, shipped_agents
from heartbeat.lrm.runner import AGENTS_DIR

REPO = Path(__file__).resolve().parents[2]
GPROXY_AGENT = AGENTS_DIR / "gproxy" / "gproxy"
VIP_AGENT = AGENTS_DIR / "gproxy" / "vip"
RA_DTD_DIR = Path("/usr/share/resource-agents")  # resource-agents ships ra-api-1.dtd here
VENV_GPROXY = str(Path(sys.executable).parent / "gproxy")

GOOD_CONFIG = """\
[defaults]
mode = "http"
timeout = { connect = "1s", client = "5s", server = "5s" }

[listen.app]
bind = ["127.0.0.1:1"]

[[listen.app.server]]
name = "x"
address = "127.0.0.1:2"
"""


def agent(path: Path, action: str, **params: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": "t",
           **{f"OCF_RESKEY_{k}": v for k, v in params.items()}}
    return subprocess.run([str(path), action], env=env, capture_output=True, text=True, timeout=30)


def exit_reason(proc: subprocess.CompletedProcess) -> str:
    return "".join(line[len("ocf-exit-reason:"):] for line in proc.stderr.splitlines()
                   if line.startswith("ocf-exit-reason:"))


# ---- meta-data ---------------------------------------------------------------------

@pytest.mark.parametrize("path", [GPROXY_AGENT, VIP_AGENT], ids=lambda p: p.name)
def test_meta_data_is_valid_against_ra_api_dtd(path):
    if not shutil.which("xmllint") or not (RA_DTD_DIR / "ra-api-1.dtd").exists():
        pytest.skip("needs xmllint (libxml2-utils) and resource-agents' ra-api-1.dtd")
    proc = agent(path, "meta-data")
    assert proc.returncode == 0
    lint = subprocess.run(["xmllint", "--noout", "--valid", "-"], input=proc.stdout, cwd=RA_DTD_DIR,
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr


@pytest.mark.parametrize("path", [GPROXY_AGENT, VIP_AGENT], ids=lambda p: p.name)
def test_agents_are_executable_and_refuse_unknown_actions(path):
    assert os.access(path, os.X_OK)
    assert agent(path, "promote").returncode == 3
    assert agent(path, "usage").returncode == 0


# ---- vip: validate-all --------------------------------------------------------------

@pytest.mark.parametrize("params, rc, reason", [
    ({}, 6, "the ip parameter is required"),
    ({"ip": "10.0.0.256"}, 6, "not an IPv4 address"),
    ({"ip": "10.0.0"}, 6, "not an IPv4 address"),
    ({"ip": "10.0..1"}, 6, "not an IPv4 address"),
    ({"ip": "fe80::1"}, 6, "not an IPv4 address"),
    ({"ip": "10.0.0.5", "cidr_netmask": "33"}, 6, "cidr_netmask=33"),
    ({"ip": "10.0.0.5", "cidr_netmask": "x"}, 6, "cidr_netmask=x"),
    ({"ip": "10.0.0.5", "arp_count": "-1"}, 6, "arp_count"),
    ({"ip": "10.0.0.5", "nic": "nosuchnic0"}, 2, "interface nosuchnic0 does not exist"),
    ({"ip": "10.0.0.5", "nic": "lo", "iflabel": "muchtoolonglabel"}, 6, "longer than 15"),
    ({"ip": "10.0.0.5", "cidr_netmask": "24", "nic": "lo"}, 0, ""),
])
def test_vip_validate(params, rc, reason):
    proc = agent(VIP_AGENT, "validate-all", **params)
    assert proc.returncode == rc, proc.stderr
    assert reason in exit_reason(proc)


def test_vip_monitor_of_an_absent_address_is_not_running():
    # 192.0.2.0/24 is documentation space: never configured on a test machine.
    assert agent(VIP_AGENT, "monitor", ip="192.0.2.254").returncode == 7


def test_vip_stop_of_an_absent_address_succeeds_even_without_its_nic():
    assert agent(VIP_AGENT, "stop", ip="192.0.2.254", nic="nosuchnic0").returncode == 0


# ---- gproxy: validate-all and monitor ----------------------------------------------------

def test_gproxy_validate(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(GOOD_CONFIG)
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD_CONFIG.replace('mode = "http"', 'mode = "htp"'))
    assert agent(GPROXY_AGENT, "validate-all", gproxy=VENV_GPROXY).returncode == 6
    missing = agent(GPROXY_AGENT, "validate-all", config=str(tmp_path / "none.toml"), gproxy=VENV_GPROXY)
    assert missing.returncode == 5 and "missing or unreadable" in exit_reason(missing)
    no_binary = agent(GPROXY_AGENT, "validate-all", config=str(good), gproxy="/nonexistent/gproxy")
    assert no_binary.returncode == 5 and "gproxy not found" in exit_reason(no_binary)
    invalid = agent(GPROXY_AGENT, "validate-all", config=str(bad), gproxy=VENV_GPROXY)
    assert invalid.returncode == 6
    assert exit_reason(invalid).startswith("invalid configuration: ")
    assert "mode" in exit_reason(invalid)
    assert agent(GPROXY_AGENT, "validate-all", config=str(good), gproxy=VENV_GPROXY).returncode == 0
    # The gproxy parameter is a command line: an interpreter and its arguments work too.
    as_module = agent(GPROXY_AGENT, "validate-all", config=str(good), gproxy=f"{sys.executable} -m gproxy")
    assert as_module.returncode == 0, as_module.stderr


def test_gproxy_start_refuses_a_bad_config_with_err_configured(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[listen.app]\nbind = 12\n")
    proc = agent(GPROXY_AGENT, "start", config=str(bad), gproxy=VENV_GPROXY,
                 pidfile=str(tmp_path / "p.pid"), logfile=str(tmp_path / "log"))
    assert proc.returncode == 6
    assert not (tmp_path / "p.pid").exists()


@pytest.fixture
def fake_gproxy(tmp_path):
    """A process whose command line names the config (as `gproxy run CONFIG`
    does) and a pid file naming it; no real gproxy is needed to monitor."""
    config = tmp_path / "g.toml"
    config.write_text(GOOD_CONFIG)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "run", str(config)])
    pidfile = tmp_path / "g.pid"
    pidfile.write_text(f"{proc.pid}\n")
    yield config, pidfile
    proc.kill()
    proc.wait()


class StatsSocket:
    """A unix socket answering each connection with `answer` (a fake stats socket)."""

    def __init__(self, path: Path, answer: bytes):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.answer = answer
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.requests.append(conn.recv(1024))
                conn.sendall(self.answer)

    def close(self) -> None:
        self.sock.close()


def test_gproxy_monitor_follows_the_pid_file(tmp_path, fake_gproxy):
    config, pidfile = fake_gproxy
    params = {"config": str(config), "pidfile": str(pidfile)}
    assert agent(GPROXY_AGENT, "monitor", **params).returncode == 0
    # No pid file: cleanly stopped.
    assert agent(GPROXY_AGENT, "monitor", config=str(config), pidfile=str(tmp_path / "none.pid")).returncode == 7
    # A pid file naming some other process (a recycled pid) is stale: stopped.
    pidfile.write_text(f"{os.getpid()}\n")
    stale = agent(GPROXY_AGENT, "monitor", **params)
    assert stale.returncode == 7 and "stale pid file" in stale.stderr


def test_gproxy_agent_finds_its_gproxy_when_the_pid_file_is_lost(tmp_path):
    config = tmp_path / "g.toml"
    config.write_text(GOOD_CONFIG)
    pidfile = tmp_path / "lost.pid"  # never written: as if someone removed it
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             "run", str(config), "--foreground", "--pidfile", str(pidfile)])
    try:
        params = {"config": str(config), "pidfile": str(pidfile)}
        assert agent(GPROXY_AGENT, "monitor", **params).returncode == 0
        # Another instance's pid file does not match it.
        assert agent(GPROXY_AGENT, "monitor", config=str(config),
                     pidfile=str(tmp_path / "other.pid")).returncode == 7
        assert agent(GPROXY_AGENT, "stop", **params).returncode == 0
        assert proc.wait(10) == -15  # SIGTERM
        assert agent(GPROXY_AGENT, "monitor", **params).returncode == 7
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("answer, rc", [
    (b"Name: gproxy\nVersion: 0.1.0\nPid: 1234\n\n", 0),
    (b"Unknown command.\n\n", 1),
    (b"", 1),
])
def test_gproxy_monitor_asks_the_stats_socket(tmp_path, fake_gproxy, answer, rc):
    config, pidfile = fake_gproxy
    path = tmp_path / "stats.sock"
    server = StatsSocket(path, answer)
    try:
        proc = agent(GPROXY_AGENT, "monitor", config=str(config), pidfile=str(pidfile), socket=str(path))
    finally:
        server.close()
    assert proc.returncode == rc, proc.stderr
    assert server.requests and server.requests[0].startswith(b"show info")
    if rc:
        assert "does not answer show info" in exit_reason(proc)


def test_gproxy_monitor_with_a_dead_socket_fails(tmp_path, fake_gproxy):
    config, pidfile = fake_gproxy
    proc = agent(GPROXY_AGENT, "monitor", config=str(config), pidfile=str(pidfile),
                 socket=str(tmp_path / "nobody-listens.sock"))
    assert proc.returncode == 1


# ---- install_agents ------------------------------------------------------------------------

def test_install_agents(tmp_path):
    root = tmp_path / "ocf"
    installed = install_agents(str(root))
    names = sorted(Path(p).name for p in installed)
    assert names == ["gproxy", "vip"] == [p.name for p in shipped_agents()]
    for path in installed:
        assert Path(path).parent == root / "resource.d" / "gproxy"
        assert os.stat(path).st_mode & 0o777 == 0o755
        assert Path(path).read_bytes() == (AGENTS_DIR / "gproxy" / Path(path).name).read_bytes()
    # Again, over the installed copies: replaced, no temporary files left behind.
    (root / "resource.d" / "gproxy" / "vip").write_text("old")
    install_agents(str(root))
    assert (root / "resource.d" / "gproxy" / "vip").read_bytes() == VIP_AGENT.read_bytes()
    assert sorted(os.listdir(root / "resource.d" / "gproxy")) == ["gproxy", "vip"]


def test_install_agents_reports_os_errors(tmp_path):
    from heartbeat.errors import AgentError
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AgentError, match="cannot install the agents"):
        install_agents(str(blocker))
