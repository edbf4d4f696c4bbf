"""Wire types of the HTTP API and the one cattrs converter that validates them.

Validation errors come out in the reference's 422 format: ``{"loc": ["body", "records", 0,
"cpu_user_pct"], "msg": "value is not a valid float", "type": "type_error.float"}``, one entry
per bad field of every bad record, so a client can fix a whole batch in one round trip.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, NewType

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override
from cattrs.preconf.json import make_converter

from argus.domain.ingestion import AcceptedTimes
from argus.domain.metrics import FIELDS, MAX_SOCKETS, METRIC_FIELDS, STATUS_VALUES, MetricField, Record, wire_time

log = logging.getLogger(__name__)

Percent = NewType("Percent", float)
NonNegativeFloat = NewType("NonNegativeFloat", float)
Count = NewType("Count", int)
UptimeDays = NewType("UptimeDays", int)
Timestamp = NewType("Timestamp", datetime)
ServerName = NewType("ServerName", str)
Status = NewType("Status", str)

SERVER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
#: ASCII only, matched against the whole name: a trailing newline or any lookalike letter
#: (Cyrillic "р" for "p", fullwidth digits) is refused rather than normalised into another name.
_SERVER_NAME_RE = re.compile(SERVER_NAME_PATTERN, re.ASCII)
MAX_COUNT = MAX_SOCKETS  # the field table's bound on counts (see argus.domain.metrics.FIELDS)
_EPOCH_MIN = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_MAX = datetime(2100, 1, 1, tzinfo=UTC)


class FieldError(ValueError):
    """One invalid value, with the reference's message and error type."""

    def __init__(self, msg: str, type_: str) -> None:
        super().__init__(msg)
        self.msg, self.type = msg, type_


class RequestValidationError(Exception):
    """The request body failed validation; ``details`` is the reference's 422 ``detail`` list."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(details)} validation error(s)")
        self.details = details


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError("value is not a valid float", "type_error.float")
    number = float(value)
    if not math.isfinite(number):
        raise FieldError("value is not a finite number", "value_error.number.not_finite")
    return number


def _at_least(number: float, low: float) -> None:
    if number < low:
        raise FieldError(f"ensure this value is greater than or equal to {low:g}", "value_error.number.not_ge")


def _at_most(number: float, high: float) -> None:
    if number > high:
        bound = int(high) if float(high).is_integer() else high
        raise FieldError(f"ensure this value is less than or equal to {bound}", "value_error.number.not_le")


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or (
        isinstance(value, float) and not value.is_integer()
    ):
        raise FieldError("value is not a valid integer", "type_error.integer")
    return int(value)


def _field_hook(field: MetricField) -> Callable[[Any, type], float]:
    """The structure hook of one numeric field: its type, then its range from the field table."""

    def structure(value: Any, _: type) -> float:
        number = _integer(value) if field.integer else _number(value)
        _at_least(number, field.low)
        _at_most(number, field.high)
        return number

    return structure


#: The (earliest, latest, policy, now) a timestamp may have in the request being parsed (set by parse_feed).
_accepted_span: ContextVar[tuple[datetime, datetime, AcceptedTimes, datetime] | None] = ContextVar(
    "accepted_span", default=None)


def structure_timestamp(value: Any, _: type) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise FieldError("invalid datetime format", "value_error.datetime")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError("invalid datetime format", "value_error.datetime") from None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if not _EPOCH_MIN <= parsed < _EPOCH_MAX:
        raise FieldError("timestamp must be between 1970 and 2100", "value_error.datetime")
    span = _accepted_span.get()
    if span is not None:
        earliest, latest, policy, now = span
        if parsed > latest:
            raise FieldError(f"timestamp is more than {policy.max_clock_skew_s:g} s ahead of the server's clock "
                             f"({wire_time(now)} UTC): check the sender's clock", "value_error.datetime.future")
        if parsed < earliest:
            raise FieldError(f"timestamp is older than the records retention ({policy.retention_days:g} days: "
                             f"before {wire_time(earliest)} UTC)", "value_error.datetime.too_old")
    return parsed


def structure_server_name(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise FieldError("str type expected", "type_error.str")
    if not _SERVER_NAME_RE.fullmatch(value):
        raise FieldError(f'string does not match regex "{SERVER_NAME_PATTERN}"', "value_error.str.regex")
    return value


def structure_status(value: Any, _: type) -> str:
    if value not in STATUS_VALUES or not isinstance(value, str):
        permitted = ", ".join(f"'{s}'" for s in STATUS_VALUES)
        raise FieldError(f"value is not a valid enumeration member; permitted: {permitted}", "type_error.enum")
    return value


@attrs.frozen(slots=True)
class RecordIn:
    """One record as POSTed to /feed/data (the reference's field table)."""

    timestamp: Timestamp
    server_name: ServerName
    status: Status
    cpu_user_pct: Percent
    cpu_sys_pct: Percent
    cpu_iowait_pct: Percent
    cpu_idle_pct: Percent
    java_cpu_pct: Percent
    mem_used_pct: Percent
    swap_used_pct: Percent
    disk_usage_pct: Percent
    net_in_mb_s: NonNegativeFloat
    net_out_mb_s: NonNegativeFloat
    back_close_wait: Count
    front_close_wait: Count
    load_average: NonNegativeFloat
    uptime_days: UptimeDays

    def to_domain(self) -> Record:
        values = tuple(float(getattr(self, name)) for name in METRIC_FIELDS)
        return Record(timestamp=self.timestamp, server_name=self.server_name, status=self.status, values=values)


RECORD_FIELDS = frozenset(a.name for a in attrs.fields(RecordIn))


def _make_converter() -> cattrs.Converter:
    converter = make_converter(detailed_validation=True, forbid_extra_keys=False)
    # The metric fields' hooks come from the field table (``bounded``); their NewTypes only name
    # the kind of value for the OpenAPI document.
    for new_type, hook in (
        (Timestamp, structure_timestamp),
        (ServerName, structure_server_name),
        (Status, structure_status),
    ):
        converter.register_structure_hook(new_type, hook)
    bounded = {field.name: override(struct_hook=_field_hook(field)) for field in FIELDS}
    generated = make_dict_structure_fn(RecordIn, converter, **bounded)

    def structure_record(value: Any, cls: type) -> RecordIn:
        if not isinstance(value, dict):
            raise FieldError("value is not a valid dict", "type_error.dict")
        return generated(value, cls)

    converter.register_structure_hook(RecordIn, structure_record)
    return converter


converter = _make_converter()


class UnknownFieldReport:
    """Counts unknown record fields and logs a short sample of them at most once per ``interval_s``.

    Unknown fields are ignored, never stored; a client sending fresh names on every request must
    not grow memory or the log: nothing is kept but two counters and a sample of a few names,
    each cut to ``max_name_chars``, for the next report.
    """

    def __init__(self, interval_s: float = 60.0, sample_size: int = 5, max_name_chars: int = 64,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s, self.sample_size, self.max_name_chars = interval_s, sample_size, max_name_chars
        self.clock = clock
        self.total = 0  # unknown fields seen by this process
        self._pending = 0  # seen since the last report
        self._sample: list[str] = []
        self._last_report = -math.inf
        self._lock = threading.Lock()

    def note(self, items: list[Any]) -> None:
        """Count the unknown fields of ``items`` (records as posted); report when one is due."""
        found, names = 0, []
        for item in items:
            if isinstance(item, dict) and len(item) != len(RECORD_FIELDS):
                for key in item:
                    if key not in RECORD_FIELDS:
                        found += 1
                        if len(names) < self.sample_size:
                            names.append(str(key)[: self.max_name_chars])
        if not found:
            return
        with self._lock:
            self.total += found
            self._pending += found
            for name in names:
                if len(self._sample) < self.sample_size and name not in self._sample:
                    self._sample.append(name)
            self._maybe_report()

    def _maybe_report(self) -> None:
        now = self.clock()
        if now - self._last_report < self.interval_s:
            return
        log.warning("ignoring unknown record field(s): %s (%d unknown field(s) since the last report; "
                    "at most one report every %.0f s)", ", ".join(repr(n) for n in self._sample), self._pending,
                    self.interval_s)
        self._last_report, self._pending, self._sample = now, 0, []


unknown_fields = UnknownFieldReport()


def parse_feed(body: Any, max_records: int, accepted: AcceptedTimes | None = None,
               now: datetime | None = None) -> list[Record]:
    """Validate a /feed/data body and return its records; raise RequestValidationError listing every problem.

    With ``accepted``, timestamps must also lie within its span around ``now`` (default: the clock).
    """
    if not isinstance(body, dict):
        raise RequestValidationError([_detail(["body"], "value is not a valid dict", "type_error.dict")])
    if "records" not in body:
        raise RequestValidationError([_detail(["body", "records"], "field required", "value_error.missing")])
    items = body["records"]
    if not isinstance(items, list):
        raise RequestValidationError([_detail(["body", "records"], "value is not a valid list", "type_error.list")])
    if not items:
        raise RequestValidationError(
            [_detail(["body", "records"], "ensure this value has at least 1 items", "value_error.list.min_items")]
        )
    if len(items) > max_records:
        raise TooManyRecordsError(len(items), max_records)
    unknown_fields.note(items)
    span = None
    if accepted is not None:
        now = now or datetime.now(UTC)
        span = (*accepted.span(now), accepted, now)
    token = _accepted_span.set(span)
    try:
        parsed = converter.structure(items, list[RecordIn])
    except (cattrs.ClassValidationError, cattrs.IterableValidationError) as ex:
        raise RequestValidationError(validation_details(ex, ["body", "records"])) from None
    finally:
        _accepted_span.reset(token)
    return [item.to_domain() for item in parsed]


class TooManyRecordsError(Exception):
    """More records in one request than ``ARGUS_MAX_RECORDS_PER_REQUEST`` allows (413)."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"Too many records in one request: {count} (limit {limit}); split the batch")


def validation_details(ex: BaseException, path: list[Any]) -> list[dict[str, Any]]:
    """Flatten a cattrs validation error tree into the reference's ``detail`` entries."""
    if isinstance(ex, cattrs.ClassValidationError | cattrs.IterableValidationError):
        with_notes, without = ex.group_exceptions()
        details = []
        for sub, note in with_notes:
            key = getattr(note, "name", None)
            details.extend(validation_details(sub, [*path, getattr(note, "index", None) if key is None else key]))
        for sub in without:
            details.extend(validation_details(sub, path))
        return details
    if isinstance(ex, FieldError):
        return [_detail(path, ex.msg, ex.type)]
    if isinstance(ex, KeyError):
        return [_detail(path, "field required", "value_error.missing")]
    return [_detail(path, "invalid value", "value_error")]


def _detail(loc: list[Any], msg: str, type_: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": type_}
