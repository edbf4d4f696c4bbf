"""``argus feed``: batching, 429 retries after Retry-After, clear stops on 401 and 422, over real HTTP."""

from __future__ import annotations

import gzip
import json
import socketserver
import threading
from contextlib import contextmanager
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from click.testing import CliRunner

from argus.adapters.demo.client import ArgusClient
from argus.entrypoints.cli import cli
from argus.testing import wire_record
from tests.conftest import API_KEY


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


@contextmanager
def serving(app):
    """Serve a WSGI app on a free loopback port; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


class CountingApp:
    """Wrap the app: count POSTs and answer the first ``refuse`` of them with 429 Retry-After: 1."""

    def __init__(self, app, refuse: int = 0) -> None:
        self.app, self.refuse, self.posts, self.refused = app, refuse, [], 0

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "POST":
            if self.refused < self.refuse:
                self.refused += 1
                start_response("429 Too Many Requests", [("Content-Type", "application/json"), ("Retry-After", "1")])
                return [b'{"detail": "Rate limit exceeded. Try again in 1 seconds."}']
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            self.posts.append(len(json.loads(body)["records"]))
            environ["wsgi.input"] = __import__("io").BytesIO(body)
        return self.app(environ, start_response)


def _write(path, steps=3, servers=("ppdb001", "ppweb001", "ppml0001", "pprisk001"), **overrides):
    lines = [json.dumps(wire_record(name, step, **overrides)) for step in range(steps) for name in servers]
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            handle.write("\n".join(lines) + "\n")
    else:
        path.write_text("\n".join(lines) + "\n")
    return path


def _run(*args):
    return CliRunner().invoke(cli, ["feed", *map(str, args)], catch_exceptions=False)


def test_feed_posts_one_batch_per_timestamp_and_everything_is_stored(container, tmp_path):
    counting = CountingApp(container.app())
    with serving(counting) as url:
        result = _run(_write(tmp_path / "records.jsonl.gz"), "--url", url, "--key", API_KEY)
    assert result.exit_code == 0, result.output
    assert counting.posts == [4, 4, 4]
    assert "fed 12 records in 3 requests" in result.output
    assert container.store().count_records(1000) == 12


def test_batch_size_cuts_fixed_size_batches(container, tmp_path):
    counting = CountingApp(container.app())
    with serving(counting) as url:
        result = _run(_write(tmp_path / "records.jsonl"), "--url", url, "--key", API_KEY, "--batch-size", 5)
    assert result.exit_code == 0, result.output
    assert counting.posts == [5, 5, 2]


def test_a_429_is_retried_after_its_retry_after(container, tmp_path):
    counting = CountingApp(container.app(), refuse=2)
    with serving(counting) as url:
        result = _run(_write(tmp_path / "records.jsonl", steps=1), "--url", url, "--key", API_KEY)
    assert result.exit_code == 0, result.output
    assert counting.refused == 2 and counting.posts == [4]
    assert result.output.count("rate-limited, waiting 1 s") == 2
    assert "2 retries, 2 rate-limited, 2.0s waited" in result.output


def test_a_wrong_key_stops_at_once_with_the_servers_detail(container, tmp_path):
    counting = CountingApp(container.app())
    with serving(counting) as url:
        result = _run(_write(tmp_path / "records.jsonl"), "--url", url, "--key", "wrong")
    assert result.exit_code == 1
    assert "HTTP 401" in result.output and "Invalid or missing API key" in result.output
    assert container.store().count_records(10) == 0


def test_an_invalid_record_stops_with_each_bad_field(container, tmp_path):
    with serving(container.app()) as url:
        result = _run(_write(tmp_path / "records.jsonl", cpu_user_pct=150), "--url", url, "--key", API_KEY)
    assert result.exit_code == 1
    assert "HTTP 422" in result.output and "body.records.0.cpu_user_pct" in result.output
    assert "0 records were stored before it" in result.output


def test_connection_errors_are_retried_with_backoff_then_reported():
    waits = []
    client = ArgusClient("http://127.0.0.1:9", "k", max_retries=2, sleep=waits.append)  # port 9: discard, closed
    with pytest.raises(Exception, match="failed 3 times"):
        client.feed([wire_record()])
    assert waits == [0.5, 1.0]
