"""A record lacking optional fields is stored with NULLs and read back as NaN (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from argus.adapters.sql import tables as t
from argus.adapters.sql.database import _MIGRATIONS, create_db_engine, migrate
from argus.adapters.sql.shards import SqlShardPublisher
from argus.domain.metrics import FIELD_INDEX, METRIC_FIELDS
from argus.domain.partitions import Ownership
from argus.testing import make_record

LACKING = ("java_cpu_pct", "back_close_wait", "front_close_wait")


def _lacking(server: str, step: int):
    return make_record(server, step, **dict.fromkeys(LACKING, math.nan))


def test_missing_fields_are_stored_as_null_and_read_back_as_nan(sql_store):
    receipt = sql_store.write_batch([_lacking("prom001", s) for s in range(3)] + [make_record("ppdb001", 0)])
    with sql_store.engine.connect() as connection:
        nulls = connection.execute(sa.select(sa.func.count()).select_from(t.records)
                                   .where(t.records.c.java_cpu_pct.is_(None),
                                          t.records.c.back_close_wait.is_(None))).scalar_one()
    assert nulls == 3  # NULL, not a stored NaN (PostgreSQL would keep one)

    by_batch = [r for r in sql_store.records_in_batches([receipt.batch_id]) if r.server_name == "prom001"]
    assert len(by_batch) == 3 and all(r.missing == LACKING for r in by_batch)
    assert by_batch[0].value("mem_used_pct") == make_record("a", 0).value("mem_used_pct")

    histories = {h.server_name: h for h in sql_store.server_histories(limit_per_server=10)}
    values = histories["prom001"].values
    assert values.shape == (3, len(METRIC_FIELDS))
    assert all(np.isnan(values[:, FIELD_INDEX[f]]).all() for f in LACKING)
    assert np.isfinite(np.delete(values, [FIELD_INDEX[f] for f in LACKING], axis=1)).all()
    assert np.isfinite(histories["ppdb001"].values).all()


def test_a_sharded_engine_reads_nulls_as_nan_too(sql_store):
    sql_store.write_batch([_lacking("prom001", s) for s in range(3)])
    publisher = SqlShardPublisher(sql_store, "engine-a", Ownership())
    (history,) = publisher.histories_of(["prom001"], 10)
    assert np.isnan(history.values[:, FIELD_INDEX["java_cpu_pct"]]).all()
    assert np.isfinite(history.values[:, FIELD_INDEX["mem_used_pct"]]).all()


def test_a_record_lacking_a_required_field_fails_its_whole_batch(sql_store):
    with pytest.raises(sa.exc.IntegrityError):
        sql_store.write_batch([make_record("a", 0), make_record("a", 1, mem_used_pct=math.nan)])
    assert sql_store.server_names() == []


def test_migration_0009_keeps_the_records_and_lets_optional_fields_be_null(database_url):
    engine = create_db_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0008")
    row = {name: float(v) for name, v in zip(METRIC_FIELDS, make_record("a", 0).values, strict=True)}
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO ingest_batches (received_at, record_count, server_count) "
                                   "VALUES (0, 1, 1)"))
        connection.execute(t.records.insert(), {**row, "server_name": "a", "ts": 1, "status": "healthy",
                                                "batch_id": 1})
        with pytest.raises(sa.exc.IntegrityError), connection.begin_nested():
            connection.execute(t.records.insert(), {**row, "java_cpu_pct": None, "server_name": "a", "ts": 2,
                                                    "status": "healthy", "batch_id": 1})
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(t.records.insert(), {**row, "java_cpu_pct": None, "server_name": "a", "ts": 2,
                                                "status": "healthy", "batch_id": 1})
        kept = connection.execute(sa.select(t.records.c.ts, t.records.c.java_cpu_pct).order_by(t.records.c.ts)).all()
        with pytest.raises(sa.exc.IntegrityError), connection.begin_nested():
            connection.execute(t.records.insert(), {**row, "mem_used_pct": None, "server_name": "a", "ts": 3,
                                                    "status": "healthy", "batch_id": 1})
    indexes = {ix["name"] for ix in sa.inspect(engine).get_indexes("records")}
    engine.dispose()
    assert [tuple(r) for r in kept] == [(1, row["java_cpu_pct"]), (2, None)]
    assert {"ix_records_batch_id", "ix_records_ts"} <= indexes
