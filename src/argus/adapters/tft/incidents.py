"""`argus evaluate --incidents`: replay a records file through the real pipeline and grade the alerts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from argus.domain.backtest import Incident, Negative, Replay, grade, incidents_in_records, replay
from argus.domain.metrics import Record
from argus.domain.profiles import ProfileResolver
from argus.domain.series import WARM_UP_S, ServerSeries, records_between
from argus.domain.ticks import Predictor


def replay_period(forecaster, series: Mapping[str, ServerSeries], start_epoch_s: int, profiles: ProfileResolver,
                  tick_minutes: int = 30, capacity: int = 2880) -> tuple[Replay, list[Record]]:
    """Replay ``series`` through forecast → risk → alerts from a day before ``start_epoch_s`` to its end."""
    end = max(int(s.ts.max()) for s in series.values())
    records = records_between(series, start_epoch_s - WARM_UP_S, end)
    predictor = Predictor(forecaster, profiles)
    run = replay(records, predictor, capacity=capacity, tick_steps=max(1, tick_minutes // 5),
                 start_epoch_s=start_epoch_s)
    return run, records


def evaluate_incidents(
    forecaster,
    series: Mapping[str, ServerSeries],
    start_epoch_s: int,
    profiles: ProfileResolver,
    labels: Sequence[Incident] | None = None,
    tick_minutes: int = 30,
    capacity: int = 2880,
    negatives: Sequence[Negative] = (),
) -> dict[str, object]:
    """Replay ``series`` from a day before ``start_epoch_s`` to the end, ticking every ``tick_minutes``.

    ``labels`` replace the limit breaches found in the data; ``negatives`` (labelled look-alikes) are
    counted against the false alerts near them.
    """
    run, records = replay_period(forecaster, series, start_epoch_s, profiles, tick_minutes, capacity)
    incidents = list(labels) if labels is not None else incidents_in_records(records, profiles)
    report = grade(run, incidents, negatives)
    report["incident_source"] = "labels" if labels is not None else "limit breaches in the data"
    report["tick_minutes"] = tick_minutes
    return report
