"""gproxy.rates: HAProxy's per-second sliding window, fed with totals and a
synthetic clock."""

from __future__ import annotations

import pytest

from gproxy.rates import PERIOD, RateCounter

TICK = 0.2  # the sampler's interval


def feed(counter: RateCounter, per_second: int, start: float, seconds: float, total: int = 0) -> tuple[float, int]:
    """Events at a steady `per_second`, sampled every TICK; returns (now, total)."""
    now = start
    steps = round(seconds / TICK)
    per_tick = per_second * TICK
    carried = 0.0
    for _ in range(steps):
        now += TICK
        carried += per_tick
        whole = int(carried + 1e-9)
        carried -= whole
        total += whole
        counter.sample(total, now)
    return now, total


def test_first_sample_is_a_baseline_not_a_burst():
    counter = RateCounter()
    assert counter.sample(1_000_000, 100.0) == 0  # traffic before sampling started
    assert counter.current == 0 and counter.peak == 0
    assert counter.sample(1_000_010, 100.2) == 10


def test_a_steady_rate_reads_as_itself_at_any_moment():
    counter = RateCounter()
    counter.sample(0, 10.0)
    now, total = feed(counter, 300, 10.0, 3.0)
    readings = []
    for _ in range(10):  # one more second, reading at every tick
        now, total = feed(counter, 300, now, TICK, total)
        readings.append(counter.current)
    assert all(abs(r - 300) <= 300 * 0.25 for r in readings), readings
    assert counter.peak >= max(readings)


def test_the_rate_falls_to_zero_within_two_periods_after_the_traffic():
    counter = RateCounter()
    counter.sample(0, 0.0)
    now, total = feed(counter, 100, 0.0, 2.0)
    assert counter.current > 50
    peak = counter.peak
    now, total = feed(counter, 0, now, PERIOD)
    assert 0 <= counter.current < 100  # fading: the previous period still weighs
    now, total = feed(counter, 0, now, PERIOD + TICK)
    assert counter.current == 0
    assert counter.peak == peak  # the max stays


def test_events_in_the_current_period_count_whole():
    counter = RateCounter()
    counter.sample(0, 5.0)
    assert counter.sample(40, 5.1) == 40
    assert counter.sample(45, 5.5) == 45


def test_previous_period_weighs_by_what_remains_of_the_last_second():
    counter = RateCounter()
    counter.sample(0, 0.0)
    counter.sample(100, 0.9)  # 100 events in the period [0, 1)
    # At 1.25: curr = 0 new events, prev = 100 weighted by 0.75.
    assert counter.sample(100, 1.25) == 75
    assert counter.sample(110, 1.5) == 10 + 50
    assert counter.peak == 100


def test_a_long_silence_empties_both_periods():
    counter = RateCounter()
    counter.sample(0, 0.0)
    counter.sample(500, 0.5)
    assert counter.sample(500, 10.1) == 0  # 10 s later, nothing new
    assert counter.sample(501, 10.3) == 1  # only the new event counts


def test_events_between_two_samples_are_shared_by_the_periods_they_span():
    counter = RateCounter()
    counter.sample(0, 0.0)
    counter.sample(80, 0.8)
    # 40 events between 0.8 and 1.2: 20 in the first period, 20 in the second.
    assert counter.curr == 80
    counter.sample(120, 1.2)
    assert (counter.prev, counter.curr) == (pytest.approx(100), pytest.approx(20))
    assert counter.current == round(20 + 100 * 0.8)


def test_a_cleared_total_starts_a_new_baseline():
    counter = RateCounter()
    counter.sample(0, 0.0)
    counter.sample(50, 0.5)
    assert counter.sample(3, 0.7) == 0  # `clear counters all` reset the total
    assert counter.sample(13, 0.9) == 10


def test_clear_peak_restarts_the_max_from_the_current_rate():
    counter = RateCounter()
    counter.sample(0, 0.0)
    counter.sample(200, 0.5)
    counter.sample(200, 2.7)
    assert counter.peak == 200 and counter.current == 0
    counter.clear_peak()
    assert counter.peak == 0
    counter.sample(30, 2.9)  # a total below the last one: new baseline
    counter.sample(40, 3.1)
    assert counter.peak == counter.current == 10


def test_the_peak_is_never_below_the_current_rate():
    counter = RateCounter()
    counter.sample(0, 0.0)
    total = 0
    for step in range(1, 60):
        total += (step * 7) % 23
        counter.sample(total, step * TICK)
        assert counter.peak >= counter.current >= 0


def test_traffic_after_a_long_idle_time_never_reads_above_its_events():
    counter = RateCounter()
    counter.sample(0, 0.0)
    now = 0.0
    for _ in range(53):  # 10.6 s of idle ticks: the window's period is long gone
        now += TICK
        counter.sample(0, now)
    total = 0
    for _ in range(10):
        now += TICK
        total += 1500
        assert counter.sample(total, now) <= total
    assert 6000 <= counter.current <= 8500  # 7500/s
