"""`argus evaluate --incidents`: replay a records file through the real pipeline and grade the alerts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from argus.adapters.tft.data import ServerSeries
from argus.domain.backtest import Incident, Negative, Replay, grade, incidents_in_records, replay
from argus.domain.metrics import STATUS_VALUES, Record, utc_from_epoch
from argus.domain.profiles import ProfileResolver
from argus.domain.ticks import Predictor

WARM_UP_S = 86_400  # records fed before the graded period, so windows are full when it starts


def records_between(series: Mapping[str, ServerSeries], start: int, end: int) -> list[Record]:
    """The records of every server with start <= ts <= end, in replay order (time, then server)."""
    rows = []
    for name, s in series.items():
        for i in range(len(s)):
            ts = int(s.ts[i])
            if start <= ts <= end:
                rows.append((ts, name, i))
    rows.sort()
    return [
        Record(utc_from_epoch(ts), name, STATUS_VALUES[int(series[name].status[i])],
               tuple(float(v) for v in series[name].values[i]))
        for ts, name, i in rows
    ]


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
