"""The shipped Nagios configuration: `nagios4 -v` on the example, the command lines against
the real plugins, the Icinga 2 objects, and a real nagios4 daemon running the shipped
commands and templates against a live gproxy whose servers are killed and brought back."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness import BackendProcess, free_port

REPO = Path(__file__).resolve().parents[2]
NAGIOS_DIR = REPO / "nagios"
DATA = REPO / "tests" / "checks_data"
BIN = Path(sys.executable).parent
NAGIOS4 = shutil.which("nagios4") or "/usr/sbin/nagios4"
CHECK_INTERVAL = 2  # seconds (interval_length 1)
TRANSITION_SECONDS = 12.0  # check interval + gproxy's detection (fall 1, inter 200 ms) + status.dat refresh, with room


def require_nagios() -> None:
    if not Path(NAGIOS4).exists():
        pytest.fail("nagios4 is missing: run scripts/install-debian-deps.sh (make test does)")


def defines(text: str, kind: str) -> list[dict[str, str]]:
    """`define KIND { key value ... }` blocks of a Nagios object file."""
    blocks = []
    for body in re.findall(r"define\s+" + kind + r"\s*\{(.*?)\n\s*\}", text, re.S):
        block = {}
        for line in body.strip().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition(" ")
                block[key] = value.strip()
        blocks.append(block)
    return blocks


def test_example_main_config_has_no_errors_and_no_warnings():
    require_nagios()
    done = subprocess.run([NAGIOS4, "-v", str(NAGIOS_DIR / "example" / "nagios.cfg")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout
    assert "Total Warnings: 0" in done.stdout and re.search(r"Total Errors:\s+0\b", done.stdout)
    assert re.search(r"Checked 8 services", done.stdout) and re.search(r"Checked 3 hosts", done.stdout)


def test_templates_are_not_registered_and_every_name_is_defined():
    templates = (NAGIOS_DIR / "templates.cfg").read_text()
    for kind in ("host", "service", "contact"):
        for block in defines(templates, kind):
            assert block.get("register") == "0", block
    commands = {b["command_name"] for b in defines((NAGIOS_DIR / "commands.cfg").read_text(), "command")}
    used = set(re.findall(r"(?:check_command|_notification_commands)\s+([\w-]+)", templates))
    assert used <= commands
    example = (NAGIOS_DIR / "example" / "objects" / "esup-proxy.cfg").read_text()
    assert set(re.findall(r"check_command\s+([\w-]+)", example)) <= commands


SAMPLE_ARGS = {"SOCKET": "/nonexistent/gproxy.sock", "BACKEND": "esup-proxy", "SERVER": "ents1",
               "STATS PAGE URL": "http://127.0.0.1:9/stats", "USER:PASSWORD": "admin:secret",
               "PREFERRED NODE": "esup-proxy-1"}


def test_shipped_command_lines_are_valid_for_the_plugins():
    """Each check_gproxy/check_heartbeat command, its $ARGn$ filled as its comment describes,
    must reach the probe: UNKNOWN for the missing socket, never an argument error."""
    text = (NAGIOS_DIR / "commands.cfg").read_text()
    usages = dict(re.findall(r"# (check_\w+)!(.*)\n", text))
    checked = 0
    for block in defines(text, "command"):
        line = block["command_line"]
        if not re.search(r"/check_(gproxy|heartbeat) ", line):
            continue
        names = usages[block["command_name"]].split("!")
        line = line.replace("$USER1$", str(BIN))
        for number, name in enumerate(names, start=1):
            value = "" if name.startswith("EXTRA OPTIONS") else SAMPLE_ARGS[name.split(" (")[0]]
            line = line.replace(f"${'ARG'}{number}$", value)
        assert "$" not in line, line
        done = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, timeout=30)
        first = done.stdout.splitlines()[0]
        assert done.returncode == 3 and "usage:" not in done.stdout, (line, done.stdout)
        assert re.search(r"no such socket|not found \(is Pacemaker installed|stats page http://127\.0\.0\.1:9/", first)
        checked += 1
    assert checked == 10


def test_nrpe_commands_run_the_plugins_with_valid_options():
    lines = re.findall(r"^command\[(\w+)\]=(.*)$", (NAGIOS_DIR / "nrpe" / "gproxy-suite.cfg").read_text(), re.M)
    assert len(lines) == 6
    example = (NAGIOS_DIR / "example" / "objects" / "esup-proxy.cfg").read_text()
    for name in re.findall(r"check_gproxy_nrpe!(\w+)", example):
        assert name in dict(lines)
    for name, command in lines:
        argv = shlex.split(command.replace("/usr/lib/nagios/plugins/", f"{BIN}/"))
        argv = [arg.replace("/run/gproxy/admin.sock", "/nonexistent/a.sock").replace(
            "/run/heartbeat/status.sock", "/nonexistent/s.sock") for arg in argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert done.returncode == 3 and "no such socket" in done.stdout.splitlines()[0], (name, done.stdout)


def test_icinga2_check_commands_validate():
    icinga2 = shutil.which("icinga2")
    if icinga2 is None:
        pytest.skip("icinga2 is not installed (optional: apt-get install icinga2-bin)")
    # icinga2 drops to its own user: the file must be readable outside pytest's private tmp_path.
    with tempfile.TemporaryDirectory(prefix="icinga2-check-") as tmp:
        os.chmod(tmp, 0o755)
        conf = Path(tmp) / "icinga2.conf"
        conf.write_text(
            'const PluginDir = "/usr/lib/nagios/plugins"\ninclude <itl>\ninclude <plugins>\n'
            f'include "{NAGIOS_DIR / "icinga2" / "gproxy-suite.conf"}"\n'
            'object Host "lb1" { address = "127.0.0.1"; check_command = "dummy" }\n'
            'object Service "backend" { host_name = "lb1"; check_command = "gproxy_backends"\n'
            '  vars.gproxy_backend = [ "esup-proxy" ] }\n'
            'object Service "resources" { host_name = "lb1"; check_command = "heartbeat_resources"\n'
            '  vars.heartbeat_pacemaker = true; vars.heartbeat_preferred_node = "esup-proxy-1" }\n')
        conf.chmod(0o644)
        done = subprocess.run([icinga2, "daemon", "-C", "-c", str(conf)], capture_output=True, text=True,
                              timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Instantiated 2 Services" in done.stdout


# ------------------------------------------------------------------ a real Nagios

MAIN_CFG = """log_file={d}/nagios.log
cfg_file={nagios}/commands.cfg
cfg_file={nagios}/templates.cfg
cfg_file={d}/objects.cfg
resource_file={d}/resource.cfg
status_file={d}/status.dat
status_update_interval=1
object_cache_file={d}/objects.cache
precached_object_file={d}/objects.precache
temp_file={d}/nagios.tmp
temp_path={d}
lock_file={d}/nagios.pid
check_result_path={d}/checkresults
check_result_reaper_frequency=1
query_socket={d}/nagios.qh
command_file={d}/nagios.cmd
check_external_commands=1
retain_state_information=0
interval_length=1
service_inter_check_delay_method=n
host_inter_check_delay_method=n
max_service_check_spread=1
max_host_check_spread=1
service_check_timeout=20
use_syslog=0
log_initial_states=1
enable_notifications=0
enable_flap_detection=0
check_for_updates=0
nagios_user=root
nagios_group=root
illegal_macro_output_chars=`~$&|'"<>
"""

OBJECTS_CFG = """define command {{
    command_name    test-host-up
    command_line    /bin/true
}}

define contact {{
    use                     gproxy-contact
    contact_name            tester
    email                   root@localhost
}}

define host {{
    use                     gproxy-lb-node
    host_name               lb1
    address                 127.0.0.1
    check_command           test-host-up
}}

define service {{
    use                     gproxy-backend-service
    host_name               lb1
    service_description     esup-proxy backend
    check_command           check_gproxy_backend!{socket}!esup-proxy
    check_interval          {interval}
    retry_interval          1
    max_check_attempts      1
}}

define service {{
    use                     gproxy-backend-service
    host_name               lb1
    service_description     server ents3
    check_command           check_gproxy_server!{socket}!esup-proxy!ents3
    check_interval          {interval}
    retry_interval          1
    max_check_attempts      1
}}

define service {{
    use                     gproxy-traffic-service
    host_name               lb1
    service_description     esup-proxy sessions
    check_command           check_gproxy_sessions!{socket}
    check_interval          {interval}
    retry_interval          1
    max_check_attempts      1
}}

define service {{
    use                     gproxy-cluster-service
    host_name               lb1
    service_description     cluster nodes (saved crm_mon)
    check_command           check_pacemaker_nodes!--crm-mon-file {crm_mon}
    check_interval          {interval}
    retry_interval          1
    max_check_attempts      1
}}
"""


def read_status(path: Path) -> dict[str, dict[str, str]]:
    """servicestatus blocks of status.dat by service description."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return {}
    services = {}
    for body in re.findall(r"servicestatus \{\n(.*?)\n\t\}", text, re.S):
        block = dict(line.strip().split("=", 1) for line in body.splitlines() if "=" in line)
        services[block.get("service_description", "")] = block
    return services


class Nagios:
    def __init__(self, workdir: Path, socket: str, objects: str | None = None):
        """`objects`: the object definitions to monitor (default: a gproxy backend on `socket`)."""
        self.workdir = workdir
        (workdir / "checkresults").mkdir()
        (workdir / "resource.cfg").write_text(f"$USER1$={BIN}\n")
        (workdir / "objects.cfg").write_text(objects if objects is not None else OBJECTS_CFG.format(
            socket=socket, interval=CHECK_INTERVAL, crm_mon=DATA / "crm_mon-2.1-ok.xml"))
        (workdir / "nagios.cfg").write_text(MAIN_CFG.format(d=workdir, nagios=NAGIOS_DIR))
        verify = subprocess.run([NAGIOS4, "-v", str(workdir / "nagios.cfg")], capture_output=True, text=True,
                                timeout=60)
        assert verify.returncode == 0 and "Total Warnings: 0" in verify.stdout, verify.stdout
        self.proc = subprocess.Popen([NAGIOS4, str(workdir / "nagios.cfg")], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    def wait_state(self, service: str, state: int, since: float = 0.0, timeout: float = TRANSITION_SECONDS
                   ) -> dict[str, str]:
        """Wait for a HARD `state` from a check that ran after `since` (epoch seconds)."""
        deadline = time.monotonic() + timeout
        block: dict[str, str] = {}
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "nagios4 exited"
            block = read_status(self.workdir / "status.dat").get(service, {})
            if (block.get("has_been_checked") == "1" and block.get("current_state") == str(state)
                    and block.get("state_type") == "1"
                    and int(block.get("last_check", "0")) >= int(since)):
                return block
            time.sleep(0.2)
        log = (self.workdir / "nagios.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"{service}: no HARD state {state} within {timeout:g}s; last {block}\n{log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def test_real_nagios_follows_a_live_gproxy(tmp_path, start_gproxy):
    require_nagios()
    backends = [BackendProcess(name).start() for name in ("ents3", "ents2", "ents1", "ent-maintenance")]
    revived: list[BackendProcess] = []
    nagios = None
    try:
        sock = tmp_path / "gproxy-admin.sock"
        port = free_port()
        servers = "".join(
            f'\n[[listen.esup-proxy.server]]\nname = "{b.name}"\naddress = "{b.address}"\ncheck = true\n'
            f'inter = "200ms"\nrise = 1\nfall = 1\n' + ("backup = true\n" if b.name == "ent-maintenance" else "")
            for b in backends)
        start_gproxy(f'[global]\nmaxconn = 1000\nstats_socket = {{ path = "{sock}", level = "admin" }}\n\n'
                     '[defaults]\nmode = "http"\ntimeout = { connect = "1s", client = "5s", server = "5s" }\n\n'
                     f'[listen.esup-proxy]\nbind = ["127.0.0.1:{port}"]\n'
                     f'httpchk = {{ method = "OPTIONS", path = "/" }}\n{servers}', wait_ports=[port])
        workdir = tmp_path / "nagios"
        workdir.mkdir()
        nagios = Nagios(workdir, str(sock))

        block = nagios.wait_state("esup-proxy backend", 0)
        assert block["plugin_output"] == "GPROXY BACKENDS OK - esup-proxy: 3/3 active servers up"
        assert "'esup-proxy_up'=3;3:;1:;0;3" in block["performance_data"]
        assert "ents3 UP for" in block["long_plugin_output"]
        assert nagios.wait_state("server ents3", 0)["plugin_output"].startswith("GPROXY SERVER OK - esup-proxy/ents3 UP")
        assert nagios.wait_state("esup-proxy sessions", 0)["plugin_output"].startswith("GPROXY SESSIONS OK - ")
        assert nagios.wait_state("cluster nodes (saved crm_mon)", 0)["plugin_output"] == (
            "PACEMAKER NODES OK - 2/2 nodes up, DC esup-proxy-1")

        killed_at = time.time()
        backends[2].kill()  # ents1
        block = nagios.wait_state("esup-proxy backend", 1, since=killed_at)
        assert block["plugin_output"] == "GPROXY BACKENDS WARNING - esup-proxy: 2/3 active servers up (ents1 DOWN)"

        killed_at = time.time()
        backends[0].kill()
        backends[1].kill()
        block = nagios.wait_state("esup-proxy backend", 2, since=killed_at)
        assert block["plugin_output"] == ("GPROXY BACKENDS CRITICAL - esup-proxy: no active server up, "
                                          "backup ent-maintenance serving")
        assert nagios.wait_state("server ents3", 2, since=killed_at)["plugin_output"].startswith(
            "GPROXY SERVER CRITICAL - esup-proxy/ents3 DOWN")

        revived_at = time.time()
        revived.extend(BackendProcess(b.name, b.port).start() for b in backends[:3])
        block = nagios.wait_state("esup-proxy backend", 0, since=revived_at)
        assert block["plugin_output"] == "GPROXY BACKENDS OK - esup-proxy: 3/3 active servers up"
        nagios.wait_state("server ents3", 0, since=revived_at)
        log = (workdir / "nagios.log").read_text()
        assert re.search(r"SERVICE ALERT: lb1;esup-proxy backend;WARNING;HARD;1;GPROXY BACKENDS WARNING", log)
        assert re.search(r"SERVICE ALERT: lb1;esup-proxy backend;CRITICAL;HARD;1;GPROXY BACKENDS CRITICAL", log)
        assert re.search(r"SERVICE ALERT: lb1;esup-proxy backend;OK;HARD;1;GPROXY BACKENDS OK", log)
    finally:
        if nagios is not None:
            nagios.stop()
        for backend in backends + revived:
            backend.stop()
