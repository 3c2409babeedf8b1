"""The master's side that touches the OS: `RealSystem` (clock, kill, reap,
select), `ForkSpawner` (fork a worker, ask it a question, exec a new
master), `MasterLog`, and `run_master()`, the entry point of `gproxy run`.
gproxy.master has the arbiter's logic, which the unit tests drive with fakes.

Forking: the master's signals are blocked around fork() so that a signal
meant for the master is never handled by the child's copy of the master's
handlers; the child resets them, closes everything of the master's (the
wake-up pipe, the other workers' channels, the listeners its configuration
does not use) and becomes a worker (gproxy.worker). It never returns into
the master's code: `os._exit` with the worker's status.

Exec (upgrade): the listening sockets and two more descriptors are made
inheritable for the new program only: a pipe on which the new master says
READY (or E and the reason it failed), and a memfd holding the server
state (GPROXY_UPGRADE). Everything else the master opened is close-on-exec
(Python's default), so the new master starts clean.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import time
import traceback

from gproxy import control
from gproxy.config.model import Config
from gproxy.daemon import PrivilegeError, check_privileges, daemonize
from gproxy.errors import ConfigError, GproxyError
from gproxy.logsink import _Sender  # the sink's synchronous sender: the master has no gevent hub
from gproxy.master import EXIT_HALTED, HANDLED_SIGNALS, Arbiter, Generation, MasterOptions, Upgrade, WorkerRecord
from gproxy.master_sockets import ENV_FDS, SocketSet
from gproxy.worker import WORKER_BOOT_ERROR, WorkerSpec, run_worker

ENV_UPGRADE = "GPROXY_UPGRADE"  # "<ready pipe fd>,<state memfd>" for a re-executed master
IGNORED_IN_WORKERS = (signal.SIGINT, signal.SIGHUP, signal.SIGUSR2)  # the master's business
ANSWER_RECV = 65536
EXEC_FAILED = 127
MAX_LOG_LINE = 1024  # bytes per syslog datagram, as the sinks send


# -- the OS seams ------------------------------------------------------------------------------------

class RealSystem:
    """Clock, signals to processes, reaping and waiting: the real ones."""

    def monotonic(self) -> float:
        return time.monotonic()

    def kill(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def reap(self) -> list[tuple[int, int]]:
        """(pid, exit code or -signal) for every child that exited."""
        done = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            done.append((pid, os.waitstatus_to_exitcode(status)))
        return done

    def wait(self, fds: list[int], timeout: float) -> list[int]:
        try:
            readable, _, _ = select.select(fds, [], [], max(0.0, timeout))
        except InterruptedError:
            return []
        return readable

    def read(self, fd: int) -> bytes:
        try:
            return os.read(fd, 4096)
        except BlockingIOError:
            return b"."  # spurious wake-up: count it as a sign of life
        except OSError:
            return b""

    def close(self, fd: int) -> None:
        try:
            os.close(fd)
        except OSError:
            pass


class MasterLog:
    """The master's messages: on stderr, and to the global syslog targets."""

    def __init__(self, config: Config):
        self._senders: list[_Sender] = []
        self.lines: list[str] = []  # the last messages, for tests and `show proc`-like reports
        self.configure(config)

    def configure(self, config: Config) -> None:
        self.close()
        for target in config.global_.log:
            if target.target != "stderr":
                self._senders.append(_Sender(target, target.tag, os.getpid(), MAX_LOG_LINE))

    def __call__(self, message: str, severity: str = "notice") -> None:
        self.lines = self.lines[-99:] + [message]
        try:
            print(f"[gproxy] master {os.getpid()}: {message}", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass
        for sender in self._senders:
            sender.send(f"master: {message}", severity, time.time())

    def close(self) -> None:
        for sender in self._senders:
            sender.close()
        self._senders = []


# -- fork and exec -----------------------------------------------------------------------------------

def _reset_signals(ignore: tuple[int, ...] = ()) -> None:
    """In a child: the master's handlers and wake-up fd are not its own."""
    signal.set_wakeup_fd(-1)
    for sig in HANDLED_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    for sig in ignore:
        signal.signal(sig, signal.SIG_IGN)


class ForkSpawner:
    def spawn(self, arbiter: Arbiter, generation: Generation, index: int) -> WorkerRecord:
        config = generation.config
        tcp, unix, shared = arbiter.sockets.for_worker(config, index)
        beat_r, beat_w = os.pipe()
        master_end, worker_end = socket.socketpair()
        relay_master, relay_worker = socket.socketpair()  # relayed runtime API commands, both ways
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            for fd in (beat_r, beat_w):
                os.close(fd)
            for sock in (master_end, worker_end, relay_master, relay_worker):
                sock.close()
            raise
        if pid == 0:  # the worker
            code = WORKER_BOOT_ERROR
            try:
                _reset_signals(IGNORED_IN_WORKERS)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                os.close(beat_r)
                master_end.close()
                relay_master.close()
                arbiter.close_in_child()
                # Other slots' sockets are closed in this worker only: the master
                # keeps them open for their own workers.
                used = {id(sock) for sock in (*(s for group in tcp.values() for s in group), *unix.values())}
                for sock in arbiter.sockets.all_sockets():
                    if id(sock) not in used:
                        sock.close()
                code = run_worker(WorkerSpec(
                    config=config, generation=generation.number, index=index,
                    workers=config.global_.workers, tcp=tcp, unix=unix, shared=shared, beat_fd=beat_w,
                    control=worker_end, relay=relay_worker, master_pid=os.getppid(), state_text=generation.state_text,
                    hard_stop_after=config.global_.hard_stop_after / 1000.0,
                    foreground=arbiter.options.foreground))
            except BaseException:  # noqa: BLE001 - the child must never run the master's code again
                traceback.print_exc()
            finally:
                for stream in (sys.stdout, sys.stderr):
                    try:
                        stream.flush()
                    except (OSError, ValueError):
                        pass
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(beat_w)
        worker_end.close()
        relay_worker.close()
        os.set_blocking(beat_r, False)
        relay_master.setblocking(False)
        return WorkerRecord(pid=pid, generation=generation.number, started=0.0, beat_fd=beat_r,
                            channel=master_end, relay=relay_master)

    def request(self, worker: WorkerRecord, command: str, timeout: float) -> str | None:
        """A runtime-API command on the worker's control socket; None if it
        does not answer in time (the channel is then closed: it would be out of step)."""
        sock = worker.channel
        if sock is None:
            return None
        reader = control.AnswerReader()
        try:
            sock.settimeout(timeout)
            sock.sendall(control.encode_request(command))
            while True:
                data = sock.recv(ANSWER_RECV)
                if not data:
                    raise ConnectionResetError("worker closed its control socket")
                answer = reader.feed(data)
                if answer is not None:
                    return answer
        except (OSError, control.ChannelError):
            sock.close()
            worker.channel = None
            return None

    def exec_master(self, arbiter: Arbiter, state_text: str) -> Upgrade:
        options = arbiter.options
        state_fd = os.memfd_create("gproxy-server-state", 0)
        ready_r, ready_w = os.pipe()
        try:
            os.write(state_fd, state_text.encode("latin-1", "replace"))
            os.lseek(state_fd, 0, os.SEEK_SET)
            env = dict(os.environ)
            env[ENV_FDS] = arbiter.sockets.to_env()
            env[ENV_UPGRADE] = f"{ready_w},{state_fd}"
            package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
            if package_root not in paths:
                env["PYTHONPATH"] = os.pathsep.join([package_root, *paths])
            for fd in (ready_w, state_fd):
                os.set_inheritable(fd, True)
            argv = [sys.executable, "-m", "gproxy", *options.argv]
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
            try:
                pid = os.fork()
                if pid == 0:  # the new master
                    try:
                        _reset_signals()
                        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                        os.execve(sys.executable, argv, env)
                    finally:
                        os._exit(EXEC_FAILED)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        except OSError:
            os.close(ready_r)
            raise
        finally:
            os.close(ready_w)
            os.close(state_fd)
            for sock in arbiter.sockets.all_sockets():
                os.set_inheritable(sock.fileno(), False)
        os.set_blocking(ready_r, False)
        return Upgrade(pid=pid, ready_fd=ready_r, deadline=0.0)


# -- the configuration ------------------------------------------------------------------------------

def _load_file(path: str) -> Config:
    """Read and validate a configuration the way `gproxy check` does: its
    certificates and keys too (ConfigError with every problem)."""
    from gproxy.config.loader import load_file
    config = load_file(path)
    validate(config)
    return config


def validate(config: Config) -> None:
    """What the loader cannot see: files a worker will read at start (TLS).
    Without TLS, gproxy.tls (and OpenSSL, ~6 MiB in the master and every
    worker it forks) is not imported at all."""
    from gproxy.proxy import uses_tls
    if uses_tls(config):
        from gproxy.tls import build_contexts
        build_contexts(config)


# -- the entry point --------------------------------------------------------------------------------

def run_master(config_path: str, config: Config, foreground: bool, pidfile: str | None,
               argv: list[str]) -> int:
    """`gproxy run`: bind, go to the background if asked, run the arbiter.
    Returns the exit status; user errors are one line on stderr and 1."""
    upgrade = os.environ.pop(ENV_UPGRADE, None)
    inherited = os.environ.pop(ENV_FDS, None)
    pidfile = pidfile or config.global_.pidfile
    ready_fd: int | None = None
    state_text = ""
    try:
        validate(config)
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 1
    try:
        check_privileges(config.global_)
        sockets = SocketSet.from_env(inherited) if inherited else SocketSet()
        sockets.update(config)
        if upgrade:
            ready_fd, state_text = _read_upgrade(upgrade)
        elif config.global_.state_file:
            state_text = _read_state_file(config.global_.state_file)
        if config.global_.daemon and not foreground and not upgrade:
            ready_fd = daemonize()  # the shell gets its answer once the workers serve
    except (GproxyError, PrivilegeError) as exc:
        print(f"gproxy: {exc}", file=sys.stderr)
        if ready_fd is not None:
            os.close(ready_fd)
        return 1
    options = MasterOptions(config_path=config_path, pidfile=pidfile, foreground=foreground or not config.global_.daemon,
                            ready_fd=ready_fd, upgraded=bool(upgrade), argv=argv)
    arbiter = Arbiter(config, sockets, options, ForkSpawner(), system=RealSystem(), load=_load_file,
                      log=MasterLog(config), state_text=state_text)
    try:
        return arbiter.run()
    except Exception:  # a bug in the master: say it, and let the workers go with us
        traceback.print_exc()
        return EXIT_HALTED


def _read_upgrade(value: str) -> tuple[int, str]:
    """GPROXY_UPGRADE: the pipe to the old master and the server state memfd."""
    try:
        ready_text, state_text_fd = value.split(",")
        ready_fd, state_fd = int(ready_text), int(state_text_fd)
    except ValueError:
        raise GproxyError(f"{ENV_UPGRADE}: not what a gproxy master passes") from None
    chunks = []
    with os.fdopen(state_fd, "rb") as handle:
        while chunk := handle.read(65536):
            chunks.append(chunk)
    os.set_inheritable(ready_fd, False)
    return ready_fd, b"".join(chunks).decode("latin-1")


def _read_state_file(path: str) -> str:
    """A cold start's server state (global.state_file); missing is normal."""
    try:
        with open(path, encoding="latin-1") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        print(f"gproxy: state_file {path}: {exc.strerror or exc} (starting from the configuration)",
              file=sys.stderr)
        return ""
