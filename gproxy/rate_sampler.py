"""The rate sampler: one greenlet that feeds every RateCounter from the totals.

Rates cost the request path nothing: requests only increment totals
(stot, req_tot, conn_tot, bytes out), and every SAMPLE_INTERVAL this
greenlet hands each total to its `gproxy.rates.RateCounter`. An idle
counter costs one comparison per tick, so a thousand servers add well
under a millisecond per tick.

`sample_all(state, now)` does one pass (no I/O; unit tests call it with a
synthetic clock). `ensure_started(state)` starts the one sampler of a
process (the stats sockets start it with gproxy; the stats page starts it
on its first request if no socket did).
"""

from __future__ import annotations

import sys
import time
from typing import Callable

import gevent

from gproxy.runtime_api.view import ProxyState

SAMPLE_INTERVAL = 0.2  # seconds: a rate is at most this late; HAProxy's window stays one second


def sample_all(state: ProxyState, now: float) -> None:
    """Feed every rate of `state` with its counter's total at `now` (monotonic seconds)."""
    sessions = 0
    for fe in state.frontends.values():
        c = fe.counters
        sessions += c.total
        c.sess_rate.sample(c.total, now)
        c.req_rate.sample(c.req_tot, now)
        c.conn_rate.sample(c.conn_tot, now)
    for be in state.backends.values():
        c = be.counters
        c.sess_rate.sample(c.total, now)
        for srv in be.servers:
            sc = srv.counters
            sc.sess_rate.sample(sc.total, now)
    process = state.process
    process.conn_rate.sample(process.cum_conns, now)
    process.sess_rate.sample(sessions, now)
    process.bytes_out_rate.sample(process.bytes_out, now)


class RateSampler:
    """The greenlet running `sample_all` every `interval` seconds."""

    def __init__(self, state: ProxyState, clock: Callable[[], float] = time.monotonic,
                 interval: float = SAMPLE_INTERVAL):
        self.state = state
        self.clock = clock
        self.interval = interval
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    @property
    def running(self) -> bool:
        return self._greenlet is not None and not self._greenlet.dead

    def _run(self) -> None:
        complained = False
        while True:
            try:
                sample_all(self.state, self.clock())
            except Exception as exc:  # statistics must never take the process down
                if not complained:
                    print(f"gproxy: rate sampler: {exc!r}", file=sys.stderr)
                    complained = True
            gevent.sleep(self.interval)


def ensure_started(state: ProxyState) -> RateSampler:
    """The process's sampler, started now if it is not running yet."""
    process = state.process
    sampler = process.rate_sampler
    if sampler is None:
        sampler = process.rate_sampler = RateSampler(state)
    sampler.start()
    return sampler


def stop(state: ProxyState) -> None:
    """Stop the process's sampler (gproxy is stopping)."""
    sampler = state.process.rate_sampler
    if sampler is not None:
        sampler.stop()
        state.process.rate_sampler = None
