"""The OpenAPI document matches the app: every route and method, the record fields; and it is valid."""

from __future__ import annotations

import attrs
import pytest

from argus.adapters.http.openapi import openapi_document
from argus.adapters.http.schemas import RecordIn

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def served_routes(app) -> set[tuple[str, str]]:
    """(path template, method) of every responder the Falcon app really has."""
    routes = set()

    def walk(nodes):
        for node in nodes:
            if node.resource is not None:
                for method in METHODS:
                    if hasattr(node.resource, f"on_{method.lower()}"):
                        routes.add((node.uri_template, method))
            walk(node.children or [])

    walk(app._router._roots)
    return routes


def documented_routes() -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in openapi_document()["paths"].items() for method in item}


def test_every_served_route_is_documented_and_nothing_else(container):
    assert served_routes(container.app()) == documented_routes()


def test_the_record_schema_has_every_field_the_feed_validates():
    schema = openapi_document()["components"]["schemas"]["Record"]
    assert set(schema["required"]) == {f.name for f in attrs.fields(RecordIn)}
    assert schema["properties"]["mem_used_pct"] == {"type": "number", "minimum": 0, "maximum": 100}
    assert schema["properties"]["uptime_days"]["maximum"] == 365


def test_the_document_is_served_without_a_key_and_is_valid_openapi_3_1(container):
    from falcon import testing

    result = testing.TestClient(container.app()).simulate_get("/openapi.json")
    assert result.status_code == 200 and result.json["openapi"] == "3.1.0"
    schemathesis = pytest.importorskip("schemathesis")
    schemathesis.openapi.from_dict(result.json)  # raises on an invalid document
