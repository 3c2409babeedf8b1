"""Server state carried across reloads (gproxy.server_state), and the worker re-applying it."""

from __future__ import annotations

from gproxy.config.loader import load_string
from gproxy.proxy import Gproxy
from gproxy.server_state import Restore, parse, plan
from gproxy.worker import restore_state

HEADER = ("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
          "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
          "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "
          "srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n")


def row(server: str, op: int = 2, admin: int = 0, uweight: int = 1, iweight: int = 1, port: int = 9001,
        backend: str = "app", addr: str = "127.0.0.1") -> str:
    return f"2 {backend} 1 {server} {addr} {op} {admin} {uweight} {iweight} 5 15 3 4 6 0 0 0 - {port} - 0 0 - - 0\n"


CONFIG = """
[defaults]
mode = "http"
[listen.app]
bind = ["127.0.0.1:8080"]
balance = "roundrobin"
[[listen.app.server]]
name = "s1"
address = "127.0.0.1:9001"
check = true
[[listen.app.server]]
name = "s2"
address = "127.0.0.1:9002"
weight = {s2_weight}
check = true
[[listen.app.server]]
name = "s3"
address = "127.0.0.1:9003"
disabled = {s3_disabled}
"""


def config(s2_weight: int = 1, s3_disabled: str = "false"):
    return load_string(CONFIG.format(s2_weight=s2_weight, s3_disabled=s3_disabled))


def test_parse_reads_the_runtime_api_format_and_reports_bad_lines():
    rows, problems = parse(HEADER + row("s1", admin=8, uweight=7) + "2 app 2 short\n" + "\n")
    assert [(r.server, r.admin, r.uweight, r.port) for r in rows] == [("s1", 8, 7, 9001)]
    assert problems == ["server state line 4: 4 columns, expected 19 or more"]


def test_parse_refuses_an_unknown_version():
    assert parse("2\n" + row("s1")) == ([], ["server state: unknown format version '2'"])


def test_parse_of_nothing_is_nothing():
    assert parse("") == ([], [])


def test_drain_maint_and_a_cli_weight_are_carried():
    rows, _ = parse(HEADER + row("s1", admin=8) + row("s2", op=0, admin=1, uweight=9, port=9002))
    assert plan(rows, config()) == [Restore("app", "s1", admin="drain"),
                                    Restore("app", "s2", admin="maint", weight=9)]


def test_a_new_configured_weight_wins_over_the_saved_one():
    rows, _ = parse(HEADER + row("s2", uweight=9, iweight=1, port=9002))
    assert plan(rows, config(s2_weight=50)) == []


def test_a_maint_from_the_configuration_is_left_to_the_configuration():
    rows, _ = parse(HEADER + row("s3", op=0, admin=5, port=9003))  # FMAINT|CMAINT: config `disabled`
    assert plan(rows, config(s3_disabled="false")) == []


def test_a_server_checks_found_down_starts_down_but_only_if_it_is_the_same_server():
    rows, _ = parse(HEADER + row("s1", op=0) + row("s2", op=3, port=9002))
    assert plan(rows, config()) == [Restore("app", "s1", health="down"), Restore("app", "s2", health="stopping")]
    moved, _ = parse(HEADER + row("s1", op=0, port=9999))
    assert plan(moved, config()) == []


def test_servers_and_backends_gone_from_the_configuration_are_ignored():
    rows, _ = parse(HEADER + row("gone", admin=1) + row("s1", admin=1, backend="old"))
    assert plan(rows, config()) == []


def test_the_worker_applies_the_plan_before_serving():
    proxy = Gproxy(config(), foreground=False)
    text = HEADER + row("s1", admin=8) + row("s2", admin=1, uweight=9, port=9002) + row("s3", op=0, port=9003)
    done = restore_state(proxy, text, now=1000.0)
    servers = {s.name: s for s in proxy.backends["app"].servers}
    assert servers["s1"].status.startswith("DRAIN")  # "DRAIN 1/3" until checked
    assert servers["s2"].status == "MAINT" and servers["s2"].weight == 9
    assert servers["s3"].status == "no check"  # unchecked: health is the configuration's
    assert done == ["app/s1: drain", "app/s2: maint, weight 9"]


def test_a_saved_down_server_waits_for_rise_checks():
    proxy = Gproxy(config(), foreground=False)
    restore_state(proxy, HEADER + row("s1", op=0), now=1000.0)
    server = proxy.backends["app"].servers[0]
    assert server.status == "DOWN"
    assert not server.usable
