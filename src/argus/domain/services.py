"""Use cases of the engine process, written against ports."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs

from argus.domain.channel import RequestRouter
from argus.domain.ingestion import WARMUP_MIN_RECORDS
from argus.domain.metrics import FleetWindows
from argus.domain.schedule import TickScheduler
from argus.domain.ticks import Predictor, TickResult, takes_between_chunks

if TYPE_CHECKING:  # the domain names ports only for the type checker (see tests/test_architecture.py)
    from argus.ports.alerting import AlertDispatch
    from argus.ports.storage import EngineFeed, PublishedResults, RecordRetention, TickLog

log = logging.getLogger(__name__)

#: On start-up the engine re-reads this many batches before its cursor: a batch that was still
#: committing while the windows were rebuilt is applied late, never lost (re-applying is idempotent).
REBUILD_OVERLAP_BATCHES = 50

#: Requests the engine answers between the forecast chunks of a tick (read-only, of the last tick).
MID_TICK_KINDS = frozenset({"explain"})


class WindowKeeper:
    """Keeps every server's rolling window in step with the database.

    The database is the source of truth: windows are rebuilt from it at start-up and then follow
    new batches by id. With several concurrent writers (PostgreSQL) ids can become visible out of
    order, or never (a rolled-back transaction): a missing id is waited for ``gap_timeout_s``,
    then skipped.

    Records dated more than ``max_future_s`` after the engine's clock are stored but kept out of
    the windows (the API refuses them; older databases may hold some): see ``FleetWindows.add``.
    """

    def __init__(
        self, feed: EngineFeed, capacity: int, gap_timeout_s: float = 30.0, clock: Callable[[], float] = time.time,
        max_future_s: float = 300.0,
    ) -> None:
        self.feed = feed
        self.windows = FleetWindows(capacity)
        self.gap_timeout_s = gap_timeout_s
        self.clock = clock
        self.max_future_s = max_future_s
        self.watermark = 0  # every batch id <= watermark has been applied (or given up on)
        self._applied: set[int] = set()  # applied ids above the watermark
        self._gap_seen_at: dict[int, float] = {}
        self.batches_applied = 0
        self._future_reported = 0

    def rebuild(self) -> int:
        """Load each server's newest records from storage; return how many records were loaded."""
        last = self.feed.last_batch_id()
        horizon = self._horizon()
        for history in self.feed.server_histories(self.windows.capacity):
            self.windows.load(history, not_after_epoch_s=horizon)
        self._report_future()
        self.watermark = max(0, last - REBUILD_OVERLAP_BATCHES)
        self._applied = set()
        return self.windows.total_records()

    def poll(self) -> int:
        """Apply batches committed since the last poll; return how many records were placed."""
        visible = [batch_id for batch_id, _ in self.feed.batches_after(self.watermark)]
        new = [batch_id for batch_id in visible if batch_id not in self._applied]
        placed = self.windows.add(self.feed.records_in_batches(new), self._horizon()) if new else 0
        self._report_future()
        self._applied.update(new)
        self.batches_applied += len(new)
        self._advance(set(visible))
        return placed

    def _horizon(self) -> int:
        return int(self.clock() + self.max_future_s)

    def _report_future(self) -> None:
        if self.windows.future_skipped > self._future_reported:
            log.warning("%d record(s) dated more than %.0fs after the engine's clock kept out of the windows",
                        self.windows.future_skipped - self._future_reported, self.max_future_s)
            self._future_reported = self.windows.future_skipped

    def _advance(self, visible: set[int]) -> None:
        now = self.clock()
        while self._applied:
            following = self.watermark + 1
            if following in self._applied:
                self._applied.discard(following)
                self.watermark = following
                self._gap_seen_at.pop(following, None)
                continue
            if following in visible:
                break
            first_seen = self._gap_seen_at.setdefault(following, now)
            if now - first_seen < self.gap_timeout_s:
                break
            log.warning("batch %d never became visible after %.0fs; skipping it", following, self.gap_timeout_s)
            self._gap_seen_at.pop(following, None)
            self.watermark = following


@attrs.define
class EngineStatus:
    """What /status shows, as the engine publishes it."""

    started_at: float
    rolling_window_size: int
    model_loaded: bool = False
    model_path: str | None = None
    last_prediction: datetime | None = None
    #: Who publishes (pid, host, ...), so a web worker on the same host can ask whether it still runs;
    #: ``stopped_at`` is added when the engine stops cleanly. Workers read it, /status does not show it.
    process: dict[str, object] | None = None

    def report(self, windows: FleetWindows, min_history_steps: int) -> StatusReport:
        """This status with the windows' counts now, as plain values (an adapter renders the body)."""
        records = windows.total_records()
        return StatusReport(
            process=self.process, model_loaded=self.model_loaded, model_path=self.model_path,
            rolling_window_size=self.rolling_window_size, servers_tracked=len(windows),
            last_prediction=self.last_prediction, started_at=self.started_at,
            warmup_complete=records >= WARMUP_MIN_RECORDS, window_records=records,
            servers_ready=len(windows.ready(min_history_steps)),
        )


@attrs.frozen
class StatusReport:
    """The published status at one moment; its fields, in this order, are the keys of the status body."""

    process: dict[str, object] | None
    model_loaded: bool
    model_path: str | None
    rolling_window_size: int
    servers_tracked: int
    last_prediction: datetime | None
    started_at: float
    warmup_complete: bool
    window_records: int
    servers_ready: int


#: Renders a tick's bodies: called with the result, and ``between_chunks=`` when it takes that argument.
TickRender = Callable[..., Mapping[str, str]]


@attrs.define
class EngineParts:
    """What the engine works with besides its windows and status; a part left None is not done."""

    predictor: Predictor | None = None  # ticks, once a model is loaded
    render: TickRender | None = None  # a tick's published bodies besides the status
    tick_log: TickLog | None = None  # records a tick with its bodies in one transaction (else they are published)
    dispatcher: AlertDispatch | None = None  # alert events and resends go to the sinks
    router: RequestRouter | None = None  # requests from web workers (explanations, model reloads, training)
    on_tick: Callable[[float], object] | None = None  # told each tick's wall time in seconds (/metrics)


class Engine:
    """The engine's loop body: follow ingestion, tick the model over the fleet, publish and record.

    ``render_status`` turns the status report into its published body (an adapter's renderer);
    ``min_history_steps`` counts servers as ready while no model is loaded to say otherwise.
    """

    def __init__(
        self,
        keeper: WindowKeeper,
        published: PublishedResults,
        status: EngineStatus,
        render_status: Callable[[StatusReport], str],
        parts: EngineParts | None = None,
        schedule: TickScheduler | None = None,
        min_history_steps: int = 12,
    ) -> None:
        self.keeper = keeper
        self.published = published
        self.status = status
        self.render_status = render_status
        self.parts = parts or EngineParts()
        self.schedule = schedule or TickScheduler()
        self._default_min_history = min_history_steps
        self.last_result: TickResult | None = None
        self._forecaster_seen = self.predictor.forecaster if self.predictor is not None else None

    @property
    def predictor(self) -> Predictor | None:
        return self.parts.predictor

    @property
    def has_model(self) -> bool:
        return self.predictor is not None and self.predictor.forecaster is not None

    @property
    def min_history_steps(self) -> int:
        """The served model's minimum history (servers with less are warming up)."""
        forecaster = self.predictor.forecaster if self.predictor is not None else None
        return forecaster.min_history_steps if forecaster is not None else self._default_min_history

    def _notice_model_swap(self) -> None:
        forecaster = self.predictor.forecaster if self.predictor is not None else None
        if forecaster is not self._forecaster_seen:
            self._forecaster_seen = forecaster
            self.request_tick()
            self.publish_status()

    def request_tick(self) -> None:
        """Tick as soon as allowed (after a model swap, say), even without new data; without a model, don't."""
        self.schedule.pending = self.has_model

    def start(self) -> None:
        loaded = self.keeper.rebuild()
        log.info("engine rebuilt %d windows holding %d records", len(self.keeper.windows), loaded)
        if self.predictor is not None and self.parts.tick_log is not None:
            self.predictor.tracker.restore(self.parts.tick_log.active_alerts())
        self.request_tick()
        self.publish_status()

    def step(self) -> int:
        """Answer requests; apply new records; tick when new data arrived (coalesced); heartbeat."""
        if self.parts.router is not None:
            self.parts.router.handle_pending()
        self._notice_model_swap()
        placed = self.keeper.poll()
        if placed > 0 and self.has_model:
            self.schedule.request_tick()
        if self.schedule.tick_due():
            self.tick()
        elif placed or self.schedule.heartbeat_due():
            self.publish_status()
        self._maybe_resend()
        self.schedule.run_housekeeping()
        return placed

    def tick(self) -> TickResult | None:
        """Run one inference tick now, record and publish it in one transaction, then notify sinks."""
        predictor = self.predictor
        if predictor is None or not self.has_model:
            return None
        at = datetime.fromtimestamp(self.schedule.tick_started(), tz=UTC)
        result = predictor.tick(self.keeper.windows, at, between_chunks=self.answer_mid_tick)
        self.answer_mid_tick()  # scoring is done; rendering (and precomputed explanations) may take a while
        bodies = self._render(result)
        self.status.last_prediction = at  # after render: heartbeats inside the tick name the published tick
        bodies["status"] = self._status_body()
        if self.parts.tick_log is not None:
            self.parts.tick_log.record_tick(result, bodies)
        else:
            self.published.publish(bodies)
        self._report_tick(self.schedule.tick_finished())
        if self.parts.dispatcher is not None and result.events:
            self.parts.dispatcher.dispatch(result.events)
        self.last_result = result
        log.info("tick: %d servers in %.2fs (%d warming up), %d alert events, model %s",
                 len(result.assessments), result.duration_s, result.servers_warming_up, len(result.events),
                 result.model_name)
        return result

    def _render(self, result: TickResult) -> dict[str, str]:
        render = self.parts.render
        if render is None:
            return {}
        if takes_between_chunks(render):  # explanations precomputed in parts: requests answered between
            return dict(render(result, between_chunks=self.answer_mid_tick))
        return dict(render(result))

    def _report_tick(self, duration_s: float) -> None:
        if self.parts.on_tick is None:
            return
        try:
            self.parts.on_tick(duration_s)
        except Exception:  # noqa: BLE001 - telemetry never costs a tick
            log.exception("reporting the tick's duration failed")

    def answer_mid_tick(self) -> None:
        """Inside a tick (between forecast chunks, between precomputed explanations): answer pending
        ``MID_TICK_KINDS`` requests for ``mid_tick_budget_s``, and keep the heartbeat fresh.

        An explanation answered here is of the last published tick, as it would be a moment before
        this tick began: the windows are not polled inside a tick and the explain service keeps the
        forecaster state of its tick. Other requests (a model reload) wait until the tick is over.
        The heartbeat: a tick longer than the workers' 30 s staleness (a big fleet on a busy CPU)
        would otherwise read as a dead engine, and workers answer 503 without asking it.
        """
        try:
            if self.parts.router is not None:
                self.parts.router.handle_pending(budget_s=self.schedule.timing.mid_tick_budget_s, kinds=MID_TICK_KINDS)
            if self.schedule.heartbeat_due():
                self.publish_status()
        except Exception:  # noqa: BLE001 - never costs the tick (the database may be away for a moment)
            log.exception("answering requests inside the tick failed")

    def publish_status(self) -> None:
        self.published.publish({"status": self._status_body()})
        self.schedule.published()

    def _status_body(self) -> str:
        return self.render_status(self.status.report(self.keeper.windows, self.min_history_steps))

    def _maybe_resend(self) -> None:
        if self.parts.dispatcher is None or self.predictor is None or not self.has_model:
            return
        if self.schedule.claim_resend():
            # Also when empty: sinks such as Alertmanager end what is no longer active.
            self.parts.dispatcher.resend(self.predictor.tracker.active())


class RecordsRetention:
    """The engine's chore: forget raw records older than ``retention_days``, a small batch per call.

    One call deletes at most ``batch_size`` records in one short transaction, so ingestion and
    ticks never wait long on it. Registered to run on every engine step, it purges again at once
    while a backlog remains (a full batch came back), and only every ``idle_s`` once caught up.
    """

    def __init__(self, store: RecordRetention, retention_days: int, batch_size: int = 2000,
                 idle_s: float = 600.0, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.retention_days = retention_days
        self.batch_size = batch_size
        self.idle_s = idle_s
        self.clock = clock
        self.deleted = 0  # since start, for logs and tests
        self._due_at = -float("inf")
        self._backlog = 0

    def __call__(self) -> int:
        """Purge one batch if due; return the records deleted."""
        now = self.clock()
        if now < self._due_at:
            return 0
        self._due_at = now + self.idle_s  # also after a failure: the engine logs it, no retry every step
        deleted = self.store.purge_records(int(now - self.retention_days * 86400), self.batch_size)
        self.deleted += deleted
        self._backlog += deleted
        if deleted >= self.batch_size:
            self._due_at = now
            return deleted
        if self._backlog:
            log.info("records retention (%d days): deleted %d records", self.retention_days, self._backlog)
            self._backlog = 0
        return deleted
