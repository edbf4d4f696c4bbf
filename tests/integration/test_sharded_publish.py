"""Sharded engines on one database: leases through SQL, fenced publishes, one merged answer for readers.

Runs on SQLite (the SQL is the same; sharding itself is refused there at start-up) and on
PostgreSQL when configured. Lease times come from a fake clock.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from argus.adapters.http.merged import ShardedPublished
from argus.adapters.http.snapshots import render_partitions, render_predictions, render_status
from argus.adapters.sql import tables as t
from argus.adapters.sql.leases import SqlPartitionLeases
from argus.adapters.sql.shards import SqlShardPublisher, SqlShardReader
from argus.domain.errors import ConfigurationError
from argus.domain.metrics import FleetWindows
from argus.domain.partitions import Ownership
from argus.domain.profiles import ProfileResolver
from argus.domain.services import Engine, EngineParts, EngineStatus, WindowKeeper
from argus.domain.sharding import OwnedFeed, OwnedRequests, PartitionedEngine
from argus.domain.ticks import Predictor
from argus.entrypoints.container import make_leader_lock
from argus.testing import FixedForecaster, ramp
from tests.model.conftest import synthetic_records

SERVERS = 12


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _forecaster() -> FixedForecaster:
    return FixedForecaster(ppdb000={"mem_pct": ramp(60.0, 99.0)})  # crosses 95 %: an alert to merge


class Sharded:
    """One sharded engine wired as the container wires it, with leases on a fake clock."""

    def __init__(self, store, engine_id: str, clock: Clock) -> None:
        self.ownership = Ownership()
        self.leases = SqlPartitionLeases(store.engine, engine_id, ttl_s=10.0, clock=clock)
        self.publisher = SqlShardPublisher(store, engine_id, self.ownership)
        self.held: dict[int, int] = {}
        feed = OwnedFeed(store, self.ownership, store.server_names, self.publisher.histories_of)
        engine = Engine(WindowKeeper(feed, capacity=288), published=self.publisher,
                        status=EngineStatus(started_at=clock(), rolling_window_size=288, model_loaded=True),
                        render_status=render_status,
                        parts=EngineParts(predictor=Predictor(_forecaster(), ProfileResolver()),
                                          tick_log=self.publisher, render=render_partitions))
        self.loop = PartitionedEngine(engine, self.ownership, lambda: self.held, feed,
                                      self.publisher.active_alerts_in)
        self.engine = engine

    def sync(self) -> dict[int, int]:
        self.held = self.leases.sync()
        return self.held


@pytest.fixture
def fleet(sql_store):
    records = synthetic_records(servers=SERVERS, days=0.25)
    sql_store.write_batch(records)
    return sql_store, records


def _share(store, clock) -> tuple[Sharded, Sharded]:
    a, b = Sharded(store, "a", clock), Sharded(store, "b", clock)
    assert len(a.sync()) == 64 and b.sync() == {}  # a alone claimed everything; b is now a member
    assert len(a.sync()) == 32  # a gives back what is above its share of two
    assert len(b.sync()) == 32
    assert not set(a.held) & set(b.held)
    return a, b


def _single_engine_bodies(records) -> dict:
    windows = FleetWindows(288)
    windows.add(records)
    from datetime import UTC, datetime

    result = Predictor(_forecaster(), ProfileResolver()).tick(windows, datetime.now(UTC))
    return render_predictions(result)


def test_two_engines_forecast_disjoint_halves_and_readers_get_the_single_engines_answer(fleet):
    store, records = fleet
    a, b = _share(store, Clock())
    a.loop.start()
    b.loop.start()
    assert len(a.engine.keeper.windows) + len(b.engine.keeper.windows) == SERVERS
    assert not {w.server_name for w in a.engine.keeper.windows} & {w.server_name for w in b.engine.keeper.windows}
    a.engine.tick()
    b.engine.tick()

    reader = ShardedPublished(store, SqlShardReader(store.engine))
    merged = json.loads(reader.read_published("predictions").body)
    single = _single_engine_bodies(records)
    assert list(merged["predictions"]) == sorted(single["predictions"])  # one entry per server, sorted
    assert merged["predictions"] == single["predictions"]
    assert merged["summary"] == single["summary"]
    assert merged["alerts"] == single["alerts"]
    assert "ppdb000" in {x["server_name"] for x in merged["alerts"]}
    alerts = json.loads(reader.read_published("alerts").body)
    assert [x["server_name"] for x in alerts["alerts"]] == [x["server_name"] for x in single["alerts"]]
    status = json.loads(reader.read_published("status").body)
    assert status["servers_tracked"] == SERVERS and len(status["engines"]) == 2
    assert sorted(e["partitions"] for e in status["engines"]) == [32, 32]
    (a if 0 in a.held else b).engine.tick()  # the holder of partition 0 records the fleet, over both halves
    with store.engine.connect() as connection:
        totals = connection.execute(sa.select(t.fleet_snapshots.c.total_servers)
                                    .order_by(t.fleet_snapshots.c.id)).scalars().all()
    assert totals[-1] == SERVERS


def test_a_publish_after_the_lease_moved_is_refused_and_the_new_owner_loads_the_servers(fleet):
    store, _ = fleet
    clock = Clock()
    a, b = _share(store, clock)
    a.loop.start()
    b.loop.start()
    clock.now += 11.0  # a is paused past its lease; b's round sees it gone and takes every partition
    assert len(b.sync()) == 64
    assert all(b.held[p] == token + 1 for p, token in a.held.items())
    b.loop.step()
    assert len(b.engine.keeper.windows) == SERVERS  # a's servers were loaded from the database
    b.engine.tick()

    refused = a.publisher.record_tick(a.engine.predictor.tick(a.engine.keeper.windows, b.engine.last_result.at),
                                      render_partitions(b.engine.last_result))
    assert refused == set(a.held)  # every partition a still thought it held
    with store.engine.connect() as connection:
        owners = set(connection.execute(sa.select(t.partition_snapshots.c.engine_id)).scalars())
        late = connection.execute(sa.select(sa.func.count()).select_from(t.partition_publishes)
                                  .where(t.partition_publishes.c.engine_id == "a",
                                         t.partition_publishes.c.at >= b.engine.last_result.at.timestamp()))
        assert late.scalar_one() == 0
    assert owners == {"b"}
    assert a.sync() == {}  # a's next round: nothing left to renew (b holds the new tokens)
    a.loop.step()
    assert len(a.engine.keeper.windows) == 0


def test_an_open_alert_moves_with_its_partition(fleet):
    store, _ = fleet
    clock = Clock()
    a, b = _share(store, clock)
    a.loop.start()
    b.loop.start()
    a.engine.tick()
    b.engine.tick()
    holder, other = (a, b) if a.ownership.owns("ppdb000") else (b, a)
    raised = {x.server_name: x.raised_at.timestamp() for x in holder.engine.predictor.tracker.active()}
    assert "ppdb000" in raised
    clock.now += 11.0
    other.sync()
    other.loop.step()
    resumed = {x.server_name: x.raised_at.timestamp() for x in other.engine.predictor.tracker.active()}
    assert {name: resumed.get(name) for name in raised} == pytest.approx(raised)  # resumed, not raised again


def test_each_engine_claims_only_the_requests_about_its_servers():
    ownership = Ownership(tokens={1: 1})
    requests = OwnedRequests(channel=None, ownership=ownership)
    mine = next(f"srv{i}" for i in range(1000) if ownership.owns(f"srv{i}"))
    other = next(f"srv{i}" for i in range(1000) if not ownership.owns(f"srv{i}"))
    assert requests.accepts("explain", {"server_name": mine})
    assert not requests.accepts("explain", {"server_name": other})
    assert not requests.accepts("reload_model", {})  # admin requests: the holder of partition 0
    ownership.tokens[0] = 3
    assert requests.accepts("reload_model", {})


def test_sharding_on_sqlite_is_refused_at_start(tmp_path, settings):
    import attrs

    from argus.adapters.sql.database import create_db_engine

    engine = create_db_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ConfigurationError, match="needs PostgreSQL"):
        make_leader_lock(engine, attrs.evolve(settings, engine_sharding=True))
    engine.dispose()


def test_readers_serve_whichever_of_single_engine_and_partitions_published_last(fleet):
    store, _ = fleet
    reader = ShardedPublished(store, SqlShardReader(store.engine))
    store.publish({"predictions": '{"from": "single"}'})
    assert json.loads(reader.read_published("predictions").body) == {"from": "single"}  # no partitions yet
    a, b = _share(store, Clock())
    a.loop.start()
    a.engine.tick()
    assert "predictions" in json.loads(reader.read_published("predictions").body)  # partitions are newer
    store.publish({"predictions": '{"from": "single"}'})  # back to one engine: its newer body wins
    assert json.loads(reader.read_published("predictions").body) == {"from": "single"}
