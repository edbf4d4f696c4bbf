"""``argus demo --export FILE``: a records file the repository makes itself, which a default server accepts whole."""

from __future__ import annotations

import gzip
import json

from click.testing import CliRunner

from argus.entrypoints.cli import cli
from tests.conftest import API_KEY
from tests.http.test_feed_cli import serving


def test_an_exported_fleet_is_accepted_whole_by_argus_feed(container, tmp_path):
    path = tmp_path / "fleet.jsonl.gz"
    exported = CliRunner().invoke(cli, ["demo", "--export", str(path), "--servers", "7", "--hours", "2"])
    assert exported.exit_code == 0, exported.output
    with gzip.open(path, "rt") as lines:
        records = [json.loads(line) for line in lines]
    assert len(records) == 7 * 24 and len({r["server_name"] for r in records}) == 7
    with serving(container.app()) as url:  # default clock skew and retention: dated now, nothing refused
        fed = CliRunner().invoke(cli, ["feed", str(path), "--url", url, "--key", API_KEY, "--backfill"])
    assert fed.exit_code == 0, fed.output
    assert "fed 168 records" in fed.output
    assert container.store().count_records(10**9) == 168
