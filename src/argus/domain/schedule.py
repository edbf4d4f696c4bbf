"""When the engine ticks, publishes its heartbeat, resends alerts and runs its chores.

The engine's loop asks this every step; only the clock moves it, so tests drive it with a fake one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import attrs

log = logging.getLogger(__name__)

#: A periodic chore: (interval in seconds, the callable); an interval of 0 asks it on every step.
Chore = tuple[float, Callable[[], object]]


@attrs.frozen
class TickTiming:
    """The engine's pace, in seconds."""

    min_tick_interval_s: float = 2.0
    #: The status is republished at least this often, also inside a long tick (workers read its age).
    heartbeat_s: float = 2.0
    #: Active alerts go to the sinks again this often (Alertmanager ends what is not resent).
    resend_every_s: float = 60.0
    #: Inside a tick, each pause for requests answers them for at most this long.
    mid_tick_budget_s: float = 1.0


@attrs.define(eq=False)
class _Chore:
    interval_s: float
    task: Callable[[], object]
    last_run: float = -float("inf")


class TickScheduler:
    """Decides what is due; the engine tells it what it did (a tick started or ended, a status went out)."""

    def __init__(self, timing: TickTiming = TickTiming(), housekeeping: Sequence[Chore] = (),
                 clock: Callable[[], float] = time.time) -> None:
        self.timing = timing
        self.housekeeping = [_Chore(interval, task) for interval, task in housekeeping]
        self.clock = clock
        self.pending = False  # new data or a new model since the last tick: ticks coalesce into one
        self._last_tick = -float("inf")
        self._last_tick_end = -float("inf")
        self._last_tick_s = 0.0
        self._last_publish = -float("inf")
        self._last_resend = -float("inf")

    def request_tick(self) -> None:
        """Ask for a tick as soon as one is allowed; several requests before it make one tick."""
        self.pending = True

    def tick_due(self) -> bool:
        """Whether a requested tick may start now.

        Ticks start at least ``min_tick_interval_s`` apart, and leave at least as much time as the
        last one took for everything else (requests such as explanations, ingestion, the heartbeat):
        a big fleet whose tick takes 10 s ticks every 20 s instead of starving the rest.
        """
        now = self.clock()
        return (self.pending and now - self._last_tick >= self.timing.min_tick_interval_s
                and now - self._last_tick_end >= self._last_tick_s)

    def tick_started(self) -> float:
        """Note that a tick starts now (it answers every request so far); return the time it starts."""
        self.pending = False
        self._last_tick = self.clock()
        return self._last_tick

    def tick_finished(self) -> float:
        """Note that the tick ended with its results published; return how long it took in seconds."""
        self._last_tick_end = self._last_publish = self.clock()
        self._last_tick_s = self._last_tick_end - self._last_tick
        return self._last_tick_s

    def published(self) -> None:
        """Note that the status went out now (the heartbeat restarts)."""
        self._last_publish = self.clock()

    def heartbeat_due(self) -> bool:
        """Whether the status has gone ``heartbeat_s`` without being published."""
        return self.clock() - self._last_publish >= self.timing.heartbeat_s

    def claim_resend(self) -> bool:
        """Whether active alerts are due to be resent; if so, count them as resent now."""
        now = self.clock()
        if now - self._last_resend < self.timing.resend_every_s:
            return False
        self._last_resend = now
        return True

    def run_housekeeping(self) -> None:
        """Run each chore whose interval has passed; one that fails is logged and the others still run."""
        now = self.clock()
        for chore in self.housekeeping:
            if now - chore.last_run < chore.interval_s:
                continue
            chore.last_run = now
            try:
                chore.task()
            except Exception:  # noqa: BLE001 - housekeeping never stops the engine
                log.exception("housekeeping task %r failed", chore.task)
