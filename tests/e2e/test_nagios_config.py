"""The shipped Nagios configuration: `nagios4 -v` on the example, the command lines against
the real plugins, the Icinga 2 objects, and a real nagios4 daemon running the shipped
commands and templates against a live gproxy whose servers are killed and brought back."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import REPO, BackendProcess, free_port
from nagios_harness import BIN, NAGIOS4, NAGIOS_DIR, Nagios, lb1_objects, require_nagios, service

DATA = REPO / "tests" / "checks_data"


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

def gproxy_objects(socket: str) -> str:
    """lb1's gproxy services on `socket`, and a Pacemaker check on a saved crm_mon."""
    return lb1_objects(
        service("gproxy-backend-service", "esup-proxy backend", f"check_gproxy_backend!{socket}!esup-proxy"),
        service("gproxy-backend-service", "server ents3", f"check_gproxy_server!{socket}!esup-proxy!ents3"),
        service("gproxy-traffic-service", "esup-proxy sessions", f"check_gproxy_sessions!{socket}"),
        service("gproxy-cluster-service", "cluster nodes (saved crm_mon)",
                f"check_pacemaker_nodes!--crm-mon-file {DATA / 'crm_mon-2.1-ok.xml'}"))


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
        nagios = Nagios(workdir, gproxy_objects(str(sock)))

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
