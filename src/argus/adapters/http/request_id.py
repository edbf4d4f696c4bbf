"""Request ids: every request gets one (a sane incoming ``X-Request-ID`` is kept), echoed in the
response, stored with what it wrote, and put on every log line written while it is handled."""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid

import falcon

access_log = logging.getLogger("argus.access")

#: The id of the request this thread is handling; "-" outside a request. Log formatters read it.
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def current_request_id() -> str | None:
    """The id of the request being handled, or None outside a request."""
    value = request_id_var.get()
    return None if value == "-" else value


class RequestIdFilter(logging.Filter):
    """Put the current request id on every log record as ``%(request_id)s``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class RequestIdMiddleware:
    """Give every request an id, echo it as ``X-Request-ID``, and write one access line per request."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        incoming = req.get_header("X-Request-ID") or ""
        req.context.request_id = incoming if INCOMING_ID.match(incoming) else uuid.uuid4().hex
        req.context.started = time.perf_counter()
        request_id_var.set(req.context.request_id)
        resp.set_header("X-Request-ID", req.context.request_id)

    def process_response(self, req, resp, resource, req_succeeded: bool) -> None:
        elapsed_ms = (time.perf_counter() - getattr(req.context, "started", time.perf_counter())) * 1000
        access_log.info("%s %s %s %.1fms", req.method, req.path, resp.status[:3], elapsed_ms)
        request_id_var.set("-")
