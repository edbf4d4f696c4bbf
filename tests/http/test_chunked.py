"""Request bodies: chunked uploads within the size limit, and bodies cut short by a client that left."""

from __future__ import annotations

import attrs
import orjson
from falcon import testing

from argus.testing import wire_record
from tests.conftest import API_KEY

HEADERS = {"X-API-Key": API_KEY, "Content-Type": "application/json"}


def as_a_server_passes_it(app, stream_for=None):
    """What gunicorn hands the app for ``Transfer-Encoding: chunked``: no CONTENT_LENGTH, a decoded stream."""

    def wsgi(environ, start_response):
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", ""):
            environ.pop("CONTENT_LENGTH", None)
            if stream_for is not None:
                environ["wsgi.input"] = stream_for(environ["wsgi.input"])
        return app(environ, start_response)

    return testing.TestClient(wsgi, headers=HEADERS)


class EndlessStream:
    """A client that never stops sending; counts what the app read."""

    def __init__(self, _original) -> None:
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        size = 1 << 20 if size is None or size < 0 else size
        self.read_bytes += size
        return b" " * size


class BrokenChunks:
    """The server's chunk decoder meeting a malformed chunk (gunicorn raises its own ParseException types)."""

    def __init__(self, _original) -> None:
        pass

    def read(self, size: int = -1) -> bytes:
        raise ValueError("Invalid chunk size: b'zz'")


def test_a_chunked_upload_is_accepted_and_stored(container):
    client = as_a_server_passes_it(container.app())
    body = orjson.dumps({"records": [wire_record(f"web{i:03d}") for i in range(3)]})
    result = client.simulate_post("/feed/data", body=body, headers={"Transfer-Encoding": "chunked"})
    assert result.status_code == 200, result.json
    assert result.json["records_received"] == 3
    assert container.store().count_records(10) == 3


def test_a_chunked_upload_past_the_limit_is_413_after_reading_one_byte_more_than_the_limit(settings, make_client):
    streams = []

    def endless(original):
        streams.append(EndlessStream(original))
        return streams[-1]

    app = make_client(attrs.evolve(settings, max_body_bytes=4096)).app
    client = as_a_server_passes_it(app, stream_for=endless)
    result = client.simulate_post("/feed/data", body=b"{}", headers={"Transfer-Encoding": "chunked"})
    assert result.status_code == 413
    assert result.json == {"detail": "Request body exceeds 4096 bytes"}
    assert streams[0].read_bytes == 4097


def test_a_chunk_the_server_cannot_decode_is_a_400_not_a_500(container):
    client = as_a_server_passes_it(container.app(), stream_for=BrokenChunks)
    result = client.simulate_post("/feed/data", body=b"{}", headers={"Transfer-Encoding": "chunked"})
    assert result.status_code == 400
    assert result.json["detail"].startswith("Request body could not be read")


def test_a_body_shorter_than_its_content_length_is_refused_and_nothing_is_stored(container):
    client = testing.TestClient(container.app(), headers=HEADERS)
    body = orjson.dumps({"records": [wire_record("ppdb001")]})  # valid JSON: the client left before the rest
    result = client.simulate_post("/feed/data", body=body, headers={"Content-Length": str(len(body) + 100)})
    assert result.status_code == 400
    assert result.json == {"detail": f"Request body ended after {len(body)} of {len(body) + 100} bytes"}
    assert container.store().count_records(10) == 0


def test_a_plain_body_still_reads_to_its_length(container):
    client = testing.TestClient(container.app(), headers=HEADERS)
    result = client.simulate_post("/feed/data", body=orjson.dumps({"records": [wire_record()]}))
    assert result.status_code == 200
