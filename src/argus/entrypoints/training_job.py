"""The training process the engine starts (`argus train-job`): trains on the database, reports, scores.

It runs as its own process (never a thread of a web worker or the engine), writes its progress
into ``training_runs`` itself, stops cleanly on SIGTERM (nothing is saved), and finishes by scoring
the new model and the current one on the same newest held-back data; the engine then promotes per
``ARGUS_AUTO_PROMOTE``.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Mapping

from argus.entrypoints.settings import Settings

log = logging.getLogger("argus.training")

EXIT_CANCELLED = 3
PROGRESS_EVERY_S = 1.0


def series_from_database(settings: Settings) -> Mapping:
    """Every server's full history from the database, as the training code's series."""
    from argus.adapters.sql.database import create_db_engine
    from argus.adapters.sql.store import SqlMetricsStore
    from argus.adapters.tft.data import ServerSeries

    engine = create_db_engine(settings.database_url)
    try:
        return {
            h.server_name: ServerSeries(h.server_name, h.timestamps, h.values, h.statuses)
            for h in SqlMetricsStore(engine).server_histories(limit_per_server=None)
        }
    finally:
        engine.dispose()


def training_config(settings: Settings, epochs: int):
    from argus.adapters.tft.training import TrainingConfig

    options = {"holdout_days": 1.0, "val_days": 1.0, "max_samples_per_epoch": 6400, **settings.training_options}
    return TrainingConfig(epochs=epochs, threads=settings.torch_threads, **options)


def required_history(settings: Settings, from_model: str | None) -> dict:
    """What one server needs before a training can cut a window: steps, and seconds of span.

    A training window is ``min_encoder_steps + horizon_steps`` five-minute steps (the base model's,
    when continuing one), all before the last ``val_days`` (validation) and ``holdout_days``
    (scoring) of the data.
    """
    from argus.adapters.tft.artifacts import spec_from_manifest
    from argus.adapters.tft.registry import DirectoryModelRegistry

    config = training_config(settings, 1)
    encoder, horizon = config.min_encoder_steps, config.horizon_steps
    if from_model:
        try:
            spec = spec_from_manifest(DirectoryModelRegistry(settings.model_dir).info(from_model).manifest)
            encoder, horizon = spec.min_encoder_steps, spec.horizon_steps
        except Exception:  # noqa: BLE001 - an unreadable base model fails the run itself, with its reason
            pass
    reserved_days = float(config.val_days) + float(config.holdout_days)
    steps = encoder + horizon
    return {"steps": steps, "span_s": int(reserved_days * 86_400) + steps * 300, "encoder_steps": encoder,
            "horizon_steps": horizon, "val_days": float(config.val_days), "holdout_days": float(config.holdout_days)}


def stored_history(settings: Settings) -> dict:
    """Per server: records and first/last timestamp, by one aggregate query (never loads the rows)."""
    import sqlalchemy as sa

    from argus.adapters.sql.database import create_db_engine
    from argus.adapters.sql.tables import records

    engine = create_db_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(records.c.server_name, sa.func.count(), sa.func.min(records.c.ts),
                                          sa.func.max(records.c.ts)).group_by(records.c.server_name)).all()
    finally:
        engine.dispose()
    return {name: (int(count), int(first), int(last)) for name, count, first, last in rows}


def history_shortfall(settings: Settings, from_model: str | None) -> str | None:
    """Why a training would find no window in the database (None: enough, as far as spans tell).

    Gaps inside a span can still leave too little; that run then fails and its status says why.
    """
    need = required_history(settings, from_model)
    servers = stored_history(settings)
    enough = [n for n, (count, first, last) in servers.items()
              if count >= need["steps"] and last - first >= need["span_s"]]
    if enough:
        return None
    wanted = (f"a server needs at least {need['span_s'] / 3600:.1f} h of five-minute records (a "
              f"{need['encoder_steps']}-step encoder and a {need['horizon_steps']}-step horizon before the last "
              f"{need['val_days']:g} day(s) of validation and {need['holdout_days']:g} day(s) of hold-out)")
    if not servers:
        return f"Not enough history to train: {wanted}; the database holds no records"
    name, (count, first, last) = max(servers.items(), key=lambda item: (item[1][2] - item[1][1], item[1][0]))
    total = sum(count for count, _, _ in servers.values())
    return (f"Not enough history to train: {wanted}; the longest stored is {(last - first) / 3600:.1f} h "
            f"({name}, {count} records; {total} records from {len(servers)} servers in all)")


def run_training_job(settings: Settings, training_id: str, epochs: int, from_model: str | None) -> int:
    """Train, score and record; return the process exit code."""
    from argus.adapters.sql.database import create_db_engine
    from argus.adapters.sql.training_runs import SqlTrainingRuns

    stop = {"requested": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))
    db = create_db_engine(settings.database_url)
    runs = SqlTrainingRuns(db)
    runs.update(training_id, pid=os.getpid(), stage="loading_data")
    try:
        return _train(settings, runs, training_id, epochs, from_model, lambda: stop["requested"])
    finally:
        db.dispose()


def _train(settings, runs, training_id, epochs, from_model, should_stop) -> int:
    from argus.adapters.tft.training import TrainingCancelled, train_model
    from argus.domain.profiles import ProfileResolver

    resolver = ProfileResolver()
    last_write = [0.0]

    def progress(event: dict) -> None:
        if event.get("stage") in ("train", "epoch_end"):
            if time.monotonic() - last_write[0] < PROGRESS_EVERY_S and event["stage"] == "train":
                return
            last_write[0] = time.monotonic()
            done, total = event.get("epoch", 1), max(1, event.get("epochs", epochs))
            if event["stage"] == "train":
                batches = max(1, event.get("batches", 1))
                fraction = ((done - 1) * batches + event.get("batch", 0)) / (total * batches)
                done -= 1  # the epoch in progress is not done yet
            else:
                fraction = done / total
            eta_s = event.get("eta_s")
            runs.update(training_id, stage=event["stage"], epoch=int(done), percent=round(100.0 * fraction, 1),
                        eta_minutes=None if eta_s is None else round(eta_s / 60.0, 1))

    try:
        series = series_from_database(settings)
        if not series:
            raise ValueError("the database holds no records to train on")
        result = train_model(series, settings.model_dir, training_config(settings, epochs), from_model=from_model,
                             profile_for=lambda name: resolver.profile_for(name).name, progress=progress,
                             should_stop=should_stop, activate=False)
    except TrainingCancelled:
        runs.update(training_id, status="cancelled", finished_at=time.time(), stage="cancelled")
        return EXIT_CANCELLED
    except Exception as ex:  # noqa: BLE001 - recorded for /admin/training-status, then the process exits
        log.exception("training %s failed", training_id)
        runs.update(training_id, status="failed", finished_at=time.time(), stage="failed",
                    error=f"{type(ex).__name__}: {ex}")
        return 1
    promotion = _promotion(settings, series, result.name)
    runs.update(training_id, status="completed", finished_at=time.time(), stage="completed", epoch=epochs,
                percent=100.0, eta_minutes=0.0, model_name=result.name, promoted=promotion["promote"],
                promotion=promotion)
    log.info("training %s produced %s: %s", training_id, result.name, promotion["reason"])
    return 0


def _promotion(settings: Settings, series: Mapping, new_name: str) -> dict:
    """Score the new and the current model on the same newest held-back day; apply ARGUS_AUTO_PROMOTE."""
    from argus.adapters.tft.registry import DirectoryModelRegistry
    from argus.domain.training import decide_promotion

    registry = DirectoryModelRegistry(settings.model_dir)
    current = registry.current()
    end = max(int(s.ts.max()) for s in series.values())
    start = end - int(float(training_config(settings, 1).holdout_days) * 86_400)
    new_score = _score(registry, new_name, series, start)
    current_score = _score(registry, current, series, start) if current else None
    promote, reason = decide_promotion(settings.auto_promote, new_score, current_score)
    return {"rule": settings.auto_promote, "promote": promote, "reason": reason, "new_model": new_name,
            "new_score": new_score, "current_model": current, "current_score": current_score,
            "score": "mean MAE of cpu_pct and mem_pct over the 8-hour horizon on the newest held-back day"}


def _score(registry, name: str, series: Mapping, start: int) -> float | None:
    from argus.adapters.blend import BlendForecaster
    from argus.adapters.tft.evaluation import evaluate

    try:
        forecaster = BlendForecaster.load(registry, name, device="cpu")
        report, _ = evaluate(forecaster, series, origins=4, start_epoch_s=start)
        maes = [report["targets"][t]["8h"]["mae"] for t in ("cpu_pct", "mem_pct")]
        return round(sum(maes) / len(maes), 4)
    except Exception as ex:  # noqa: BLE001 - an unscorable model is reported, never promoted by "better"
        log.warning("could not score model %s: %s", name, ex)
        return None

