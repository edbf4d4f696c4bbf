"""Every failure becomes the one JSON error body of the reference; never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import falcon

from argus.adapters.http.schemas import RequestValidationError, TooManyRecordsError
from argus.domain.errors import ArgusError, EngineUnavailableError

log = logging.getLogger(__name__)

STATUS_BY_CODE = {
    "unknown_server": falcon.HTTP_404,
    "not_found": falcon.HTTP_404,
    "bad_request": falcon.HTTP_400,
    "model_invalid": falcon.HTTP_422,
    "insufficient_data": falcon.HTTP_409,
    "conflict": falcon.HTTP_409,
    "engine_unavailable": falcon.HTTP_503,
    "configuration_error": falcon.HTTP_500,
}

UNAUTHORIZED = "Invalid or missing API key"
#: The WWW-Authenticate challenge of every 401 (RFC 9110 11.6.1): the key goes in the X-API-Key header.
API_KEY_CHALLENGE = 'ApiKey realm="argus", header="X-API-Key"'


class RateLimitedError(Exception):
    """Too many requests for this key and endpoint group."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"Rate limit exceeded. Try again in {retry_after_s} seconds.")
        self.retry_after_s = retry_after_s


def on_domain_error(req, resp, ex: ArgusError, params) -> None:
    if ex.code == "model_not_loaded":
        resp.status = falcon.HTTP_500
        resp.media = {"detail": "Internal server error", "error": str(ex)}
        return
    resp.status = STATUS_BY_CODE.get(ex.code, falcon.HTTP_400)
    resp.media = {"detail": str(ex)}
    if isinstance(ex, EngineUnavailableError):
        resp.set_header("Retry-After", str(ex.retry_after_s))


def on_invalid_body(req, resp, ex: RequestValidationError, params) -> None:
    resp.status = falcon.HTTP_422
    resp.media = {"detail": ex.details}


def on_too_many_records(req, resp, ex: TooManyRecordsError, params) -> None:
    resp.status = falcon.HTTP_413
    resp.media = {"detail": str(ex)}


def on_rate_limited(req, resp, ex: RateLimitedError, params) -> None:
    resp.status = falcon.HTTP_429
    resp.media = {"detail": str(ex)}
    resp.set_header("Retry-After", str(ex.retry_after_s))


def on_storage_unavailable(req, resp, ex: Exception, params) -> None:
    log.error("database unavailable: %s", getattr(ex, "orig", None) or ex)
    resp.status = falcon.HTTP_503
    resp.media = {"detail": "Database unavailable, nothing was stored; retry later", "error": "database_unavailable"}
    resp.set_header("Retry-After", "5")


def on_http_error(req, resp, ex: falcon.HTTPError, params) -> None:
    """Falcon's own errors (404, 405, 413, 415 ...) in the ``{"detail": ...}`` style."""
    resp.status = ex.status
    title = ex.title or ""
    if title[:3].isdigit():  # Falcon's titles repeat the status code: "404 Not Found"
        title = title[4:]
    resp.media = {"detail": ex.description or title}
    for name, value in (ex.headers or {}).items():
        resp.set_header(name, value)


def on_unexpected(req, resp, ex: Exception, params) -> None:
    request_id = getattr(req.context, "request_id", "-")
    log.exception("unhandled error in %s %s", req.method, req.path)
    resp.status = falcon.HTTP_500
    resp.media = {"detail": "Internal server error", "error": f"Unexpected error (request id {request_id})"}


def install(app: falcon.App, storage_errors: Iterable[type[Exception]] = ()) -> None:
    """Register the handlers; Falcon picks the most specific by class.

    ``storage_errors`` are the storage technology's "cannot reach the database" exceptions (503).
    """
    app.add_error_handler(Exception, on_unexpected)
    app.add_error_handler(falcon.HTTPError, on_http_error)
    app.add_error_handler(ArgusError, on_domain_error)
    app.add_error_handler(RequestValidationError, on_invalid_body)
    app.add_error_handler(TooManyRecordsError, on_too_many_records)
    app.add_error_handler(RateLimitedError, on_rate_limited)
    for error_class in storage_errors:
        app.add_error_handler(error_class, on_storage_unavailable)
