"""POST /api/v1/write: Prometheus remote-write 1.0 in, rolled up into Argus's five-minute records.

Status codes as the remote-write spec wants them, so Prometheus retries exactly what may succeed
later: 2xx stored (or nothing worth storing); 400 a body that never will be (bad snappy, truncated
protobuf, a huge label value), 401, 413 too large (compressed or decompressed), 415 not
``application/x-protobuf`` with snappy (remote-write 2.0 bodies included); 429 and 5xx may be
retried. A refused request stores nothing. docs/prometheus.md has the details.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime

import falcon

from argus.adapters.http.resources import read_body as read_whole_body
from argus.adapters.http.schemas import SERVER_NAME_PATTERN
from argus.adapters.prometheus import node_exporter, wire
from argus.adapters.telemetry import count_ingested, count_rejected_samples
from argus.domain.ingestion import AcceptedTimes
from argus.ports.rollup import SampleBuffer

log = logging.getLogger(__name__)

SOURCE = "remote_write"
PROTOBUF = "application/x-protobuf"
#: remote-write 1.0's message; a ``proto=`` naming another one (2.0's io.prometheus.write.v2.Request) is a 415.
WRITE_REQUEST_PROTO = "prometheus.WriteRequest"
_SERVER_NAME = re.compile(SERVER_NAME_PATTERN, re.ASCII)  # the /feed/data rule for server names
_FAR = 10**15  # ms: no timestamp bound when no AcceptedTimes is given


class RemoteWriteResource:
    """Decode a WriteRequest, keep node_exporter's host series, commit them before answering."""

    rate_limit_group = "remote_write"

    def __init__(self, buffer: SampleBuffer, *, max_body_bytes: int, server_label: str = "instance",
                 accepted_times: AcceptedTimes | None = None,
                 valid_name: Callable[[str], bool] = lambda name: _SERVER_NAME.fullmatch(name) is not None) -> None:
        self._buffer = buffer
        self._max_body_bytes = max_body_bytes
        self._server_label = server_label
        self._valid_name = valid_name
        self._accepted_times = accepted_times

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        _check_media(req)
        body = read_body(req, self._max_body_bytes)
        try:
            request = wire.decode(body, self._max_body_bytes)
            extracted = node_exporter.extract(request, self._server_label, self._valid_name, *self._span_ms())
        except wire.BodyTooLargeError as ex:
            raise falcon.HTTPContentTooLarge(description=str(ex)) from None
        except wire.BadBodyError as ex:
            raise falcon.HTTPBadRequest(description=str(ex)) from None
        receipt = self._buffer.accept(extracted.observations, SOURCE)
        skipped = dict(extracted.skipped)
        for reason, n in (("duplicate", receipt.duplicate), ("out_of_order", receipt.out_of_order)):
            if n:
                skipped[reason] = n
        count_ingested(SOURCE, samples=receipt.stored)
        for reason, n in skipped.items():
            count_rejected_samples(SOURCE, reason, n)
        resp.media = {"samples_received": extracted.samples, "samples_stored": receipt.stored,
                      "samples_skipped": dict(sorted(skipped.items()))}

    def _span_ms(self) -> tuple[int, int]:
        if self._accepted_times is None:
            return -_FAR, _FAR
        earliest, latest = self._accepted_times.span(datetime.now(UTC))
        return int(earliest.timestamp() * 1000), int(latest.timestamp() * 1000)


def _check_media(req: falcon.Request) -> None:
    media, *params = [part.strip() for part in (req.content_type or "").split(";")]
    proto = next((p.partition("=")[2].strip('"') for p in params if p.lower().startswith("proto=")), None)
    if media.lower() != PROTOBUF or proto not in (None, WRITE_REQUEST_PROTO):
        raise falcon.HTTPUnsupportedMediaType(
            description=f"Content-Type must be {PROTOBUF} (remote-write 1.0, {WRITE_REQUEST_PROTO})")
    encoding = (req.get_header("Content-Encoding") or "snappy").strip().lower()
    if encoding != "snappy":
        raise falcon.HTTPUnsupportedMediaType(description="Content-Encoding must be snappy")


def read_body(req: falcon.Request, max_bytes: int) -> bytes:
    """The whole body (``resources.read_body``'s limits); empty: 400 naming a WriteRequest."""
    return read_whole_body(req, max_bytes, "a snappy-compressed WriteRequest")
