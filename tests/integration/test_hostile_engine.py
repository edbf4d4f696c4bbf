"""Bad records already in the database (written before the API refused them) cannot silence or poison the
engine: the real (tiny) TFT, the SQL store, the engine's windows, ticks and published snapshots."""

from __future__ import annotations

import json
import math
import re

import attrs
import pytest
from dependency_injector import providers

from argus.domain.metrics import FIELD_INDEX, Record, utc_from_epoch
from argus.entrypoints.container import Container
from tests.model.conftest import synthetic_records

pytestmark = pytest.mark.slow
YEAR_2099_S = 4_070_908_800  # 2099-01-01T00:00:00Z


@pytest.fixture
def engine_container(settings, engine_model_dir):
    container = Container()
    container.settings.override(providers.Object(attrs.evolve(settings, model_dir=engine_model_dir)))
    yield container
    container.shutdown_resources()


def _dated(record: Record, epoch_s: int) -> Record:
    return attrs.evolve(record, timestamp=utc_from_epoch(epoch_s))


def _with(record: Record, **values: float) -> Record:
    row = list(record.values)
    for name, value in values.items():
        row[FIELD_INDEX[name]] = value
    return attrs.evolve(record, values=tuple(row))


def test_a_far_future_record_in_the_database_does_not_stop_the_servers_forecasts(engine_container):
    store = engine_container.store()
    records = synthetic_records(servers=2, days=1.0)
    last = max(r.epoch_s for r in records if r.server_name == "ppdb000")
    store.write_batch(records)
    store.write_batch([_dated(records[0], YEAR_2099_S)])  # ppdb000, dated 2099
    engine = engine_container.engine()
    engine.start()
    forecast = engine.tick().forecasts["ppdb000"]
    assert int(forecast.timestamps[0]) == last + 300  # right after the real last step, not after 2099

    store.write_batch([_dated(records[1], YEAR_2099_S + 300)])  # one more arrives while the engine runs
    engine.keeper.poll()
    assert engine.tick().forecasts["ppdb000"].timestamps[0] == last + 300
    body = json.loads(store.read_published("predictions").body)
    assert body["predictions"]["ppdb000"]["forecast"]["timestamps"][0] == utc_from_epoch(last + 300).replace(
        tzinfo=None).isoformat()


def test_stored_extreme_values_give_finite_scores_and_alerts_that_agree_with_the_predictions(engine_container):
    store = engine_container.store()
    records = synthetic_records(servers=4, days=1.0)
    glitch_from = max(r.epoch_s for r in records) - 6 * 300  # the last half hour of ppweb001 and ppweb003
    records = [_with(r, net_in_mb_s=1e308, net_out_mb_s=1e308) if r.server_name == "ppweb001" and r.epoch_s > glitch_from
               else _with(r, load_average=1e308, net_in_mb_s=1e300) if r.server_name == "ppweb003" and r.epoch_s > glitch_from
               else r for r in records]
    store.write_batch(records)
    engine = engine_container.engine()
    engine.start()
    for _ in range(2):
        result = engine.tick()
        assert len(result.assessments) == 4
        for a in result.assessments:
            assert math.isfinite(a.score) and math.isfinite(a.prob_30m) and math.isfinite(a.prob_8h), a
        for forecast in result.forecasts.values():
            assert all(math.isfinite(float(v.max())) for v in forecast.values.values())

        predictions = store.read_published("predictions").body
        assert not re.search(r"\bNaN\b|Infinity|\binf\b", predictions)
        body = json.loads(predictions)
        assert 0.0 <= body["summary"]["prob_30m"] <= body["summary"]["prob_8h"] <= 1.0
        alerts = {a["server_name"]: a["level"] for a in json.loads(store.read_published("alerts").body)["alerts"]}
        levels = {name: p["alert"]["level"] for name, p in body["predictions"].items()}
        assert {name: alerts.get(name, "healthy") for name in levels} == levels
    assert levels["ppweb003"] == "critical"  # its load is over the limit now: clipped, not infinite
