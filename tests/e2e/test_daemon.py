"""gproxy as a service: `daemon = true`, privileges, the LSB init script, the
systemd unit and sd_notify, `gproxy reload`. Real processes on loopback;
every master started here is killed at the end (its workers follow it)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import tomli_w

from conftest import http_config
from harness import REPO, http_get, wait_port
from test_reload import alive, children, wait_until, worker_pid

GPROXY = [sys.executable, "-m", "gproxy"]
INIT_SCRIPT = REPO / "dist" / "gproxy.init"
UNIT = REPO / "dist" / "gproxy.service"
NOBODY = 65534
NOGROUP = 65534


def is_root() -> bool:
    return os.geteuid() == 0


@pytest.fixture
def setup(tmp_path, start_backend, port):
    """A backend, a configuration writer, and cleanup of whatever master the test left."""
    backend = start_backend("a")
    pidfile = tmp_path / "gproxy.pid"
    stats = tmp_path / "admin.sock"

    class Setup:
        def __init__(self) -> None:
            self.port, self.pidfile, self.stats, self.path = port, pidfile, stats, tmp_path / "gproxy.toml"

        def write(self, **global_settings) -> Path:
            config = http_config([{"name": "a", "address": backend.address}], port=port)
            config["global"].update(pidfile=str(pidfile), stats_socket={"path": str(stats), "level": "admin"},
                                    **global_settings)
            self.path.write_bytes(tomli_w.dumps(config).encode())
            return self.path

        def master(self) -> int:
            return int(pidfile.read_text())

    yield Setup()
    try:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def run(*args: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([*GPROXY, *args], capture_output=True, text=True, cwd=REPO, timeout=timeout,
                          env={**os.environ, **(env or {})})


def status_field(pid: int, name: str) -> list[str]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split()[1:]
    raise AssertionError(f"no {name} in /proc/{pid}/status")


def session_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])


# -- daemon ---------------------------------------------------------------------------------------------

def test_daemon_true_backgrounds_once_serving_with_a_pid_file(setup):
    done = run("run", str(setup.write(daemon=True)))
    assert done.returncode == 0, done.stderr
    master = setup.master()  # written before the command returned: the workers serve
    assert alive(master) and master != os.getpid()
    assert session_of(master) != session_of(os.getpid())  # detached from our session
    assert http_get(setup.port, "/")[0] == 200
    os.kill(master, signal.SIGTERM)
    wait_until(lambda: not alive(master), what="the daemon's exit")
    assert not setup.pidfile.exists() and not setup.stats.exists()


def test_a_daemon_that_cannot_bind_says_so_in_the_foreground(setup):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", setup.port))
        busy.listen(1)
        done = run("run", str(setup.write(daemon=True)))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"gproxy: cannot bind 127.0.0.1:{setup.port}: Address already in use"]
    assert not setup.pidfile.exists()


def test_gproxy_reload_checks_the_file_then_signals_the_master(setup):
    path = setup.write(daemon=True)
    assert run("run", str(path)).returncode == 0
    before = worker_pid(setup.stats)
    good = path.read_text()
    path.write_text(good.replace("maxconn = 1000", 'maxconn = "lots"'))
    refused = run("reload", str(path), "--pidfile", str(setup.pidfile))
    assert refused.returncode == 1
    assert "global.maxconn" in refused.stderr and "not reloading" in refused.stderr
    path.write_text(good)
    done = run("reload", str(path))
    assert done.returncode == 0, done.stderr
    assert f"master pid {setup.master()}" in done.stdout
    wait_until(lambda: worker_pid(setup.stats) != before, what="a new worker")
    assert http_get(setup.port, "/")[0] == 200


# -- privileges -----------------------------------------------------------------------------------------

@pytest.mark.skipif(not is_root(), reason="dropping privileges needs root")
def test_workers_chroot_and_drop_to_nobody_and_the_master_stays_root(setup):
    jail = Path(tempfile.mkdtemp(prefix="gproxy-jail-"))
    try:
        assert run("run", str(setup.write(daemon=True, user="nobody", group=NOGROUP, chroot=str(jail)))
                   ).returncode == 0
        master = setup.master()
        [worker] = children(master)
        assert status_field(worker, "Uid") == [str(NOBODY)] * 4
        assert status_field(worker, "Gid") == [str(NOGROUP)] * 4
        assert status_field(worker, "Groups") == [str(NOGROUP)]
        assert os.readlink(f"/proc/{worker}/root") == str(jail)
        assert status_field(master, "Uid")[0] == "0"  # to bind new ports and re-execute
        assert http_get(setup.port, "/")[0] == 200
        os.kill(master, signal.SIGHUP)  # a reload's workers drop privileges too
        new = wait_until(lambda: children(master) - {worker}, what="a new worker").pop()
        wait_until(lambda: worker_pid(setup.stats) == new, what="the new worker serving")
        assert status_field(new, "Uid") == [str(NOBODY)] * 4
        assert http_get(setup.port, "/")[0] == 200
    finally:
        shutil.rmtree(jail, ignore_errors=True)


def test_a_missing_chroot_directory_is_refused_before_anything_starts(setup, tmp_path):
    done = run("run", str(setup.write(chroot=str(tmp_path / "nowhere"))), "--foreground")
    assert done.returncode == 1
    assert done.stderr.strip() == f"gproxy: global.chroot: {tmp_path / 'nowhere'} is not a directory"


def test_an_unknown_user_is_refused(setup):
    done = run("run", str(setup.write(user="no-such-user-here")), "--foreground")
    assert done.returncode == 1
    assert done.stderr.strip() == "gproxy: global.user: unknown user 'no-such-user-here'"


# -- the LSB init script ------------------------------------------------------------------------------

def init(setup, action: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEFAULTS": "/dev/null", "GPROXY": " ".join(GPROXY), "CONFIG": str(setup.path),
           "PIDFILE": str(setup.pidfile), "STOP_TIMEOUT": "10"}
    return subprocess.run([str(INIT_SCRIPT), action], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=60)


def test_the_init_script_passes_the_lsb_checks_pacemaker_lists(setup):
    setup.write()
    # Pacemaker's "LSB compliance" list: status of a stopped service is 3,
    # start and stop are idempotent (0 twice), status of a running one is 0.
    assert init(setup, "status").returncode == 3
    assert init(setup, "stop").returncode == 0
    assert init(setup, "start").returncode == 0
    master = setup.master()
    assert http_get(setup.port, "/")[0] == 200
    assert init(setup, "start").returncode == 0
    assert setup.master() == master  # not a second one
    assert init(setup, "status").returncode == 0
    # reload: same master, new workers.
    workers = children(master)
    assert init(setup, "reload").returncode == 0
    wait_until(lambda: children(master) - workers, what="new workers")
    assert init(setup, "stop").returncode == 0
    assert not alive(master)
    assert init(setup, "status").returncode == 3
    assert init(setup, "stop").returncode == 0
    assert init(setup, "reload").returncode == 7  # not running


def test_the_init_script_reports_a_crash_as_dead_with_a_pid_file(setup):
    setup.write()
    assert init(setup, "start").returncode == 0
    master = setup.master()
    workers = children(master)
    os.kill(master, signal.SIGKILL)
    wait_until(lambda: not alive(master), what="the master's death")
    wait_until(lambda: not any(alive(w) for w in workers), what="its workers following it")
    assert init(setup, "status").returncode == 1  # dead, but the pid file exists
    assert init(setup, "start").returncode == 0  # cleans up and starts
    assert http_get(setup.port, "/")[0] == 200
    assert init(setup, "stop").returncode == 0


def test_the_init_script_refuses_a_bad_configuration(setup):
    setup.write()
    setup.path.write_text(setup.path.read_text().replace("maxconn = 1000", "maxconn = -1"))
    done = init(setup, "start")
    assert done.returncode == 6
    assert init(setup, "status").returncode == 3
    assert init(setup, "bogus").returncode == 3
    assert init(setup, "").returncode == 2


# -- systemd ------------------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_unit_verifies(tmp_path):
    unit = tmp_path / "gproxy.service"
    gproxy = shutil.which("gproxy", path=str(Path(sys.executable).parent)) or "/bin/true"
    unit.write_text(UNIT.read_text().replace("/usr/bin/gproxy", gproxy))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text = UNIT.read_text()
    assert "Type=notify" in text and "ExecReload=/bin/kill -HUP $MAINPID" in text


def test_sd_notify_ready_reloading_mainpid_and_stopping(setup, tmp_path):
    path = setup.write()
    address = tempfile.mktemp(prefix="notify-", dir="/tmp")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(address)
        notify.settimeout(15)
        process = subprocess.Popen([*GPROXY, "run", str(path), "--foreground"], cwd=REPO,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env={**os.environ, "NOTIFY_SOCKET": address})
        try:
            assert notify.recv(256) == b"READY=1"
            wait_port(setup.port)
            process.send_signal(signal.SIGHUP)
            assert notify.recv(256) == b"RELOADING=1"
            assert notify.recv(256) == b"READY=1"
            process.send_signal(signal.SIGUSR2)
            new_master = int(notify.recv(256).decode().removeprefix("MAINPID="))
            assert new_master != process.pid
            assert notify.recv(256) == b"READY=1"
            process.wait(15)  # the old master retires
            os.kill(new_master, signal.SIGTERM)
            assert notify.recv(256) == b"STOPPING=1"
            wait_until(lambda: not alive(new_master), what="the new master's exit")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.unlink(address)
