"""The master process: an arbiter (gunicorn's) that holds the listening
sockets and keeps the right workers running.

Theory of operation
-------------------
Signal handlers only queue the signal (and wake the loop through a pipe);
one loop does everything else, each turn in the same order
(`run_once`): read the workers' beat pipes, handle queued signals, reap
exited children, kill the silent or overdue ones, start or retire workers.

Workers belong to a *generation* (a configuration, and the server state it
starts with). `current` is the generation that should be serving; once all
its workers are READY, every older worker is retired (SIGUSR1: graceful
stop). So a reload is only "start a new generation":

* SIGHUP: read and validate the configuration file, bind what it adds,
  read the server state from a serving worker, start the generation. A bad
  file or a failed bind refuses the reload; the old workers never noticed.
  If a new worker cannot boot (WORKER_BOOT_ERROR, or no READY within
  BOOT_TIMEOUT), the reload is rolled back: the previous generation stays.
* SIGUSR2: upgrade. Fork and exec a new master (the installed program, read
  again) with the listening sockets inherited (GPROXY_FDS) and the server
  state in a memfd (GPROXY_UPGRADE). When its workers are READY it writes
  the pid file and says so on a pipe; this master then retires its workers
  and exits when they are gone, leaving the socket files and the pid file
  to the new one. If the new master fails, this one keeps serving.
* SIGTERM, SIGINT: fast stop (workers get SIGTERM). SIGUSR1: graceful stop
  (listeners closed, workers get SIGUSR1). Both end with the master's exit.
* A worker that exits while serving is replaced; one that fails to boot in
  the first generation halts the master (exit 1): no respawn loop.
* Silence on a READY worker's beat pipe for WORKER_TIMEOUT means it hangs:
  SIGABRT, then SIGKILL after KILL_GRACE. A retired worker still alive
  after `hard_stop_after` (plus a margin) gets SIGKILL.

Runtime API commands that change state (commands.RELAYED) reach every
worker: the worker that ran one for a CLI client writes it on its relay
socket; the master writes it to every other live worker's relay socket (never
blocking: what a worker's socket cannot take yet waits in a bounded buffer),
and each runs it locally without relaying it again.

Each worker's life is the table `_WORKER_TABLE` behind
`WorkerRecord.process_event()`. The OS (fork, kill, waitpid, select, the
clock) is reached through `System` and `Spawner`, so the unit tests run the
loop turn by turn with fakes and a manual clock; gproxy.master_os has the
real ones and `run_master()`, the entry point of `gproxy run`.
"""

from __future__ import annotations

import os
import signal
import socket
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Protocol

from gproxy import control
from gproxy.config.model import Config
from gproxy.daemon import check_privileges, remove_pidfile, sd_notify, write_pidfile
from gproxy.errors import ConfigError, GproxyError, IllegalTransition
from gproxy.master_sockets import SocketSet
# Imported here, not in the workers: forked workers find it loaded and start fast.
from gproxy.worker import WORKER_BOOT_ERROR


LOOP_TIMEOUT = 1.0  # seconds the loop sleeps when nothing happens
BOOT_TIMEOUT = 30.0  # seconds a worker has to say READY
WORKER_TIMEOUT = 30.0  # seconds of silence after which a READY worker is deemed hung
KILL_GRACE = 5.0  # seconds between SIGABRT/SIGTERM and SIGKILL
HARD_STOP_MARGIN = 2.0  # seconds past hard_stop_after before a retired worker is killed
STATE_TIMEOUT = 2.0  # seconds to read `show servers state` from a worker
UPGRADE_TIMEOUT = 60.0  # seconds a new master has to get its workers READY
EXIT_HALTED = 1  # the master stopped because workers cannot run
MAX_QUEUED_SIGNALS = 16  # signals waiting for the loop; more are dropped (a burst of one kind)
RELAY_RECV = 65536  # bytes read from a relay socket per wake-up
RELAY_BACKLOG = 256 * 1024  # bytes of relayed commands a worker may leave unread before more are dropped
RELAY_RETRY = 0.05  # seconds the loop waits at most while relayed commands are still to be written

HANDLED_SIGNALS = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT,
                   signal.SIGCHLD)


# -- a worker's life --------------------------------------------------------------------------------

class WorkerState(Enum):
    BOOTING = "booting"
    READY = "ready"
    RETIRING = "retiring"  # asked to stop gracefully
    KILLING = "killing"  # sent SIGTERM/SIGABRT; SIGKILL at its deadline
    EXITED = "exited"


class WorkerEvent(Enum):
    READY = "said READY"
    RETIRE = "retire"
    KILL = "kill"
    EXITED = "exited"


_W, _E = WorkerState, WorkerEvent
# {state: {event: next state}}; a missing pair is a bug and raises IllegalTransition.
_WORKER_TABLE: dict[WorkerState, dict[WorkerEvent, WorkerState]] = {
    _W.BOOTING: {_E.READY: _W.READY, _E.RETIRE: _W.RETIRING, _E.KILL: _W.KILLING, _E.EXITED: _W.EXITED},
    _W.READY: {_E.RETIRE: _W.RETIRING, _E.KILL: _W.KILLING, _E.EXITED: _W.EXITED},
    # A worker retired while booting may still say READY: it stays retiring.
    _W.RETIRING: {_E.READY: _W.RETIRING, _E.RETIRE: _W.RETIRING, _E.KILL: _W.KILLING, _E.EXITED: _W.EXITED},
    _W.KILLING: {_E.READY: _W.KILLING, _E.RETIRE: _W.KILLING, _E.KILL: _W.KILLING, _E.EXITED: _W.EXITED},
    _W.EXITED: {},
}
LIVE = (WorkerState.BOOTING, WorkerState.READY)  # workers that serve or will


@dataclass
class WorkerRecord:
    """What the master knows of one worker (mutable: it lives and dies)."""

    pid: int
    generation: int
    started: float
    index: int = 0  # its slot in the generation: which listening sockets it accepts from
    beat_fd: int | None = None  # read end of its beat pipe
    channel: socket.socket | None = None  # master's end of its control socket
    relay: socket.socket | None = None  # master's end of its relay socket (non-blocking)
    relay_reader: control.RequestReader = field(default_factory=control.RequestReader, repr=False)
    relay_out: bytearray = field(default_factory=bytearray, repr=False)  # relayed commands not written yet
    state: WorkerState = WorkerState.BOOTING
    last_beat: float = 0.0
    deadline: float | None = None  # when the next escalation is due (RETIRING/KILLING)
    killed: bool = False  # SIGKILL sent
    status: int | None = None  # exit code (negative: killed by that signal)
    boot_failed: bool = False

    def process_event(self, event: WorkerEvent) -> WorkerState:
        nxt = _WORKER_TABLE[self.state].get(event)
        if nxt is None:
            raise IllegalTransition(f"worker {self.pid}: {event.value} while {self.state.value}")
        self.state = nxt
        return nxt


@dataclass
class Generation:
    number: int
    config: Config
    state_text: str = ""
    announced: bool = False  # all its workers were READY once
    failed: bool = False
    # Sockets per TCP listener when it started (SocketSet.sizes): what its
    # workers accept from, and what a rollback to it trims the groups back to.
    sockets: dict[str, int] = field(default_factory=dict)


@dataclass
class Upgrade:
    """A re-executed master on its way up."""

    pid: int
    ready_fd: int | None
    deadline: float


# -- the OS seams ---------------------------------------------------------------------------------

class System(Protocol):
    """The clock, signals to processes, reaping and waiting (gproxy.master_os.RealSystem)."""

    def monotonic(self) -> float: ...

    def kill(self, pid: int, sig: int) -> None: ...

    def reap(self) -> list[tuple[int, int]]:
        """(pid, exit code or -signal) of every child that exited."""
        ...

    def wait(self, fds: list[int], timeout: float) -> list[int]:
        """The readable ones among `fds`, after at most `timeout` seconds."""
        ...

    def read(self, fd: int) -> bytes: ...

    def close(self, fd: int) -> None: ...


class Log(Protocol):
    """The master's messages (gproxy.master_os.MasterLog)."""

    def __call__(self, message: str, severity: str = "notice") -> None: ...

    def configure(self, config: Config) -> None:
        """Follow a reloaded configuration's global log targets."""
        ...

    def close(self) -> None: ...


class Spawner(Protocol):
    def spawn(self, arbiter: "Arbiter", generation: Generation, index: int) -> WorkerRecord: ...

    def request(self, worker: WorkerRecord, command: str, timeout: float) -> str | None: ...

    def exec_master(self, arbiter: "Arbiter", state_text: str) -> Upgrade: ...


# -- the arbiter ------------------------------------------------------------------------------------

@dataclass
class MasterOptions:
    config_path: str
    pidfile: str | None = None
    foreground: bool = True
    ready_fd: int | None = None  # who waits for this master to serve: READY, or E + the reason it halted
    upgraded: bool = False  # started by another master's SIGUSR2 (it waits on ready_fd)
    argv: list[str] = field(default_factory=list)  # how to run this master again (for SIGUSR2)


class Arbiter:
    def __init__(self, config: Config, sockets: SocketSet, options: MasterOptions, spawner: Spawner,
                 system: System, load: Callable[[str], Config], log: Log,
                 notify: Callable[[str], bool] = sd_notify, state_text: str = ""):
        self.system = system
        self.sockets = sockets
        self.options = options
        self.spawner = spawner
        self.load = load
        self.log = log
        self.notify = notify
        self.current = Generation(1, config, state_text, sockets=sockets.sizes())
        self.generations: dict[int, Generation] = {1: self.current}
        self.last_generation = 1  # generation numbers are never reused, even after a rollback
        self.workers: dict[int, WorkerRecord] = {}
        self.signals: deque[int] = deque()
        self.upgrade: Upgrade | None = None
        self.stopping: str | None = None  # "fast", "graceful" or "handover"
        self.halted = False
        self.serving = False  # the first generation was READY once
        self.exit_code = 0
        self.reloads = 0
        self.failed_reloads = 0
        self._wake: tuple[int, int] | None = None

    @property
    def config(self) -> Config:
        return self.current.config

    @property
    def hard_stop_after(self) -> float:
        return self.config.global_.hard_stop_after / 1000.0

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        self.log(f"started with {self.options.config_path} "
                 f"({self.config.global_.workers} worker{'s' if self.config.global_.workers > 1 else ''})",
                 "info")
        self._warn_shared_stats(self.config)
        try:
            # The first turn must not wait: workers are started by manage(),
            # at the end of a turn (a 1 s wait here delayed every start).
            self.run_once(0.0)
            while not self.halted:
                self.run_once(LOOP_TIMEOUT)
        finally:
            self._shutdown()
        return self.exit_code

    def run_once(self, timeout: float = 0.0) -> None:
        """One turn: wait for a wake-up, read beats, signals, reap, kill, manage."""
        fds = self._watched_fds()
        if any(w.relay_out for w in self.workers.values()):
            timeout = min(timeout, RELAY_RETRY)
        ready = self.system.wait(fds, timeout) if fds else []
        now = self.system.monotonic()
        for fd in ready:
            self._readable(fd, now)
        self._flush_relays()
        while self.signals:
            self.dispatch(self.signals.popleft(), now)
        self.reap(now)
        self.murder(now)
        self.manage(now)

    def _watched_fds(self) -> list[int]:
        fds = [w.beat_fd for w in self.workers.values() if w.beat_fd is not None]
        fds += [w.relay.fileno() for w in self.workers.values() if w.relay is not None]
        if self._wake is not None:
            fds.append(self._wake[0])
        if self.upgrade is not None and self.upgrade.ready_fd is not None:
            fds.append(self.upgrade.ready_fd)
        return fds

    def _readable(self, fd: int, now: float) -> None:
        if self._wake is not None and fd == self._wake[0]:
            self._read_signals(fd)
            return
        if self.upgrade is not None and fd == self.upgrade.ready_fd:
            self._upgrade_message(self.system.read(fd), now)
            return
        for worker in self.workers.values():
            if worker.beat_fd == fd:
                self.on_beats(worker, self.system.read(fd), now)
                return
            if worker.relay is not None and worker.relay.fileno() == fd:
                self._relay_readable(worker)
                return

    def on_beats(self, worker: WorkerRecord, data: bytes, now: float) -> None:
        """What a worker wrote on its beat pipe (b"" is end-of-file: it is gone)."""
        if not data:
            self._close_channels(worker)
            return
        worker.last_beat = now
        said_ready, _ = control.read_beats(data)
        if said_ready and worker.state is not WorkerState.EXITED:
            worker.process_event(WorkerEvent.READY)

    # -- relayed runtime API commands ---------------------------------------------------------------

    def _relay_readable(self, worker: WorkerRecord) -> None:
        assert worker.relay is not None
        try:
            data = worker.relay.recv(RELAY_RECV)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self.on_relay(worker, data)

    def on_relay(self, origin: WorkerRecord, data: bytes) -> None:
        """What a worker wrote on its relay socket: command lines it ran for
        a CLI client, for every other live worker (b"" is end-of-file)."""
        if not data:
            self._close_relay(origin)  # it exits: reap() says how
            return
        try:
            lines = origin.relay_reader.feed(data)
        except control.ChannelError as exc:
            self.log(f"worker {origin.pid}: bad relay message ({exc}): its commands are no longer relayed",
                     "warning")
            self._close_relay(origin)
            return
        for line in lines:
            self.relay(origin, line)

    def relay(self, origin: WorkerRecord, line: str) -> None:
        """Queue `line` for every live worker but `origin` (of any
        generation: during a reload the old and the new ones both serve)."""
        data = line.encode(control.ENCODING, "replace") + b"\n"
        for worker in self.workers.values():
            if worker is origin or worker.state not in LIVE or worker.relay is None:
                continue
            if len(worker.relay_out) + len(data) > RELAY_BACKLOG:
                self.log(f"worker {worker.pid} does not read its relayed commands: "
                         f"{line[:80]!r} from worker {origin.pid} dropped for it", "warning")
                continue
            worker.relay_out += data
            self._flush_relay(worker)

    def _flush_relays(self) -> None:
        for worker in self.workers.values():
            if worker.relay_out:
                self._flush_relay(worker)

    def _flush_relay(self, worker: WorkerRecord) -> None:
        while worker.relay_out and worker.relay is not None:
            try:
                sent = worker.relay.send(worker.relay_out)
            except BlockingIOError:
                return  # its socket is full: the next turns write the rest
            except OSError:
                self._close_relay(worker)
                return
            del worker.relay_out[:sent]

    def _close_relay(self, worker: WorkerRecord) -> None:
        if worker.relay is not None:
            worker.relay.close()
            worker.relay = None
        worker.relay_out.clear()

    # -- signals ------------------------------------------------------------------------------------

    def _install_signals(self) -> None:
        read_end, write_end = os.pipe()
        for fd in (read_end, write_end):
            os.set_blocking(fd, False)
        self._wake = (read_end, write_end)
        signal.set_wakeup_fd(write_end)
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, self._ignore)

    def _ignore(self, signum: int, frame: object) -> None:
        """The Python-level handler does nothing: the signal is queued from
        the wake-up pipe (`_read_signals`), as asyncio does."""

    def _read_signals(self, fd: int) -> None:
        """Queue the signals that arrived: the C-level handler writes each
        one's number, a byte, on the wake-up pipe (signal.set_wakeup_fd).
        Not queued by the Python-level handler: the master is compiled
        (Cython), and a handler only runs when some bytecode runs, so a
        signal that arrived between two waits stayed unhandled until another
        one interrupted a wait (a SIGTERM just after a relayed command hung)."""
        try:
            while data := os.read(fd, 4096):
                for signum in data:
                    if signum and len(self.signals) < MAX_QUEUED_SIGNALS:
                        self.signals.append(signum)
        except BlockingIOError:
            pass

    def dispatch(self, signum: int, now: float) -> None:
        handler = {
            signal.SIGHUP: self.handle_hup,
            signal.SIGUSR2: self.handle_usr2,
            signal.SIGTERM: self.handle_term,
            signal.SIGINT: self.handle_term,
            signal.SIGUSR1: self.handle_usr1,
        }.get(signal.Signals(signum))
        if handler is not None:
            handler(now)

    def handle_hup(self, now: float) -> None:
        """Reload: validate first; a bad file changes nothing."""
        if self.stopping:
            return
        path = self.options.config_path
        try:
            new = self.load(path)
            check_privileges(new.global_)
            self.sockets.update(new)
        except ConfigError as exc:
            self._refuse(f"reload refused, {path} is not valid; the old configuration keeps serving:",
                         exc.lines())
            return
        except GproxyError as exc:  # a bind, a stats socket, privileges
            self._refuse(f"reload refused ({exc}); the old configuration keeps serving", [])
            return
        self.notify("RELOADING=1")
        state = self.collect_state()
        self.last_generation += 1
        number = self.last_generation
        self.current = self.generations[number] = Generation(number, new, state, sockets=self.sockets.sizes())
        self.log.configure(new)
        self.reloads += 1
        self.log(f"reloading {path}: starting generation {number}")
        self._warn_shared_stats(new)
        self.manage(now)

    def _warn_shared_stats(self, config: Config) -> None:
        """Several workers share each stats socket: the commands that change
        state reach them all (relayed), but each keeps its own counters and
        connections, which the reports show one worker at a time."""
        g = config.global_
        if g.workers > 1 and g.stats_sockets:
            self.log(f"workers = {g.workers}: each stats socket connection reaches one worker; state changes "
                     "(set server, set weight, set maxconn, enable/disable, clear counters) are relayed to all "
                     "workers, but show stat/info/sess/errors report the answering worker's counters and "
                     "sessions, and `shutdown session <id>` reaches that worker's sessions only", "warning")

    def _refuse(self, message: str, details: list[str]) -> None:
        self.failed_reloads += 1
        self.log(message, "alert")
        for line in details:
            self.log(f"  {line}", "alert")

    def handle_usr2(self, now: float) -> None:
        """Upgrade: run the installed program again, on the same sockets."""
        if self.stopping or self.upgrade is not None:
            self.log("upgrade ignored: already " + ("stopping" if self.stopping else "upgrading"), "warning")
            return
        state = self.collect_state()
        try:
            self.upgrade = self.spawner.exec_master(self, state)
        except OSError as exc:
            self.log(f"upgrade failed: cannot start a new master: {exc.strerror or exc}", "alert")
            return
        self.upgrade.deadline = now + UPGRADE_TIMEOUT
        self.log(f"upgrade: new master pid {self.upgrade.pid} starting")

    def handle_term(self, now: float) -> None:
        """Fast stop: workers get SIGTERM. After a handover it only hurries
        the old workers: the sockets and the pid file stay the new master's."""
        if self.stopping == "fast":
            return
        if self.stopping != "handover":
            self._save_state_file()
            self.stopping = "fast"
            self.notify("STOPPING=1")
            self.log("stopping", "info")
        for worker in self.workers.values():
            if worker.state is not WorkerState.EXITED:
                self._kill(worker, signal.SIGTERM, now)
        if self.upgrade is not None:
            self.system.kill(self.upgrade.pid, signal.SIGTERM)

    def handle_usr1(self, now: float) -> None:
        """Graceful stop: listeners closed, workers finish their connections."""
        if self.stopping:
            return
        self._save_state_file()
        self.stopping = "graceful"
        self.notify("STOPPING=1")
        self.log("stopping gracefully", "info")
        self.sockets.close_tcp()
        for worker in self.workers.values():
            self._retire(worker, now)

    # -- state carried across reloads ---------------------------------------------------------------

    def collect_state(self) -> str:
        """`show servers state` from a serving worker (newest first); the
        current generation's starting state if none answers."""
        candidates = sorted((w for w in self.workers.values() if w.state is WorkerState.READY),
                            key=lambda w: (w.generation, w.started), reverse=True)
        for worker in candidates:
            text = self.spawner.request(worker, "show servers state", STATE_TIMEOUT)
            if text is not None and text.startswith("1\n"):
                self._write_state_file(text)
                return text
        if candidates:
            self.log("could not read the server state from the workers: using the last one known", "warning")
        return self.current.state_text

    def _save_state_file(self) -> None:
        if self.config.global_.state_file:
            self.collect_state()

    def _write_state_file(self, text: str) -> None:
        path = self.config.global_.state_file
        if not path:
            return
        temp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(temp, "w", encoding="latin-1") as handle:
                handle.write(text)
            os.rename(temp, path)
        except OSError as exc:
            self.log(f"state_file {path}: {exc.strerror or exc}", "warning")

    # -- children -----------------------------------------------------------------------------------

    def reap(self, now: float) -> None:
        for pid, status in self.system.reap():
            if self.upgrade is not None and pid == self.upgrade.pid:
                self._upgrade_failed(f"the new master exited with status {status}")
                continue
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            before = worker.state
            worker.process_event(WorkerEvent.EXITED)
            worker.status = status
            self._close_channels(worker)
            self._worker_exited(worker, before, now)

    def _worker_exited(self, worker: WorkerRecord, before: WorkerState, now: float) -> None:
        gen = self.generations.get(worker.generation)
        if before in (WorkerState.RETIRING, WorkerState.KILLING) and not worker.boot_failed:
            if self.stopping is None:
                self.log(f"old worker {worker.pid} (generation {worker.generation}) exited ({worker.status})",
                         "info")
            return
        if before is WorkerState.BOOTING or worker.boot_failed or worker.status == WORKER_BOOT_ERROR:
            if gen is not None and gen is self.current and not self.stopping:
                self._boot_failed(worker, now)
            return
        if self.stopping is None:
            self.log(f"worker {worker.pid} exited unexpectedly ({_describe(worker.status)}): "
                     "starting another", "alert")

    def _boot_failed(self, worker: WorkerRecord, now: float) -> None:
        failed = self.current
        failed.failed = True
        fallback = self._fallback_generation(failed.number)
        reason = f"worker {worker.pid} of generation {failed.number} could not start ({_describe(worker.status)})"
        for other in self.workers.values():
            if other.generation == failed.number:
                self._retire(other, now)
        if fallback is None:
            self.log(f"{reason}: halting", "emerg")
            self._tell_waiter(b"E" + f"{reason}: halting".encode("utf-8", "replace"))
            self.exit_code = EXIT_HALTED
            self.handle_term(now)
            return
        self.failed_reloads += 1
        self.current = fallback
        # The failed workers may have listened on sockets the fallback's
        # workers never had: left open, each would keep taking its share of
        # new connections with nobody to accept them. Closing them resets
        # what they queued meanwhile (a failed reload's price).
        self.sockets.prune([fallback.config])
        if self.sockets.trim(fallback.sockets):
            self.log("reload failed: the listening sockets it added for more workers are closed", "warning")
        self.log(f"reload failed, {reason}: generation {fallback.number} keeps serving", "alert")
        self.notify("READY=1")

    def _fallback_generation(self, failed: int) -> Generation | None:
        numbers = sorted({w.generation for w in self.workers.values()
                          if w.state in LIVE and w.generation != failed}, reverse=True)
        return self.generations[numbers[0]] if numbers else None

    def murder(self, now: float) -> None:
        """Kill workers that boot too long, stopped beating, or outstayed their stop."""
        for worker in list(self.workers.values()):
            state = worker.state
            if state is WorkerState.BOOTING and now - worker.started > BOOT_TIMEOUT:
                self.log(f"worker {worker.pid} did not start within {BOOT_TIMEOUT:.0f} s: killing it", "alert")
                worker.boot_failed = True
                self._kill(worker, signal.SIGKILL, now)
            elif state is WorkerState.READY and now - worker.last_beat > WORKER_TIMEOUT:
                self.log(f"worker {worker.pid} silent for {WORKER_TIMEOUT:.0f} s: aborting it", "alert")
                self._kill(worker, signal.SIGABRT, now)
            elif state in (WorkerState.RETIRING, WorkerState.KILLING) and not worker.killed \
                    and worker.deadline is not None and now >= worker.deadline:
                if state is WorkerState.RETIRING:
                    self.log(f"old worker {worker.pid} still busy after hard_stop_after: killing it", "warning")
                self._kill(worker, signal.SIGKILL, now)
        if self.upgrade is not None and now >= self.upgrade.deadline:
            self.system.kill(self.upgrade.pid, signal.SIGKILL)
            self._upgrade_failed(f"the new master was not ready within {UPGRADE_TIMEOUT:.0f} s")

    def manage(self, now: float) -> None:
        """Start what the current generation lacks; retire the older ones once it is ready."""
        if self.stopping:
            if not self.workers and self.upgrade is None:
                self.halted = True
            return
        current = self.current
        if current.failed:
            return  # halting: a first generation that cannot boot is not started again
        # Forget the generations nobody runs any more (their configurations with them).
        running = {w.generation for w in self.workers.values()}
        for number in [n for n in self.generations if n != current.number and n not in running]:
            del self.generations[number]
        wanted = current.config.global_.workers
        # A worker being killed for not booting keeps its place: its exit decides (halt or roll back).
        mine = [w for w in self.workers.values()
                if w.generation == current.number and (w.state in LIVE or w.boot_failed)]
        # A replacement takes the slot of the worker it replaces: its sockets
        # (SO_REUSEPORT, one group per listener) would otherwise have nobody.
        taken = {w.index for w in mine}
        for index in (i for i in range(wanted) if i not in taken):
            worker = self.spawner.spawn(self, current, index)
            worker.index = index
            worker.started = worker.last_beat = now
            self.workers[worker.pid] = worker
            mine.append(worker)
        if current.announced or current.failed or any(w.state is not WorkerState.READY for w in mine):
            return
        current.announced = True
        for worker in self.workers.values():
            if worker.generation != current.number:
                self._retire(worker, now)
        self.sockets.prune([current.config])
        if current.number > 1:
            self.log(f"reload complete: generation {current.number} serving", "info")
            self.notify("READY=1")
        elif not self.serving:
            self._first_ready(wanted)

    def _first_ready(self, wanted: int) -> None:
        """The first generation serves: own the pid file (so that a pid file
        means "serving"), tell systemd, and whoever waits (the shell of a
        daemon, or the master this one upgrades)."""
        self.serving = True
        if self.options.pidfile:
            try:
                write_pidfile(self.options.pidfile, os.getpid())
            except GproxyError as exc:
                self.log(str(exc), "warning")
        if self.options.upgraded:
            self.notify(f"MAINPID={os.getpid()}")
            self.log(f"upgrade: serving with {wanted} worker{'s' if wanted > 1 else ''}; "
                     "the old master retires", "info")
        else:
            self.log(f"ready: {wanted} worker{'s' if wanted > 1 else ''} serving", "info")
        self.notify("READY=1")
        self._tell_waiter(control.READY)

    def _tell_waiter(self, message: bytes) -> None:
        fd = self.options.ready_fd
        if fd is None:
            return
        self.options.ready_fd = None
        try:
            os.write(fd, message[:512])
        except OSError:
            pass
        self.system.close(fd)

    def _retire(self, worker: WorkerRecord, now: float) -> None:
        if worker.state in LIVE:
            worker.process_event(WorkerEvent.RETIRE)
            worker.deadline = now + self.hard_stop_after + HARD_STOP_MARGIN
            self.system.kill(worker.pid, signal.SIGUSR1)

    def _kill(self, worker: WorkerRecord, sig: int, now: float) -> None:
        if worker.state is WorkerState.EXITED:
            return
        worker.process_event(WorkerEvent.KILL)
        if sig == signal.SIGKILL:
            worker.killed = True
        else:
            worker.deadline = now + KILL_GRACE
        self.system.kill(worker.pid, sig)

    def _close_channels(self, worker: WorkerRecord) -> None:
        if worker.beat_fd is not None:
            self.system.close(worker.beat_fd)
            worker.beat_fd = None
        if worker.channel is not None:
            worker.channel.close()
            worker.channel = None
        self._close_relay(worker)

    # -- upgrade ------------------------------------------------------------------------------------

    def _upgrade_message(self, data: bytes, now: float) -> None:
        upgrade = self.upgrade
        assert upgrade is not None
        if not data.startswith(control.READY):
            reason = data[1:].decode("utf-8", "replace") if data.startswith(b"E") else ""
            self._upgrade_failed(reason or "the new master closed its pipe before it was ready")
            return
        self.system.close(upgrade.ready_fd)  # type: ignore[arg-type]
        upgrade.ready_fd = None
        self.log(f"upgrade: new master pid {upgrade.pid} is serving; this master retires")
        self.upgrade = None  # it is on its own now
        self.stopping = "handover"
        for worker in self.workers.values():
            self._retire(worker, now)

    def _upgrade_failed(self, reason: str) -> None:
        upgrade = self.upgrade
        if upgrade is None:
            return
        if upgrade.ready_fd is not None:
            self.system.close(upgrade.ready_fd)
        self.upgrade = None
        self.log(f"upgrade failed: {reason}; this master keeps serving", "alert")

    # -- the end ------------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        handover = self.stopping == "handover"
        if not self.serving:
            self._tell_waiter(b"Estopped before its workers were ready")
        self.sockets.close_all(unlink=not handover)
        if self.options.pidfile and not handover:
            remove_pidfile(self.options.pidfile, os.getpid())
        for worker in self.workers.values():
            self._close_channels(worker)
        if self._wake is not None:
            signal.set_wakeup_fd(-1)
            for fd in self._wake:
                self.system.close(fd)
            self._wake = None
        self.log("exiting" + (" (handed over)" if handover else ""), "info")
        self.log.close()

    def close_in_child(self, keep: WorkerRecord | None = None) -> None:
        """In a forked worker: close what belongs to the master (the wake-up
        pipe, the other workers' channels, the log), so that the master's
        death shows as end-of-file to each worker."""
        if self._wake is not None:
            for fd in self._wake:
                self.system.close(fd)
            self._wake = None
        for worker in self.workers.values():
            if worker is not keep:
                self._close_channels(worker)
        if self.upgrade is not None and self.upgrade.ready_fd is not None:
            self.system.close(self.upgrade.ready_fd)
        if self.options.ready_fd is not None:
            self.system.close(self.options.ready_fd)
        self.log.close()


def _describe(status: int | None) -> str:
    if status is None:
        return "unknown status"
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return "WORKER_BOOT_ERROR" if status == WORKER_BOOT_ERROR else f"exit status {status}"


