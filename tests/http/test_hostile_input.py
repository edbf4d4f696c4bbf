"""POST /feed/data under hostile input: 422 in the documented format, nothing stored, nothing kept."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta

import attrs
import pytest
import sqlalchemy as sa

from argus.adapters.http import schemas
from argus.adapters.sql import tables as t
from argus.domain.errors import ConfigurationError
from argus.entrypoints.settings import Settings
from argus.testing import wire_record


def _stored(container) -> int:
    with container.db_engine().connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(t.records)).scalar_one()


def _post(client, *records):
    return client.simulate_post("/feed/data", json={"records": list(records)})


def _at(moment: datetime, server: str = "ppdb001") -> dict:
    return wire_record(server, timestamp=moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds"))


def _only_problem(result) -> dict:
    assert result.status_code == 422, result.text
    [problem] = result.json["detail"]
    assert set(problem) == {"loc", "msg", "type"}
    return problem


def test_a_record_dated_2099_is_refused_and_nothing_of_its_request_is_stored(client, container):
    now = datetime.now(UTC)
    problem = _only_problem(_post(client, _at(now), _at(now.replace(year=2099), "ppweb002")))
    assert problem["loc"] == ["body", "records", 1, "timestamp"] and problem["type"] == "value_error.datetime.future"
    assert _stored(container) == 0


def test_timestamps_up_to_the_clock_skew_ahead_are_accepted_and_beyond_are_not(client, container):
    now = datetime.now(UTC)
    assert _post(client, _at(now), _at(now + timedelta(minutes=4), "ppweb002")).status_code == 200
    problem = _only_problem(_post(client, _at(now + timedelta(minutes=6))))
    assert "300 s ahead of the server's clock" in problem["msg"]
    assert _stored(container) == 2


def test_the_clock_skew_is_a_setting(make_client, settings):
    client = make_client(attrs.evolve(settings, max_clock_skew_s=3600.0))
    assert _post(client, _at(datetime.now(UTC) + timedelta(minutes=50))).status_code == 200
    assert Settings.from_env({"ARGUS_MAX_CLOCK_SKEW_S": "60"}).max_clock_skew_s == 60.0
    with pytest.raises(ConfigurationError, match="ARGUS_MAX_CLOCK_SKEW_S"):
        Settings.from_env({"ARGUS_MAX_CLOCK_SKEW_S": "soon"})


def test_records_older_than_the_records_retention_are_refused(make_client, settings):
    client = make_client(attrs.evolve(settings, records_retention_days=35))
    problem = _only_problem(_post(client, wire_record("ppdb001")))  # dated January 2025
    assert problem["type"] == "value_error.datetime.too_old" and "35 days" in problem["msg"]
    assert _post(client, _at(datetime.now(UTC) - timedelta(days=34))).status_code == 200


@pytest.mark.parametrize(("field", "value"), [("net_in_mb_s", 1e308), ("load_average", 1e300),
                                              ("front_close_wait", 999_999_999)])
def test_huge_finite_values_are_refused(client, container, field, value):
    problem = _only_problem(_post(client, wire_record("ppdb001", **{field: value})))
    assert problem["loc"] == ["body", "records", 0, field] and problem["type"] == "value_error.number.not_le"
    assert _stored(container) == 0


def test_a_server_name_with_a_trailing_newline_does_not_create_a_lookalike_server(client, container):
    assert _post(client, wire_record("ppdb001", 0)).status_code == 200
    for lookalike in ("ppdb001\n", "ppdb001\r", "ppdb\u0430001", "\u0440pdb001", "ppdb001\u00a0"):
        problem = _only_problem(_post(client, wire_record(lookalike, 1)))
        assert problem["loc"] == ["body", "records", 0, "server_name"]
    assert container.store().server_names() == ["ppdb001"]


def test_fresh_unknown_field_names_on_every_request_are_counted_and_logged_at_a_limited_rate(client, caplog):
    before = schemas.unknown_fields.total
    with caplog.at_level(logging.WARNING, logger="argus.adapters.http.schemas"):
        for step in range(40):
            junk = {f"f{secrets.token_hex(6)}{'q' * 5000}": step for _ in range(20)}  # 100 kB of new names
            assert _post(client, {**wire_record("ppdb001", step), **junk}).status_code == 200
    assert schemas.unknown_fields.total - before == 40 * 20
    lines = [r.getMessage() for r in caplog.records if "unknown record field" in r.getMessage()]
    assert len(lines) <= 1 and sum(map(len, lines)) < 2000  # not 40 lines of 100 kB
    assert len(schemas.unknown_fields._sample) <= schemas.unknown_fields.sample_size
