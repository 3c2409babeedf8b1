"""The master's real `Spawner`: fork a worker, ask it a question, exec a new master.

Forking: the master's signals are blocked around fork() so that a signal
meant for the master is never handled by the child's copy of the master's
handlers; the child resets them, closes everything of the master's (the
wake-up pipe, the other workers' channels, the listeners its configuration
does not use) and becomes a worker (gproxy.worker). It never returns into
the master's code: `os._exit` with the worker's status.

Exec (upgrade): the listening sockets and two more descriptors are made
inheritable for the new program only: a pipe on which the new master says
READY, and a memfd holding the server state. Everything else the master
opened is close-on-exec (Python's default), so the new master starts clean.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import traceback

from gproxy import control
from gproxy.master import ENV_UPGRADE, HANDLED_SIGNALS, Arbiter, Generation, Upgrade, WorkerRecord
from gproxy.master_sockets import ENV_FDS
from gproxy.worker import WORKER_BOOT_ERROR, WorkerSpec, run_worker

IGNORED_IN_WORKERS = (signal.SIGINT, signal.SIGHUP, signal.SIGUSR2)  # the master's business
ANSWER_RECV = 65536
EXEC_FAILED = 127


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
        tcp, unix = arbiter.sockets.for_config(config)
        beat_r, beat_w = os.pipe()
        master_end, worker_end = socket.socketpair()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            for fd in (beat_r, beat_w):
                os.close(fd)
            master_end.close()
            worker_end.close()
            raise
        if pid == 0:  # the worker
            code = WORKER_BOOT_ERROR
            try:
                _reset_signals(IGNORED_IN_WORKERS)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                os.close(beat_r)
                master_end.close()
                arbiter.close_in_child()
                used = {id(sock) for sock in (*tcp.values(), *unix.values())}
                for sock in arbiter.sockets.all_sockets():
                    if id(sock) not in used:
                        sock.close()
                code = run_worker(WorkerSpec(
                    config=config, generation=generation.number, index=index,
                    workers=config.global_.workers, tcp=tcp, unix=unix, beat_fd=beat_w,
                    control=worker_end, master_pid=os.getppid(), state_text=generation.state_text,
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
        os.set_blocking(beat_r, False)
        return WorkerRecord(pid=pid, generation=generation.number, started=0.0, beat_fd=beat_r,
                            channel=master_end)

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
