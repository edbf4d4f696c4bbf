"""SqlTrainingRuns: the ``training_runs`` table (progress written by the training process itself).

Adapter-internal (no port): shared by the training process and the admin routes, both adapters/entrypoints.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import sqlalchemy as sa

from argus.adapters.sql import tables as t
from argus.domain.training import TrainingRun

_T = t.training_runs


class SqlTrainingRuns:
    """Create, update and read training runs."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(self, run: TrainingRun) -> None:
        with self.engine.begin() as connection:
            connection.execute(_T.insert(), {**_row(run), "updated_at": time.time()})

    def update(self, training_id: str, **values: Any) -> None:
        if "promotion" in values and values["promotion"] is not None:
            values["promotion"] = orjson.dumps(values["promotion"]).decode()
        with self.engine.begin() as connection:
            connection.execute(_T.update().where(_T.c.training_id == training_id)
                               .values(updated_at=time.time(), **values))

    def get(self, training_id: str) -> TrainingRun | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(_T).where(_T.c.training_id == training_id)).mappings().first()
        return None if row is None else _run(row)

    def latest(self) -> TrainingRun | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(_T).order_by(_T.c.started_at.desc()).limit(1)).mappings().first()
        return None if row is None else _run(row)

    def running(self) -> list[TrainingRun]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(_T).where(_T.c.status == "running")).mappings().all()
        return [_run(r) for r in rows]

    def all(self) -> list[TrainingRun]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(_T).order_by(_T.c.started_at)).mappings().all()
        return [_run(r) for r in rows]


def _row(run: TrainingRun) -> dict[str, Any]:
    return {
        "training_id": run.training_id, "status": run.status, "started_at": run.started_at,
        "finished_at": run.finished_at, "epochs": run.epochs, "incremental": run.incremental,
        "base_model": run.base_model, "epoch": run.epoch, "percent": run.percent, "eta_minutes": run.eta_minutes,
        "stage": run.stage, "model_name": run.model_name, "promoted": run.promoted,
        "promotion": orjson.dumps(run.promotion).decode() if run.promotion is not None else None,
        "error": run.error, "pid": run.pid,
    }


def _run(row) -> TrainingRun:
    return TrainingRun(
        training_id=row["training_id"], status=row["status"], started_at=row["started_at"], epochs=row["epochs"],
        incremental=bool(row["incremental"]), base_model=row["base_model"], finished_at=row["finished_at"],
        epoch=row["epoch"], percent=row["percent"], eta_minutes=row["eta_minutes"], stage=row["stage"],
        model_name=row["model_name"], promoted=row["promoted"],
        promotion=orjson.loads(row["promotion"]) if row["promotion"] else None, error=row["error"], pid=row["pid"],
    )
