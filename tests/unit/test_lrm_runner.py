"""Running agent actions (heartbeat/lrm/runner.py) with small fake OCF agents
and LSB init scripts written to tmp_path."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import textwrap
import time
from pathlib import Path

import gevent
import pytest

from heartbeat.errors import AgentError
from heartbeat.lrm import runner
from heartbeat.lrm.codes import OcfRc
from heartbeat.lrm.runner import ActionResult, agent_path, build_environment, run_action
from heartbeat.model import AgentSpec, Operation, ResourceConfig

PROVIDER = "test"


def write_script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


@pytest.fixture
def ocf_root(tmp_path) -> Path:
    return tmp_path / "ocf"


def ocf_agent(ocf_root: Path, name: str, body: str) -> ResourceConfig:
    write_script(ocf_root / "resource.d" / PROVIDER / name, body)
    return ResourceConfig(id=f"r-{name}", agent=AgentSpec("ocf", PROVIDER, name))


def run(res: ResourceConfig, action: str, ocf_root: Path, timeout_ms: int = 5000, **kw) -> ActionResult:
    return run_action(res, action, timeout_ms, ocf_root=str(ocf_root), **kw)


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def dies(pid: int, within: float = 5.0) -> bool:
    """True once `pid` is gone or a zombie. A signalled process dies
    asynchronously: this waits for that, bounded; it measures nothing."""
    deadline = time.monotonic() + within
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# ---- environment -------------------------------------------------------------------

def test_build_environment_ocf():
    res = ResourceConfig(id="vip", agent=AgentSpec("ocf", "heartbeat", "IPaddr2"),
                         params=(("ip", "10.0.0.5"), ("cidr_netmask", "24")))
    env = build_environment(res, "monitor", 20000, 10000, "/opt/ocf",
                            environ={"PATH": "/home/me/bin", "OCF_RESKEY_stale": "x", "HOME": "/root"},
                            extra_env={"OCF_RESKEY_CRM_meta_on_node": "n1"})
    assert env["OCF_ROOT"] == "/opt/ocf"
    assert env["OCF_FUNCTIONS_DIR"] == "/opt/ocf/lib/heartbeat"
    assert env["OCF_RA_VERSION_MAJOR"] == "1" and env["OCF_RA_VERSION_MINOR"] == "0"
    assert env["OCF_RESOURCE_INSTANCE"] == "vip"
    assert env["OCF_RESOURCE_TYPE"] == "IPaddr2"
    assert env["OCF_RESOURCE_PROVIDER"] == "heartbeat"
    assert env["OCF_RESKEY_ip"] == "10.0.0.5" and env["OCF_RESKEY_cidr_netmask"] == "24"
    assert env["OCF_RESKEY_CRM_meta_timeout"] == "20000"
    assert env["OCF_RESKEY_CRM_meta_interval"] == "10000"
    assert env["OCF_RESKEY_CRM_meta_on_node"] == "n1"
    assert "OCF_RESKEY_stale" not in env  # the daemon's own OCF variables never leak in
    assert env["HOME"] == "/root"
    assert env["PATH"].split(":")[0] == "/home/me/bin" and "/usr/sbin" in env["PATH"].split(":")


def test_a_probe_is_a_monitor_with_interval_0():
    res = ResourceConfig(id="r", agent=AgentSpec("ocf", "heartbeat", "Dummy"))
    env = build_environment(res, "probe", 20000, 10000, environ={})
    assert env["OCF_RESKEY_CRM_meta_interval"] == "0"
    assert env["OCF_ROOT"] == runner.DEFAULT_OCF_ROOT


def test_lsb_scripts_get_no_ocf_variables():
    res = ResourceConfig(id="tls", agent=AgentSpec("lsb", None, "stunnel4"), params=(("x", "y"),))
    env = build_environment(res, "start", 20000, environ={"PATH": "/bin"})
    assert not [k for k in env if k.startswith("OCF_")]


def test_the_agent_sees_its_environment(ocf_root, tmp_path):
    dump = tmp_path / "env.json"
    res = ocf_agent(ocf_root, "envdump", f"""\
        python3 -c 'import json, os; json.dump(dict(os.environ), open("{dump}", "w"))'
        echo "$1" > {tmp_path}/argv
        """)
    res = ResourceConfig(id=res.id, agent=res.agent, params=(("config", "/etc/x.toml"),))
    result = run(res, "probe", ocf_root, timeout_ms=7000, interval_ms=5000)
    assert result.rc == OcfRc.SUCCESS, result
    env = json.loads(dump.read_text())
    assert (tmp_path / "argv").read_text().strip() == "monitor"
    assert env["OCF_RESKEY_config"] == "/etc/x.toml"
    assert env["OCF_RESKEY_CRM_meta_timeout"] == "7000"
    assert env["OCF_RESKEY_CRM_meta_interval"] == "0"
    assert env["OCF_RESOURCE_INSTANCE"] == res.id
    assert result.action == "probe" and result.interval_ms == 0


# ---- finding agents ----------------------------------------------------------------

def test_builtin_provider_is_found_in_the_package(tmp_path):
    path = agent_path(AgentSpec("ocf", "gproxy", "vip"), ocf_root=str(tmp_path))
    assert Path(path) == runner.AGENTS_DIR / "gproxy" / "vip"
    assert os.access(path, os.X_OK)
    assert (runner.AGENTS_DIR / "gproxy" / "gproxy").is_file()


def test_other_providers_come_from_ocf_root(ocf_root):
    res = ocf_agent(ocf_root, "Thing", "exit 0\n")
    assert agent_path(res.agent, str(ocf_root)) == str(ocf_root / "resource.d" / PROVIDER / "Thing")


def test_builtin_provider_falls_back_to_ocf_root(ocf_root):
    write_script(ocf_root / "resource.d" / "gproxy" / "extra", "exit 0\n")
    path = agent_path(AgentSpec("ocf", "gproxy", "extra"), str(ocf_root))
    assert path == str(ocf_root / "resource.d" / "gproxy" / "extra")


@pytest.mark.parametrize("spec", [
    AgentSpec("ocf", PROVIDER, "absent"),
    AgentSpec("ocf", PROVIDER, "../../../bin/sh"),
    AgentSpec("ocf", "..", "sh"),
    AgentSpec("ocf", None, "x"),
    AgentSpec("lsb", None, "no-such-script"),
])
def test_missing_or_invalid_agents_raise(spec, ocf_root, tmp_path):
    with pytest.raises(AgentError):
        agent_path(spec, str(ocf_root), lsb_dir=str(tmp_path))


def test_a_non_executable_agent_is_not_an_agent(ocf_root):
    res = ocf_agent(ocf_root, "noexec", "exit 0\n")
    path = ocf_root / "resource.d" / PROVIDER / "noexec"
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    if os.geteuid() == 0:
        # root may execute anything with some x bit; with none at all access() says no.
        assert not os.access(path, os.X_OK)
    with pytest.raises(AgentError):
        agent_path(res.agent, str(ocf_root))


def test_a_missing_agent_is_reported_not_raised(ocf_root):
    res = ResourceConfig(id="gone", agent=AgentSpec("ocf", PROVIDER, "absent"))
    result = run(res, "start", ocf_root)
    assert result.rc == OcfRc.ERR_INSTALLED and not result.timed_out
    assert result.reason.startswith("exit 5: ocf:test:absent: no executable agent")


# ---- results -----------------------------------------------------------------------

def test_exit_codes_and_reasons(ocf_root):
    res = ocf_agent(ocf_root, "codes", """\
        case "$1" in
          start) exit 0 ;;
          monitor) exit 7 ;;
          stop) echo "ocf-exit-reason:cannot unmount /srv" >&2; echo "more noise" >&2; exit 1 ;;
          validate-all) echo "param x is bad"; exit 6 ;;
          *) exit 3 ;;
        esac
        """)
    assert run(res, "start", ocf_root).reason == "ok"
    monitor = run(res, "monitor", ocf_root)
    assert (monitor.rc, monitor.reason, monitor.ok) == (OcfRc.NOT_RUNNING, "not running", False)
    probe = run(res, "probe", ocf_root)
    assert probe.rc == OcfRc.NOT_RUNNING and probe.ok
    stop = run(res, "stop", ocf_root)
    assert stop.rc is OcfRc.ERR_GENERIC
    assert stop.reason == "exit 1: cannot unmount /srv"
    assert "more noise" in stop.output
    validate = run(res, "validate-all", ocf_root)
    assert validate.reason == "exit 6: param x is bad"
    assert run(res, "reload", ocf_root).rc == OcfRc.ERR_UNIMPLEMENTED
    assert run(res, "frobnicate", ocf_root).rc == OcfRc.ERR_UNIMPLEMENTED


def test_custom_codes_are_kept(ocf_root):
    res = ocf_agent(ocf_root, "custom", "exit 42\n")
    result = run(res, "start", ocf_root)
    assert result.rc == 42 and result.reason == "exit 42: no reason given"


def test_an_agent_killed_by_a_signal_failed(ocf_root):
    res = ocf_agent(ocf_root, "crash", "kill -9 $$\n")
    result = run(res, "monitor", ocf_root)
    assert result.rc == OcfRc.ERR_GENERIC and not result.timed_out
    assert result.reason == "exit 1: killed by signal 9"


def test_output_is_bounded_and_keeps_the_end(ocf_root):
    res = ocf_agent(ocf_root, "chatty", """\
        i=0
        while [ $i -lt 3000 ]; do echo "line $i of a long and verbose agent output"; i=$((i + 1)); done
        echo "ocf-exit-reason:the last word" >&2
        exit 1
        """)
    result = run(res, "start", ocf_root)
    assert len(result.output) <= runner.OUTPUT_LIMIT
    assert len(result.output.splitlines()) <= runner.OUTPUT_LINES
    assert "line 2999 of" in result.output
    assert "line 0 of" not in result.output
    assert result.reason == "exit 1: the last word"


def test_meta_data_output_is_kept_whole(ocf_root):
    res = ocf_agent(ocf_root, "meta", """\
        i=0
        echo '<?xml version="1.0"?>'
        while [ $i -lt 100 ]; do echo "<parameter name=\\"p$i\\"/>"; i=$((i + 1)); done
        """)
    result = run(res, "meta-data", ocf_root, output_limit=65536)
    assert result.rc == 0
    lines = result.output.splitlines()
    assert len(lines) == 101 and lines[0].startswith("<?xml")


def test_the_builtin_agents_give_meta_data():
    for name in ("gproxy", "vip"):
        res = ResourceConfig(id=name, agent=AgentSpec("ocf", "gproxy", name))
        result = run_action(res, "meta-data", 5000, output_limit=65536)
        assert result.rc == 0, result
        assert result.output.startswith('<?xml version="1.0"?>')
        assert f'<resource-agent name="{name}"' in result.output
        assert result.output.rstrip().endswith("</resource-agent>")


# ---- timeouts ----------------------------------------------------------------------

def test_a_hung_agent_is_killed_with_its_children(ocf_root, tmp_path):
    pids = tmp_path / "pids"
    res = ocf_agent(ocf_root, "hang", f"""\
        sleep 60 &
        echo $$ $! > {pids}
        wait
        """)
    result = run(res, "start", ocf_root, timeout_ms=300)
    assert result.timed_out and result.rc == OcfRc.ERR_GENERIC
    assert result.reason == "timed out after 300ms"
    assert not result.ok
    for pid in map(int, pids.read_text().split()):
        assert dies(pid), f"pid {pid} survived the timeout"


def test_an_agent_ignoring_sigterm_gets_sigkill(ocf_root, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "KILL_GRACE_MS", 200)
    pids = tmp_path / "pids"
    res = ocf_agent(ocf_root, "stubborn", f"""\
        trap '' TERM
        sh -c "trap '' TERM; sleep 60" &
        echo $$ $! > {pids}
        while :; do wait; done
        """)
    result = run(res, "stop", ocf_root, timeout_ms=300)
    assert result.timed_out
    for pid in map(int, pids.read_text().split()):
        assert dies(pid), f"pid {pid} survived SIGKILL"


def test_a_daemon_holding_stdout_does_not_hang_the_action(ocf_root, tmp_path):
    pidfile = tmp_path / "daemon.pid"
    res = ocf_agent(ocf_root, "daemonizer", f"""\
        setsid sleep 30 &
        echo $! > {pidfile}
        echo started
        exit 0
        """)
    try:
        result = run(res, "start", ocf_root, timeout_ms=10_000)
        assert result.rc == 0 and not result.timed_out
        os.kill(int(pidfile.read_text()), 0)  # the action returned while the daemon (30 s) still holds stdout
        assert result.output == "started"
    finally:
        os.kill(int(pidfile.read_text()), 9)


# ---- cooperation with gevent and the rest of the process ------------------------------

def test_agents_run_concurrently_in_greenlets(ocf_root, tmp_path):
    # "waiter" can only finish once "maker" ran: if run_action blocked the
    # hub, the waiter would time out.
    flag = tmp_path / "flag"
    waiter = ocf_agent(ocf_root, "waiter", f"while [ ! -f {flag} ]; do sleep 0.01; done\n")
    maker = ocf_agent(ocf_root, "maker", f"touch {flag}\n")
    first = gevent.spawn(run, waiter, "start", ocf_root, 5000)
    gevent.sleep(0)
    second = gevent.spawn(run, maker, "start", ocf_root, 5000)
    gevent.joinall([first, second], raise_error=True)
    assert [g.value.rc for g in (first, second)] == [0, 0]
    assert not first.value.timed_out


def test_stdlib_subprocess_exit_codes_survive(ocf_root):
    # gevent.subprocess's SIGCHLD watcher would reap this child behind
    # subprocess's back (exit status read as 0); the runner must not install it.
    res = ocf_agent(ocf_root, "plain", "exit 0\n")
    assert run(res, "start", ocf_root).rc == 0
    child = subprocess.Popen(["sh", "-c", "exit 3"])
    gevent.sleep(0.05)  # the hub runs while the child exits
    assert child.wait() == 3


def test_without_pidfd_the_runner_polls(ocf_root, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "_open_pidfd", lambda pid: None)
    monkeypatch.setattr(runner, "KILL_GRACE_MS", 200)
    quick = ocf_agent(ocf_root, "quick", "exit 7\n")
    assert run(quick, "monitor", ocf_root).rc == OcfRc.NOT_RUNNING
    pids = tmp_path / "pids"
    hang = ocf_agent(ocf_root, "hang2", f"sleep 60 &\necho $! > {pids}\nwait\n")
    result = run(hang, "start", ocf_root, timeout_ms=200)
    assert result.timed_out
    assert dies(int(pids.read_text()))


# ---- LSB ---------------------------------------------------------------------------

@pytest.fixture
def lsb_script(tmp_path):
    """An LSB init script keeping its state in a file; STATUS_RC overrides status."""
    state = tmp_path / "state"
    script = write_script(tmp_path / "init.d" / "fakesvc", f"""\
        STATE={state}
        case "$1" in
          start) [ -f $STATE.startrc ] && exit $(cat $STATE.startrc); echo running > $STATE; exit 0 ;;
          stop) rm -f $STATE; exit 0 ;;
          status)
            [ -f $STATE.statusrc ] && exit $(cat $STATE.statusrc)
            [ -f $STATE ] && exit 0
            exit 3 ;;
          force-reload) exit 0 ;;
          *) echo "Usage: $0 start|stop|status" >&2; exit 2 ;;
        esac
        """)
    res = ResourceConfig(id="svc", agent=AgentSpec("lsb", None, "fakesvc"),
                         monitor=Operation("monitor", interval=1000))
    return res, script.parent, state


def test_lsb_lifecycle(lsb_script):
    res, lsb_dir, _ = lsb_script

    def act(action):
        return run_action(res, action, 5000, lsb_dir=str(lsb_dir))

    assert act("probe").rc == OcfRc.NOT_RUNNING  # status 3
    assert act("start").rc == OcfRc.SUCCESS
    assert act("monitor").rc == OcfRc.SUCCESS
    assert act("stop").rc == OcfRc.SUCCESS
    assert act("monitor").rc == OcfRc.NOT_RUNNING
    assert act("reload").rc == OcfRc.SUCCESS  # force-reload


@pytest.mark.parametrize("status_rc, rc", [(1, 7), (2, 7), (3, 7), (4, 1), (150, 5), (151, 4), (0, 0)])
def test_lsb_status_codes(lsb_script, status_rc, rc):
    res, lsb_dir, state = lsb_script
    Path(f"{state}.statusrc").write_text(str(status_rc))
    result = run_action(res, "monitor", 5000, lsb_dir=str(lsb_dir))
    assert result.rc == rc
    if status_rc == 4:
        assert result.reason == "exit 1: generic error (LSB exit 4)"


def test_lsb_reserved_codes_are_generic_errors(lsb_script):
    res, lsb_dir, state = lsb_script
    Path(f"{state}.startrc").write_text("42")
    result = run_action(res, "start", 5000, lsb_dir=str(lsb_dir))
    assert result.rc == OcfRc.ERR_GENERIC and "(LSB exit 42)" in result.reason


def test_lsb_scripts_have_no_meta_data_or_validate(lsb_script):
    res, lsb_dir, _ = lsb_script
    for action in ("meta-data", "validate-all"):
        result = run_action(res, action, 5000, lsb_dir=str(lsb_dir))
        assert result.rc == OcfRc.ERR_UNIMPLEMENTED


def test_result_properties():
    result = ActionResult("vip", "monitor", OcfRc.ERR_CONFIGURED, False, 12, "", "exit 6: x", 10000)
    assert result.op_key == "monitor_10000"
    assert result.recovery.value == "fatal"
    assert not result.ok
