"""Schemathesis against the app (bounded examples): no 500, every response conforms to /openapi.json."""

from __future__ import annotations

import attrs
import pytest
from dependency_injector import providers
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from argus.entrypoints.container import Container
from tests.conftest import API_KEY

schemathesis = pytest.importorskip("schemathesis")
pytestmark = pytest.mark.slow


def _remote_write_bodies():
    """POST /api/v1/write bodies: real snappy + protobuf WriteRequests with any value and time, or any bytes."""
    from hypothesis import strategies as st

    from argus.adapters.prometheus import wire
    from argus.adapters.prometheus.sample_hosts import write_request

    def body(value: float, ts_ms: int) -> bytes:
        return wire.encode(write_request([({"__name__": "node_load1", "instance": "h1:9100"}, value, ts_ms)]))

    return st.one_of(st.builds(body, st.floats(), st.integers(-(2**63), 2**63 - 1)), st.binary(max_size=200))


schemathesis.openapi.media_type("application/x-protobuf", _remote_write_bodies())


@pytest.fixture(scope="module")
def contract_app(tmp_path_factory):
    """The real app on SQLite, limits out of the way, no engine (engine calls time out fast: 503)."""
    from argus.entrypoints.settings import Settings

    tmp = tmp_path_factory.mktemp("contract")
    settings = attrs.evolve(
        Settings.from_env({"ARGUS_DATA_DIR": str(tmp), "ARGUS_MODEL_DIR": str(tmp / "models")}),
        api_key=API_KEY, rate_limits=",".join(f"{g}=100000/minute" for g in
                                              ("feed", "predictions", "alerts", "explain", "historical", "admin")),
        explain_timeout_s=0.05, admin_timeout_s=0.05,
    )
    container = Container()
    container.settings.override(providers.Object(settings))
    yield container.app()
    container.shutdown_resources()


def _excluded():
    from schemathesis import checks

    # Schema-valid input is not always acceptable here: an unknown server is a 404, an engine that
    # is not running a 503 (both documented), so "positive data must be accepted" does not apply.
    # The stock "not a server error" check fails on every 5xx; our documented 503 (engine not
    # running, with Retry-After) and the reference's 500 "Model not loaded" are expected here, so
    # ``no_crash`` below replaces it: any other 5xx fails.
    return [getattr(checks, name) for name in ("positive_data_acceptance", "not_a_server_error")]


def no_crash(ctx, response, case) -> None:
    """Fail on any 5xx except the documented ones: 503 with Retry-After, 500 "Model not loaded"."""
    if response.status_code < 500:
        return
    body = response.json()
    if response.status_code == 503 and response.headers.get("retry-after"):
        return
    if response.status_code == 500 and body.get("error") == "Model not loaded":
        return
    raise AssertionError(f"unexpected {response.status_code}: {body}")


def _operations(app):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_conforms_to_the_document_and_never_fails(contract_app):
    """Drive schemathesis' strategies with hypothesis directly (its pytest plugin predates pytest 9)."""

    operations = _operations(contract_app)
    excluded = _excluded()
    assert len(operations) >= 20
    for operation in operations:
        _fuzz(operation.as_strategy(), excluded)


def _fuzz(strategy, excluded) -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    @given(data=st.data())
    @hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(data):
        case = data.draw(strategy)
        case.call_and_validate(headers={"X-API-Key": API_KEY}, excluded_checks=excluded, additional_checks=[no_crash])

    check()
