"""The dependency-injector container: the only place where Argus is wired together."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator

import sqlalchemy as sa
from dependency_injector import containers, providers

from argus.adapters.explain.service import ExplainService, with_explanations
from argus.adapters.http.app import build_app
from argus.adapters.http.merged import ShardedPublished
from argus.adapters.http.options import AdminSources, Features, MetricsOptions, RequestLimits, Timeouts
from argus.adapters.http.otlp import OtlpMetricsResource
from argus.adapters.http.ratelimit import RateLimiter
from argus.adapters.http.remote_write import RemoteWriteResource
from argus.adapters.http.snapshots import render_partitions, render_status, render_tick
from argus.adapters.liveness import this_process
from argus.adapters.sql.channel import SqlEngineChannel
from argus.adapters.sql.database import LeaderLock, create_db_engine, migrate
from argus.adapters.sql.history import SqlHistoryStore
from argus.adapters.sql.leases import LeaseRenewer, SqlPartitionLeases
from argus.adapters.sql.metrics_query import SqlMetricsQuery
from argus.adapters.sql.sample_buffer import SqlSampleBuffer, StepCloser
from argus.adapters.sql.shards import SqlShardPublisher, SqlShardReader
from argus.adapters.sql.store import SqlMetricsStore
from argus.adapters.sql.training_runs import SqlTrainingRuns
from argus.adapters.telemetry import EngineTelemetry, count_ingested
from argus.adapters.tft.manager import ModelManager
from argus.adapters.tft.registry import DirectoryModelRegistry
from argus.adapters.training_process import TrainingSupervisor
from argus.domain.channel import EngineClient, RequestRouter
from argus.domain.errors import ConfigurationError
from argus.domain.history import RetentionSweep
from argus.domain.ingestion import AcceptedTimes
from argus.domain.partitions import Ownership
from argus.domain.profiles import ProfileResolver
from argus.domain.rollup import RollupPolicy
from argus.domain.schedule import TickScheduler, TickTiming
from argus.domain.services import Engine, EngineParts, EngineStatus, RecordsRetention, WindowKeeper
from argus.domain.sharding import OwnedFeed, OwnedRequests, PartitionedEngine
from argus.domain.ticks import Predictor
from argus.entrypoints.keys import require_api_key
from argus.entrypoints.settings import Settings
from argus.plugins.host import PluginHost
from argus.plugins.sinks import open_dispatcher


def open_engine(url: str, run_migrations: bool = True) -> Iterator[sa.Engine]:
    """Create the SQLAlchemy engine, bring the schema up to date, dispose of it at shutdown."""
    engine = create_db_engine(url)
    if run_migrations:
        migrate(engine)
    try:
        yield engine
    finally:
        engine.dispose()


log = logging.getLogger("argus.engine")
ENGINE_PAST_BUDGET = 0.25  # the blend's new past-origin TFT forecasts per tick, as a share of ready servers


def count_rolled_up(source: str, records: int) -> None:
    """Count records the step closer stored, by the source their samples came from."""
    count_ingested(source, records=records)


def load_forecaster(registry: DirectoryModelRegistry, device: str, threads: int):
    """Load the CURRENT model for the engine; None (and a clear log line) when there is none or it is broken."""
    try:
        forecaster = load_tft(registry, None, device, threads)
    except Exception as ex:  # noqa: BLE001 - the engine keeps following ingestion without a model
        log.error("no forecasting model loaded from %s: %s", registry.root, ex)
        return None
    log.info("loaded model %s on %s", forecaster.name, forecaster.device)
    return forecaster


def make_predictor(forecaster, profiles: ProfileResolver) -> Predictor:
    """The tick use case; its forecaster is None until a model is loaded (hot reload swaps it)."""
    return Predictor(forecaster, profiles)


def make_router(channel, **handlers) -> RequestRouter:
    """The engine's request router with every handler that is available (None ones are skipped)."""
    return RequestRouter(channel, {kind: handler for kind, handler in handlers.items() if handler is not None})


def make_housekeeping(channel: SqlEngineChannel, history_sweep=None, manager=None,
                      supervisor=None, records_sweep=None, telemetry=None,
                      step_closer=None) -> list[tuple[float, object]]:
    """Periodic engine chores as (interval in seconds, callable)."""
    chores: list[tuple[float, object]] = [(600.0, channel.purge)]
    if step_closer is not None:
        chores.append((0.0, step_closer))  # remote_write/OTLP steps: asked every step, looks every second
    if telemetry is not None:
        chores.append((5.0, telemetry.sample_sinks))  # alert sink queue depths for /metrics
    if records_sweep is not None:
        chores.append((0.0, records_sweep))  # asked every step; purges a small batch when due (its own pace)
    if history_sweep is not None:
        chores.append((3600.0, history_sweep))  # history retention: hourly
    if supervisor is not None:
        chores.append((1.0, supervisor.poll))  # notice a finished, crashed or overdue training
    if manager is not None:
        chores.append((5.0, manager.follow_current))  # `argus reload`, another host: CURRENT changed
    return chores


def make_supervisor(runs, settings: Settings, manager) -> TrainingSupervisor:
    """The training supervisor, resuming a training that outlived a previous engine."""
    from argus.entrypoints.training_job import history_shortfall

    supervisor = TrainingSupervisor(runs, settings.model_dir, on_promoted=manager.reload,
                                    current_model=lambda: manager.loaded_name,
                                    cancel_grace_s=settings.training_cancel_grace_s, env=settings.child_env(),
                                    history_shortfall=lambda base: history_shortfall(settings, base))
    supervisor.adopt()
    return supervisor


def load_tft(registry, name, device, threads):
    """The served forecaster for model ``name``: its TFT blended with the structural forecasts."""
    from argus.adapters.blend import BlendForecaster

    return BlendForecaster.load(registry, name, device=device, threads=threads, past_budget_share=ENGINE_PAST_BUDGET)


def make_explain_service(predictor, plugins: PluginHost, store: SqlMetricsStore, settings: Settings) -> ExplainService:
    """The engine's explanations: every plugin's explainers (built-ins first) over the predictor's model."""
    return ExplainService(predictor, plugins.explainers(settings.explain_settings), known=store.server_exists,
                          precompute_max=settings.explain_precompute_max)


def make_engine_status(settings: Settings, forecaster) -> EngineStatus:
    model_path = None
    if forecaster is not None:
        model_path = f"{settings.model_dir.name}/{forecaster.name}"
    return EngineStatus(started_at=time.time(), rolling_window_size=settings.rolling_window_size,
                        model_loaded=forecaster is not None, model_path=model_path, process=this_process())


def engine_mode(settings: Settings) -> str:
    """``sharded`` when several engines share the fleet (ARGUS_ENGINE_SHARDING=1), else ``single``."""
    return "sharded" if settings.engine_sharding else "single"


def make_leader_lock(engine: sa.Engine, settings: Settings) -> LeaderLock:
    """The engine lock: exclusive for the single engine, shared by sharded engines (PostgreSQL only)."""
    if settings.engine_sharding and engine.dialect.name != "postgresql":
        raise ConfigurationError("ARGUS_ENGINE_SHARDING=1 needs PostgreSQL (ARGUS_DATABASE_URL=postgresql://...); "
                                 "with SQLite one engine forecasts the whole fleet")
    return LeaderLock(engine, shared=settings.engine_sharding)


def make_engine_id() -> str:
    """A name for this engine process in the lease table: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def open_lease_renewer(leases: SqlPartitionLeases) -> Iterator[LeaseRenewer]:
    """Run lease rounds in a thread while the engine runs; give the partitions back at shutdown."""
    renewer = LeaseRenewer(leases)
    renewer.start()
    try:
        yield renewer
    finally:
        renewer.stop()


def make_published_view(store: SqlMetricsStore, engine: sa.Engine, settings: Settings):
    """What web workers serve: on PostgreSQL the union of sharded engines' partitions when newer, else the store."""
    if engine.dialect.name != "postgresql":
        return store
    return ShardedPublished(store, SqlShardReader(engine), stale_after_s=settings.engine_stale_after_s)


class Container(containers.DeclarativeContainer):
    """Providers for web workers (``app``) and the engine process (``engine``, ``leader_lock``)."""

    settings = providers.Singleton(Settings.from_env)

    plugins = providers.Singleton(PluginHost.load, disabled=settings.provided.disabled_plugins)
    profiles = providers.Singleton(plugins.provided.profile_resolver.call())

    db_engine = providers.Resource(open_engine, url=settings.provided.database_url)
    store = providers.Singleton(SqlMetricsStore, engine=db_engine)
    history = providers.Singleton(SqlHistoryStore, engine=db_engine)
    channel = providers.Singleton(SqlEngineChannel, engine=db_engine)
    engine_client = providers.Singleton(EngineClient, channel=channel)

    limiter = providers.Singleton(
        RateLimiter, storage_url=settings.provided.rate_limit_storage, spec=settings.provided.rate_limits
    )
    api_key = providers.Singleton(require_api_key, settings)
    registry = providers.Singleton(DirectoryModelRegistry, root=settings.provided.model_dir)
    training_runs = providers.Singleton(SqlTrainingRuns, engine=db_engine)
    metrics_query = providers.Singleton(SqlMetricsQuery, engine=db_engine)
    accepted_times = providers.Factory(AcceptedTimes, max_clock_skew_s=settings.provided.max_clock_skew_s,
                                       retention_days=settings.provided.records_retention_days)
    # Prometheus remote_write (and OTLP) samples wait in the database until the engine closes their step.
    rollup_policy = providers.Singleton(RollupPolicy, step_s=settings.provided.step_seconds,
                                        disk_mountpoints=settings.provided.disk_mountpoints)
    sample_buffer = providers.Singleton(SqlSampleBuffer, engine=db_engine, policy=rollup_policy)
    remote_write = providers.Singleton(RemoteWriteResource, buffer=sample_buffer,
                                       max_body_bytes=settings.provided.max_body_bytes,
                                       server_label=settings.provided.remote_write_server_label,
                                       accepted_times=accepted_times)
    otlp = providers.Singleton(OtlpMetricsResource, buffer=sample_buffer,
                               max_body_bytes=settings.provided.max_body_bytes, step_s=settings.provided.step_seconds,
                               server_attribute=settings.provided.otlp_server_attribute, accepted_times=accepted_times)
    app = providers.Singleton(
        build_app,
        api_key=api_key,
        store=store,
        published=providers.Singleton(make_published_view, store=store, engine=db_engine, settings=settings),
        limiter=limiter,
        limits=providers.Factory(
            RequestLimits, max_body_bytes=settings.provided.max_body_bytes,
            max_records_per_request=settings.provided.max_records_per_request,
            rolling_window_size=settings.provided.rolling_window_size, accepted_times=accepted_times,
        ),
        timeouts=providers.Factory(
            Timeouts, engine_stale_after_s=settings.provided.engine_stale_after_s,
            admin_s=settings.provided.admin_timeout_s, explain_s=settings.provided.explain_timeout_s,
        ),
        features=providers.Factory(
            Features, history=history, engine_client=engine_client,
            admin=providers.Factory(AdminSources, models=registry, training_runs=training_runs),
            metrics_query=metrics_query.provided.recent, remote_write=remote_write, otlp=otlp,
        ),
        metrics=providers.Factory(MetricsOptions, public=settings.provided.metrics_public,
                                  max_servers=settings.provided.metrics_max_servers),
        storage_errors=providers.Object((sa.exc.OperationalError, sa.exc.InterfaceError)),
    )

    # The engine process only: the model is loaded here, never in a web worker or the gunicorn master.
    forecaster = providers.Singleton(
        load_forecaster, registry=registry, device=settings.provided.device, threads=settings.provided.torch_threads
    )
    predictor = providers.Singleton(make_predictor, forecaster=forecaster, profiles=profiles)
    alert_dispatcher = providers.Resource(
        open_dispatcher, sink_settings=settings.provided.sink_settings, plugin_host=plugins
    )
    engine_telemetry = providers.Singleton(EngineTelemetry, sink_stats=alert_dispatcher.provided.stats)
    engine_status = providers.Singleton(make_engine_status, settings=settings, forecaster=forecaster)
    model_manager = providers.Singleton(
        ModelManager, registry=registry, predictor=predictor, status=engine_status, loader=providers.Object(load_tft),
        device=settings.provided.device, threads=settings.provided.torch_threads,
    )
    training_supervisor = providers.Singleton(make_supervisor, runs=training_runs, settings=settings,
                                              manager=model_manager)
    explain_service = providers.Singleton(make_explain_service, predictor=predictor, plugins=plugins, store=store,
                                          settings=settings)
    # Several engines sharing the fleet (ARGUS_ENGINE_SHARDING=1): each follows the partitions it leases.
    mode = providers.Callable(engine_mode, settings)
    engine_id = providers.Singleton(make_engine_id)
    ownership = providers.Singleton(Ownership)
    step_closer = providers.Singleton(
        StepCloser, buffer=sample_buffer, store=store, accepted=accepted_times,
        on_stored=providers.Object(count_rolled_up),
        owns=providers.Selector(mode, single=providers.Object(None), sharded=ownership.provided.owns))
    partition_leases = providers.Singleton(SqlPartitionLeases, engine=db_engine, engine_id=engine_id,
                                           ttl_s=settings.provided.engine_lease_s)
    lease_renewer = providers.Resource(open_lease_renewer, leases=partition_leases)
    shard_publisher = providers.Singleton(SqlShardPublisher, store=store, engine_id=engine_id, ownership=ownership)
    owned_feed = providers.Singleton(OwnedFeed, feed=store, ownership=ownership,
                                     server_names=store.provided.server_names,
                                     histories=shard_publisher.provided.histories_of)
    engine_feed = providers.Selector(mode, single=store, sharded=owned_feed)
    engine_results = providers.Selector(mode, single=store, sharded=shard_publisher)
    engine_render = providers.Selector(mode, single=providers.Object(render_tick),
                                       sharded=providers.Object(render_partitions))
    engine_channel = providers.Selector(
        mode, single=channel, sharded=providers.Singleton(OwnedRequests, channel=channel, ownership=ownership))

    request_router = providers.Singleton(
        make_router, channel=engine_channel,
        explain=explain_service.provided.handle,
        reload_model=providers.Callable(lambda m: lambda p: m.reload(p.get("name")), model_manager),
        start_training=training_supervisor.provided.start,
        cancel_training=training_supervisor.provided.cancel,
    )
    leader_lock = providers.Singleton(make_leader_lock, engine=db_engine, settings=settings)
    history_sweep = providers.Singleton(
        RetentionSweep, retention=history, retention_days=settings.provided.history_retention_days
    )
    records_sweep = providers.Singleton(
        RecordsRetention, store=store, retention_days=settings.provided.records_retention_days
    )
    window_keeper = providers.Factory(WindowKeeper, feed=engine_feed, capacity=settings.provided.rolling_window_size,
                                      max_future_s=settings.provided.max_clock_skew_s)
    engine = providers.Factory(
        Engine,
        keeper=window_keeper,
        published=engine_results,
        status=engine_status,
        render_status=providers.Object(render_status),
        parts=providers.Factory(
            EngineParts,
            predictor=predictor,
            render=providers.Callable(with_explanations, render=engine_render, service=explain_service),
            tick_log=engine_results,
            dispatcher=alert_dispatcher,
            router=request_router,
            on_tick=engine_telemetry.provided.tick_finished,
        ),
        schedule=providers.Factory(
            TickScheduler,
            timing=providers.Factory(TickTiming, min_tick_interval_s=settings.provided.tick_interval_s),
            housekeeping=providers.Callable(make_housekeeping, channel=channel, history_sweep=history_sweep,
                                            manager=model_manager, supervisor=training_supervisor,
                                            records_sweep=records_sweep, telemetry=engine_telemetry,
                                            step_closer=step_closer),
        ),
    )
    partitioned_engine = providers.Factory(
        PartitionedEngine, engine=engine, ownership=ownership, held=lease_renewer.provided.held, feed=owned_feed,
        alerts_in=shard_publisher.provided.active_alerts_in,
    )
    #: What the engine process runs: the Engine, or the Engine over this engine's partitions.
    engine_loop = providers.Selector(mode, single=engine, sharded=partitioned_engine)
