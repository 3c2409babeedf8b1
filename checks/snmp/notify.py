"""Runs the configured `notify_command` once per event, off the daemon's loop.

Like keepalived's `notify` scripts and Pacemaker's alert agents: the program
(an argv list, no shell) gets the event in `GSUITE_*` environment variables
(mapping.Trap.environment) on top of the daemon's environment, stdin from
/dev/null, and `notify_timeout` to finish before it is killed. Commands run
one at a time in event order, in a thread of their own fed by a bounded
queue, so a slow script delays only the next scripts, never the daemon nor
its traps. Failures (cannot start, non-zero exit, timeout) are reported with
the first line of the program's stderr.

stdlib `subprocess` is used from a plain thread: the daemons do not install
gevent's SIGCHLD watcher (heartbeat's LRM avoids it on purpose), so the exit
status read here is the real one.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from typing import Callable

from checks.snmp.mapping import Trap

STDERR_KEEP = 4096  # bytes of a failing command's stderr kept for the report
CLOSE_TIMEOUT_S = 2.0

_STOP = object()


class CommandRunner:
    def __init__(self, argv: tuple[str, ...], timeout_ms: int, queue_size: int, report: Callable[[str], None],
                 name: str = "notify-command"):
        self.argv = argv
        self.timeout_s = timeout_ms / 1000.0
        self.ran = 0
        self.failed = 0
        self.dropped = 0
        self._report = report
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def full(self) -> bool:
        """Whether a submit now would be dropped (approximate: the thread may take one meanwhile)."""
        return self._queue.full()

    def submit(self, trap: Trap) -> bool:
        """Queue one run; False (and counted) if the queue is full. Never blocks."""
        try:
            self._queue.put_nowait(trap)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return  # the thread is a daemon thread: it ends with the process
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, Trap)
            try:
                self.run_one(item)
            except Exception as exc:  # one bad run must not end the runner
                self.failed += 1
                self._report(f"notify command {self.argv[0]} failed: {exc!r}")

    def run_one(self, trap: Trap) -> int | None:
        """Run the command for one event; its exit status, None if it could not run or timed out."""
        env = dict(os.environ)
        env.update(trap.environment)
        try:
            proc = subprocess.Popen(list(self.argv), env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, close_fds=True,
                                    start_new_session=True)
        except OSError as exc:
            self.failed += 1
            self._report(f"notify command {self.argv[0]} cannot run: {exc.strerror or exc}")
            return None
        try:
            _, err = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            self.failed += 1
            self._report(f"notify command {self.argv[0]} killed after {self.timeout_s:g} s ({trap.event})")
            return None
        self.ran += 1
        if proc.returncode != 0:
            self.failed += 1
            first = err[:STDERR_KEEP].decode("utf-8", "replace").strip().splitlines()
            detail = f": {first[0]}" if first else ""
            self._report(f"notify command {self.argv[0]} exited with {proc.returncode} ({trap.event}){detail}")
        return proc.returncode


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the command and anything it started (it runs in its own session)."""
    try:
        os.killpg(proc.pid, 9)
    except OSError:
        proc.kill()
