"""The dependency-injector container: the only place where Argus is wired together."""

from __future__ import annotations

import time
from collections.abc import Iterator

import sqlalchemy as sa
from dependency_injector import containers, providers

from argus.adapters.http.app import build_app
from argus.adapters.http.ratelimit import RateLimiter
from argus.adapters.sql.database import LeaderLock, create_db_engine, migrate
from argus.adapters.sql.store import SqlMetricsStore
from argus.domain.services import Engine, EngineStatus, WindowKeeper
from argus.entrypoints.keys import require_api_key
from argus.entrypoints.settings import Settings
from argus.plugins.host import PluginHost


def open_engine(url: str, run_migrations: bool = True) -> Iterator[sa.Engine]:
    """Create the SQLAlchemy engine, bring the schema up to date, dispose of it at shutdown."""
    engine = create_db_engine(url)
    if run_migrations:
        migrate(engine)
    try:
        yield engine
    finally:
        engine.dispose()


class Container(containers.DeclarativeContainer):
    """Providers for web workers (``app``) and the engine process (``engine``, ``leader_lock``)."""

    settings = providers.Singleton(Settings.from_env)

    plugins = providers.Singleton(PluginHost.load, disabled=settings.provided.disabled_plugins)
    profiles = providers.Singleton(plugins.provided.profile_resolver.call())

    db_engine = providers.Resource(open_engine, url=settings.provided.database_url)
    store = providers.Singleton(SqlMetricsStore, engine=db_engine)

    limiter = providers.Singleton(
        RateLimiter, storage_url=settings.provided.rate_limit_storage, spec=settings.provided.rate_limits
    )
    api_key = providers.Singleton(require_api_key, settings)
    app = providers.Singleton(
        build_app,
        api_key=api_key,
        store=store,
        published=store,
        limiter=limiter,
        rolling_window_size=settings.provided.rolling_window_size,
        max_body_bytes=settings.provided.max_body_bytes,
        max_records_per_request=settings.provided.max_records_per_request,
        engine_stale_after_s=settings.provided.engine_stale_after_s,
        storage_errors=providers.Object((sa.exc.OperationalError, sa.exc.InterfaceError)),
    )

    leader_lock = providers.Singleton(LeaderLock, engine=db_engine)
    window_keeper = providers.Factory(WindowKeeper, feed=store, capacity=settings.provided.rolling_window_size)
    engine_status = providers.Factory(
        EngineStatus, started_at=providers.Callable(time.time),
        rolling_window_size=settings.provided.rolling_window_size,
    )
    engine = providers.Factory(Engine, keeper=window_keeper, published=store, status=engine_status)
