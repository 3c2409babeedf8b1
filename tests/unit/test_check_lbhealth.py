"""checks.lbhealth: which servers count, and how a backend's trouble is worded."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks import haproxy_csv, lbhealth

DATA = Path(__file__).resolve().parents[1] / "checks_data"
HEADER = "# pxname,svname,status,bck,type,scur,slim,qcur,lastchg,check_status,check_code,check_duration,last_chk,"


def backend(*servers: tuple[str, str, int], backend_status: str = "UP") -> haproxy_csv.Backend:
    """A backend from (name, status, backup) triples."""
    lines = [HEADER]
    for name, status, backup in servers:
        lines.append(f"be,{name},{status},{backup},2,1,,0,42,L4CON,,,Connection refused,")
    if backend_status:
        lines.append(f"be,BACKEND,{backend_status},0,1,5,100,2,42,,,,,")
    return haproxy_csv.parse_stat_csv("\n".join(lines)).backends()[0]


def test_active_pool_and_backups():
    health = lbhealth.assess(backend(("a", "UP", 0), ("b", "DOWN", 0), ("c", "UP 1/3", 0), ("m", "UP", 1)), False)
    assert (health.up, len(health.counted)) == (2, 3)
    assert [r.name for r in health.failing] == ["b"]
    assert health.serving_backups == ("m",)
    assert (health.sessions, health.session_limit, health.queue) == (5, 100, 2)
    assert lbhealth.problem_text(health) == "be: 2/3 active servers up (b DOWN)"


def test_administrative_servers_count_as_down_unless_maint_ok():
    servers = (("a", "UP", 0), ("b", "DRAIN", 0), ("c", "MAINT (via be/b)", 0), ("d", "NOLB", 0))
    strict = lbhealth.assess(backend(*servers), False)
    assert (strict.up, len(strict.counted)) == (1, 4)
    assert lbhealth.problem_text(strict) == "be: 1/4 active servers up (1 DRAIN, 1 MAINT, 1 NOLB)"
    relaxed = lbhealth.assess(backend(*servers), True)
    assert (relaxed.up, len(relaxed.counted)) == (1, 1)
    assert [r.name for r in relaxed.administrative] == ["b", "c", "d"]


def test_no_active_server_up_says_who_serves():
    with_backup = lbhealth.assess(backend(("a", "DOWN", 0), ("b", "DOWN 1/2", 0), ("m", "UP", 1)), False)
    assert lbhealth.problem_text(with_backup) == "be: no active server up, backup m serving"
    dead_backup = lbhealth.assess(backend(("a", "DOWN", 0), ("m", "DOWN", 1), backend_status="DOWN"), False)
    assert lbhealth.problem_text(dead_backup) == "be: no active server up, no backup server up either"
    assert [r.name for r in dead_backup.backups_down] == ["m"]
    alone = lbhealth.assess(backend(("a", "MAINT", 0), ("b", "DOWN", 0), backend_status="DOWN"), False)
    assert lbhealth.problem_text(alone) == "be: no active server up (a MAINT, b DOWN), nothing serves"


def test_all_out_on_purpose_with_maint_ok():
    health = lbhealth.assess(backend(("a", "MAINT", 0), ("b", "DRAIN", 0), ("m", "UP", 1)), True)
    assert health.counted == () and health.serving_backups == ("m",)
    assert lbhealth.problem_text(health).startswith("be: every server out of the pool on purpose")


def test_backup_only_backend_counts_its_backups():
    health = lbhealth.assess(backend(("m1", "UP", 1), ("m2", "DOWN", 1)), False)
    assert (health.up, len(health.counted)) == (1, 2)


def test_gauges_summed_without_a_backend_row():
    health = lbhealth.assess(backend(("a", "UP", 0), ("b", "UP", 0), backend_status=""), False)
    assert health.row is None and health.sessions == 2 and health.session_limit is None


@pytest.mark.parametrize("seconds, text", [
    (None, "?"), (-1, "?"), (0, "0s"), (59, "59s"), (60, "1m00s"), (3599, "59m59s"),
    (3600, "1h00m"), (10920, "3h02m"), (86400, "1d00h"), (190800, "2d05h")])
def test_format_age(seconds, text):
    assert lbhealth.format_age(seconds) == text


def test_server_descriptions():
    stats = haproxy_csv.parse_stat_csv((DATA / "haproxy-2.6.12-capture.csv").read_text())
    describe = {row.name: lbhealth.describe_server(row) for row in stats.of_kind("server")}
    assert describe["web1"] == "web1 UP for 10s, check L7OK/200 in 1ms"
    assert describe["web3"] == "web3 DOWN for 9s, check L4CON (Connection refused)"
    assert describe["web4"] == "web4 no check for 10s"
    assert describe["web6"] == "web6 MAINT (via be_app/web5) for 9s"
    assert describe["bk1"] == "bk1 (backup) UP for 10s, check L7OK/200 in 0ms"
    assert describe["ctout"] == "ctout DOWN for 7s, check L7TOUT (Layer7 timeout)"
    assert describe["n1"] == "n1 NOLB for 9s, check L7OKC/404 in 1ms"
