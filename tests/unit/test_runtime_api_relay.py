"""State changes shared by several workers: which commands are relayed
(commands.RELAYED, only when they succeeded), the relayed line reads back as
the same words, the stats socket hands them to its relay hook before the
answer, and the master's side (Arbiter.on_relay): to every other live
worker, bounded, a bad message dropping only that worker's relay socket."""

from __future__ import annotations

import os
import signal
import socket as stdsocket

import gevent
import pytest
from gevent import socket

from gproxy import control
from gproxy.config.model import StatsSocket
from gproxy.master import MAX_QUEUED_SIGNALS, RELAY_BACKLOG, WorkerState
from gproxy.runtime_api import commands
from gproxy.runtime_api.framing import Command, split_words
from gproxy.runtime_api.server import StatsSocketServer
from runtime_api_support import START, facts, golden_state
from test_master import Harness

READ_LIMIT = 5.0  # seconds a test waits for an answer (never a timing assertion)

RELAYED_LINES = [
    "disable server app/web1",
    "enable server app/web1",
    "disable health app/web1",
    "enable health app/web1",
    "set server app/web1 state maint",
    "set server app/web1 state drain",
    "set server app/web1 health down",
    "set server app/web1 weight 5",
    "set server app/web1 addr 127.0.0.2",
    "set server app/web1 addr 127.0.0.2 port 8081",
    "set weight app/web1 50%",
    "set maxconn server app/web1 10",
    "set maxconn frontend fe_main 100",
    "set maxconn global 100",
    "shutdown sessions server app/web1",
    "clear counters",
    "clear counters all",
]
LOCAL_LINES = [  # they succeed, and stay with the worker that answers
    "show info",
    "show stat",
    "show servers state",
    "show sess",
    "show errors",
    "show backend",
    "get weight app/web1",
    "show version",
    "help",
    "set timeout cli 10",
    "operator",
    "prompt",
    "quit",
]
FAILING_LINES = [
    "set server app/nope state maint",
    "set server app/web1 state sleeping",
    "set server app/web1 weight 300",
    "set server app/web1 agent-send x",
    "set server app/web1 addr not-an-address",
    "disable server nope/web1",
    "set maxconn frontend nope 1",
    "shutdown session 0x1",  # not relayed anyway; here it also fails
    "frobnicate",
]


def run(line: str, state=None, level: str = "admin") -> tuple[Command, commands.Outcome]:
    state = state or golden_state()
    command = Command(tuple(split_words(line)), None, line)
    ctx = commands.Context(state=state, session=commands.Session(level=level, timeout_ms=10_000), now=START,
                           facts=facts)
    return command, commands.execute(ctx, command)


def frontend_name() -> str:
    return next(iter(golden_state().frontends))


# -- which commands -----------------------------------------------------------------------------------

@pytest.mark.parametrize("line", RELAYED_LINES)
def test_a_state_change_that_succeeded_is_relayed(line):
    line = line.replace("fe_main", frontend_name())
    command, outcome = run(line)
    assert outcome.ok, outcome.text
    assert commands.relayed(command, outcome)


@pytest.mark.parametrize("line", LOCAL_LINES)
def test_reports_and_connection_settings_stay_local(line):
    command, outcome = run(line)
    assert outcome.ok, outcome.text
    assert not commands.relayed(command, outcome)


@pytest.mark.parametrize("line", FAILING_LINES)
def test_an_error_is_not_ok_and_not_relayed(line):
    command, outcome = run(line)
    assert not outcome.ok, outcome.text
    assert not commands.relayed(command, outcome)


def test_permission_denied_is_not_relayed():
    command, outcome = run("set server app/web1 state maint", level="operator")
    assert outcome.text == commands.PERMISSION_DENIED and not outcome.ok
    assert not commands.relayed(command, outcome)


def test_every_relayed_keyword_exists():
    assert commands.RELAYED <= {keyword.words for keyword in commands.KEYWORDS}
    assert ("shutdown", "session") not in commands.RELAYED  # stream ids are per worker


@pytest.mark.parametrize("words", [
    ("set", "server", "app/web1", "state", "maint"),
    ("set", "server", "a b/c\td", "state", "x;y"),
    ("set", "server", "back\\slash/s", "weight", "\\"),
    ("set", "maxconn", "frontend", ";;", "1"),
])
def test_the_relayed_line_reads_back_as_the_same_words(words):
    line = commands.relay_line(words)
    assert "\n" not in line
    assert tuple(split_words(line)) == words


def test_a_relayed_command_does_the_same_in_the_sibling():
    origin, sibling = golden_state(), golden_state()
    command, outcome = run("set server app/web1 state maint", origin)
    assert commands.relayed(command, outcome)
    _, again = run(commands.relay_line(command.words), sibling)
    assert again.ok
    web1 = [state.backends["app"].by_name["web1"] for state in (origin, sibling)]
    assert web1[0].health.admin == web1[1].health.admin != golden_state().backends["app"].by_name["web1"].health.admin


# -- the stats socket's hook --------------------------------------------------------------------------

def _talk(path: str, data: bytes) -> bytes:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(READ_LIMIT)
    client.connect(path)
    try:
        client.sendall(data)
        chunks = []
        while chunk := client.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        client.close()


def test_the_stats_socket_relays_what_succeeded(tmp_path):
    relayed: list[tuple[str, ...]] = []
    path = str(tmp_path / "admin.sock")
    server = StatsSocketServer(StatsSocket(path=path, mode=0o600, level="admin"), golden_state(), lambda: START,
                               10_000, facts)
    server.relay = lambda words: relayed.append(words)
    server.start()
    try:
        with gevent.Timeout(READ_LIMIT):
            answer = _talk(path, b"set server app/web1 state maint;show stat;set server app/nope state maint\n"
                                 b"set weight app/web1 0\n")
    finally:
        server.stop()
    assert answer.startswith(b"\n")
    assert b"No such server." in answer
    assert relayed == [("set", "server", "app/web1", "state", "maint"), ("set", "weight", "app/web1", "0")]


# -- the master's side ----------------------------------------------------------------------------------

class Pairs:
    """Real socket pairs standing for the workers' relay sockets."""

    def __init__(self) -> None:
        self.worker_ends: dict[int, stdsocket.socket] = {}

    def attach(self, h: Harness) -> None:
        for worker in h.arbiter.workers.values():
            master_end, worker_end = stdsocket.socketpair()
            master_end.setblocking(False)
            worker_end.setblocking(False)
            worker.relay = master_end
            self.worker_ends[worker.pid] = worker_end

    def received(self, pid: int) -> bytes:
        try:
            return self.worker_ends[pid].recv(1 << 20)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        for sock in self.worker_ends.values():
            sock.close()


@pytest.fixture
def three():
    h = Harness(workers=3)
    h.turn()
    pids = h.pids()
    h.ready(*pids)
    pairs = Pairs()
    pairs.attach(h)
    yield h, pairs, pids
    pairs.close()


def test_the_master_relays_to_every_other_live_worker(three):
    h, pairs, (a, b, c) = three
    h.arbiter.on_relay(h.arbiter.workers[a], b"set server app/a state maint\nset weight app/a 3\n")
    expected = b"set server app/a state maint\nset weight app/a 3\n"
    assert pairs.received(b) == expected and pairs.received(c) == expected
    assert pairs.received(a) == b""  # never back to where it came from


def test_a_line_in_pieces_is_relayed_once_whole(three):
    h, pairs, (a, b, c) = three
    origin = h.arbiter.workers[a]
    for piece in (b"set ser", b"ver app/a st", b"ate drain", b"\n"):
        h.arbiter.on_relay(origin, piece)
    assert pairs.received(b) == b"set server app/a state drain\n"


def test_a_retiring_worker_gets_nothing(three):
    h, pairs, (a, b, c) = three
    h.arbiter.workers[c].state = WorkerState.RETIRING
    h.arbiter.on_relay(h.arbiter.workers[a], b"disable server app/a\n")
    assert pairs.received(b) == b"disable server app/a\n"
    assert pairs.received(c) == b""


def test_an_overlong_message_drops_that_workers_relay_socket_only(three):
    h, pairs, (a, b, c) = three
    h.arbiter.on_relay(h.arbiter.workers[a], b"x" * control.MAX_REQUEST)
    assert h.arbiter.workers[a].relay is None
    assert h.log_has("bad relay message")
    assert pairs.received(b) == b""
    h.arbiter.on_relay(h.arbiter.workers[b], b"enable server app/a\n")  # the others go on
    assert pairs.received(c) == b"enable server app/a\n"


def test_end_of_file_closes_the_relay_socket(three):
    h, pairs, (a, b, c) = three
    h.arbiter.on_relay(h.arbiter.workers[a], b"")
    assert h.arbiter.workers[a].relay is None
    h.arbiter.on_relay(h.arbiter.workers[b], b"enable server app/a\n")
    assert pairs.received(a) == b"" and pairs.received(c) == b"enable server app/a\n"


def test_a_worker_that_does_not_read_gets_a_bounded_backlog(three):
    h, pairs, (a, b, c) = three
    line = b"set server app/a state maint " + b"y" * 1000 + b"\n"
    origin = h.arbiter.workers[a]
    for _ in range(3 * RELAY_BACKLOG // len(line)):
        h.arbiter.on_relay(origin, line)
    stuck = h.arbiter.workers[b]
    assert 0 < len(stuck.relay_out) <= RELAY_BACKLOG
    assert h.log_has("does not read its relayed commands")
    # Once it reads, the rest follows on the next turns, whole lines only.
    got = b""
    for _ in range(1000):
        got += pairs.received(b)
        h.turn()
        if not stuck.relay_out:
            break
    got += pairs.received(b)
    assert not stuck.relay_out
    assert got and got.endswith(b"\n") and set(got.split(b"\n")[:-1]) == {line[:-1]}


# -- the master's signals (a relayed command made the old way hang: see Arbiter._read_signals) ----------

def test_signals_are_queued_from_the_wake_up_pipe_bytes():
    h = Harness()
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    try:
        h.arbiter._wake = (read_end, write_end)
        os.write(write_end, bytes([signal.SIGCHLD, signal.SIGTERM]))
        h.arbiter._ignore(signal.SIGTERM, None)  # the Python-level handler queues nothing itself
        assert not h.arbiter.signals
        h.arbiter.run_once()  # FakeSystem.wait reports nothing: read it the way the loop does
        h.arbiter._readable(read_end, h.system.now)
        assert list(h.arbiter.signals) == [signal.SIGCHLD, signal.SIGTERM]
        os.write(write_end, bytes([signal.SIGHUP]) * 40)
        h.arbiter._readable(read_end, h.system.now)
        assert len(h.arbiter.signals) == MAX_QUEUED_SIGNALS  # bounded
    finally:
        h.arbiter._wake = None
        os.close(read_end)
        os.close(write_end)
