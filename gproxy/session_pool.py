"""Greenlets that serve connections, reused from one connection to the next.

A new gevent Greenlet per connection (or per resumed kept-alive wait) costs
more than its object: CPython 3.11 gives each new greenlet an empty frame
stack, so its first call maps a 16 KiB chunk (mmap, a page fault) that is
unmapped when it dies, and the Greenlet's start, links and result report
run in the hub around each job. `SessionPool` keeps the greenlets that
finished a job waiting for the next one (up to IDLE_RUNNERS of them), so a
connection is served on a greenlet whose stack is already there.

What the process layer relied on from gevent's Group stays: `busy` counts
the jobs running, an exception escaping a job is reported by the hub as a
dying Greenlet's is (its traceback on stderr) and the runner goes on, and
`kill()` ends the jobs still running (a hard stop) and the idle runners.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from gevent import GreenletExit
from gevent.event import Event
from gevent.hub import get_hub, kill as kill_greenlet
from greenlet import greenlet

# Runners kept waiting when no job needs them: enough for the connections
# served at once under load (the bench's 50; kept-alive ones that wait
# parked hold none), few enough that a burst's runners do not stay as memory.
IDLE_RUNNERS = 128


class _Job:
    """What an idle runner is switched to: nothing else wakes it."""

    __slots__ = ("func", "args")

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...]):
        self.func = func
        self.args = args


class SessionPool:
    """Runs `spawn(func, *args)` jobs, each in a greenlet of its own while it
    runs, reusing the greenlets of finished jobs."""

    def __init__(self, idle_runners: int = IDLE_RUNNERS):
        self._idle_max = idle_runners
        self._idle: list[greenlet] = []  # runners waiting for a job (in hub.switch())
        self._busy: set[greenlet] = set()  # runners with a job
        self._all_done = Event()  # set while no job runs (kill() waits for it)
        self._all_done.set()

    @property
    def busy(self) -> int:
        """How many jobs are running."""
        return len(self._busy)

    def spawn(self, func: Callable[..., Any], *args: Any) -> None:
        """Run `func(*args)` in a runner, from the hub's next turn (as
        gevent's spawn starts a Greenlet)."""
        hub = get_hub()  # asked each time: the pool may be made before a fork or in another thread
        idle = self._idle
        runner = idle.pop() if idle else greenlet(self._run, parent=hub)
        busy = self._busy
        if not busy:
            self._all_done.clear()
        busy.add(runner)
        hub.loop.run_callback(runner.switch, _Job(func, args))

    def _run(self, job: _Job) -> None:
        """A runner's life: its job, then the next ones while it is kept."""
        me = greenlet.getcurrent()
        hub = me.parent
        idle = self._idle
        busy = self._busy
        while True:
            try:
                job.func(*job.args)
            except GreenletExit:
                return  # killed (stop): the runner ends with its job
            except BaseException:  # noqa: BLE001 - reported as a dying Greenlet's, the runner goes on
                hub.handle_error(me, *sys.exc_info())
            finally:
                job = None  # type: ignore[assignment]  # its arguments (sockets, sessions) go now
                busy.discard(me)
                if not busy:
                    self._all_done.set()
            if len(idle) >= self._idle_max:
                return
            idle.append(me)
            job = self._wait(me, hub.switch)

    def _wait(self, me: greenlet, switch: Callable[[], Any]) -> _Job:
        """Wait in the hub for the next job. A stray wake-up (a timer a past
        job left running, throwing into the greenlet it was started in) is
        ignored; GreenletExit (kill) ends the runner."""
        while True:
            try:
                job = switch()
            except GreenletExit:
                self._discard_idle(me)
                raise
            except BaseException:  # noqa: BLE001 - not ours to handle: keep waiting
                continue
            if type(job) is _Job:
                return job

    def _discard_idle(self, me: greenlet) -> None:
        try:
            self._idle.remove(me)
        except ValueError:
            pass

    def kill(self, timeout: float | None = None) -> bool:
        """End every job (GreenletExit thrown into it, as Group.kill) and every
        idle runner; wait at most `timeout` seconds for the jobs to end.
        True if none is left running."""
        idle, self._idle = self._idle, []
        for runner in [*self._busy, *idle]:
            kill_greenlet(runner)
        return self._all_done.wait(timeout)
