"""The arbiter, turn by turn: fake processes, a manual clock, no fork and no sleep."""

from __future__ import annotations

import signal
from dataclasses import replace

import pytest

from gproxy import control
from gproxy.config.loader import load_string
from gproxy.errors import ConfigError, IllegalTransition
from gproxy.master import (
    BOOT_TIMEOUT,
    EXIT_HALTED,
    HARD_STOP_MARGIN,
    KILL_GRACE,
    UPGRADE_TIMEOUT,
    WORKER_TIMEOUT,
    Arbiter,
    Generation,
    MasterOptions,
    Upgrade,
    WorkerEvent,
    WorkerRecord,
    WorkerState,
)
from gproxy.worker import WORKER_BOOT_ERROR

CONFIG = """
[global]
workers = {workers}
hard_stop_after = "10s"
[defaults]
mode = "http"
[listen.app]
bind = ["127.0.0.1:8080"]
server = [{{ name = "a", address = "127.0.0.1:9000", weight = {weight} }}]
"""


def config(workers: int = 1, weight: int = 1):
    return load_string(CONFIG.format(workers=workers, weight=weight))


STATE = "1\n# be_id be_name ...\n2 app 1 a 127.0.0.1 2 8 1 1 0 1 0 0 0 0 0 0 - 9000 - 0 0 - - 0\n"


class FakeSystem:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sent: list[tuple[int, int]] = []
        self.exited: list[tuple[int, int]] = []
        self.closed: list[int] = []

    def monotonic(self) -> float:
        return self.now

    def kill(self, pid: int, sig: int) -> None:
        self.sent.append((pid, sig))

    def reap(self) -> list[tuple[int, int]]:
        done, self.exited = self.exited, []
        return done

    def wait(self, fds: list[int], timeout: float) -> list[int]:
        return []

    def read(self, fd: int) -> bytes:
        return b""

    def close(self, fd: int) -> None:
        self.closed.append(fd)

    def signals_to(self, pid: int) -> list[int]:
        return [sig for p, sig in self.sent if p == pid]


class FakeSpawner:
    def __init__(self) -> None:
        self.next_pid = 100
        self.spawned: list[tuple[int, Generation]] = []
        self.answers: dict[int, str | None] = {}
        self.upgrades: list[str] = []

    def spawn(self, arbiter, generation, index):
        self.next_pid += 1
        self.spawned.append((self.next_pid, generation))
        return WorkerRecord(pid=self.next_pid, generation=generation.number, started=0.0)

    def request(self, worker, command, timeout):
        assert command == "show servers state"
        return self.answers.get(worker.pid, STATE)

    def exec_master(self, arbiter, state_text):
        self.upgrades.append(state_text)
        return Upgrade(pid=999, ready_fd=55, deadline=0.0)


class FakeSockets:
    def __init__(self) -> None:
        self.updated = []
        self.pruned = []
        self.fail: Exception | None = None
        self.closed_tcp = False
        self.closed_all: bool | None = None
        self.trimmed: list[dict[str, int]] = []

    def update(self, config):
        if self.fail:
            raise self.fail
        self.updated.append(config)
        return []

    def prune(self, configs):
        self.pruned.append(configs)
        return []

    def sizes(self):
        return {"127.0.0.1:80": len(self.updated)}  # grows with each reload, as groups may

    def trim(self, sizes):
        self.trimmed.append(sizes)
        return 0

    def close_tcp(self):
        self.closed_tcp = True

    def close_all(self, unlink):
        self.closed_all = unlink


class FakeLog:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.configured = 0

    def __call__(self, message: str, severity: str = "notice") -> None:
        self.messages.append(message)

    def configure(self, config) -> None:
        self.configured += 1

    def close(self) -> None:
        pass


class Harness:
    """An arbiter with fakes, and helpers to play the workers' part."""

    def __init__(self, workers: int = 1, load=None) -> None:
        self.system = FakeSystem()
        self.spawner = FakeSpawner()
        self.sockets = FakeSockets()
        self.log = FakeLog()
        self.messages = self.log.messages
        self.notified: list[str] = []
        self.next_config = config(workers)
        self.arbiter = Arbiter(
            config(workers), self.sockets, MasterOptions(config_path="/etc/gproxy.toml"),
            self.spawner, system=self.system, load=load or (lambda path: self.next_config),
            log=self.log,
            notify=lambda state: self.notified.append(state) or True)

    def turn(self, seconds: float = 0.0) -> None:
        self.system.now += seconds
        self.arbiter.run_once()

    def signal(self, sig: int) -> None:
        self.arbiter.signals.append(sig)
        self.turn()

    def ready(self, *pids: int) -> None:
        for pid in pids:
            self.arbiter.on_beats(self.arbiter.workers[pid], control.READY, self.system.now)
        self.turn()

    def exit(self, pid: int, status: int) -> None:
        self.system.exited.append((pid, status))
        self.turn()

    def pids(self, generation: int | None = None, state: WorkerState | None = None) -> list[int]:
        return sorted(w.pid for w in self.arbiter.workers.values()
                      if (generation is None or w.generation == generation) and (state is None or w.state is state))

    def log_has(self, text: str) -> bool:
        return any(text in message for message in self.messages)


@pytest.fixture
def h() -> Harness:
    harness = Harness()
    harness.turn()
    return harness


def serving(h: Harness) -> int:
    [pid] = h.pids(generation=h.arbiter.current.number)
    h.ready(pid)
    return pid


# -- the worker table ------------------------------------------------------------------------------

def test_worker_table_allows_a_life_and_refuses_a_second_death():
    worker = WorkerRecord(pid=1, generation=1, started=0.0)
    for event, state in ((WorkerEvent.READY, WorkerState.READY), (WorkerEvent.RETIRE, WorkerState.RETIRING),
                         (WorkerEvent.KILL, WorkerState.KILLING), (WorkerEvent.EXITED, WorkerState.EXITED)):
        assert worker.process_event(event) is state
    with pytest.raises(IllegalTransition):
        worker.process_event(WorkerEvent.EXITED)


def test_a_ready_worker_cannot_say_ready_twice():
    worker = WorkerRecord(pid=1, generation=1, started=0.0)
    worker.process_event(WorkerEvent.READY)
    with pytest.raises(IllegalTransition):
        worker.process_event(WorkerEvent.READY)


def test_a_worker_retired_while_booting_stays_retiring_when_it_says_ready():
    worker = WorkerRecord(pid=1, generation=1, started=0.0)
    worker.process_event(WorkerEvent.RETIRE)
    assert worker.process_event(WorkerEvent.READY) is WorkerState.RETIRING


# -- start -----------------------------------------------------------------------------------------

def test_start_spawns_the_configured_workers_and_announces_once_all_are_ready():
    h = Harness(workers=3)
    h.turn()
    assert h.pids() == [101, 102, 103]
    h.ready(101, 102)
    assert "READY=1" not in h.notified
    h.ready(103)
    assert h.notified == ["READY=1"]
    assert h.log_has("ready: 3 workers serving")
    h.turn(1)
    assert len(h.spawner.spawned) == 3  # nothing more


def test_a_boot_error_in_the_first_generation_halts_the_master(h):
    h.exit(101, WORKER_BOOT_ERROR)
    assert h.arbiter.halted
    assert h.arbiter.exit_code == EXIT_HALTED
    assert len(h.spawner.spawned) == 1  # no respawn loop
    assert h.log_has("could not start (WORKER_BOOT_ERROR): halting")


def test_a_worker_that_never_says_ready_is_killed_and_counts_as_a_boot_failure(h):
    h.turn(BOOT_TIMEOUT + 1)
    assert h.system.signals_to(101) == [signal.SIGKILL]
    h.exit(101, -signal.SIGKILL)
    assert h.arbiter.halted and h.arbiter.exit_code == EXIT_HALTED


# -- liveness --------------------------------------------------------------------------------------

def test_a_serving_worker_that_dies_is_replaced(h):
    pid = serving(h)
    h.exit(pid, -signal.SIGKILL)
    assert h.pids() == [102]
    assert h.log_has("worker 101 exited unexpectedly (killed by SIGKILL): starting another")
    assert not h.arbiter.halted


def test_a_silent_worker_is_aborted_then_killed(h):
    pid = serving(h)
    h.arbiter.on_beats(h.arbiter.workers[pid], control.BEAT * 3, h.system.now)
    h.turn(WORKER_TIMEOUT - 1)
    assert h.system.signals_to(pid) == []
    h.turn(2)
    assert h.system.signals_to(pid) == [signal.SIGABRT]
    h.turn(KILL_GRACE)
    assert h.system.signals_to(pid) == [signal.SIGABRT, signal.SIGKILL]
    h.exit(pid, -signal.SIGKILL)
    assert h.pids() == [102]  # replaced


def test_beats_keep_a_worker_alive(h):
    pid = serving(h)
    for _ in range(5):
        h.turn(WORKER_TIMEOUT / 2)
        h.arbiter.on_beats(h.arbiter.workers[pid], control.BEAT, h.system.now)
    assert h.system.signals_to(pid) == []


# -- reload ----------------------------------------------------------------------------------------

def test_reload_starts_a_generation_with_the_state_and_retires_the_old_one_when_ready(h):
    old = serving(h)
    h.next_config = config(weight=5)
    h.signal(signal.SIGHUP)
    [new] = h.pids(generation=2)
    assert h.spawner.spawned[-1][1].state_text == STATE
    assert h.spawner.spawned[-1][1].config.backends["app"].servers[0].weight == 5
    assert h.system.signals_to(old) == []  # still serving while the new one boots
    assert h.notified[-1] == "RELOADING=1"
    assert h.log.configured == 1  # the master logs to the new file's targets
    h.ready(new)
    assert h.system.signals_to(old) == [signal.SIGUSR1]
    assert h.arbiter.workers[old].state is WorkerState.RETIRING
    assert h.notified[-1] == "READY=1"
    assert h.sockets.pruned[-1] == [h.next_config]
    h.exit(old, 0)
    assert h.pids() == [new]
    assert not h.arbiter.halted
    assert list(h.arbiter.generations) == [2]  # the old configuration is not kept


def test_a_bad_configuration_is_refused_and_changes_nothing():
    def bad(path):
        raise ConfigError([("listen.app.bind", "missing")])
    h = Harness(load=bad)
    h.turn()
    old = serving(h)
    h.signal(signal.SIGHUP)
    assert h.pids() == [old]
    assert h.system.sent == []
    assert h.arbiter.failed_reloads == 1
    assert h.log_has("reload refused")
    assert any("listen.app.bind" in m for m in h.messages)


def test_a_failed_bind_refuses_the_reload(h):
    old = serving(h)
    from gproxy.listeners import BindError
    h.sockets.fail = BindError("cannot bind 127.0.0.1:80: Address already in use")
    h.signal(signal.SIGHUP)
    assert h.pids() == [old]
    assert h.log_has("Address already in use")


def test_a_new_worker_that_cannot_boot_rolls_the_reload_back(h):
    old = serving(h)
    h.signal(signal.SIGHUP)
    [new] = h.pids(generation=2)
    h.exit(new, WORKER_BOOT_ERROR)
    assert h.arbiter.current.number == 1
    assert h.pids() == [old]  # serving, never signalled
    assert h.system.signals_to(old) == []
    assert h.log_has("reload failed")
    assert not h.arbiter.halted
    h.turn(1)
    assert h.pids() == [old]  # and the failed generation is not started again


def test_the_state_comes_from_the_newest_worker_that_answers(h):
    old = serving(h)
    h.spawner.answers[old] = None  # does not answer in time
    h.arbiter.current.state_text = "1\n# the state it started with\n"
    h.signal(signal.SIGHUP)
    assert h.spawner.spawned[-1][1].state_text == "1\n# the state it started with\n"
    assert h.log_has("could not read the server state")


def test_a_reload_during_a_reload_supersedes_it(h):
    old = serving(h)
    h.signal(signal.SIGHUP)
    [second] = h.pids(generation=2)
    h.signal(signal.SIGHUP)
    [third] = h.pids(generation=3)
    h.ready(third)
    assert h.system.signals_to(old) == [signal.SIGUSR1]
    assert h.system.signals_to(second) == [signal.SIGUSR1]
    assert h.arbiter.workers[third].state is WorkerState.READY


def test_an_old_worker_is_killed_after_hard_stop_after(h):
    old = serving(h)
    h.signal(signal.SIGHUP)
    h.ready(h.pids(generation=2)[0])
    h.turn(10 + HARD_STOP_MARGIN - 0.5)
    assert h.system.signals_to(old) == [signal.SIGUSR1]
    h.turn(1)
    assert h.system.signals_to(old) == [signal.SIGUSR1, signal.SIGKILL]


def test_the_worker_count_follows_a_reload(h):
    serving(h)
    h.next_config = config(workers=2)
    h.signal(signal.SIGHUP)
    assert len(h.pids(generation=2)) == 2


# -- stop ------------------------------------------------------------------------------------------

def test_sigterm_stops_the_workers_and_the_master_exits_once_they_are_gone(h):
    pid = serving(h)
    h.signal(signal.SIGTERM)
    assert h.system.signals_to(pid) == [signal.SIGTERM]
    assert not h.arbiter.halted
    h.exit(pid, 0)
    assert h.arbiter.halted and h.arbiter.exit_code == 0
    assert h.pids() == []  # not replaced
    assert "STOPPING=1" in h.notified


def test_a_worker_deaf_to_sigterm_is_killed(h):
    pid = serving(h)
    h.signal(signal.SIGTERM)
    h.turn(KILL_GRACE + 0.1)
    assert h.system.signals_to(pid) == [signal.SIGTERM, signal.SIGKILL]


def test_sigusr1_closes_the_listeners_and_retires_the_workers(h):
    pid = serving(h)
    h.signal(signal.SIGUSR1)
    assert h.sockets.closed_tcp
    assert h.system.signals_to(pid) == [signal.SIGUSR1]
    h.signal(signal.SIGHUP)  # no reload while stopping
    assert h.pids() == [pid]
    h.exit(pid, 0)
    assert h.arbiter.halted


# -- upgrade ---------------------------------------------------------------------------------------

def test_upgrade_hands_over_once_the_new_master_is_ready(h):
    pid = serving(h)
    h.signal(signal.SIGUSR2)
    assert h.spawner.upgrades == [STATE]
    assert h.system.signals_to(pid) == []
    h.arbiter._upgrade_message(control.READY, h.system.now)
    assert h.arbiter.stopping == "handover"
    assert h.system.signals_to(pid) == [signal.SIGUSR1]
    assert 55 in h.system.closed
    h.exit(pid, 0)
    assert h.arbiter.halted


def test_a_failed_upgrade_keeps_this_master_serving(h):
    pid = serving(h)
    h.signal(signal.SIGUSR2)
    h.exit(999, 1)  # the new master died
    assert h.arbiter.upgrade is None and h.arbiter.stopping is None
    assert h.log_has("upgrade failed")
    assert h.system.signals_to(pid) == []


def test_a_new_master_that_reports_an_error_is_a_failed_upgrade(h):
    serving(h)
    h.signal(signal.SIGUSR2)
    h.arbiter._upgrade_message(b"Eworker 7 could not start: halting", h.system.now)
    assert h.log_has("upgrade failed: worker 7 could not start: halting")


def test_a_new_master_that_is_too_slow_is_killed(h):
    serving(h)
    h.signal(signal.SIGUSR2)
    h.turn(UPGRADE_TIMEOUT + 1)
    assert h.system.signals_to(999) == [signal.SIGKILL]
    assert h.arbiter.upgrade is None


def test_a_second_upgrade_while_one_runs_is_ignored(h):
    serving(h)
    h.signal(signal.SIGUSR2)
    h.signal(signal.SIGUSR2)
    assert len(h.spawner.upgrades) == 1


def test_an_upgraded_master_announces_its_pid_when_ready(tmp_path):
    h = Harness()
    h.arbiter.options = replace(h.arbiter.options, upgraded=True, pidfile=str(tmp_path / "g.pid"))
    h.turn()
    serving(h)
    assert h.notified[0].startswith("MAINPID=")
    assert (tmp_path / "g.pid").read_text().strip().isdigit()
