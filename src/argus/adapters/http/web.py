"""The built-in web page (static files, no key needed) and the recent-metrics endpoint it charts.

The page itself reads everything through the public API with the key the user gives it; the
static files carry no data, so they are public like /health.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable

import falcon

from argus.adapters.http.schemas import RequestValidationError
from argus.domain.errors import UnknownServerError
from argus.domain.metrics import wire_time

STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
MAX_HOURS = 24 * 7

#: (server_name, hours) -> {"timestamps": [epoch s], "cpu_pct": [...], "mem_pct": [...]} or None if unknown.
MetricsQuery = Callable[[str, float], "dict | None"]


def _load_static() -> dict[str, bytes]:
    folder = importlib.resources.files("argus.adapters.http") / "static"
    return {entry.name: entry.read_bytes() for entry in folder.iterdir()
            if entry.is_file() and "." + entry.name.rsplit(".", 1)[-1] in STATIC_TYPES}


class StaticResource:
    """GET / and /static/{name}: the page's files, read once at start-up."""

    auth_required = False

    def __init__(self) -> None:
        self._files = _load_static()

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str = "index.html") -> None:
        body = self._files.get(name)
        if body is None:
            raise falcon.HTTPNotFound(description=f"No static file {name!r}")
        resp.data = body
        resp.content_type = STATIC_TYPES["." + name.rsplit(".", 1)[-1]]
        resp.cache_control = ["no-cache"]
        resp.set_header("X-Content-Type-Options", "nosniff")


class ServerMetricsResource:
    """GET /servers/{server_name}/metrics?hours=24: recent CPU (100 - idle) and memory of one server."""

    rate_limit_group = "predictions"

    def __init__(self, query: MetricsQuery) -> None:
        self._query = query

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_name: str) -> None:
        hours = _hours(req.get_param("hours"))
        found = self._query(server_name, hours)
        if found is None:
            raise UnknownServerError(server_name)
        resp.media = {
            "server_name": server_name,
            "hours": hours,
            "step_minutes": found["step_s"] // 60,
            "timestamps": [wire_time(ts) for ts in found["timestamps"]],
            "cpu_pct": found["cpu_pct"],
            "mem_pct": found["mem_pct"],
        }


def _hours(raw: str | None) -> float:
    if raw is None:
        return 24.0
    try:
        hours = float(raw)
    except ValueError:
        hours = float("nan")
    if not 0 < hours <= MAX_HOURS:  # also false for NaN
        raise RequestValidationError([{"loc": ["query", "hours"], "msg": f"must be a number in (0, {MAX_HOURS}]",
                                       "type": "value_error.number.not_in_range"}])
    return hours


def add_routes(app: falcon.App, metrics_query: MetricsQuery | None) -> None:
    """Mount the page at / and /static/{name}, and the metrics endpoint when a query is wired."""
    static = StaticResource()
    app.add_route("/", static)
    app.add_route("/static/{name}", static)
    if metrics_query is not None:
        app.add_route("/servers/{server_name}/metrics", ServerMetricsResource(metrics_query))
