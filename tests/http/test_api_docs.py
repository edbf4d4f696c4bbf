"""docs/api.md is the Markdown of what /openapi.json serves: regenerate it with scripts/gen-api-docs."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from argus.adapters.http.api_markdown import render_markdown
from argus.adapters.http.openapi import openapi_document
from argus.entrypoints.cli import cli

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_the_committed_api_reference_is_current():
    assert DOCS.read_text(encoding="utf-8") == render_markdown(openapi_document()), \
        "docs/api.md is stale: run scripts/gen-api-docs and commit it"


def test_the_served_document_is_what_the_reference_is_made_from(client):
    assert client.simulate_get("/openapi.json").json == openapi_document()


def test_every_endpoint_and_schema_link_in_the_reference_has_its_target():
    text = render_markdown(openapi_document())
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and links <= anchors
    assert len([a for a in anchors if not a.startswith("schema-")]) == sum(
        len(item) for item in openapi_document()["paths"].values())


def test_argus_openapi_writes_the_markdown_or_the_json(tmp_path):
    out = tmp_path / "api.md"
    assert CliRunner().invoke(cli, ["openapi", "--markdown", "-o", str(out)]).exit_code == 0
    assert out.read_text(encoding="utf-8") == DOCS.read_text(encoding="utf-8")
    assert '"openapi": "3.1.0"' in CliRunner().invoke(cli, ["openapi"]).output
