"""Shared fixtures: databases (SQLite always, PostgreSQL when ARGUS_TEST_POSTGRES_URL is set), apps."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from falcon import testing

from argus.adapters.sql.database import create_db_engine, migrate
from argus.adapters.sql.store import SqlMetricsStore
from argus.entrypoints.container import Container
from argus.entrypoints.settings import Settings

API_KEY = "test-key-0123456789"
#: ``gw0``, ``gw1`` … in a pytest-xdist worker (``scripts/test -n 2``), else None.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def _per_worker(url: str | None, database: Callable[[sa.URL, str], str]) -> str | None:
    """``url`` with the database that belongs to this xdist worker (unchanged outside xdist)."""
    if not url or not WORKER:
        return url
    parsed = sa.make_url(url)
    return parsed.set(database=database(parsed, WORKER)).render_as_string(hide_password=False)


# PostgreSQL: a database per worker (``test_gw0`` …, created in ``pytest_configure``); Redis: a database
# number per worker (``gw0`` → 1 …), so that no worker empties another's.
POSTGRES_URL = _per_worker(os.environ.get("ARGUS_TEST_POSTGRES_URL"), lambda url, worker: f"{url.database}_{worker}")
REDIS_URL = _per_worker(os.environ.get("ARGUS_TEST_REDIS_URL"), lambda _, worker: str(int(worker[2:]) + 1))


def pytest_configure(config) -> None:
    """Create this xdist worker's PostgreSQL database if it does not exist yet."""
    base = os.environ.get("ARGUS_TEST_POSTGRES_URL")
    if not base or not WORKER:
        return
    name = sa.make_url(POSTGRES_URL).database
    engine = create_db_engine(base).execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        if connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def _reset_postgres(url: str) -> None:
    """Empty the database: one statement, where reflecting and dropping each table took ~1 s per test."""
    engine = create_db_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    """An empty, migrated-on-open database URL: an SQLite file, and PostgreSQL when configured."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'argus.db'}"
    if not POSTGRES_URL:
        pytest.skip("ARGUS_TEST_POSTGRES_URL not set (CI sets it; PostgreSQL tests skipped here)")
    _reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def sql_store(database_url):
    engine = create_db_engine(database_url)
    migrate(engine)
    yield SqlMetricsStore(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """An SQLite file at the newest schema revision, migrated once per session; copy it, never open it.

    Migrating from empty is ~0.1 s of CPU and a few hundred fsyncs; hundreds of app tests copy this instead.
    The migrations themselves are tested on empty databases (``database_url``) and by every e2e start.
    """
    path = tmp_path_factory.mktemp("template") / "argus.db"
    engine = create_db_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture
def settings(tmp_path, migrated_sqlite) -> Settings:
    """Settings for app tests: an SQLite file already at the newest revision (PostgreSQL is covered by the store's
    own tests)."""
    shutil.copyfile(migrated_sqlite, tmp_path / "argus.db")
    return Settings(
        api_key=API_KEY,
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'argus.db'}",
        model_dir=tmp_path / "models",
        rate_limit_storage="memory://",
        records_retention_days=36500,  # the test data is dated January 2025: keep it accepted and stored
    )


@pytest.fixture
def container(settings):
    from dependency_injector import providers

    container = Container()
    container.settings.override(providers.Object(settings))
    yield container
    container.shutdown_resources()


@pytest.fixture
def client(container) -> testing.TestClient:
    return testing.TestClient(container.app(), headers={"X-API-Key": API_KEY})


@pytest.fixture
def make_client():
    """Build a client over a fresh container with the given settings."""
    from dependency_injector import providers

    made = []

    def make(settings: Settings) -> testing.TestClient:
        container = Container()
        container.settings.override(providers.Object(settings))
        made.append(container)
        return testing.TestClient(container.app(), headers={"X-API-Key": settings.api_key or ""})

    yield make
    for container in made:
        container.shutdown_resources()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A model directory holding the tiny TFT (real training code, tiny sizes) marked CURRENT; read-only."""
    from tests.model.conftest import build_tiny_model

    if WORKER is None:
        model_dir = tmp_path_factory.mktemp("models")
        build_tiny_model(model_dir)  # tft_20250101_000000
        return model_dir
    from filelock import FileLock  # xdist workers share one build: the first trains it, the others wait for it

    shared = tmp_path_factory.getbasetemp().parent / "tiny-models"
    with FileLock(f"{shared}.lock"):
        if not (shared / "CURRENT").exists():
            build_tiny_model(shared)
    return shared


@pytest.fixture(scope="session")
def engine_model_dir(tmp_path_factory, tiny_model_dir):
    """The tiny TFT marked CURRENT, and a newer second model for swaps; read-only."""
    import shutil

    from argus.adapters.tft.registry import DirectoryModelRegistry
    from tests.model.conftest import build_tiny_model

    model_dir = tmp_path_factory.mktemp("engine-models")
    shutil.copytree(tiny_model_dir, model_dir, dirs_exist_ok=True)  # the same model: trained once per session
    build_tiny_model(model_dir, name="tft_20250102_000000", seed=7)
    DirectoryModelRegistry(model_dir).set_current("tft_20250101_000000")
    return model_dir
