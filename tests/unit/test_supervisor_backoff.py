"""The supervisor's engine restarts: back-off grows with quick crashes and starts over after a healthy run."""

from __future__ import annotations

import pytest

from argus.entrypoints.settings import Settings
from argus.entrypoints.supervisor import ENGINE_HEALTHY_AFTER_S, ENGINE_RESTART_BACKOFF_S, RestartBackoff, Supervisor


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


class FakeEngineProcess:
    def __init__(self, pid: int) -> None:
        self.pid, self.returncode = pid, None

    def poll(self) -> int | None:
        return self.returncode


class FakeSpawnSupervisor(Supervisor):
    """The real restart logic, with engine processes that die when told to and a clock that moves when told to."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(Settings(), host="127.0.0.1", port=0, workers=1, threads=1, clock=clock)
        self.clock = clock
        self.spawned_at: list[float] = []
        self._engine = self._start_engine({})

    def _spawn_engine(self, env):
        self.spawned_at.append(self.clock.now)
        return FakeEngineProcess(pid=len(self.spawned_at))

    def crash_after(self, ran_s: float) -> float:
        """Let the engine run ``ran_s``, kill it, tend it until it restarts; return the restart delay."""
        self.clock.now += ran_s
        self._engine.returncode = -9
        died_at, engine = self.clock.now, self._engine
        for _ in range(10_000):
            self._tend_engine({})
            if self._engine is not engine:
                return self.spawned_at[-1] - died_at
            self.clock.now += 0.2  # the watch loop's period
        raise AssertionError("the engine was never restarted")


def test_quick_crashes_back_off_up_to_the_longest_step():
    supervisor = FakeSpawnSupervisor(FakeClock())
    delays = [supervisor.crash_after(ran_s=3.0) for _ in range(7)]
    expected = [*ENGINE_RESTART_BACKOFF_S, ENGINE_RESTART_BACKOFF_S[-1], ENGINE_RESTART_BACKOFF_S[-1]]
    assert delays == pytest.approx(expected, abs=0.21)


def test_a_healthy_run_resets_the_back_off():
    supervisor = FakeSpawnSupervisor(FakeClock())
    for _ in range(5):
        supervisor.crash_after(ran_s=3.0)  # the fifth restart waited the longest step
    assert supervisor.crash_after(ran_s=ENGINE_HEALTHY_AFTER_S + 1) == pytest.approx(ENGINE_RESTART_BACKOFF_S[0],
                                                                                    abs=0.21)
    assert supervisor.crash_after(ran_s=3.0) == pytest.approx(ENGINE_RESTART_BACKOFF_S[1], abs=0.21)


def test_a_run_just_short_of_healthy_keeps_backing_off():
    backoff = RestartBackoff(steps_s=(1, 2, 5), healthy_after_s=60)
    backoff.started(0.0)
    assert [backoff.delay_after_exit(10.0), backoff.delay_after_exit(20.0)] == [1, 2]
    backoff.started(100.0)
    assert backoff.delay_after_exit(159.0) == 5
    backoff.started(200.0)
    assert backoff.delay_after_exit(260.0) == 1
