"""A private nagios4 for the end-to-end tests, running the shipped commands and templates.

`main_cfg` writes the main configuration every test's nagios4 shares (all
its files in one directory, no syslog, notifications, flap detection or
update check); `Nagios` runs it on a test's objects (`lb1_objects`: the
host lb1 and its services, each HARD at its first result) and waits for a
service's HARD state in status.dat.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import REPO, stop_process

NAGIOS_DIR = REPO / "nagios"
BIN = Path(sys.executable).parent  # the plugins (check_gproxy, check_heartbeat), as $USER1$
NAGIOS4 = shutil.which("nagios4") or "/usr/sbin/nagios4"
CHECK_INTERVAL = 2  # seconds (interval_length 1)
STATE_TIMEOUT = 12.0  # check interval + the change's detection + status.dat refresh, with room
POLL = 0.2

COMMON_CFG = """log_file={d}/nagios.log
cfg_file={nagios}/commands.cfg
cfg_file={nagios}/templates.cfg
cfg_file={objects}
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
use_syslog=0
enable_notifications=0
enable_flap_detection=0
check_for_updates=0
nagios_user=root
nagios_group=root
illegal_macro_output_chars=`~$&|'"<>
"""

# Active checks on a fast schedule: every check of a service runs CHECK_INTERVAL apart.
ACTIVE_CFG = """interval_length=1
service_inter_check_delay_method=n
host_inter_check_delay_method=n
max_service_check_spread=1
max_host_check_spread=1
service_check_timeout=20
log_initial_states=1
"""

LB1_HOST = """define command {
    command_name    test-host-up
    command_line    /bin/true
}

define contact {
    use                     gproxy-contact
    contact_name            tester
    email                   root@localhost
}

define host {
    use                     gproxy-lb-node
    host_name               lb1
    address                 127.0.0.1
    check_command           test-host-up
}
"""


def require_nagios() -> None:
    if not Path(NAGIOS4).exists():
        pytest.fail("nagios4 is missing: run scripts/install-debian-deps.sh (make test does)")


def main_cfg(d: Path, objects: Path, options: str) -> str:
    """nagios.cfg for a nagios4 whose files are all in `d`, monitoring `objects` with the shipped
    commands and templates; `options`: the test's own lines."""
    return COMMON_CFG.format(d=d, nagios=NAGIOS_DIR, objects=objects) + options


def service(template: str, description: str, command: str, interval: int = CHECK_INTERVAL) -> str:
    """A service of lb1, checked every `interval` seconds, HARD at its first result."""
    return f"""define service {{
    use                     {template}
    host_name               lb1
    service_description     {description}
    check_command           {command}
    check_interval          {interval}
    retry_interval          1
    max_check_attempts      1
}}
"""


def lb1_objects(*services: str) -> str:
    return "\n".join([LB1_HOST, *services])


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
    """nagios4 in `workdir` running `objects` (object definitions) with active checks."""

    def __init__(self, workdir: Path, objects: str):
        self.workdir = workdir
        (workdir / "checkresults").mkdir()
        (workdir / "resource.cfg").write_text(f"$USER1$={BIN}\n")
        (workdir / "objects.cfg").write_text(objects)
        (workdir / "nagios.cfg").write_text(main_cfg(workdir, workdir / "objects.cfg", ACTIVE_CFG))
        verify = subprocess.run([NAGIOS4, "-v", str(workdir / "nagios.cfg")], capture_output=True, text=True,
                                timeout=60)
        assert verify.returncode == 0 and "Total Warnings: 0" in verify.stdout, verify.stdout
        self.proc = subprocess.Popen([NAGIOS4, str(workdir / "nagios.cfg")], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    def wait_state(self, service: str, state: int, since: float = 0.0, timeout: float = STATE_TIMEOUT
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
            time.sleep(POLL)
        log = (self.workdir / "nagios.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"{service}: no HARD state {state} within {timeout:g}s; last {block}\n{log}")

    def stop(self) -> None:
        stop_process(self.proc)
