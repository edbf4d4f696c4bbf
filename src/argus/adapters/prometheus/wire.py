"""Prometheus remote-write 1.0 on the wire: snappy block bodies holding a protobuf ``WriteRequest``.

The message classes are built at import from a descriptor that mirrors ``prompb`` (Prometheus'
``remote.proto`` and ``types.proto``), reduced to the fields remote-write 1.0 receivers read::

    message WriteRequest { repeated TimeSeries timeseries = 1; reserved 2; repeated MetricMetadata metadata = 3; }
    message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2;
                           repeated Exemplar exemplars = 3; repeated Histogram histograms = 4; }
    message Label        { string name = 1; string value = 2; }
    message Sample       { double value = 1; int64 timestamp = 2; }   // timestamp: milliseconds since the epoch

Fields left out (metadata, exemplars, native histograms) are skipped by the parser as unknown
fields. Parsing is protobuf's own (the upb C runtime), decompression cramjam's snappy; nothing
here decodes bytes by hand.
"""

from __future__ import annotations

import struct

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

PACKAGE = "argus.prompb"

#: Prometheus' staleness marker: a NaN with this exact bit pattern ends a series (model/value.StaleNaN).
STALE_NAN_BITS = 0x7FF0000000000002


class BadBodyError(ValueError):
    """The body is not a snappy-compressed WriteRequest (a client error: never retried)."""


class BodyTooLargeError(BadBodyError):
    """The body decompresses to more than the limit."""


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    f = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="argus/prompb/remote.proto", package=PACKAGE, syntax="proto3")

    def message(name: str, *fields: tuple[str, int, int, str | None, bool]) -> None:
        m = file.message_type.add(name=name)
        for field_name, number, kind, type_name, repeated in fields:
            field = m.field.add(name=field_name, number=number, type=kind,
                                label=f.LABEL_REPEATED if repeated else f.LABEL_OPTIONAL)
            if type_name:
                field.type_name = f".{PACKAGE}.{type_name}"

    message("Label", ("name", 1, f.TYPE_STRING, None, False), ("value", 2, f.TYPE_STRING, None, False))
    message("Sample", ("value", 1, f.TYPE_DOUBLE, None, False), ("timestamp", 2, f.TYPE_INT64, None, False))
    message("TimeSeries", ("labels", 1, f.TYPE_MESSAGE, "Label", True),
            ("samples", 2, f.TYPE_MESSAGE, "Sample", True))
    message("WriteRequest", ("timeseries", 1, f.TYPE_MESSAGE, "TimeSeries", True))
    return file


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_file_descriptor())
WriteRequest = message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"{PACKAGE}.WriteRequest"))
TimeSeries = message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"{PACKAGE}.TimeSeries"))


def decode(body: bytes, max_decompressed_bytes: int):
    """Return the ``WriteRequest`` in a snappy block ``body``; raise BadBodyError when it is not one.

    The snappy block header states the decompressed length: a body claiming more than
    ``max_decompressed_bytes`` is refused before anything is allocated (a zip bomb costs nothing).
    """
    try:
        length = cramjam.snappy.decompress_raw_len(body)
    except cramjam.DecompressionError as ex:
        raise BadBodyError(f"body is not snappy block compressed: {ex}") from None
    if length > max_decompressed_bytes:
        raise BodyTooLargeError(f"Request body decompresses to {length} bytes, over the limit of "
                                f"{max_decompressed_bytes}")
    try:
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as ex:
        raise BadBodyError(f"body is not snappy block compressed: {ex}") from None
    request = WriteRequest()
    try:
        request.ParseFromString(raw)
    except DecodeError as ex:
        raise BadBodyError(f"body is not a protobuf WriteRequest: {ex}") from None
    return request


def encode(request) -> bytes:
    """Serialize and snappy-compress a ``WriteRequest`` (what Prometheus sends; for tests and benchmarks)."""
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def is_stale_marker(value: float) -> bool:
    """Say whether ``value`` is Prometheus' stale marker (a specific NaN; other NaNs are plain NaN)."""
    return struct.unpack("<Q", struct.pack("<d", value))[0] == STALE_NAN_BITS
