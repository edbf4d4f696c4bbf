"""The OpenAPI 3.1 document of the whole API, served at /openapi.json (no key needed).

The record schema is generated from the wire type the feed validates with (``RecordIn`` and its
constrained types), and a test compares the document's paths and methods with the routes the app
really serves, so the document cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

import attrs
import falcon
import orjson

from argus.adapters.http.schemas import (
    MAX_COUNT,
    SERVER_NAME_PATTERN,
    Count,
    NonNegativeFloat,
    Percent,
    RecordIn,
    ServerName,
    Status,
    Timestamp,
    UptimeDays,
)
from argus.domain.metrics import FIELDS, STATUS_VALUES

TIME_RANGES = ["30m", "1h", "8h", "1d", "1w", "1M"]
_NUMBER = {"type": "number"}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_NULLABLE_STRING = {"type": ["string", "null"]}

_FIELD_SCHEMAS: dict[Any, dict[str, Any]] = {
    Percent: {"type": "number", "minimum": 0, "maximum": 100},
    NonNegativeFloat: {"type": "number", "minimum": 0},
    Count: {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
    UptimeDays: {"type": "integer", "minimum": 0, "maximum": 365},
    Timestamp: {"type": "string", "format": "date-time", "example": "2025-01-15T10:00:00"},
    ServerName: {"type": "string", "pattern": SERVER_NAME_PATTERN, "example": "ppdb001"},
    Status: {"type": "string", "enum": list(STATUS_VALUES)},
}


def record_schema() -> dict[str, Any]:
    """The /feed/data record, generated from ``RecordIn``."""
    fields = attrs.fields(RecordIn)
    kind = {True: int, False: float}
    bounds = {f.name: {"minimum": kind[f.integer](f.low), "maximum": kind[f.integer](f.high)} for f in FIELDS}
    return {
        "type": "object",
        "required": [f.name for f in fields],
        "properties": {f.name: {**_FIELD_SCHEMAS[f.type], **bounds.get(f.name, {})} for f in fields},
        "additionalProperties": True,  # unknown fields are ignored (counted, a sample logged once a minute)
    }


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = _obj(["detail"], detail={"type": "string"}, error={"type": "string"})
VALIDATION_ERROR = _obj(["detail"], detail={"type": "array", "items": _obj(
    ["loc", "msg", "type"], loc={"type": "array", "items": {"type": ["string", "integer"]}},
    msg={"type": "string"}, type={"type": "string"})})
ALERT_OBJECT = _obj(["level", "score", "color", "emoji", "label"], level={"type": "string"}, score=_NUMBER,
                    color={"type": "string"}, emoji={"type": "string"}, label={"type": "string"})
_PROB_AT_LEAST_ONE = {"type": "number", "minimum": 0, "maximum": 1, "description": (
    "Probability that at least one server breaches a limit within the horizon, assuming servers fail "
    "independently: 1 - prod(1 - p_i). Near 1 as soon as one server is critical.")}
_EXPECTED_INCIDENTS = {"type": "number", "minimum": 0, "description": (
    "Expected number of servers with an incident within the horizon: sum of the servers' probabilities, "
    "rounded to 2 decimals.")}
_ABOVE_HALF = {"type": "integer", "minimum": 0, "description": "Servers whose probability within the horizon is > 0.5."}
MISSING_FIELDS = {"type": "array", "uniqueItems": True,
                  "items": {"type": "string", "enum": [f.name for f in FIELDS if f.optional]}, "description": (
                      "Record fields the server's source does not provide (absent from every record of its last "
                      "hour, e.g. java_cpu_pct or the CLOSE_WAIT counts from Prometheus without node_exporter's "
                      "tcpstat collector): never invented; the forecast masks them and no risk or explanation "
                      "is attributed to them. Empty when the server sends every field.")}
PREDICTIONS = {
    "type": "object",
    "properties": {
        "predictions": {"type": "object", "additionalProperties": _obj(
            ["risk_score", "profile", "alert", "display_metrics", "forecast"], risk_score=_NUMBER,
            profile={"type": "string"}, alert=ALERT_OBJECT, display_metrics={"type": "object"},
            forecast=_obj(["cpu_pct", "mem_pct", "timestamps"], cpu_pct={"type": "array"},
                          mem_pct={"type": "array"}, timestamps={"type": "array", "items": {"type": "string"}}),
            missing_fields=MISSING_FIELDS)},
        "summary": _obj(["total_servers", "critical", "warning", "degraded", "healthy", "fleet_health", "prob_30m",
                         "prob_8h", "expected_incidents_30m", "expected_incidents_8h", "servers_above_50pct_30m",
                         "servers_above_50pct_8h"], total_servers={"type": "integer"}, critical={"type": "integer"},
                        warning={"type": "integer"}, degraded={"type": "integer"}, healthy={"type": "integer"},
                        fleet_health=_NUMBER, prob_30m=_PROB_AT_LEAST_ONE, prob_8h=_PROB_AT_LEAST_ONE,
                        expected_incidents_30m=_EXPECTED_INCIDENTS, expected_incidents_8h=_EXPECTED_INCIDENTS,
                        servers_above_50pct_30m=_ABOVE_HALF, servers_above_50pct_8h=_ABOVE_HALF,
                        servers_warming_up={"type": "integer"}),
        "alerts": {"type": "array", "items": _obj(["server_name", "level", "risk_score", "message"])},
        "timestamp": {"type": "string"},
        "error": {"type": "string", "enum": ["insufficient_data"]},
        "message": {"type": "string"},
    },
    "required": ["predictions"],
}


def _schemas() -> dict[str, Any]:
    return {
        "Error": ERROR,
        "ValidationError": VALIDATION_ERROR,
        "RemoteWriteResponse": _obj(
            ["samples_received", "samples_stored", "samples_skipped"], samples_received={"type": "integer"},
            samples_stored={"type": "integer", "description": "samples committed for the five-minute rollup"},
            samples_skipped={"type": "object", "additionalProperties": {"type": "integer"}, "description": (
                "samples not stored, by reason: unused, invalid_server_name, nan, stale_marker, not_finite, "
                "too_new, too_old, duplicate, out_of_order")}),
        "OtlpExportResponse": {
            "type": "object", "description": "OTLP's ExportMetricsServiceResponse (JSON encoding)",
            "properties": {"partialSuccess": _obj(
                [], rejectedDataPoints={"type": ["string", "integer"], "description": (
                    "data points not stored (an int64: a string in OTLP JSON)")},
                errorMessage={"type": "string", "description": "why, by reason; or a warning when nothing was "
                                                               "a host metric"})}},
        "Record": record_schema(),
        "FeedRequest": _obj(["records"], records={"type": "array", "minItems": 1, "items": _ref("Record")}),
        "FeedResponse": _obj(["status", "records_received", "tick", "warmup_complete"],
                             status={"type": "string", "enum": ["accepted", "warming_up"]},
                             records_received={"type": "integer"}, tick={"type": "integer"},
                             rolling_window_size={"type": "integer"}, warmup_complete={"type": "boolean"},
                             progress={"type": "string"}),
        "Health": _obj(["status", "service", "running"], status={"type": "string"}, service={"type": "string"},
                       running={"type": "boolean"}),
        "Status": _obj(["model_loaded", "model_path", "rolling_window_size", "servers_tracked", "last_prediction",
                        "uptime_seconds", "warmup_complete"], model_loaded={"type": "boolean"},
                       model_path=_NULLABLE_STRING, rolling_window_size={"type": "integer"},
                       servers_tracked={"type": "integer"},
                       last_prediction={"type": ["string", "null"], "description": (
                           "UTC without a zone, as the reference shows it: 2025-01-15T10:05:00")},
                       last_prediction_iso={"type": ["string", "null"], "format": "date-time", "description": (
                           "The same moment in ISO 8601 with its zone: 2025-01-15T10:05:00+00:00")},
                       uptime_seconds={"type": ["integer", "null"]}, warmup_complete={"type": "boolean"}),
        "Predictions": PREDICTIONS,
        "ActiveAlerts": _obj(["timestamp", "count", "alerts"], timestamp={"type": "string"},
                             count={"type": "integer"}, alerts={"type": "array", "items": _obj(
                                 ["server_name", "level", "risk_score", "profile", "message", "time_to_issue"],
                                 time_to_issue=_NULLABLE_STRING)}),
        "Explanation": _obj(["server_name", "prediction", "shap", "attention", "counterfactuals", "tick_at",
                             "forecast_origin"],
                            server_name={"type": "string"},
                            tick_at={"type": "string", "format": "date-time", "description": (
                                "The engine tick explained (UTC); prediction is that tick's published assessment. "
                                "Compare with /predictions/current's timestamp: a newer tick may have followed.")},
                            forecast_origin={"type": "string", "format": "date-time", "description": (
                                "The last observation the forecast starts from (the prediction's last_observation).")},
                            prediction=_obj(["risk_score", "alert_level"], risk_score=_NUMBER,
                                            alert_level={"type": "string"}),
                            shap=_obj(["top_features"], top_features={"type": "array", "items": _obj(
                                ["feature", "importance", "stars"], feature={"type": "string"},
                                importance=_NUMBER, stars={"type": "string"})}),
                            attention=_obj(["focus_periods", "analysis"], focus_periods={"type": "array"},
                                           analysis={"type": "string"}),
                            counterfactuals={"type": "array", "items": _obj(
                                ["scenario", "impact", "recommendation"])},
                            missing_fields=MISSING_FIELDS),
        "HistorySummary": _obj(["success", "time_range", "total_alerts", "alerts_by_level",
                                "avg_resolution_time_minutes", "incidents_prevented", "fleet_health_avg"],
                               avg_resolution_time_minutes=_NULLABLE_NUMBER, fleet_health_avg=_NULLABLE_NUMBER),
        "HistoryAlerts": _obj(["success", "time_range", "count", "alerts"], alerts={"type": "array"}),
        "HistoryServer": _obj(["success", "server_name", "time_range", "alert_count", "avg_risk_score",
                               "max_risk_score", "time_in_warning_pct", "time_in_critical_pct", "risk_trend"],
                              avg_risk_score=_NULLABLE_NUMBER, max_risk_score=_NULLABLE_NUMBER,
                              risk_trend={"type": "string", "enum": ["improving", "stable", "worsening"]}),
        "HistoryEnvironment": _obj(["success", "time_range", "count", "snapshots"], snapshots={"type": "array"}),
        "HistoryExport": _obj(["success", "table", "time_range", "csv_data", "filename"], csv_data={"type": "string"},
                              filename={"type": "string"}),
        "Models": _obj(["models", "current_model"], models={"type": "array", "items": _obj(
            ["name", "path", "created", "size_mb", "is_current"])}, current_model=_NULLABLE_STRING),
        "Reloaded": _obj(["success", "model", "message"]),
        "TrainingStarted": _obj(["success", "training_id", "message", "epochs", "incremental"]),
        "TrainingStatus": _obj(["training_active", "training_id"], training_active={"type": "boolean"},
                               training_id=_NULLABLE_STRING, progress={"type": ["object", "null"]}),
        "TrainingStats": _obj(["last_training", "total_trainings", "avg_training_time_minutes", "models_produced"],
                              last_training=_NULLABLE_STRING, total_trainings={"type": "integer"},
                              avg_training_time_minutes=_NULLABLE_NUMBER, models_produced={"type": "integer"}),
        "Cancelled": _obj(["success", "message"]),
        "ServerMetrics": {"type": "object"},
    }


def _errors(*codes: int) -> dict[str, Any]:
    out = {}
    for code in codes:
        out[str(code)] = _json(_ref("ValidationError" if code == 422 else "Error"), _REASONS[code])
    return out


_REASONS = {400: "Bad request", 401: "Invalid or missing API key", 404: "Not found", 405: "Method not allowed",
            409: "Conflict", 413: "Too large", 415: "Not JSON", 422: "Validation error", 429: "Rate limited",
            500: "Internal server error", 503: "Engine or database unavailable"}
_AUTH = (401, 429, 500, 503)


def _op(summary: str, ok: dict[str, Any], *codes: int, tag: str, public: bool = False, **extra: Any) -> dict:
    errors = _errors(*(codes + (() if public else _AUTH)))
    operation = {"summary": summary, "tags": [tag], "responses": {"200": ok, **errors}}
    if public:
        operation["security"] = []
    operation.update(extra)
    return operation


def _time_range(default: str) -> dict[str, Any]:
    return {"name": "time_range", "in": "query", "required": False,
            "schema": {"type": "string", "enum": TIME_RANGES, "default": default}}


_BINARY = {"type": "string", "format": "binary"}
_SERVER = {"name": "server_name", "in": "path", "required": True, "schema": {"type": "string"}}


def _paths() -> dict[str, Any]:
    body = {"required": True, "content": {"application/json": {"schema": _ref("FeedRequest")}}}
    return {
        "/health": {"get": _op("Health check", _json(_ref("Health")), 503, tag="status", public=True)},
        "/status": {"get": _op("Engine status", _json(_ref("Status")), 500, 503, tag="status", public=True)},
        "/openapi.json": {"get": _op("This document", _json({"type": "object"}), tag="status", public=True)},
        "/metrics": {"get": _op(
            "Prometheus metrics: health and forecasts (no key with ARGUS_METRICS_PUBLIC=1)",
            {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}},
            tag="status")},
        "/feed/data": {"post": _op("Feed metrics records", _json(_ref("FeedResponse")), 400, 413, 415, 422,
                                   tag="ingestion", requestBody=body)},
        "/api/v1/write": {"post": _op(
            "Prometheus remote-write 1.0 (snappy-compressed protobuf WriteRequest; docs/prometheus.md)",
            _json(_ref("RemoteWriteResponse")), 400, 413, 415, tag="ingestion", requestBody={
                "required": True, "content": {"application/x-protobuf": {
                    "schema": {"type": "string", "format": "binary"}}}})},
        "/v1/metrics": {"post": _op(
            "OTLP/HTTP metrics: hostmetrics receiver names (ExportMetricsServiceRequest; docs/prometheus.md, OTLP)",
            {"description": "Stored; partialSuccess counts rejected data points. The response is in the request's "
                            "encoding", "content": {"application/x-protobuf": {"schema": _BINARY},
                                                    "application/json": {"schema": _ref("OtlpExportResponse")}}},
            400, 413, 415, tag="ingestion", requestBody={
                "required": True, "content": {"application/x-protobuf": {"schema": _BINARY},
                                              "application/json": {"schema": {"type": "object"}}}})},
        "/predictions/current": {"get": _op("Current predictions", _json(_ref("Predictions")), tag="predictions")},
        "/alerts/active": {"get": _op("Active alerts", _json(_ref("ActiveAlerts")), tag="predictions")},
        "/explain/{server_name}": {"get": _op("Explain a server's prediction", _json(_ref("Explanation")), 404, 409,
                                              tag="explain", parameters=[_SERVER])},
        "/servers/{server_name}/metrics": {"get": _op(
            "Recent CPU and memory of a server", _json(_ref("ServerMetrics")), 404, 422, tag="predictions",
            parameters=[_SERVER, {"name": "hours", "in": "query", "required": False,
                                  "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 168}}])},
        "/historical/summary": {"get": _op("Alert summary", _json(_ref("HistorySummary")), 422, tag="history",
                                           parameters=[_time_range("1d")])},
        "/historical/alerts": {"get": _op("Alert events", _json(_ref("HistoryAlerts")), 422, tag="history",
                                          parameters=[_time_range("1h"), {"name": "server_name", "in": "query",
                                                                           "required": False,
                                                                           "schema": {"type": "string"}}])},
        "/historical/server/{server_name}": {"get": _op("One server's history", _json(_ref("HistoryServer")), 404,
                                                        422, tag="history", parameters=[_SERVER, _time_range("1d")])},
        "/historical/environment": {"get": _op("Fleet snapshots", _json(_ref("HistoryEnvironment")), 422,
                                               tag="history", parameters=[_time_range("1h")])},
        "/historical/export/{table}": {"get": _op(
            "Export as CSV (JSON envelope, or text/csv with Accept: text/csv)",
            {"description": "OK", "content": {"application/json": {"schema": _ref("HistoryExport")},
                                              "text/csv": {"schema": {"type": "string"}}}},
            404, 422, tag="history",
            parameters=[{"name": "table", "in": "path", "required": True,
                         "schema": {"type": "string", "enum": ["alerts", "environment"]}}, _time_range("1d")])},
        "/admin/models": {"get": _op("List models", _json(_ref("Models")), tag="admin")},
        "/admin/reload-model": {"post": _op(
            "Hot-reload a model", _json(_ref("Reloaded")), 400, 404, 415, 422, tag="admin",
            requestBody={"required": False, "content": {"application/json": {"schema": _obj(
                [], model_path={"type": "string"})}}})},
        "/admin/trigger-training": {"post": _op(
            "Start a training", _json(_ref("TrainingStarted")), 409, 422, tag="admin",
            description=("Starts `argus train-job` in its own process on the stored records. 409 while a training "
                         "runs, and at once, with nothing started, when no server has enough history for one "
                         "training window: `{\"detail\": \"Not enough history to train: a server needs at least "
                         "57.0 h of five-minute records (...); the longest stored is 6.0 h (ppdb001, 72 records; "
                         "3240 records from 45 servers in all)\"}` (docs/admin.md)."),
            parameters=[{"name": "epochs", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}},
                        {"name": "incremental", "in": "query", "required": False,
                         "schema": {"type": "boolean", "default": True}}])},
        "/admin/training-status": {"get": _op("Training progress", _json(_ref("TrainingStatus")), tag="admin")},
        "/admin/training-stats": {"get": _op("Training statistics", _json(_ref("TrainingStats")), tag="admin")},
        "/admin/cancel-training": {"post": _op("Cancel the training", _json(_ref("Cancelled")), 409, tag="admin")},
        "/": {"get": {"summary": "The web page", "tags": ["web"], "security": [],
                      "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}},
        "/static/{name}": {"get": {"summary": "The web page's files", "tags": ["web"], "security": [],
                                   "parameters": [{"name": "name", "in": "path", "required": True,
                                                   "schema": {"type": "string"}}],
                                   "responses": {"200": {"description": "A file"},
                                                 "404": _json(_ref("Error"), "Not found")}}},
    }


def openapi_document() -> dict[str, Any]:
    """The whole document."""
    from argus import __version__

    return {
        "openapi": "3.1.0",
        "info": {"title": "Argus", "version": __version__,
                 "description": "Predictive server monitoring: TFT forecasts, risk scores, alerts, explanations."},
        "servers": [{"url": "/"}],
        "security": [{"ApiKey": []}],
        "paths": _paths(),
        "components": {"schemas": _schemas(),
                       "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}},
    }


class OpenApiResource:
    """GET /openapi.json."""

    auth_required = False

    def __init__(self) -> None:
        self._body = orjson.dumps(openapi_document())

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = self._body
        resp.content_type = falcon.MEDIA_JSON
