"""Debian's snmptrapd as a trap receiver for the end-to-end tests.

`start_snmptrapd` runs it in the foreground on a loopback UDP port, logging to
a file, and returns once it is ready; `Snmptrapd` is the receiver the trap
tests use: GPROXY-SUITE-MIB loaded (symbolic names in the log), v2c community
"public" and the v3 user "nms" (SHA + AES, authPriv only) bound to each
sender's engine ID, its log tailed by a thread into `ReceivedTrap`s.
`check_pair` holds what every trap must satisfy: both versions, the same
values, within the latency bound of the event.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cluster_harness import udp_port
from harness import REPO, stop_process

SNMPTRAPD = shutil.which("snmptrapd") or "/usr/sbin/snmptrapd"
BASE_MIBS = Path(os.environ.get("GPROXY_MIB_CACHE", REPO / ".cache" / "mibs"))
MIB_DIR = REPO / "nagios"
MIBS = ["-M", f"{BASE_MIBS}:{MIB_DIR}", "-m", "ALL"]  # the base MIBs and GPROXY-SUITE-MIB
USER, AUTH_KEY, PRIV_KEY = "nms", "gproxy-auth-key", "gproxy-priv-key"
LATENCY_BOUND = 1.0  # seconds from the event to the trap in snmptrapd's log (the bound)
DECISECOND = 0.1  # DateAndTime's resolution: an event time is up to this much earlier than the event
WAIT = 20.0  # how long a test waits for an expected trap (or snmptrapd's start) before failing
VERSIONS = ("v2c", "v3")


def require_snmptrapd(with_mibs: bool = True) -> None:
    if not Path(SNMPTRAPD).exists():
        pytest.fail("snmptrapd is missing: run scripts/install-debian-deps.sh (make test does)")
    if with_mibs and not (BASE_MIBS / "SNMPv2-SMI.mib").exists():
        pytest.fail(f"no base MIBs in {BASE_MIBS}: run scripts/fetch-base-mibs.sh (make test does)")


def start_snmptrapd(conf: Path, log: Path, port: int, persist: Path, mibs: list[str] = MIBS,
                    stderr=subprocess.DEVNULL) -> subprocess.Popen:
    """snmptrapd in the foreground on udp:127.0.0.1:`port`, once its log says it started."""
    proc = subprocess.Popen([SNMPTRAPD, "-f", "-C", "-c", str(conf), *mibs, "-Lf", str(log),
                             "-n", f"udp:127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=stderr,
                            env=dict(os.environ, SNMP_PERSISTENT_DIR=str(persist)))
    deadline = time.monotonic() + WAIT
    while not (log.exists() and "NET-SNMP version" in log.read_text(errors="replace")):
        if proc.poll() is not None or time.monotonic() >= deadline:
            stop_process(proc)
            raise AssertionError("snmptrapd did not start")
        time.sleep(0.02)
    return proc


@dataclass(frozen=True)
class ReceivedTrap:
    arrived: float  # epoch seconds when its line appeared in the log
    version: str  # v2c or v3
    name: str  # the notification's descriptor (symbolic: the MIB is loaded)
    values: dict[str, str]  # object descriptor -> value as snmptrapd prints it

    @property
    def event_time(self) -> float:
        """gproxySuiteEventTime, e.g. 2026-11-24,16:30:5.3,+0:0 (always UTC)."""
        match = re.fullmatch(r"(\d+)-(\d+)-(\d+),(\d+):(\d+):(\d+)\.(\d),\+0:0", self.values["gproxySuiteEventTime"])
        assert match, self.values["gproxySuiteEventTime"]
        y, mo, d, h, mi, s, ds = (int(g) for g in match.groups())
        return datetime(y, mo, d, h, mi, s, ds * 100_000, tzinfo=timezone.utc).timestamp()

    @property
    def latency(self) -> float:
        return self.arrived - self.event_time


_VARBIND_RE = re.compile(r"^(?:[\w-]+::)?(\w+?)(?:\.0)? = (?:([\w-]+): ?)?(.*)$")


def parse_line(line: str, arrived: float) -> ReceivedTrap | None:
    """One `format2 %V\\t%B\\t%P\\t%v` line: source, security, var-binds."""
    parts = line.split("\t")
    if len(parts) < 4 or "TRAP2" not in parts[1]:
        return None
    if "SNMP v2c, community public" in parts[1]:
        version = "v2c"
    elif f"SNMP v3, user {USER}" in parts[1]:
        version = "v3"
    else:
        return None
    values = {}
    for varbind in parts[2:]:
        match = _VARBIND_RE.match(varbind)
        if match:
            values[match.group(1)] = match.group(3)
    name = values.get("snmpTrapOID", "").split("::")[-1]
    return ReceivedTrap(arrived, version, name, values)


class Snmptrapd:
    """Debian's snmptrapd on a loopback port, logging to a file that a thread tails."""

    def __init__(self, workdir: Path, engine_ids: list[str]):
        require_snmptrapd()
        self.port = udp_port()
        self.log = workdir / "traps.log"
        conf = workdir / "snmptrapd.conf"
        users = "".join(f"createUser -e {eid} {USER} SHA {AUTH_KEY} AES {PRIV_KEY}\n" for eid in engine_ids)
        conf.write_text(
            "# comments on their own lines only\n"
            "authCommunity log public\n"
            f"{users}"
            f"authUser log {USER} priv\n"
            "format2 %V\\t%B\\t%P\\t%v\\n\n")
        self.proc = start_snmptrapd(conf, self.log, self.port, workdir / "persist")
        self.received: list[ReceivedTrap] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tail, daemon=True)
        self._thread.start()

    @property
    def target(self) -> str:
        return f"udp://127.0.0.1:{self.port}"

    def _tail(self) -> None:
        with open(self.log, encoding="utf-8", errors="replace") as handle:
            pending = ""
            while not self._stop.is_set():
                chunk = handle.read()
                if not chunk:
                    time.sleep(0.005)
                    continue
                now = time.time()
                pending += chunk
                *lines, pending = pending.split("\n")
                for line in lines:
                    trap = parse_line(line, now)
                    if trap is not None:
                        with self._lock:
                            self.received.append(trap)

    def traps(self, name: str | None = None, since: float = 0.0) -> list[ReceivedTrap]:
        with self._lock:
            return [t for t in self.received if (name is None or t.name == name) and t.arrived >= since]

    def wait(self, name: str, since: float, where=lambda t: True, timeout: float = WAIT) -> dict[str, ReceivedTrap]:
        """The first `name` trap of each version that arrived after `since` and matches `where`."""
        deadline = time.monotonic() + timeout
        while True:
            found: dict[str, ReceivedTrap] = {}
            for trap in self.traps(name, since):
                if trap.version not in found and where(trap):
                    found[trap.version] = trap
            if len(found) == len(VERSIONS):
                return found
            if time.monotonic() > deadline:
                seen = [(t.version, t.name, t.values.get("gproxySuiteMessage")) for t in self.traps(since=since)]
                raise AssertionError(f"no {name} in both versions within {timeout:g}s; got {seen}")
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        stop_process(self.proc)


def snmp_table(receiver: Snmptrapd) -> dict:
    return {"traps": [
        {"target": receiver.target, "version": "v2c", "community": "public"},
        {"target": receiver.target, "version": "v3", "user": USER, "auth_protocol": "SHA", "auth_key": AUTH_KEY,
         "priv_protocol": "AES", "priv_key": PRIV_KEY},
    ]}


def check_pair(pair: dict[str, ReceivedTrap], trigger: float, **expected: str) -> ReceivedTrap:
    """Both versions carry the same values, the expected ones, and arrived within the bound."""
    v2c, v3 = pair["v2c"], pair["v3"]
    assert v2c.values.keys() == v3.values.keys()
    for key in v2c.values:
        if key != "sysUpTime":
            assert v2c.values[key] == v3.values[key], key
    assert list(v2c.values)[:2] == ["sysUpTime", "snmpTrapOID"]  # RFC 3416: these two come first
    assert v2c.values["snmpTrapOID"] == f"GPROXY-SUITE-MIB::{v2c.name}"
    for key, value in expected.items():
        assert v2c.values[key] == value, (key, v2c.values)
    for trap in (v2c, v3):
        assert trap.event_time >= trigger - DECISECOND, (trap.name, trap.event_time, trigger)
        assert trap.latency < LATENCY_BOUND, (trap.name, trap.version, trap.latency)
    return v2c


def report_latencies(receiver: Snmptrapd) -> None:
    """Printed (pytest -s), never asserted beyond the bound: event -> trap logged, per version."""
    for trap in receiver.traps():
        message = trap.values["gproxySuiteMessage"][:60]
        print(f"{trap.name:28} {trap.version:4} {trap.latency * 1000:6.0f} ms  {message}")
