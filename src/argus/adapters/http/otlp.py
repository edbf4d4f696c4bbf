"""POST /v1/metrics: OTLP/HTTP metrics in (hostmetrics receiver names), rolled up into Argus's five-minute records.

Status codes as the OTLP specification wants them, so exporters retry exactly what may succeed
later: 200 with an ``ExportMetricsServiceResponse`` in the request's encoding (its
``partial_success`` counts the data points rejected, and says why); 400 a body that never will be
(not protobuf or OTLP JSON, bad gzip); 401; 413 too large (compressed or decompressed); 415 a
Content-Type or Content-Encoding OTLP does not define; 429 and 503 carry ``Retry-After`` and may be
retried. Error bodies are Argus's ``{"detail": ...}``. A refused request stores nothing; the points
of an accepted one are committed to the sample buffer before the answer. docs/prometheus.md ("OTLP").
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import falcon

from argus.adapters.http.resources import read_body
from argus.adapters.http.schemas import SERVER_NAME_PATTERN
from argus.adapters.otlp import hostmetrics, wire
from argus.adapters.telemetry import count_ingested, count_rejected_samples
from argus.domain.ingestion import AcceptedTimes
from argus.ports.rollup import SampleBuffer

log = logging.getLogger(__name__)

SOURCE = "otlp"
_SERVER_NAME = re.compile(SERVER_NAME_PATTERN, re.ASCII)  # the /feed/data rule for server names
_FAR = 10**15  # ms: no timestamp bound when no AcceptedTimes is given


class OtlpMetricsResource:
    """Decode an ExportMetricsServiceRequest, keep the host metrics, commit them before answering."""

    rate_limit_group = "otlp"

    def __init__(self, buffer: SampleBuffer, *, max_body_bytes: int, step_s: int, server_attribute: str = "host.name",
                 accepted_times: AcceptedTimes | None = None,
                 valid_name: Callable[[str], bool] = lambda name: _SERVER_NAME.fullmatch(name) is not None) -> None:
        self._buffer = buffer
        self._max_body_bytes = max_body_bytes
        self._step_s = step_s
        self._server_attribute = server_attribute
        self._accepted_times = accepted_times
        self._valid_name = valid_name

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            media = wire.media_type(req.content_type)
            encoding = wire.content_encoding(req.get_header("Content-Encoding"))
        except wire.UnsupportedMediaError as ex:
            raise falcon.HTTPUnsupportedMediaType(description=str(ex)) from None
        chunked = "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
        # No length and not chunked, or a length of 0: no body, an empty (valid) export request.
        has_body = bool(req.content_length) or chunked
        body = read_body(req, self._max_body_bytes, "an OTLP ExportMetricsServiceRequest") if has_body else b""
        try:
            request = wire.decode(body, media, encoding, self._max_body_bytes)
        except wire.BodyTooLargeError as ex:
            raise falcon.HTTPContentTooLarge(description=str(ex)) from None
        except wire.BadBodyError as ex:
            raise falcon.HTTPBadRequest(description=str(ex)) from None
        extracted = hostmetrics.extract(request, self._server_attribute, self._valid_name, *self._span_ms(),
                                        self._step_s)
        receipt = self._buffer.accept(extracted.observations, SOURCE)
        rejected = Counter(extracted.rejected)
        rejected["out_of_order"] += receipt.out_of_order  # values of closed steps (one per point, mostly)
        count_ingested(SOURCE, samples=receipt.stored)
        for reason, n in (extracted.skipped + rejected + Counter(duplicate=receipt.duplicate)).items():
            count_rejected_samples(SOURCE, reason, n)
        resp.content_type = media
        resp.data = wire.encode_response(media, rejected.total(), self._message(extracted, +rejected))

    def _message(self, extracted: hostmetrics.Extracted, rejected: Counter) -> str:
        """The partial success's error message: why points were rejected, or that none was a host metric."""
        if rejected:
            reasons = "; ".join(f"{reason} {n} ({self._reason(reason)})" for reason, n in sorted(rejected.items()))
            log.debug("OTLP data points rejected: %s", reasons)
            return f"Argus rejected {rejected.total()} of {extracted.points} data points: {reasons}"
        if extracted.points and not extracted.used:
            return (f"none of the {extracted.points} data points is a host metric Argus reads (the OpenTelemetry "
                    f"collector's hostmetrics receiver names: {', '.join(sorted(hostmetrics.RULES))})")
        return ""

    def _reason(self, reason: str) -> str:
        if reason == "invalid_server_name":
            return f"the resource attribute {self._server_attribute} is missing or not a valid server name"
        return hostmetrics.REJECT_REASONS.get(reason, reason)

    def _span_ms(self) -> tuple[int, int]:
        if self._accepted_times is None:
            return -_FAR, _FAR
        earliest, latest = self._accepted_times.span(datetime.now(UTC))
        return int(earliest.timestamp() * 1000), int(latest.timestamp() * 1000)
