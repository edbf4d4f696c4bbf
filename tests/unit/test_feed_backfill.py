"""``argus feed``: progress with a total, the rate-limit wait said aloud, --backfill packing, Ctrl-C."""

from __future__ import annotations

import email.message
import io
import json
import urllib.error

import pytest
from click.testing import CliRunner

from argus.adapters.demo import client as client_module
from argus.adapters.demo.backfill import Body, Tally, backfill, pack, raw_lines
from argus.adapters.demo.client import ArgusClient, FeedRejectedError
from argus.entrypoints.cli import cli


def _lines(n: int) -> list[bytes]:
    return [json.dumps({"server_name": f"s{i:03d}", "timestamp": "2026-01-01T00:00:00", "i": i}).encode()
            for i in range(n)]


def _http_error(status: int, body: dict, headers: dict | None = None) -> urllib.error.HTTPError:
    message = email.message.Message()
    for name, value in (headers or {}).items():
        message[name] = value
    return urllib.error.HTTPError("http://x/feed/data", status, "x", message, io.BytesIO(json.dumps(body).encode()))


class FakeServer:
    """Stands in for ArgusClient._once: answers each POST in turn from ``script`` (then 200), keeps the bodies."""

    def __init__(self, script=()) -> None:
        self.script, self.bodies = list(script), []

    def __call__(self, client, method, path, body):
        if self.script:
            outcome = self.script.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
        self.bodies.append(json.loads(body)["records"])
        return {"status": "accepted"}


def _serve(monkeypatch, server: FakeServer) -> FakeServer:
    monkeypatch.setattr(ArgusClient, "_once", lambda self, method, path, body: server(self, method, path, body))
    return server


def test_pack_keeps_bodies_under_the_byte_limit_and_every_line_in_order():
    lines = _lines(100)
    bodies = list(pack(enumerate(lines, start=1), max_body_bytes=1000, max_records=50))
    assert all(len(body.encode()) <= 1000 for body in bodies) and len(bodies) > 5
    decoded = [record for body in bodies for record in json.loads(body.encode())["records"]]
    assert [record["i"] for record in decoded] == list(range(100))
    assert [n for body in bodies for n in body.numbers] == list(range(1, 101))
    assert [len(b.lines) for b in pack(enumerate(lines, start=1), max_body_bytes=10**9, max_records=40)] == [40, 40, 20]


def test_raw_lines_skips_blank_lines_and_refuses_a_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"a": 1}\n\n  {"b": 2}  \n[1, 2]\n')
    lines = raw_lines(path)
    assert next(lines) == (1, b'{"a": 1}') and next(lines) == (3, b'{"b": 2}')
    with pytest.raises(Exception, match="line 4: expected a JSON object"):
        next(lines)


def test_a_body_refused_as_too_large_is_sent_again_in_halves(monkeypatch):
    server = FakeServer([_http_error(413, {"detail": "Request body too large"})])
    _serve(monkeypatch, server)
    acked, tally = [], Tally()
    backfill(ArgusClient("http://x", "k"), [Body(tuple(_lines(10)), tuple(range(1, 11)))], 2, acked.append, tally)
    assert sorted(len(b) for b in server.bodies) == [5, 5] and sum(acked) == 10
    assert (tally.records, tally.requests, tally.splits) == (10, 2, 1)


def test_a_429_is_waited_out_and_the_wait_is_announced(monkeypatch):
    server = FakeServer([_http_error(429, {"detail": "Rate limit exceeded. Try again in 7 seconds."},
                                     {"Retry-After": "7"})])
    _serve(monkeypatch, server)
    slept, told = [], []
    client = ArgusClient("http://x", "k", sleep=slept.append, on_wait=lambda reason, s: told.append((reason, s)))
    client.feed([{"a": 1}])
    assert told == [("rate-limited", 7.0)] and slept == [7.0]
    assert (client.retries, client.rate_limited, client.waited_s) == (1, 1, 7.0)


def _write(tmp_path, n: int):
    path = tmp_path / "records.jsonl"
    path.write_bytes(b"\n".join(_lines(n)) + b"\n")
    return path


@pytest.mark.parametrize("mode", [[], ["--backfill", "--batch-size", "4"]])
def test_progress_shows_the_total_the_percentage_and_the_rate(monkeypatch, tmp_path, mode):
    server = FakeServer()
    _serve(monkeypatch, server)
    result = CliRunner().invoke(cli, ["feed", str(_write(tmp_path, 12)), "--key", "k", *mode])
    assert result.exit_code == 0, result.output
    assert "100%" in result.output and "12/12" in result.output and "rec/s" in result.output
    assert "fed 12 records" in result.output and sum(map(len, server.bodies)) == 12


def test_the_cli_says_rate_limited_waiting_n_s(monkeypatch, tmp_path):
    monkeypatch.setattr(client_module.threading.Event, "wait", lambda self, timeout=None: False)  # no real sleep
    server = FakeServer([_http_error(429, {"detail": "Rate limit exceeded."}, {"Retry-After": "42"})])
    _serve(monkeypatch, server)
    result = CliRunner().invoke(cli, ["feed", str(_write(tmp_path, 3)), "--key", "k", "--backfill"])
    assert result.exit_code == 0, result.output
    assert "rate-limited, waiting 42 s" in result.output and "1 rate-limited, 42.0s waited" in result.output


@pytest.mark.parametrize("mode", [[], ["--backfill", "--batch-size", "4", "--parallel", "1"]])
def test_ctrl_c_stops_and_reports_what_was_acknowledged(monkeypatch, tmp_path, mode):
    server = FakeServer([None, None, KeyboardInterrupt()])
    _serve(monkeypatch, server)
    path = tmp_path / "records.jsonl"
    path.write_bytes(b"\n".join(json.dumps({"timestamp": f"2026-01-01T00:{i:02d}:00", "i": i}).encode()
                                for i in range(12)) + b"\n")
    result = CliRunner().invoke(cli, ["feed", str(path), "--key", "k", *mode])
    assert result.exit_code == 130
    expected = "8 records acknowledged (stored) in 2 requests" if mode else "2 records acknowledged (stored) in 2"
    assert expected in result.stderr and "Re-sending the file is safe" in result.stderr


def test_a_too_old_refusal_names_the_retention_setting_and_the_line(monkeypatch, tmp_path):
    detail = [{"loc": ["body", "records", 1, "timestamp"], "msg": "older than the retention",
               "type": "value_error.datetime.too_old"}]
    _serve(monkeypatch, FakeServer([_http_error(422, {"detail": detail})]))
    result = CliRunner().invoke(cli, ["feed", str(_write(tmp_path, 3)), "--key", "k", "--backfill"])
    assert result.exit_code == 1
    assert "ARGUS_RECORDS_RETENTION_DAYS=36500" in result.output and "line 2" in result.output
    assert isinstance(FeedRejectedError(422, detail).detail, list)
