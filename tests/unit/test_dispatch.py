"""AlertDispatcher: sinks run off the caller's thread; slow or failing sinks never block it."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from argus.domain.alerts import ActiveAlert, AlertEvent, AlertLevel, EventType
from argus.domain.dispatch import AlertDispatcher

AT = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)


def event(step: int, server: str = "ppdb001") -> AlertEvent:
    return AlertEvent(AT + timedelta(minutes=5 * step), server, EventType.RAISED, AlertLevel.HEALTHY,
                      AlertLevel.WARNING, 70.0, "CPU saturated now", "database", AT)


def active(server: str = "ppdb001") -> ActiveAlert:
    return ActiveAlert(server, AlertLevel.WARNING, 70.0, "database", "CPU saturated now", AT)


class RecordingSink:
    def __init__(self, name: str = "recording") -> None:
        self.name = name
        self.events: list[AlertEvent] = []
        self.resends: list[tuple[ActiveAlert, ...]] = []

    def send(self, event: AlertEvent) -> None:
        self.events.append(event)

    def resend(self, active) -> None:
        self.resends.append(tuple(active))


class StuckSink(RecordingSink):
    """Blocks in ``send`` until released; says when the first call has started."""

    def __init__(self) -> None:
        super().__init__("stuck")
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, event: AlertEvent) -> None:
        self.entered.set()
        self.release.wait(10)
        super().send(event)


class FailingSink(RecordingSink):
    """Raises on the first ``failures`` calls, then records."""

    def __init__(self, failures: int) -> None:
        super().__init__("failing")
        self.failures = failures

    def send(self, event: AlertEvent) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("receiver down")
        super().send(event)


@pytest.fixture
def dispatchers():
    made: list[AlertDispatcher] = []

    def make(*sinks, **options) -> AlertDispatcher:
        made.append(AlertDispatcher(sinks, **options))
        return made[-1]

    yield make
    for dispatcher in made:
        dispatcher.close(timeout_s=1)


def test_every_sink_receives_every_event_in_order(dispatchers):
    first, second = RecordingSink("a"), RecordingSink("b")
    dispatcher = dispatchers(first, second)
    dispatcher.dispatch([event(0), event(1), event(2)])
    assert dispatcher.flush(timeout_s=5)
    assert first.events == second.events == [event(0), event(1), event(2)]
    assert dispatcher.stats()["a"] == {"sent": 3, "resent": 0, "failed": 0, "dropped": 0, "queued": 0}


def test_a_stuck_sink_never_blocks_dispatch_and_its_full_queue_drops_the_oldest(dispatchers):
    stuck, healthy = StuckSink(), RecordingSink()
    dispatcher = dispatchers(stuck, healthy, queue_size=5)
    dispatcher.dispatch([event(0)])
    assert stuck.entered.wait(5)  # event 0 is in flight; the queue is empty
    started = time.perf_counter()
    dispatcher.dispatch([event(step) for step in range(1, 50)])
    assert time.perf_counter() - started < 0.5
    assert dispatcher.stats()["stuck"]["dropped"] == 44 and dispatcher.stats()["stuck"]["queued"] == 5
    deadline = time.monotonic() + 5
    while (not healthy.events or healthy.events[-1] != event(49)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert healthy.events[-1] == event(49)  # the healthy lane went on while the other was stuck
    assert len(healthy.events) + dispatcher.stats()["recording"]["dropped"] == 50
    stuck.release.set()
    assert dispatcher.flush(timeout_s=5)
    assert stuck.events == [event(0)] + [event(step) for step in range(45, 50)]  # the newest survive


def test_a_failing_sink_is_logged_and_counted_and_keeps_its_lane(dispatchers, caplog):
    failing, healthy = FailingSink(failures=2), RecordingSink()
    dispatcher = dispatchers(failing, healthy)
    with caplog.at_level(logging.WARNING, logger="argus.domain.dispatch"):
        dispatcher.dispatch([event(0), event(1), event(2)])
        assert dispatcher.flush(timeout_s=5)
    assert dispatcher.stats()["failing"]["failed"] == 2 and dispatcher.stats()["failing"]["sent"] == 1
    assert failing.events == [event(2)] and len(healthy.events) == 3
    assert [r.levelno for r in caplog.records] == [logging.WARNING] * 2
    assert "'failing'" in caplog.records[0].getMessage() and "receiver down" in caplog.records[0].getMessage()


def test_resend_queues_the_active_alerts_for_every_sink_in_order_with_events(dispatchers):
    first, second = RecordingSink("a"), RecordingSink("b")
    dispatcher = dispatchers(first, second)
    dispatcher.dispatch([event(0)])
    dispatcher.resend([active(), active("ppml0001")])
    dispatcher.resend([])  # nothing active any more: still delivered, so sinks can end what they fired
    assert dispatcher.flush(timeout_s=5)
    assert first.resends == second.resends == [(active(), active("ppml0001")), ()]
    assert dispatcher.stats()["a"]["resent"] == 2 and dispatcher.stats()["a"]["sent"] == 1


def test_close_delivers_what_is_queued_then_ignores_new_alerts(dispatchers):
    sink = RecordingSink()
    dispatcher = dispatchers(sink)
    dispatcher.dispatch([event(step) for step in range(20)])
    assert dispatcher.close(timeout_s=5)
    assert len(sink.events) == 20
    dispatcher.dispatch([event(99)])
    assert len(sink.events) == 20


def test_close_gives_up_on_a_stuck_sink_after_its_timeout(dispatchers):
    stuck = StuckSink()
    dispatcher = dispatchers(stuck)
    dispatcher.dispatch([event(0)])
    assert stuck.entered.wait(5)
    started = time.perf_counter()
    assert dispatcher.close(timeout_s=0.2) is False
    assert time.perf_counter() - started < 1.0
    stuck.release.set()


def test_no_sinks_is_a_valid_dispatcher(dispatchers):
    dispatcher = dispatchers()
    dispatcher.dispatch([event(0)])
    assert dispatcher.stats() == {} and dispatcher.flush(timeout_s=1)
