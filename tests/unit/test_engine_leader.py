"""The engine process's leader loop: the lock is re-checked by elapsed time, however long a step takes."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from argus.entrypoints.engine import LOCK_CHECK_EVERY_S, _lead
from argus.entrypoints.settings import Settings


class SteppingClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TimedEngine:
    """Each step takes ``step_s`` of the fake clock; stops the loop after ``max_steps`` as a safety net."""

    def __init__(self, clock: SteppingClock, step_s: float, stop: threading.Event, max_steps: int = 500) -> None:
        self.clock, self.step_s, self.stop, self.max_steps = clock, step_s, stop, max_steps
        self.steps = 0
        self.status = SimpleNamespace(process={"pid": 1})
        self.published: list[dict | None] = []

    def start(self) -> None:
        pass

    def publish_status(self) -> None:
        self.published.append(self.status.process)

    def step(self) -> None:
        self.steps += 1
        self.clock.now += self.step_s
        if self.steps >= self.max_steps:
            self.stop.set()


class LockHeldFor:
    def __init__(self, checks: int) -> None:
        self.left, self.checks = checks, 0

    def still_held(self) -> bool:
        self.checks += 1
        self.left -= 1
        return self.left >= 0


def _run(step_s: float, lock: LockHeldFor) -> TimedEngine:
    clock, stop = SteppingClock(), threading.Event()
    engine = TimedEngine(clock, step_s, stop)
    container = SimpleNamespace(settings=lambda: Settings(engine_poll_interval_s=0.0001), engine=lambda: engine,
                                engine_loop=lambda: engine)
    _lead(container, lock, stop, clock=clock)
    return engine


def test_a_slow_step_does_not_delay_the_leader_lock_check():
    engine = _run(step_s=3 * LOCK_CHECK_EVERY_S, lock=LockHeldFor(checks=0))  # a 30 s tick, the lock already lost
    assert engine.steps == 1  # summing 0.25 s poll intervals instead would take 40 steps (20 minutes) to notice


def test_quick_steps_check_the_lock_once_per_interval():
    lock = LockHeldFor(checks=3)
    engine = _run(step_s=1.0, lock=lock)
    assert lock.checks == 4
    assert engine.steps == 4 * LOCK_CHECK_EVERY_S


def test_a_stopped_engine_says_so_so_that_workers_elsewhere_need_not_wait_for_a_stale_heartbeat():
    clock, stop = SteppingClock(), threading.Event()
    engine = TimedEngine(clock, 1.0, stop, max_steps=3)  # stop is set after the third step
    container = SimpleNamespace(settings=lambda: Settings(engine_poll_interval_s=0.0001), engine=lambda: engine,
                                engine_loop=lambda: engine)
    _lead(container, LockHeldFor(checks=100), stop, clock=clock)
    assert engine.steps == 3
    assert engine.published[-1]["pid"] == 1 and engine.published[-1]["stopped_at"] > 0
