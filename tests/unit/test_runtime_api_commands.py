"""Runtime API commands: levels, HAProxy's messages, and what each one
changes in the live state (and that bad input changes nothing)."""

from __future__ import annotations

import pytest

from gproxy.events import ServerStateChanged
from gproxy.runtime import ErrorCapture, Stream
from gproxy.runtime_api import commands
from gproxy.runtime_api.commands import KEYWORDS, CliError, parse_weight, usage_message
from runtime_api_support import START, ask, converse, golden_compare, golden_state

# A valid use of every command (admin ones leave the golden state as it was
# enough for the next one to work too).
VALID_USE = {
    ("help",): "help",
    ("operator",): "operator",
    ("user",): "user",
    ("show", "cli", "level"): "show cli level",
    ("set", "timeout"): "set timeout cli 30",
    ("show", "info"): "show info",
    ("show", "version"): "show version",
    ("show", "stat"): "show stat",
    ("show", "servers", "state"): "show servers state app",
    ("show", "backend"): "show backend",
    ("get", "weight"): "get weight app/web1",
    ("show", "sess"): "show sess",
    ("show", "errors"): "show errors",
    ("clear", "counters"): "clear counters",
    ("disable", "server"): "disable server app/web4",
    ("enable", "server"): "enable server app/web4",
    ("disable", "health"): "disable health app/web1",
    ("enable", "health"): "enable health app/web1",
    ("set", "server"): "set server app/web1 weight 10",
    ("set", "weight"): "set weight app/web1 10",
    ("set", "maxconn", "server"): "set maxconn server app/web1 0",
    ("set", "maxconn", "frontend"): "set maxconn frontend app 2000",
    ("set", "maxconn", "global"): "set maxconn global 0",
    ("shutdown", "sessions", "server"): "shutdown sessions server app/web1",
    ("shutdown", "session"): "shutdown session 0x1",
}
LEVELS = ("user", "operator", "admin")


def test_every_command_has_a_valid_use_listed():
    listed = {k.words for k in KEYWORDS if k.words not in (("prompt",), ("quit",))}
    assert listed == set(VALID_USE)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("keyword", [k for k in KEYWORDS if k.words in VALID_USE], ids=lambda k: " ".join(k.words))
def test_every_command_at_each_level(keyword, level):
    state = golden_state()
    state.process.streams[1] = Stream(1, "app", "127.0.0.1:1", START, lambda: None)
    answer = ask(state, VALID_USE[keyword.words], level)
    allowed = commands.LEVEL_RANK[level] >= commands.LEVEL_RANK[keyword.level]
    if keyword.words == ("operator",):
        allowed = level != "user"  # a level is lowered, never raised
    if allowed:
        assert answer != "Permission denied\n", keyword.words
    else:
        assert answer == "Permission denied\n", keyword.words


def test_clear_counters_all_needs_admin():
    state = golden_state()
    assert ask(state, "clear counters all", "operator") == "Permission denied\n"
    assert ask(state, "clear counters all", "admin") == ""


def test_lowering_the_level_sticks_for_the_connection():
    state = golden_state()
    answer, _ = converse(state, b"user;set weight app/web1 5;get weight app/web1\n")
    assert answer == b"\nPermission denied\n\n10 (initial 10)\n\n"


def test_help_lists_gproxys_commands_in_haproxys_words_and_order():
    golden = golden_compare.steps_by_name()["help"]["answer"].removesuffix("\n\n<EOF>").splitlines()
    ours = usage_message(("help",), "admin").splitlines()
    assert ours[0] == golden[0]
    assert ours == [line for line in golden if line in set(ours)]
    assert ours[-3:] == golden[-3:]
    assert len(ours) == 1 + len([k for k in KEYWORDS if k.usage]) + 3


def test_help_is_the_same_at_every_level():
    assert usage_message(("help",), "user") == usage_message(("help",), "admin")


def test_unknown_commands_answer_the_usage():
    state = golden_state()
    assert ask(state, "").startswith("Unknown command. Please enter one of the following commands only:\n")
    near = ask(state, "show stt")
    assert near.startswith("Unknown command, but maybe one of the following ones is a better match:\n")
    assert "  show stat [desc|json|no-maint|typed|up]*: report counters for each proxy and server\n" in near
    assert "get weight <bk>/<srv>" in ask(state, "get wieght app/web1")
    prefix = ask(state, "set maxconn")
    assert "set maxconn server" in prefix and "set maxconn frontend" in prefix and "show stat" not in prefix


# -- weights ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, initial, dynamic, expected", [
    ("5", 10, True, 5), ("0", 10, True, 0), ("256", 1, True, 256), ("+3", 1, True, 3),
    ("50%", 10, True, 5), ("300%", 10, True, 30), ("2000%", 20, True, 256), ("0%", 7, True, 0),
    ("100%", 5, False, 5), ("0%", 5, False, 0), ("0", 5, False, 0), ("5", 5, False, 5), ("50%", 1, False, 0),
])
def test_parse_weight(text, initial, dynamic, expected):
    assert parse_weight(text, initial, dynamic) == expected


@pytest.mark.parametrize("text, dynamic, message", [
    ("", True, "Require <weight> or <weight%>.\n"),
    ("257", True, "Absolute weight can only be between 0 and 256 inclusive.\n"),
    ("-1", True, "Absolute weight can only be between 0 and 256 inclusive.\n"),
    ("300x", True, "Absolute weight can only be between 0 and 256 inclusive.\n"),
    ("abc", True, "Empty weight string empty or preceded by garbage"),
    ("%", True, "Empty weight string empty or preceded by garbage"),
    ("1.5", True, "Trailing garbage in weight string"),
    ("-5%", True, "Relative weight must be positive.\n"),
    ("3", False, "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n"),
    ("50%", False, "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n"),
])
def test_parse_weight_errors(text, dynamic, message):
    with pytest.raises(CliError) as info:
        parse_weight(text, 10, dynamic)
    assert info.value.text == message


def test_weight_changes_reach_the_balancer_at_once():
    state = golden_state()
    backend = state.backends["app"]
    assert ask(state, "set server app/web1 weight 0") == ""
    assert backend.by_name["web1"].weight == 0 and not backend.by_name["web1"].usable
    picks = {backend.pick(None)[0].name for _ in range(10)}
    assert picks == {"web4"}  # web2 drained, web3 down, web5 in maintenance
    assert ask(state, "set weight #2/#1 50%") == ""
    assert ask(state, "get weight app/web1") == "5 (initial 10)\n"


# -- admin state, health, checks ------------------------------------------------------------------------

def test_drain_maint_ready_and_their_log_messages():
    state = golden_state()
    messages = []
    state.bus.subscribe(ServerStateChanged, lambda event: messages.append(event.message))
    server = state.backends["app"].by_name["web1"]
    assert ask(state, "set server app/web1 state drain") == ""
    assert server.status == "DRAIN" and server.health.usable_for_persistent and not server.usable
    assert ask(state, "set server app/web1 state maint") == ""
    assert server.status == "MAINT" and not server.health.usable_for_persistent
    assert not server.health.checks_active  # maintenance pauses checks
    assert ask(state, "set server app/web1 state ready") == ""
    assert server.status == "UP 1/3"
    assert messages[0].startswith("Server app/web1 enters drain state.")
    assert messages[1].startswith("Server app/web1 is going DOWN for maintenance.")
    assert messages[2] == "Server app/web1 is UP/READY (leaving forced maintenance)."
    assert ask(state, "disable server app/web1") == "" and server.status == "MAINT"
    assert ask(state, "enable server app/web1") == "" and server.status == "UP 1/3"


def test_set_server_health():
    state = golden_state()
    server = state.backends["app"].by_name["web1"]
    assert ask(state, "set server app/web1 health down") == "" and server.status == "DOWN"
    assert ask(state, "set server app/web1 health stopping") == "" and server.status == "NOLB"
    assert ask(state, "set server app/web1 health up") == "" and server.status == "UP"
    assert ask(state, "set server app/web1 health bogus") == \
        "'set server <srv> health' expects 'up', 'stopping', or 'down'.\n"


def test_enable_disable_health():
    state = golden_state()
    server = state.backends["app"].by_name["web1"]
    assert ask(state, "disable health app/web1") == ""
    assert server.status == "no check" and not server.health.checks_active
    assert ask(state, "enable health app/web1") == "" and server.health.checks_active
    assert ask(state, "disable health app/web4") == ""  # nothing to disable: no error, as HAProxy
    assert ask(state, "enable health app/web4") == \
        "Health check was not configured on this server, cannot enable.\n"


# -- addresses and limits -------------------------------------------------------------------------------

class FakeSocket:
    closed = False

    def close(self):
        self.closed = True


def test_set_server_addr_and_port():
    state = golden_state()
    server = state.backends["app"].by_name["web4"]
    idle = FakeSocket()
    server.idle.append(idle)
    assert ask(state, "set server app/web4 addr 127.0.0.2") == \
        "IP changed from '127.0.0.1' to '127.0.0.2' by 'stats socket command'\n"
    assert (server.host, idle.closed, server.idle) == ("127.0.0.2", True, [])
    assert ask(state, "set server app/web4 addr 127.0.0.2 port 8080") == \
        "no need to change the addr, port changed from '41004' to '8080' by 'stats socket command'\n"
    assert ask(state, "set server app/web4 addr 127.0.0.1 port 41004") == \
        "IP changed from '127.0.0.2' to '127.0.0.1', port changed from '8080' to '41004' by 'stats socket command'\n"
    assert ask(state, "set server app/web4 addr 127.0.0.1") == "no need to change the addr by 'stats socket command'\n"
    assert ask(state, "set server app/web4 addr ::1") == \
        "IP changed from '127.0.0.1' to '::1' by 'stats socket command'\n"
    assert "[::1]:41004" in ask(state, "show stat 2 4 4")


@pytest.mark.parametrize("line, message", [
    ("set server app/web4 addr", "set server <b>/<s> addr requires an address and optionally a port.\n"),
    ("set server app/web4 addr 999.1.1.1", "Invalid addr '999.1.1.1' by 'stats socket command'\n"),
    ("set server app/web4 addr host.example", "Invalid addr 'host.example' by 'stats socket command'\n"),
    ("set server app/web4 addr 127.0.0.1:80", "Invalid addr '127.0.0.1:80' by 'stats socket command'\n"),
    ("set server app/web4 addr 127.0.0.1 port abc",
     "no need to change the addr, problem converting port 'abc' to an int by 'stats socket command'\n"),
    ("set server app/web4 addr 127.0.0.2 port abc",
     "IP not changed, problem converting port 'abc' to an int by 'stats socket command'\n"),
    ("set server app/web4 addr 127.0.0.2 port 99999",
     "IP not changed, port '99999' is out of range (1-65535) by 'stats socket command'\n"),
    ("set server app/web4 addr 127.0.0.1 port 0",
     "no need to change the addr, port '0' is out of range (1-65535) by 'stats socket command'\n"),
    ("set server app/web4 addr 127.0.0.1 port -1",
     "no need to change the addr, problem converting port '-1' to an int by 'stats socket command'\n"),
])
def test_bad_addresses_change_nothing(line, message):
    state = golden_state()
    server = state.backends["app"].by_name["web4"]
    assert ask(state, line) == message
    assert (server.host, server.port) == ("127.0.0.1", 41004)


def test_set_maxconn_server_lets_queued_requests_in():
    state = golden_state()
    backend = state.backends["app"]
    server = backend.by_name["web1"]

    class Waiter:
        got = "nothing"

        def set(self, value=None):
            self.got = value

    assert ask(state, "set maxconn server app/web1 1") == ""
    backend.take_slot(server, START)
    waiter = Waiter()
    backend.enqueue(waiter, server)
    assert ask(state, "set maxconn server app/web1 2") == ""
    assert waiter.got is server and server.counters.cur == 2
    assert "app,web1,0,1,2,2,2," in ask(state, "show stat 2 4 1")  # qcur, qmax, scur, smax, slim


@pytest.mark.parametrize("line, message", [
    ("set maxconn server app/web1 -1", "Value out of range.\n"),
    ("set maxconn server app/web1 12abc", "Trailing garbage in maxconn string"),
    ("set maxconn frontend app abc", "Integer value expected.\n"),
    ("set maxconn frontend app 5x", "Integer value expected.\n"),
    ("set maxconn frontend app -5", "Value out of range.\n"),
    ("set maxconn frontend be_static 10", "No such frontend.\n"),
])
def test_bad_maxconn_changes_nothing(line, message):
    state = golden_state()
    assert ask(state, line) == message
    assert state.backends["app"].by_name["web1"].maxconn == 0
    assert state.frontends["app"].maxconn == 2000


def test_set_maxconn_frontend():
    state = golden_state()
    assert ask(state, "set maxconn frontend #2 100") == ""
    assert state.frontends["app"].maxconn == 100
    assert "app,FRONTEND,,,0,0,100," in ask(state, "show stat -1 1 -1")


def test_set_timeout_cli_changes_this_connection_only():
    state = golden_state()
    session = commands.Session(level="admin", timeout_ms=10_000)
    ctx = commands.Context(state=state, session=session, now=START, facts=lambda: None)
    from gproxy.runtime_api.framing import Command
    assert commands.execute(ctx, Command(("set", "timeout", "cli", "5"))).text == ""
    assert session.timeout_ms == 5000
    commands.execute(ctx, Command(("set", "timeout", "cli", "250ms")))
    assert session.timeout_ms == 250
    assert commands.execute(ctx, Command(("set", "timeout", "cli", "0"))).text == "Invalid timeout value.\n"


# -- counters, sessions, errors ----------------------------------------------------------------------------

def test_clear_counters_resets_max_only_or_everything_but_live_gauges():
    state = golden_state()
    server = state.backends["app"].by_name["web1"]
    counters = server.counters
    counters.enter(START)
    counters.enter(START)
    counters.cur = 1
    counters.bytes_in = 500
    assert (counters.max, counters.total) == (2, 2)
    assert ask(state, "clear counters", "operator") == ""
    assert (counters.max, counters.total, counters.bytes_in, counters.cur) == (0, 2, 500, 1)
    assert ask(state, "clear counters all") == ""
    assert (counters.total, counters.bytes_in, counters.cur) == (0, 0, 1)


def test_shutdown_sessions_kills_the_streams_of_that_server_only():
    state = golden_state()
    killed = []
    web1, web2 = state.backends["app"].by_name["web1"], state.backends["app"].by_name["web2"]
    streams = [Stream(i, "app", f"127.0.0.1:{1000 + i}", START, lambda i=i: killed.append(i)) for i in (1, 2, 3)]
    streams[0].attach(web1)
    streams[1].attach(web1)
    streams[2].attach(web2)
    assert ask(state, "shutdown sessions server app/web1") == ""
    assert sorted(killed) == [1, 2]
    assert ask(state, "shutdown sessions server app/nosuch") == "No such server.\n"


def test_show_sess_and_shutdown_session():
    state = golden_state()
    killed = []
    stream = Stream(0x2A, "app", "127.0.0.1:5555", START - 5, lambda: killed.append(True))
    state.process.streams[stream.id] = stream
    stream.attach(state.backends["app"].by_name["web1"])
    text = ask(state, "show sess", "operator")
    assert text.startswith("0x2a: proto=tcpv4 src=127.0.0.1:5555 fe=app be=app srv=web1 ts=00 epoch=0 age=5s ")
    assert "fe=GLOBAL" in text.splitlines()[-1]
    assert ask(state, "show sess 0x2a", "operator").startswith("0x2a: [")
    assert ask(state, "show sess 0x99", "operator") == "Session not found.\n"
    assert ask(state, "shutdown session 0x99") == "No such session (use 'show sess').\n"
    assert ask(state, "shutdown session 0x2a") == "" and killed == [True]


def test_show_errors_reports_the_last_capture_per_proxy():
    state = golden_state()
    assert ask(state, "show errors", "operator").startswith("Total events captured on [")
    state.process.capture_error(state.frontends["app"], ErrorCapture(
        when=START, source="127.0.0.1:40000", data=b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", error_at=6,
        frontend="app", frontend_id=2))
    text = ask(state, "show errors", "operator")
    golden = golden_compare.steps_by_name()["show errors"]["answer"]
    assert golden_compare.errors(golden[:-len("<EOF>")], text + "\n") == []
    assert ask(state, "show errors nosuch", "operator") == "No such proxy.\n"
    assert "invalid request" not in ask(state, "show errors app response", "operator")


# -- bad input never changes anything -------------------------------------------------------------------

def _snapshot(state):
    servers = [(s.name, s.weight, s.maxconn, s.host, s.port, s.status, int(s.health.admin), s.health.health)
               for be in state.backends.values() for s in be.servers]
    return servers, [fe.maxconn for fe in state.frontends.values()]


def test_no_golden_bad_input_changes_state():
    state = golden_state()
    before = _snapshot(state)
    bad = [step for step in golden_compare.load_transcript()["steps"] if step["name"].startswith("bad: ")]
    assert len(bad) > 40
    for step in bad:
        converse(state, step["send"].encode(), level="admin")
    assert _snapshot(state) == before


def test_commands_at_too_low_a_level_change_nothing():
    state = golden_state()
    before = _snapshot(state)
    for level in ("user", "operator"):
        for line in ("disable server app/web1", "set server app/web1 state maint", "set weight app/web1 1",
                     "set server app/web1 addr 127.0.0.9", "set maxconn server app/web1 3",
                     "set maxconn frontend app 1", "disable health app/web1", "set server app/web1 health down"):
            assert ask(state, line, level) == "Permission denied\n"
    assert _snapshot(state) == before
