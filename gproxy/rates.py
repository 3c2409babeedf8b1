"""Per-second event rates from counter totals, as HAProxy's `freq_ctr` reads them.

The proxy layer only increments totals (`stot`, `req_tot`, `conn_tot`...);
nothing on the request path knows about rates. A sampler (rate_sampler.py)
feeds each total to a `RateCounter` a few times per second, and the
reports print what it computed.

HAProxy's estimator, reproduced here: events are counted in one-second
periods; the rate at a moment `elapsed` into the current period is the
current period's count plus the previous period's count weighted by the
part of the previous period still inside the last second,
`curr + prev * (1 - elapsed)`. A steady 300 events/s reads 300 at any
moment; a burst fades out over the next two seconds. The events a sample
sees are taken as spread evenly since the previous sample (shared between
two periods when a boundary lies in between), and a rate is at most one
sampling interval late.

Pure: no clock (`now` comes in, in seconds, monotonic), no I/O.
"""

from __future__ import annotations

PERIOD = 1.0  # seconds: the window of every rate, as HAProxy's per-second counters


class RateCounter:
    """Events per second of one total, and the highest rate seen.

    `sample(total, now)` is called periodically with the counter's current
    total; `current` is the rate as of the last sample and `peak` the highest
    rate seen since creation or `clear_peak()` (HAProxy's `*_max`)."""

    __slots__ = ("last_total", "last_time", "period_start", "curr", "prev", "current", "peak")

    def __init__(self) -> None:
        self.last_total: int | None = None  # None: no baseline yet
        self.last_time = 0.0
        self.period_start = 0.0
        self.curr = 0.0  # events counted in the period that started at period_start
        self.prev = 0.0  # events counted in the period before it
        self.current = 0
        self.peak = 0

    def clear_peak(self) -> None:
        """`clear counters`: the highest rate restarts from the current one."""
        self.peak = self.current

    def sample(self, total: int, now: float) -> int:
        """Take the counter's `total` at `now`; returns the current rate."""
        last = self.last_total
        if last is None or total < last or now <= self.last_time:
            if last is None or total < last:
                # First sight (a counter that existed before sampling started
                # must not read as a burst) or a cleared counter: a new baseline.
                self.last_total = total
                self.last_time = self.period_start = now
                self.curr = self.prev = 0.0
                self.current = 0
            return self.current
        delta = total - last
        since = self.last_time
        self.last_time = now
        if not delta and not self.curr and not self.prev:
            return 0  # idle, and nothing left in the window: the common case, kept cheap
        self.last_total = total
        end = self.period_start + PERIOD
        if now < end:
            self.curr += delta
        else:
            # The events since the last sample are spread evenly over
            # [since, now]: each period gets its share, else a rate read just
            # after a period boundary would count the tail of the old period
            # twice (up to one sampling interval of extra events).
            periods = int((now - self.period_start) // PERIOD)
            start = self.period_start + periods * PERIOD  # the period `now` is in
            # The period before `start` is the old one when one boundary was
            # crossed; after a longer wait it got only its share of `delta`.
            self.prev = (self.curr if periods == 1 else 0.0) + _share(delta, since, now, start - PERIOD, start)
            self.curr = _share(delta, since, now, start, now)
            self.period_start = start
        elapsed = now - self.period_start
        rate = round(self.curr + self.prev * (PERIOD - elapsed) / PERIOD)
        self.current = rate
        if rate > self.peak:
            self.peak = rate
        return rate


def _share(delta: int, since: float, now: float, lo: float, hi: float) -> float:
    """The part of `delta` events, spread evenly over [since, now], that falls in [lo, hi)."""
    return delta * max(0.0, min(hi, now) - max(lo, since)) / (now - since)
