"""AlertDispatcher: hands alerts to the sinks off the tick path, one bounded queue and thread per sink."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from argus.domain.alerts import ActiveAlert, AlertEvent

if TYPE_CHECKING:  # the domain names ports only for the type checker (see tests/test_architecture.py)
    from argus.ports.alerting import AlertSink

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 1000


_WAKE = object()  # wakes an idle worker so it sees that the lane is closing


class _Lane:
    """One sink's queue, worker thread and counters."""

    def __init__(self, sink: AlertSink, queue_size: int) -> None:
        self.sink = sink
        self.queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self.counts = {"sent": 0, "resent": 0, "failed": 0, "dropped": 0}
        self.lock = threading.Lock()
        self.closing = False
        self.thread = threading.Thread(target=self._work, name=f"argus-sink-{sink.name}", daemon=True)
        self.thread.start()

    def offer(self, item: tuple[str, object]) -> None:
        """Enqueue without blocking; when full, drop the oldest item to make room and count it."""
        while True:
            try:
                self.queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    self.queue.task_done()
                    self._count("dropped")
                except queue.Empty:
                    pass

    def close(self) -> None:
        self.closing = True
        with contextlib.suppress(queue.Full):  # when full, the worker checks ``closing`` once it runs empty
            self.queue.put_nowait(_WAKE)

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            if item is not _WAKE:
                self._deliver(*item)  # type: ignore[misc]
            self.queue.task_done()
            if self.closing and self.queue.empty():
                return

    def _deliver(self, kind: str, payload: object) -> None:
        try:
            if kind == "send":
                self.sink.send(payload)  # type: ignore[arg-type]
            else:
                self.sink.resend(payload)  # type: ignore[arg-type]
        except Exception as ex:  # a sink's failure must never stop its lane
            self._count("failed")
            debug = log.isEnabledFor(logging.DEBUG)
            log.warning("alert sink %r failed to %s: %s", self.sink.name, kind, ex, exc_info=debug)
        else:
            self._count("sent" if kind == "send" else "resent")

    def _count(self, counter: str) -> None:
        with self.lock:
            self.counts[counter] += 1

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {**self.counts, "queued": self.queue.qsize()}


class AlertDispatcher:
    """Delivers alert events and periodic re-sends to every sink without ever blocking the caller.

    Each sink gets a bounded queue and a daemon thread, so a slow or failing sink delays only
    itself. A full queue drops its oldest item (counted as ``dropped``); a sink that raises is
    logged and counted as ``failed``; nothing is retried here (sinks retry on their own).
    """

    def __init__(self, sinks: Iterable[AlertSink], queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._closed = False
        self._lanes = [_Lane(sink, queue_size) for sink in sinks]

    @property
    def sink_names(self) -> list[str]:
        return [lane.sink.name for lane in self._lanes]

    def dispatch(self, events: Iterable[AlertEvent]) -> None:
        """Queue each event for every sink; returns at once."""
        for event in events:
            self._offer(("send", event))

    def resend(self, active: Sequence[ActiveAlert]) -> None:
        """Queue every active alert (even none: sinks end what is no longer active) for every sink; returns at once.

        The caller sets the cadence: about once a minute keeps Alertmanager alerts firing.
        """
        self._offer(("resend", tuple(active)))

    def stats(self) -> dict[str, dict[str, int]]:
        """Return per-sink counters: sent, resent, failed, dropped, and queued (waiting now)."""
        return {lane.sink.name: lane.stats() for lane in self._lanes}

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queue is empty and idle; return False if ``timeout_s`` ran out first."""
        deadline = time.monotonic() + timeout_s
        while any(lane.queue.unfinished_tasks for lane in self._lanes):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout_s: float = 5.0) -> bool:
        """Stop accepting alerts, deliver what is queued, and stop the threads.

        Returns False if some sink was still busy after ``timeout_s``; its daemon thread is left
        behind and dies with the process.
        """
        self._closed = True
        for lane in self._lanes:
            lane.close()
        deadline = time.monotonic() + timeout_s
        for lane in self._lanes:
            lane.thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [lane.sink.name for lane in self._lanes if lane.thread.is_alive()]
        if stuck:
            log.warning("alert sink(s) still busy at shutdown, queued alerts lost: %s", ", ".join(stuck))
        return not stuck

    def _offer(self, item: tuple[str, object]) -> None:
        if self._closed:
            log.debug("alert dispatcher closed; %s ignored", item[0])
            return
        for lane in self._lanes:
            lane.offer(item)

    def __enter__(self) -> AlertDispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
