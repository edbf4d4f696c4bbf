"""Open the database: engine with safe settings, schema migrated in place, leader lock for the engine.

Adapter-internal (no port): opening, migrating and the engine's leader lock are start-up wiring, not domain needs.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).with_name("migrations")
_ADVISORY_KEY_MIGRATE = 0x4172_6775_0001  # "Argu" + 1
_ADVISORY_KEY_ENGINE = 0x4172_6775_0002


def sqlite_path(url: str) -> Path | None:
    """Return the file of an SQLite URL, or None for other databases and in-memory SQLite."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).resolve()


def create_db_engine(url: str) -> sa.Engine:
    """Create an SQLAlchemy engine; SQLite gets WAL, full fsync on commit and a generous busy timeout."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if sa.make_url(url).get_backend_name() == "postgresql" and "+" not in url.split("://")[0]:
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)  # psycopg 3, not psycopg2
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before we answer 200 (survives power loss, not only a process crash).
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def migrate(engine: sa.Engine) -> None:
    """Upgrade the schema to the newest revision, one process at a time."""
    with _migration_lock(engine), engine.begin() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        if current == head:
            return
        log.info("migrating database from %s to %s", current or "empty", head)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextlib.contextmanager
def _migration_lock(engine: sa.Engine) -> Iterator[None]:
    path = sqlite_path(str(engine.url))
    if path is not None:
        with file_lock(path.with_suffix(path.suffix + ".migrate.lock"), blocking=True):
            yield
    elif engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _ADVISORY_KEY_MIGRATE})
            try:
                yield
            finally:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_KEY_MIGRATE})
                connection.commit()
    else:
        yield


@contextlib.contextmanager
def file_lock(path: Path, blocking: bool) -> Iterator[bool]:
    """Hold an exclusive flock on ``path``; yields False when not blocking and already held elsewhere."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class LeaderLock:
    """Only one engine runs per database: an flock next to an SQLite file, an advisory lock on PostgreSQL.

    The lock lives as long as this object holds it (a file descriptor or a session), so a killed
    leader releases it at once and a standby engine takes over on its next ``try_acquire``.

    ``shared=True`` (sharded engines, PostgreSQL only) takes the same advisory lock in shared mode:
    any number of sharded engines run together, but never beside a single engine holding it
    exclusively, so a fleet is forecast either by one engine or by partition leases, not both.
    """

    def __init__(self, engine: sa.Engine, shared: bool = False) -> None:
        self._engine = engine
        self._shared = shared
        self._fd: int | None = None
        self._connection: sa.Connection | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None or self._connection is not None

    def try_acquire(self) -> bool:
        if self.held:
            return True
        path = sqlite_path(str(self._engine.url))
        if path is not None:
            fd = os.open(path.with_suffix(path.suffix + ".engine.lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            return True
        if self._engine.dialect.name == "postgresql":
            connection = self._engine.connect()
            take = "pg_try_advisory_lock_shared" if self._shared else "pg_try_advisory_lock"
            got = connection.execute(sa.text(f"SELECT {take}(:k)"), {"k": _ADVISORY_KEY_ENGINE})
            connection.commit()
            if got.scalar():
                self._connection = connection
                return True
            connection.close()
            return False
        return True  # other databases: single host assumed

    def still_held(self) -> bool:
        """Check the lock session is alive (PostgreSQL); a lost session means we are no longer leader."""
        if self._connection is None:
            return self.held
        try:
            self._connection.execute(sa.text("SELECT 1"))
            self._connection.commit()
            return True
        except sa.exc.DBAPIError:
            self._connection = None
            return False

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._connection is not None:
            with contextlib.suppress(sa.exc.DBAPIError):
                # Invalidate, not close: a pooled session would keep holding the advisory lock.
                self._connection.invalidate()
                self._connection.close()
            self._connection = None
