"""nagios/GPROXY-SUITE-MIB.txt with the real tools: libsmi's smilint finds nothing, net-snmp's
snmptranslate resolves every notification to the OID the sender uses.

Both need the IETF base MIBs, which Debian does not ship: scripts/fetch-base-mibs.sh
(run by scripts/install-debian-deps.sh, hence by `make test`) puts them in .cache/mibs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from checks.snmp.mapping import NOTIFICATIONS, OBJECTS, notification_oid, object_oid
from gsuite.snmp_config import DEFAULT_ENTERPRISE_OID

REPO = Path(__file__).resolve().parents[2]
MIB = REPO / "nagios" / "GPROXY-SUITE-MIB.txt"
BASE = Path(os.environ.get("GPROXY_MIB_CACHE", REPO / ".cache" / "mibs"))


@pytest.fixture(scope="module")
def base_mibs() -> Path:
    if not (BASE / "SNMPv2-SMI.mib").exists():
        pytest.fail(f"no base MIBs in {BASE}: run scripts/fetch-base-mibs.sh (make test does)")
    return BASE


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: run scripts/install-debian-deps.sh (make test does)")
    return path


def smilint(path: Path, base: Path, level: int) -> str:
    done = subprocess.run([tool("smilint"), "-l", str(level), "-s", str(path)], capture_output=True, text=True,
                          env=dict(os.environ, SMIPATH=str(base)), timeout=30)
    # smilint exits 0 even on severe errors: only its output tells.
    return (done.stdout + done.stderr).strip()


def test_smilint_finds_nothing(base_mibs):
    assert smilint(MIB, base_mibs, 6) == ""


def test_smilint_would_catch_an_error(base_mibs, tmp_path):
    broken = tmp_path / "GPROXY-SUITE-MIB.txt"
    broken.write_text(MIB.read_text().replace("::= { gproxySuiteNotifications 2 }",
                                              "::= { gproxySuiteNotifications 1 }"))
    assert re.search(r"\[[1-3]\]", smilint(broken, base_mibs, 3))


def test_snmptranslate_resolves_every_notification_and_object(base_mibs, tmp_path):
    names = [f"GPROXY-SUITE-MIB::{n}" for n in list(NOTIFICATIONS) + list(OBJECTS)]
    done = subprocess.run([tool("snmptranslate"), "-M", f"{base_mibs}:{MIB.parent}", "-m", "GPROXY-SUITE-MIB",
                           "-On", *names], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, SNMP_PERSISTENT_DIR=str(tmp_path), MIBS="", MIBDIRS=""))
    assert done.returncode == 0, done.stderr
    complaints = [line for line in done.stderr.splitlines() if not line.startswith("Created directory")]
    assert complaints == []
    expected = [f".{notification_oid(DEFAULT_ENTERPRISE_OID, n)}" for n in NOTIFICATIONS]
    expected += [f".{object_oid(DEFAULT_ENTERPRISE_OID, n)[:-2]}" for n in OBJECTS]  # names without the .0
    assert done.stdout.split() == expected


def test_snmptranslate_shows_the_notification_objects(base_mibs, tmp_path):
    done = subprocess.run([tool("snmptranslate"), "-M", f"{base_mibs}:{MIB.parent}", "-m", "GPROXY-SUITE-MIB",
                           "-Td", "GPROXY-SUITE-MIB::heartbeatFailover"], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, SNMP_PERSISTENT_DIR=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert re.search(r"OBJECTS\s*\{\s*gproxySuiteSender, gproxySuiteEventTime, gproxySuiteMessage, "
                     r"heartbeatClusterName, heartbeatResources", done.stdout)
    assert ("::= { iso(1) org(3) dod(6) internet(1) private(4) enterprises(1) gproxySuiteMIB(32473) "
            "gproxySuiteNotifications(0) 14 }") in done.stdout
