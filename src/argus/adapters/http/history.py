"""GET /historical/*: summaries, alert events, server history, fleet snapshots and CSV exports.

Read-only: history is written by the engine on its ticks, never here.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import time
from collections.abc import Callable, Iterable, Iterator

import falcon
import orjson

from argus.adapters.http.schemas import RequestValidationError
from argus.domain.errors import UnknownServerError
from argus.domain.history import (
    DEFAULT_RANGES,
    MAX_SNAPSHOT_POINTS,
    AlertRecord,
    FleetSnapshot,
    InvalidTimeRangeError,
    TimeRange,
    report_server,
)
from argus.ports.history import HistoryStore

#: /historical/alerts answers at most this many events by default (``limit`` up to MAX_ALERTS_LIMIT).
DEFAULT_ALERTS_LIMIT = 1000
MAX_ALERTS_LIMIT = 10_000
ALERT_COLUMNS = ("timestamp", "server_name", "event_type", "previous_level", "new_level", "risk_score",
                 "resolved_at", "resolution_duration_minutes", "raised_at", "message", "profile", "metric",
                 "peak_level", "breached")
ENVIRONMENT_COLUMNS = ("timestamp", "total_servers", "critical_count", "warning_count", "degraded_count",
                       "healthy_count", "fleet_health", "prob_30m", "prob_8h", "expected_incidents_30m",
                       "expected_incidents_8h")
MEDIA_CSV = "text/csv"


def _invalid(field: str, msg: str, kind: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ["query", field], "msg": msg, "type": kind}])


def parse_range(req: falcon.Request, endpoint: str) -> TimeRange:
    """Read ``time_range`` (the endpoint's reference default when absent); 422 when not permitted."""
    try:
        return TimeRange.parse(req.get_param("time_range"), DEFAULT_RANGES[endpoint])
    except InvalidTimeRangeError as ex:
        raise _invalid("time_range", str(ex), "value_error.const") from None


def _int_param(req: falcon.Request, name: str, default: int, low: int, high: int) -> int:
    raw = req.get_param(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(name, "value is not a valid integer", "type_error.integer") from None
    if not low <= value <= high:
        raise _invalid(name, f"ensure this value is between {low} and {high}", "value_error.number.not_in_range")
    return value


@functools.lru_cache(maxsize=65_536)  # events of one tick share its time; an alert's events its raised_at
def iso(epoch_s: float) -> str:
    """``2025-01-15T08:30:00`` (UTC, whole seconds): fast enough for exports of many rows."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s))


def alert_values(r: AlertRecord) -> tuple:
    """An alert event's values in ALERT_COLUMNS order."""
    return (
        iso(r.at_epoch_s), r.server_name, r.event_type, r.previous_level, r.new_level, round(r.risk_score, 1),
        None if r.resolved_at_epoch_s is None else iso(r.resolved_at_epoch_s), r.resolution_duration_minutes,
        iso(r.raised_at_epoch_s), r.message, r.profile, r.metric, r.peak_level, bool(r.breached),
    )


def snapshot_values(s: FleetSnapshot) -> tuple:
    """A snapshot's values in ENVIRONMENT_COLUMNS order."""
    return (iso(s.at_epoch_s), s.total_servers, s.critical_count, s.warning_count, s.degraded_count,
            s.healthy_count, round(s.fleet_health, 1), s.prob_30m, s.prob_8h, s.expected_incidents_30m,
            s.expected_incidents_8h)


def alert_row(record: AlertRecord) -> dict:
    """The reference's alert event, plus raised_at, message, profile, metric, peak_level, breached."""
    return dict(zip(ALERT_COLUMNS, alert_values(record), strict=True))


def snapshot_row(snapshot: FleetSnapshot) -> dict:
    """The reference's snapshot, plus degraded_count, prob_30m, prob_8h and the expected incidents."""
    return dict(zip(ENVIRONMENT_COLUMNS, snapshot_values(snapshot), strict=True))


class _HistoryResource:
    rate_limit_group = "historical"

    def __init__(self, history: HistoryStore, clock: Callable[[], float] = time.time) -> None:
        self._history = history
        self._clock = clock


class SummaryResource(_HistoryResource):
    """GET /historical/summary: alerts, resolution time, incidents prevented, mean fleet health."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        time_range = parse_range(req, "summary")
        start, end = time_range.window(self._clock())
        totals = self._history.alert_totals(start, end)
        resp.media = {
            "success": True, "time_range": time_range.label, "total_alerts": totals.total,
            "alerts_by_level": dict(totals.by_level),
            "avg_resolution_time_minutes": totals.avg_resolution_minutes,
            "incidents_prevented": totals.incidents_prevented,
            "fleet_health_avg": self._history.fleet_health_avg(start, end),
        }


class AlertHistoryResource(_HistoryResource):
    """GET /historical/alerts: the range's alert events, newest first (``server_name`` filters)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        time_range = parse_range(req, "alerts")
        limit = _int_param(req, "limit", DEFAULT_ALERTS_LIMIT, 1, MAX_ALERTS_LIMIT)
        offset = _int_param(req, "offset", 0, 0, 10**9)
        server_name = req.get_param("server_name")
        start, end = time_range.window(self._clock())
        events = self._history.alert_events(start, end, server_name, limit=limit, offset=offset)
        complete = offset == 0 and len(events) < limit  # everything fitted: no need to count
        total = len(events) if complete else self._history.alert_count(start, end, server_name)
        resp.media = {
            "success": True, "time_range": time_range.label, "count": len(events),
            "alerts": [alert_row(e) for e in events],
            "total_count": total, "limit": limit, "offset": offset,
        }


class ServerHistoryResource(_HistoryResource):
    """GET /historical/server/{server_name}: alert count, risk, time in warning/critical, trend."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_name: str) -> None:
        time_range = parse_range(req, "server")
        if not self._history.server_known(server_name):
            raise UnknownServerError(server_name)
        start, end = time_range.window(self._clock())
        series = self._history.risk_series(server_name, start, end)
        report = report_server(series, self._history.alert_totals(start, end, server_name).total, start, end)
        resp.media = {
            "success": True, "server_name": server_name, "time_range": time_range.label,
            "alert_count": report.alert_count, "avg_risk_score": report.avg_risk_score,
            "max_risk_score": report.max_risk_score, "time_in_warning_pct": report.time_in_warning_pct,
            "time_in_critical_pct": report.time_in_critical_pct, "risk_trend": report.risk_trend.value,
            "samples": report.samples,
        }


class EnvironmentResource(_HistoryResource):
    """GET /historical/environment: fleet snapshots, thinned evenly to at most 300 points."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        time_range = parse_range(req, "environment")
        snapshots = self._history.fleet_snapshots(*time_range.window(self._clock()), max_points=MAX_SNAPSHOT_POINTS)
        resp.media = {
            "success": True, "time_range": time_range.label, "count": len(snapshots),
            "snapshots": [snapshot_row(s) for s in snapshots],
        }


class ExportResource(_HistoryResource):
    """GET /historical/export/{alerts|environment}: CSV in a JSON envelope, or the file for Accept: text/csv.

    Both are streamed: rows are read a chunk at a time and written as they come, so the download
    starts at once and memory stays one chunk however long the range. The first chunk is read
    before the response starts, so a database failure is still an error response.
    """

    def on_get(self, req: falcon.Request, resp: falcon.Response, table: str) -> None:
        if table not in ("alerts", "environment"):
            raise falcon.HTTPNotFound(description=f"Unknown export table: {table}; use alerts or environment")
        time_range = parse_range(req, "export")
        now = self._clock()
        start, end = time_range.window(now)
        if table == "alerts":
            columns, render, chunks = ALERT_COLUMNS, alert_values, self._history.alert_event_chunks(start, end)
        else:
            columns, render = ENVIRONMENT_COLUMNS, snapshot_values
            chunks = self._history.fleet_snapshot_chunks(start, end)
        first = next(chunks, [])
        csv_parts = csv_chunks(columns, (map(render, rows) for rows in itertools.chain([first], chunks)))
        filename = f"argus_{table}_{time_range.label}_{time.strftime('%Y%m%d_%H%M%S', time.gmtime(now))}.csv"
        if req.client_prefers([falcon.MEDIA_JSON, MEDIA_CSV]) == MEDIA_CSV:
            resp.content_type = f"{MEDIA_CSV}; charset=utf-8"
            resp.downloadable_as = filename
            resp.stream = (part.encode() for part in csv_parts if part)
            return
        resp.content_type = falcon.MEDIA_JSON
        resp.stream = json_envelope({"success": True, "table": table, "time_range": time_range.label},
                                    "csv_data", csv_parts, {"filename": filename})


def csv_chunks(columns: tuple[str, ...], row_chunks: Iterable[Iterable[tuple]]) -> Iterator[str]:
    """CSV with a header, in pieces (the header, then one per chunk of value tuples); the csv module
    quotes commas, quotes and newlines."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    yield out.getvalue()
    for rows in row_chunks:
        out.seek(0)
        out.truncate()
        writer.writerows(rows)
        yield out.getvalue()


def json_envelope(head: dict, key: str, parts: Iterable[str], tail: dict) -> Iterator[bytes]:
    """The bytes of ``orjson.dumps({**head, key: "".join(parts), **tail})``, written as ``parts`` come.

    JSON escapes a string character by character, so escaping each part alone and joining the
    results equals escaping the whole.
    """
    yield orjson.dumps({**head, key: ""})[:-2]  # up to and including the string's opening quote
    for part in parts:
        if part:
            yield orjson.dumps(part)[1:-1]
    yield b'",' + orjson.dumps(tail)[1:]
