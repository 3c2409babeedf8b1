"""nagios/snmptt/snmptt.conf.gproxy-suite against checks.snmp.mapping: one EVENT per notification, at
its OID, whose FORMAT and EXEC lines use only the variables the notification carries, and whose EXEC
sends a valid Nagios state to a service of the example objects."""

from __future__ import annotations

import re
from pathlib import Path

from checks.snmp.mapping import NOTIFICATIONS, notification_oid

ROOT = Path(__file__).resolve().parents[2]
SNMPTT = ROOT / "nagios" / "snmptt" / "snmptt.conf.gproxy-suite"
EXAMPLE = ROOT / "nagios" / "example"
PLACEHOLDER_OID = "1.3.6.1.4.1.32473"


def events() -> dict[str, list[dict[str, str]]]:
    """EVENT name -> its blocks, each {"oid", "format", "exec"}."""
    found: dict[str, list[dict[str, str]]] = {}
    current: dict[str, str] | None = None
    for line in SNMPTT.read_text().splitlines():
        if line.startswith("EVENT "):
            _, name, oid, *_ = line.split()
            current = {"oid": oid}
            found.setdefault(name, []).append(current)
        elif current is not None and line.startswith(("FORMAT ", "EXEC ")):
            key, _, rest = line.partition(" ")
            current[key.lower()] = rest
    return found


def test_every_notification_has_an_event_at_its_oid():
    found = events()
    assert set(found) == set(NOTIFICATIONS)
    for name, blocks in found.items():
        for block in blocks:
            assert block["oid"] == "." + notification_oid(PLACEHOLDER_OID, name), name


def test_variables_exist_and_states_and_services_are_valid():
    services = set(re.findall(r"service_description\s+(.+?)\s*$",
                              "\n".join(p.read_text() for p in EXAMPLE.rglob("*.cfg")), re.M))
    for name, blocks in events().items():
        carried = len(NOTIFICATIONS[name][1])
        for block in blocks:
            used = [int(n) for n in re.findall(r"\$(\d+)", block["format"] + block["exec"])]
            assert used and max(used) <= carried, (name, used, carried)
            match = re.fullmatch(r'/usr/local/bin/trap2nagios (?:-r )?"?([^"]+)"? "([^"]+)" ([0-3]) "\$3"',
                                 block["exec"])
            assert match, (name, block["exec"])
            assert match.group(2) in services or "$" in match.group(2), (name, match.group(2))


def test_partition_traps_page_as_the_checks_would():
    state = {name: int(re.search(r'" ([0-3]) "\$3"$', blocks[0]["exec"]).group(1))
             for name, blocks in events().items()}
    assert state["heartbeatQuorumLost"] == 2 and state["heartbeatFencingFailed"] == 2
    assert state["heartbeatSplitBrain"] == 2
    assert state["heartbeatQuorumRegained"] == 0 and state["heartbeatFencingSucceeded"] == 1
