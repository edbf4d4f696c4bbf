"""The engine process: the one holder of rolling windows (and, later, the model and ticks)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from argus.entrypoints.container import Container
from argus.entrypoints.logs import configure_logging
from argus.entrypoints.malloc import memory_report, release_free_memory

log = logging.getLogger("argus.engine")

STANDBY_RETRY_S = 5.0
LOCK_CHECK_EVERY_S = 10.0


def run_engine(container: Container | None = None, stop: threading.Event | None = None) -> None:
    """Wait to become the leader, rebuild windows, then follow ingestion until ``stop`` is set."""
    container = container or Container()
    settings = container.settings()
    configure_logging(settings, role="engine")
    stop = stop or _stop_on_signals()
    lock = container.leader_lock()
    announced_standby = False
    try:
        while not stop.is_set():
            if not lock.try_acquire():
                if not announced_standby:
                    log.info("another engine holds the leader lock; standing by")
                    announced_standby = True
                stop.wait(STANDBY_RETRY_S)
                continue
            log.info("engine is the leader for %s", container.db_engine().url.render_as_string(hide_password=True))
            _lead(container, lock, stop)
    finally:
        lock.release()
        container.shutdown_resources()
        log.info("engine stopped")


def _lead(container: Container, lock, stop: threading.Event, clock: Callable[[], float] = time.monotonic) -> None:
    settings = container.settings()
    engine = container.engine_loop()  # the Engine, or (ARGUS_ENGINE_SHARDING=1) the Engine over its partitions
    engine.start()
    last_lock_check = clock()
    while not stop.is_set():
        try:
            _step(engine)
        except Exception:  # noqa: BLE001 - a failed step is logged and retried; the database stays the truth
            log.exception("engine step failed; retrying")
        stop.wait(settings.engine_poll_interval_s)
        # Elapsed time, not a sum of poll intervals: a step that takes a minute (a big tick) must not
        # put off the check by minutes.
        if clock() - last_lock_check >= LOCK_CHECK_EVERY_S:
            last_lock_check = clock()
            if not lock.still_held():
                log.error("lost the leader lock; rejoining as standby")
                return
    _announce_stop(engine)


def _step(engine) -> None:
    """One engine step; after a tick, hand the memory the tick freed back to the OS (see ``release_free_memory``)."""
    ticked_at = _last_tick(engine)
    engine.step()
    if _last_tick(engine) != ticked_at:
        release_free_memory()
        report = memory_report()
        if report is not None:
            log.info("memory after the tick: %s", report)


def _last_tick(engine) -> object:
    """When the engine's last tick ran (a new value after each tick), read from its status."""
    return getattr(getattr(engine, "status", None), "last_prediction", None)


def _announce_stop(engine) -> None:
    """Tell web workers on every host that this engine stopped (else they wait for its heartbeat to go stale)."""
    status = getattr(engine, "status", None)
    if status is None:
        return
    status.process = {**(status.process or {}), "stopped_at": time.time()}
    try:
        engine.publish_status()
    except Exception as ex:  # noqa: BLE001 - stopping goes on; workers fall back to the heartbeat's age
        log.warning("could not publish that the engine stopped: %s", ex)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(signum, _frame) -> None:
        log.info("engine received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop
