"""Explanations under a big tick: the engine answers them between forecast chunks, of the last published tick.

A tick of 1,000 servers takes 7-13 s on a small CPU; requests that waited for its end timed out
(503). The engine now hands the predictor a callback that its chunked forecaster calls between
chunks, where pending ``explain`` requests are answered (other kinds wait for the end of the tick).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import attrs
import numpy as np
import pytest
from dependency_injector import providers

from argus.adapters.http.snapshots import render_status
from argus.adapters.sql.channel import SqlEngineChannel
from argus.domain.channel import EngineClient, RequestRouter
from argus.domain.metrics import FIELD_INDEX, Record, wire_time
from argus.domain.partitions import Ownership
from argus.domain.profiles import ProfileResolver
from argus.domain.schedule import TickScheduler
from argus.domain.services import MID_TICK_KINDS, Engine, EngineParts, EngineStatus, WindowKeeper
from argus.domain.sharding import OwnedRequests
from argus.domain.ticks import Predictor
from argus.entrypoints.container import Container
from argus.testing import FixedForecaster, make_record
from tests.model.conftest import synthetic_records

SERVERS = ("ppdb001", "ppdb002", "ppweb001", "ppweb002")
TICK_AT = (1_736_985_600.0, 1_736_985_900.0)  # the engine's clock at tick 1 and tick 2


class SlowChunkedForecaster(FixedForecaster):
    """FixedForecaster in chunks of one server, each sleeping ``chunk_s``, calling ``between_chunks`` between them."""

    def __init__(self, **paths) -> None:
        super().__init__(**paths)
        self.chunk_s = 0.0
        self.first_chunk = threading.Event()

    def forecast(self, windows, profiles, between_chunks=None):
        out = {}
        for i, window in enumerate(windows):
            if i and between_chunks is not None:
                between_chunks()
            self.first_chunk.set()
            time.sleep(self.chunk_s)
            out.update(super().forecast([window], profiles))
        return out


class Clock:
    def __init__(self) -> None:
        self.now = TICK_AT[0]

    def __call__(self) -> float:
        return self.now


def _slow_engine(sql_store, clock: Clock) -> tuple[Engine, SlowChunkedForecaster, SqlEngineChannel]:
    forecaster = SlowChunkedForecaster(ppdb001={"mem_pct": np.linspace(60, 97, 96)})
    channel = SqlEngineChannel(sql_store.engine)
    engine = Engine(WindowKeeper(sql_store, capacity=288, clock=clock), sql_store, EngineStatus(clock(), 288),
                    render_status, EngineParts(predictor=Predictor(forecaster, ProfileResolver()), tick_log=sql_store),
                    TickScheduler(clock=clock))

    def explain(payload):  # what the engine would explain: the last tick's assessment of the server
        result = engine.last_result
        assessment = next(a for a in result.assessments if a.server_name == payload["server_name"])
        return {"tick_at": result.at.isoformat(), "risk_score": assessment.score}

    reloads = []
    engine.parts.router = RequestRouter(channel, {"explain": explain, "reload_model": lambda p: reloads.append(p) or {}})
    for step in range(24):
        sql_store.write_batch([make_record(name, step, mem_used_pct=50.0 + step) for name in SERVERS])
    engine.start()
    return engine, forecaster, channel


def _tick_twice(sql_store, interleave: bool):
    """Tick 1 quickly; new data; tick 2 slowly, with an explain and a reload request issued mid-tick if asked."""
    clock = Clock()
    engine, forecaster, channel = _slow_engine(sql_store, clock)
    first = engine.tick()
    sql_store.write_batch([make_record(name, 24, mem_used_pct=80.0) for name in SERVERS])
    engine.keeper.poll()
    clock.now, forecaster.chunk_s = TICK_AT[1], 0.4
    seen: dict[str, object] = {}

    def client() -> None:
        forecaster.first_chunk.wait(30)
        seen["reload"] = channel.submit("reload_model", {"name": None}, time.time() + 60)
        seen["body"] = EngineClient(channel, poll_s=0.02).call("explain", {"server_name": "ppdb001"}, timeout_s=30)
        seen["answered_at"] = time.perf_counter()
        # The engine publishes the heartbeat just after answering: wait a moment for it (the tick goes on
        # for two more 0.4 s chunks, and a status of the tick's end would name tick 2, not tick 1).
        deadline = time.monotonic() + 0.5
        status = sql_store.read_published("status")
        while status.updated_at < seen["tick_started_at"] and time.monotonic() < deadline:
            time.sleep(0.01)
            status = sql_store.read_published("status")
        seen["heartbeat_at"], seen["status"] = status.updated_at, status.body

    handled_mid_tick: list[int] = []  # engine side: requests answered by each call inside the tick
    handle_pending = engine.parts.router.handle_pending

    def counting(*args, **kwargs) -> int:
        handled = handle_pending(*args, **kwargs)
        handled_mid_tick.append(handled)
        return handled

    thread = threading.Thread(target=client, daemon=True)
    if interleave:
        thread.start()
    seen["tick_started_at"] = time.time()
    engine.parts.router.handle_pending = counting
    try:
        second = engine.tick()
    finally:
        engine.parts.router.handle_pending = handle_pending
    seen["handled_mid_tick"] = handled_mid_tick
    ended_at = time.perf_counter()
    if interleave:
        thread.join(30)
    return engine, channel, first, second, seen, ended_at


@pytest.mark.timeout(60)
def test_an_explanation_issued_mid_tick_is_answered_before_the_tick_ends_of_the_previous_tick(sql_store):
    engine, channel, first, second, seen, ended_at = _tick_twice(sql_store, interleave=True)

    # answered by the engine inside the tick (counted engine-side: a busy CPU may wake the client late)
    assert sum(seen["handled_mid_tick"]) >= 1
    assert seen["body"] == {"tick_at": first.at.isoformat(),
                            "risk_score": next(a.score for a in first.assessments if a.server_name == "ppdb001")}
    # the heartbeat stays fresh inside a long tick, and names the published tick
    assert seen["heartbeat_at"] >= seen["tick_started_at"]
    assert json.loads(seen["status"])["last_prediction"] == wire_time(first.at)
    # a model reload would change the forecaster under the tick: it waits for the tick's end
    assert channel.state(seen["reload"]).status == "pending"
    engine.parts.router.handle_pending()
    assert channel.state(seen["reload"]).status == "done"


def test_a_tick_is_the_same_with_and_without_requests_answered_between_its_chunks(database_url, tmp_path):
    from argus.adapters.sql.database import create_db_engine, migrate
    from argus.adapters.sql.store import SqlMetricsStore

    ticks = []
    for interleave in (False, True):
        url = database_url if interleave else f"sqlite:///{tmp_path / 'plain.db'}"
        db = create_db_engine(url)
        migrate(db)
        try:
            *_, second, seen, _ = _tick_twice(SqlMetricsStore(db), interleave)
        finally:
            db.dispose()
        assert ("body" in seen) is interleave
        ticks.append(second)
    plain, interleaved = ticks
    assert interleaved.assessments == plain.assessments and interleaved.events == plain.events
    assert interleaved.active == plain.active and interleaved.summary == plain.summary
    assert interleaved.forecasts.keys() == plain.forecasts.keys()
    for name, forecast in plain.forecasts.items():
        assert all(np.array_equal(v, interleaved.forecasts[name].values[t]) for t, v in forecast.values.items())


# ------------------------------------------------------------------ the served blend (tiny TFT)


def _blend_run(settings, model_dir, interleave: bool):
    """Two ticks of the served blend in chunks of one server, skill re-measured every step.

    With ``interleave`` the explanation of the first chunk's server is requested after that chunk
    (so its blend state has already moved on to tick 2) and answered between chunks; without,
    it is answered just before tick 2 starts. Returns tick 2 and the explanation body.
    """
    container = Container()
    container.settings.override(providers.Object(attrs.evolve(settings, model_dir=model_dir)))
    try:
        records = _leaking(synthetic_records(servers=4, days=1.0), "ppdb000")  # the first chunk's server
        last = max(r.timestamp for r in records)
        store = container.store()
        store.write_batch([r for r in records if r.timestamp < last])
        engine = engine_of(container)
        engine.start()
        blend = engine.predictor.forecaster
        blend.config = attrs.evolve(blend.config, skill_refresh_steps=1)  # tick 2 re-measures every server
        blend.chunk = 1
        engine.tick()
        store.write_batch([r for r in records if r.timestamp == last])
        engine.keeper.poll()
        engine.schedule.clock = lambda: TICK_AT[1]
        channel = container.channel()
        request: list[int] = []
        chunk = blend._blend_chunk
        done_before_last_chunk = []

        def watched_chunk(windows, *args):
            out = chunk(windows, *args)
            if interleave and not request:
                request.append(channel.submit("explain", {"server_name": windows[0].server_name}, time.time() + 60))
            elif request:
                done_before_last_chunk.append(channel.state(request[0]).status == "done")
            return out

        if interleave:
            blend._blend_chunk = watched_chunk
        else:
            first = engine.keeper.windows.ready(blend.min_history_steps)[0].server_name
            request.append(channel.submit("explain", {"server_name": first}, time.time() + 60))
            engine.parts.router.handle_pending()
        second = engine.tick()
        assert not interleave or done_before_last_chunk[-1]
        state = channel.state(request[0])
        assert state.status == "done", state
        body = {k: v for k, v in state.result.items() if k not in ("computed_in_s", "cached")}
        body["shap"] = {k: v for k, v in body["shap"].items() if k != "seconds"}  # timings differ
        return second, body
    finally:
        container.shutdown_resources()


def _leaking(records: list[Record], server: str) -> list[Record]:
    """Give ``server`` a memory leak up to 88 %: the blend's components disagree, so its weights matter."""
    out = []
    for i, record in enumerate(sorted(records, key=lambda r: r.timestamp)):
        if record.server_name == server:
            values = list(record.values)
            values[FIELD_INDEX["mem_used_pct"]] = 50.0 + 38.0 * i / len(records)
            record = attrs.evolve(record, values=tuple(values))
        out.append(record)
    return out


def engine_of(container: Container) -> Engine:
    engine = container.engine()
    engine.schedule.clock = lambda: TICK_AT[0]
    return engine


@pytest.mark.slow  # trains the session's tiny TFT when no other test did
def test_the_blend_explains_mid_tick_with_the_previous_ticks_state_and_ticks_the_same(settings, engine_model_dir,
                                                                                     tmp_path):
    plain_tick, before = _blend_run(attrs.evolve(settings, data_dir=tmp_path / "a",
                                                 database_url=f"sqlite:///{tmp_path / 'a.db'}"), engine_model_dir, False)
    mid_tick, during = _blend_run(attrs.evolve(settings, data_dir=tmp_path / "b",
                                               database_url=f"sqlite:///{tmp_path / 'b.db'}"), engine_model_dir, True)

    assert during["tick_at"] == wire_time(datetime.fromtimestamp(TICK_AT[0], tz=UTC))
    assert during == before  # the same explanation as a moment before the tick: tick 1's forecast, state and score
    assert [attrs.asdict(a) for a in mid_tick.assessments] == [attrs.asdict(a) for a in plain_tick.assessments]
    for name, forecast in plain_tick.forecasts.items():
        assert all(np.array_equal(v, mid_tick.forecasts[name].values[t]) for t, v in forecast.values.items())


def test_a_sharded_engine_answers_mid_tick_only_the_explanations_of_its_servers(sql_store):
    ownership = Ownership(tokens={0: 1, 1: 1})  # partition 0: the admin requests are this engine's
    channel = SqlEngineChannel(sql_store.engine)
    router = RequestRouter(OwnedRequests(channel, ownership),
                           {"explain": lambda payload: {"ok": True}, "reload_model": lambda payload: {}})
    mine = next(f"srv{i}" for i in range(1000) if ownership.owns(f"srv{i}"))
    other = next(f"srv{i}" for i in range(1000) if not ownership.owns(f"srv{i}"))
    deadline = time.time() + 60
    ids = {"mine": channel.submit("explain", {"server_name": mine}, deadline),
           "other": channel.submit("explain", {"server_name": other}, deadline),
           "reload": channel.submit("reload_model", {}, deadline)}

    assert router.handle_pending(kinds=MID_TICK_KINDS) == 1  # as between a tick's chunks
    assert {key: channel.state(i).status for key, i in ids.items()} == {
        "mine": "done", "other": "pending", "reload": "pending"}
    assert router.handle_pending() == 1  # after the tick
    assert channel.state(ids["reload"]).status == "done" and channel.state(ids["other"]).status == "pending"


@pytest.mark.slow  # trains the session's tiny TFT when no other test did
def test_requests_answered_between_precomputed_explanations_are_of_the_published_tick(engine_model_dir):
    from argus.adapters.explain.service import ExplainService, published_key
    from argus.adapters.tft.forecaster import TftForecaster
    from argus.adapters.tft.registry import DirectoryModelRegistry
    from argus.domain.metrics import FleetWindows
    from argus.plugins.host import PluginHost
    from tests.model.conftest import synthetic_values, window_of

    predictor = Predictor(TftForecaster.load(DirectoryModelRegistry(engine_model_dir), device="cpu"), ProfileResolver())
    service = ExplainService(predictor, PluginHost.load(entry_points=False).explainers({}))
    leaking = synthetic_values(288, seed=3, level=30, mem=60)
    leaking[:, FIELD_INDEX["mem_used_pct"]] = np.linspace(55.0, 99.0, 288)  # critical: precomputed every tick
    fleet = FleetWindows(2880)
    fleet.put(window_of("ppweb001", leaking))
    fleet.put(window_of("ppweb002", synthetic_values(288, seed=4)))
    first = predictor.tick(fleet, datetime.fromtimestamp(TICK_AT[0], tz=UTC))
    service.observe(first)
    second = predictor.tick(fleet, datetime.fromtimestamp(TICK_AT[1], tz=UTC))
    answered = []

    bodies = service.observe(second, between_chunks=lambda: answered.append(
        service.handle({"server_name": "ppweb002"})["tick_at"]))

    assert published_key("ppweb001") in bodies
    assert answered == [wire_time(first.at)]  # tick 2 is not published until its bodies are recorded
    assert service.handle({"server_name": "ppweb002"})["tick_at"] == wire_time(second.at)
