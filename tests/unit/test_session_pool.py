"""SessionPool: jobs run in reused greenlets, errors are reported, kill ends them."""

from __future__ import annotations

import gevent
import pytest
from gevent.event import Event
from greenlet import getcurrent

from gproxy.session_pool import SessionPool


def test_a_finished_job_leaves_its_greenlet_to_the_next():
    pool = SessionPool()
    seen = []
    pool.spawn(lambda: seen.append(getcurrent()))
    gevent.sleep(0)
    pool.spawn(lambda: seen.append(getcurrent()))
    gevent.sleep(0)
    assert len(seen) == 2 and seen[0] is seen[1]
    assert pool.busy == 0


def test_jobs_that_overlap_run_in_greenlets_of_their_own():
    pool = SessionPool()
    release = Event()
    seen = []

    def job(n):
        seen.append((n, getcurrent()))
        release.wait()

    for n in range(3):
        pool.spawn(job, n)
    gevent.sleep(0)
    assert pool.busy == 3
    assert len({g for _, g in seen}) == 3
    release.set()
    gevent.sleep(0)
    assert pool.busy == 0


def test_only_idle_runners_up_to_the_limit_are_kept():
    pool = SessionPool(idle_runners=2)
    release = Event()
    seen = []

    def job():
        seen.append(getcurrent())
        release.wait()

    for _ in range(4):
        pool.spawn(job)
    gevent.sleep(0)
    release.set()
    gevent.sleep(0)
    kept = [g for g in seen if not g.dead]
    assert len(kept) == 2
    seen.clear()
    release.clear()
    pool.spawn(job)
    pool.spawn(job)
    gevent.sleep(0)
    assert set(seen) == set(kept)
    release.set()
    gevent.sleep(0)


def test_an_exception_is_reported_and_the_runner_goes_on(monkeypatch):
    pool = SessionPool()
    reported = []
    hub = gevent.get_hub()
    monkeypatch.setattr(hub, "handle_error", lambda context, kind, value, tb: reported.append((context, kind)))
    runners = []

    def fails():
        runners.append(getcurrent())
        raise ValueError("boom")

    pool.spawn(fails)
    gevent.sleep(0)
    assert reported == [(runners[0], ValueError)]
    pool.spawn(lambda: runners.append(getcurrent()))
    gevent.sleep(0)
    assert runners[1] is runners[0] and not runners[0].dead
    assert pool.busy == 0


def test_kill_ends_running_jobs_and_idle_runners():
    pool = SessionPool()
    ended = []
    runners = []

    def blocked():
        runners.append(getcurrent())
        try:
            gevent.sleep(60)
        finally:
            ended.append(True)

    pool.spawn(lambda: runners.append(getcurrent()))
    gevent.sleep(0)
    idle = runners[0]
    for _ in range(3):
        pool.spawn(blocked)
    gevent.sleep(0)
    assert pool.busy == 3
    assert pool.kill(timeout=1)
    assert ended == [True] * 3
    assert pool.busy == 0
    assert all(g.dead for g in runners[1:])
    gevent.sleep(0)
    assert idle.dead


def test_a_stray_wake_up_of_an_idle_runner_is_ignored():
    pool = SessionPool()
    runners = []
    pool.spawn(lambda: runners.append(getcurrent()))
    gevent.sleep(0)
    idle = runners[0]
    gevent.get_hub().loop.run_callback(idle.switch, "not a job")
    gevent.get_hub().loop.run_callback(idle.throw, TimeoutError("left by a past job"))
    gevent.sleep(0)
    assert not idle.dead
    pool.spawn(lambda: runners.append(getcurrent()))
    gevent.sleep(0)
    assert runners[1] is idle


def test_kill_waits_at_most_the_timeout_for_a_job_that_refuses_to_end():
    pool = SessionPool()

    def stubborn():
        try:
            gevent.sleep(60)
        except gevent.GreenletExit:
            gevent.sleep(60)  # refuses the first kill

    pool.spawn(stubborn)
    gevent.sleep(0)
    assert pool.kill(timeout=0.05) is False
    assert pool.busy == 1
    assert pool.kill(timeout=5) is True  # the second one ends it


@pytest.mark.parametrize("count", [1, 5])
def test_busy_counts_jobs_until_they_return(count):
    pool = SessionPool()
    release = Event()
    for _ in range(count):
        pool.spawn(release.wait)
    assert pool.busy == count  # counted from spawn, as a Group counts a spawned Greenlet
    gevent.sleep(0)
    release.set()
    gevent.sleep(0)
    assert pool.busy == 0
