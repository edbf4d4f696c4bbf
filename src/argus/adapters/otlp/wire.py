"""OTLP/HTTP metrics on the wire: ``ExportMetricsServiceRequest`` bodies in, ``...Response`` bodies out.

Both encodings of the OTLP specification: binary protobuf (``application/x-protobuf``) and its
JSON mapping (``application/json``: lowerCamelCase or original field names, 64-bit integers as
strings or numbers, enums as integers, unknown fields ignored), each optionally gzip-compressed
(``Content-Encoding: gzip``). The message classes are the maintained ``opentelemetry-proto``
package's; JSON goes through ``google.protobuf.json_format``. The response is written in the
request's encoding, as the specification requires.
"""

from __future__ import annotations

import zlib

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
ENCODINGS = ("identity", "gzip")


class BadBodyError(ValueError):
    """The body is no ExportMetricsServiceRequest in the declared encoding (400: never retried)."""


class BodyTooLargeError(BadBodyError):
    """The body decompresses to more than the limit (413)."""


class UnsupportedMediaError(ValueError):
    """A Content-Type or Content-Encoding that OTLP/HTTP does not define (415)."""


def media_type(content_type: str | None) -> str:
    """The OTLP encoding named by a Content-Type header (parameters such as charset are allowed)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in (PROTOBUF, JSON):
        raise UnsupportedMediaError(f"Content-Type must be {PROTOBUF} or {JSON} (OTLP/HTTP)")
    return media


def content_encoding(header: str | None) -> str:
    """``identity`` or ``gzip``; anything else is unsupported."""
    encoding = (header or "identity").strip().lower()
    if encoding not in ENCODINGS:
        raise UnsupportedMediaError("Content-Encoding must be gzip or absent")
    return encoding


def gunzip(body: bytes, max_bytes: int) -> bytes:
    """Decompress a gzip body, refusing it once more than ``max_bytes`` come out (a zip bomb costs nothing)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        raw = inflater.decompress(body, max_bytes + 1)
        if len(raw) > max_bytes or inflater.unconsumed_tail:
            raise BodyTooLargeError(f"Request body decompresses to more than {max_bytes} bytes")
        raw += inflater.flush()
    except zlib.error as ex:
        raise BadBodyError(f"body is not gzip compressed: {ex}") from None
    if not inflater.eof:
        raise BadBodyError("gzip body is truncated")
    if len(raw) > max_bytes:
        raise BodyTooLargeError(f"Request body decompresses to more than {max_bytes} bytes")
    return raw


def decode(body: bytes, media: str, encoding: str, max_bytes: int) -> ExportMetricsServiceRequest:
    """The request in ``body``; raise BadBodyError when it is none (BodyTooLargeError past ``max_bytes``)."""
    raw = gunzip(body, max_bytes) if encoding == "gzip" else body
    request = ExportMetricsServiceRequest()
    if media == PROTOBUF:
        try:
            request.ParseFromString(raw)
        except DecodeError as ex:
            raise BadBodyError(f"body is not a protobuf ExportMetricsServiceRequest: {ex}") from None
        return request
    if not raw.lstrip()[:1] == b"{":
        raise BadBodyError("body is not an OTLP JSON ExportMetricsServiceRequest: expected a JSON object")
    try:
        json_format.Parse(raw, request, ignore_unknown_fields=True, max_recursion_depth=64)
    except (json_format.ParseError, UnicodeDecodeError, RecursionError, ValueError) as ex:
        raise BadBodyError(f"body is not an OTLP JSON ExportMetricsServiceRequest: {str(ex)[:300]}") from None
    return request


def encode_response(media: str, rejected_data_points: int = 0, error_message: str = "") -> bytes:
    """An ExportMetricsServiceResponse in ``media``; ``partial_success`` only when something is to be said."""
    response = ExportMetricsServiceResponse()
    if rejected_data_points or error_message:
        response.partial_success.rejected_data_points = rejected_data_points
        response.partial_success.error_message = error_message
    if media == PROTOBUF:
        return response.SerializeToString()
    return json_format.MessageToJson(response, indent=None).encode()
