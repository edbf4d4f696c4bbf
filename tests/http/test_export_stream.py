"""The CSV exports stream: the same bytes as the whole-body export wrote, a chunk of rows at a time."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import UTC, datetime

import orjson
import pytest
import sqlalchemy as sa
from falcon import testing

from argus.adapters.http.history import ALERT_COLUMNS, ENVIRONMENT_COLUMNS, alert_values, snapshot_values
from argus.adapters.sql import history as sql_history
from argus.adapters.sql.database import create_db_engine, migrate
from argus.adapters.sql.history import SqlHistoryStore
from argus.adapters.sql.store import SqlMetricsStore
from argus.domain.alerts import AlertEvent, AlertLevel, EventType
from argus.domain.risk import summarize
from argus.domain.ticks import TickResult
from tests.conftest import API_KEY

MESSAGES = ('Disk "data", nearly full\nsee runbook, step 2', "Mémoire ≥ 95 % — «swap»", "plain", "back\\slash\ttab")


def _tick(store, at: datetime, events: int, offset: int = 0) -> None:
    """One recorded tick with ``events`` alert events, all at the tick's time (ties broken by id)."""
    made = [AlertEvent(at=at, server_name=f"srv{offset + i:03d}", event_type=EventType.RAISED,
                       previous_level=AlertLevel.HEALTHY, new_level=AlertLevel.WARNING, risk_score=60.0 + i / 7,
                       message=MESSAGES[i % len(MESSAGES)], profile="Database", raised_at=at,
                       peak_level=AlertLevel.WARNING) for i in range(events)]
    store.record_tick(TickResult(at=at, model_name="fixed", assessments=[], forecasts={}, windows={}, events=made,
                                 active=[], summary=summarize([]), servers_warming_up=0, records_in_windows=0,
                                 min_history_steps=12, duration_s=0.0), {})


def _seed(store, ticks: int = 6, events_per_tick: int = 4) -> None:
    now = time.time()
    for k in range(ticks):
        _tick(store, datetime.fromtimestamp(now - 3600 * (ticks - k), tz=UTC), events_per_tick, offset=10 * k)


def previous_export(history: SqlHistoryStore, table: str, now: float, filename: str, accept_csv: bool) -> bytes:
    """What the export answered before it streamed: the whole CSV built in memory, then sent."""
    start, end = now - 30 * 86400, now
    if table == "alerts":
        rows = map(alert_values, reversed(history.alert_events(start, end)))
        columns = ALERT_COLUMNS
    else:
        rows, columns = map(snapshot_values, history.fleet_snapshots(start, end)), ENVIRONMENT_COLUMNS
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    if accept_csv:
        return out.getvalue().encode()
    return orjson.dumps({"success": True, "table": table, "time_range": "1M", "csv_data": out.getvalue(),
                         "filename": filename})


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(sql_history, "EXPORT_CHUNK_ROWS", 3)  # 24 events: 8 chunks, ties across their edges


@pytest.mark.parametrize("table", ["alerts", "environment"])
@pytest.mark.parametrize("accept_csv", [False, True])
def test_the_streamed_export_is_byte_for_byte_the_previous_export(client, container, small_chunks, table,
                                                                  accept_csv):
    _seed(container.store())
    headers = {"Accept": "text/csv"} if accept_csv else {}
    result = client.simulate_get(f"/historical/export/{table}", params={"time_range": "1M"}, headers=headers)
    assert result.status_code == 200
    if accept_csv:
        assert result.headers["content-type"] == "text/csv; charset=utf-8"
        filename = re.search(r'filename="([^"]+)"', result.headers["content-disposition"]).group(1)
    else:
        assert result.headers["content-type"] == "application/json"
        filename = result.json["filename"]
    expected = previous_export(container.history(), table, time.time(), filename, accept_csv)
    assert result.content == expected
    assert expected.count(b"srv") >= 24 if table == "alerts" else len(expected) > 200


@pytest.mark.parametrize("accept_csv", [False, True])
def test_an_empty_range_streams_the_header_alone(client, container, accept_csv):
    headers = {"Accept": "text/csv"} if accept_csv else {}
    result = client.simulate_get("/historical/export/alerts", params={"time_range": "1M"}, headers=headers)
    header = ",".join(ALERT_COLUMNS) + "\n"
    assert (result.text if accept_csv else result.json["csv_data"]) == header


@pytest.mark.parametrize("accept", ["text/csv", "application/json"])
def test_the_export_is_a_stream_read_a_chunk_at_a_time_as_the_client_reads(container, small_chunks, accept):
    store = container.store()
    _seed(store)
    app = container.app()
    queries = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *rest: queries.append(statement)
                    if "FROM alert_events" in statement else None)
    environ = testing.create_environ(path="/historical/export/alerts", query_string="time_range=1M",
                                     headers={"X-API-Key": API_KEY, "Accept": accept})
    status = []
    body = app(environ, lambda s, headers, exc_info=None: status.append(s))
    assert status == ["200 OK"]
    assert not isinstance(body, (bytes, list, tuple))  # an iterator, not a built body
    assert len(queries) == 1  # the first chunk is read before answering (a failing database is still an error)
    chunks = [next(iter(body))]
    assert len(queries) <= 2
    chunks += list(body)
    assert len(queries) == 9  # 24 events in chunks of 3, and the query that found no more
    assert len([c for c in chunks if c]) >= 9
    assert max(map(len, chunks)) < len(b"".join(chunks)) / 4


def test_chunks_resume_after_ties_without_losing_or_repeating_an_event(database_url):
    engine = create_db_engine(database_url)
    migrate(engine)
    try:
        store, history = SqlMetricsStore(engine), SqlHistoryStore(engine)
        at = datetime.fromtimestamp(time.time() - 600, tz=UTC)
        _tick(store, at, 7)
        _tick(store, datetime.fromtimestamp(at.timestamp() + 300, tz=UTC), 2, offset=50)
        start, end = at.timestamp() - 1, at.timestamp() + 301
        chunks = list(history.alert_event_chunks(start, end, chunk_rows=3))
        assert [len(c) for c in chunks] == [3, 3, 3]
        assert [e for chunk in chunks for e in chunk] == list(reversed(history.alert_events(start, end)))
    finally:
        engine.dispose()
