"""The engine's pace, on a fake clock: when ticks, heartbeats, resends and chores are due."""

from __future__ import annotations

import logging

from argus.domain.schedule import TickScheduler, TickTiming


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _scheduler(clock: FakeClock, **timing: float) -> TickScheduler:
    return TickScheduler(TickTiming(**timing), clock=clock)


def _tick(scheduler: TickScheduler, clock: FakeClock, took_s: float) -> None:
    scheduler.tick_started()
    clock.now += took_s
    scheduler.tick_finished()


def test_no_tick_is_due_until_one_is_requested():
    scheduler = _scheduler(FakeClock())
    assert not scheduler.tick_due()
    scheduler.request_tick()
    assert scheduler.tick_due()


def test_requests_before_a_tick_coalesce_into_that_one_tick():
    clock = FakeClock()
    scheduler = _scheduler(clock, min_tick_interval_s=2.0)
    for _ in range(5):
        scheduler.request_tick()
    _tick(scheduler, clock, took_s=0.1)
    clock.now += 60.0
    assert not scheduler.tick_due()


def test_ticks_start_at_least_the_minimum_interval_apart():
    clock = FakeClock()
    scheduler = _scheduler(clock, min_tick_interval_s=2.0)
    scheduler.request_tick()
    _tick(scheduler, clock, took_s=0.5)
    scheduler.request_tick()
    clock.now += 1.4  # 1.9 s after the last tick started
    assert not scheduler.tick_due()
    clock.now += 0.1
    assert scheduler.tick_due()


def test_a_ten_second_tick_makes_the_next_one_wait_ten_seconds_after_it_ended():
    clock = FakeClock()
    scheduler = _scheduler(clock, min_tick_interval_s=2.0)
    scheduler.request_tick()
    _tick(scheduler, clock, took_s=10.0)
    scheduler.request_tick()
    clock.now += 9.9
    assert not scheduler.tick_due()
    clock.now += 0.1
    assert scheduler.tick_due()


def test_tick_finished_says_how_long_the_tick_took():
    clock = FakeClock()
    scheduler = _scheduler(clock)
    scheduler.tick_started()
    clock.now += 3.5
    assert scheduler.tick_finished() == 3.5


def test_the_heartbeat_is_due_heartbeat_s_after_the_last_publication():
    clock = FakeClock()
    scheduler = _scheduler(clock, heartbeat_s=2.0)
    assert scheduler.heartbeat_due()  # nothing published yet
    scheduler.published()
    clock.now += 1.9
    assert not scheduler.heartbeat_due()
    clock.now += 0.1
    assert scheduler.heartbeat_due()


def test_a_finished_tick_counts_as_a_publication_for_the_heartbeat():
    clock = FakeClock()
    scheduler = _scheduler(clock, heartbeat_s=2.0)
    _tick(scheduler, clock, took_s=5.0)
    assert not scheduler.heartbeat_due()
    clock.now += 2.0
    assert scheduler.heartbeat_due()


def test_a_resend_is_claimed_once_per_interval():
    clock = FakeClock()
    scheduler = _scheduler(clock, resend_every_s=60.0)
    assert scheduler.claim_resend()
    assert not scheduler.claim_resend()
    clock.now += 59.0
    assert not scheduler.claim_resend()
    clock.now += 1.0
    assert scheduler.claim_resend()


def test_housekeeping_runs_each_chore_at_its_own_interval():
    clock = FakeClock()
    runs: list[str] = []
    scheduler = TickScheduler(housekeeping=[(0.0, lambda: runs.append("every step")),
                                            (10.0, lambda: runs.append("every 10 s"))], clock=clock)
    for _ in range(3):  # 0 s, 4 s, 8 s
        scheduler.run_housekeeping()
        clock.now += 4.0
    scheduler.run_housekeeping()  # 12 s: the 10 s chore is due again
    assert runs.count("every step") == 4
    assert runs.count("every 10 s") == 2


def test_a_failing_chore_is_logged_and_does_not_stop_the_others(caplog):
    clock = FakeClock()
    runs: list[str] = []

    def broken() -> None:
        raise RuntimeError("database away")

    scheduler = TickScheduler(housekeeping=[(0.0, broken), (0.0, lambda: runs.append("after"))], clock=clock)
    with caplog.at_level(logging.ERROR, logger="argus.domain.schedule"):
        scheduler.run_housekeeping()
        scheduler.run_housekeeping()
    assert runs == ["after", "after"]
    assert sum("housekeeping task" in r.getMessage() for r in caplog.records) == 2


def test_a_failed_chore_waits_its_interval_before_running_again():
    clock = FakeClock()
    calls: list[float] = []

    def broken() -> None:
        calls.append(clock.now)
        raise RuntimeError("still down")

    scheduler = TickScheduler(housekeeping=[(600.0, broken)], clock=clock)
    scheduler.run_housekeeping()
    clock.now += 599.0
    scheduler.run_housekeeping()
    clock.now += 1.0
    scheduler.run_housekeeping()
    assert calls == [1000.0, 1600.0]
