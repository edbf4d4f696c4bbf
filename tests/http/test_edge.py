"""The HTTP edge: API key, rate limits, error bodies, request ids, /health and /status."""

from __future__ import annotations

import os

import attrs
import falcon
import pytest
from falcon import testing

from argus.adapters.http.ratelimit import DEFAULT_LIMITS, RateLimiter, parse_limits
from argus.domain.errors import ConfigurationError
from argus.testing import wire_record
from tests.conftest import API_KEY, REDIS_URL


def _feed(client, **kwargs):
    return client.simulate_post("/feed/data", json={"records": [wire_record()]}, **kwargs)


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}, {"X-API-Key": API_KEY + "x"}])
def test_missing_or_wrong_key_gets_401_and_stores_nothing(container, headers):
    client = testing.TestClient(container.app())
    result = _feed(client, headers=headers)
    assert result.status_code == 401
    assert result.json == {"detail": "Invalid or missing API key"}
    assert container.store().count_records(10) == 0


@pytest.mark.parametrize("path", ["/health", "/status"])
def test_health_and_status_need_no_key(container, path):
    result = testing.TestClient(container.app()).simulate_get(path)
    assert result.status_code == 200


def test_health_has_the_reference_shape(client):
    body = client.simulate_get("/health").json
    assert body["status"] == "healthy" and body["service"] == "tft_inference_daemon"
    assert body["running"] is False  # no engine has published yet


def test_status_before_any_engine_is_null_where_nothing_exists(client):
    body = client.simulate_get("/status").json
    assert body["model_loaded"] is False and body["model_path"] is None
    assert body["last_prediction"] is None and body["uptime_seconds"] is None
    assert body["rolling_window_size"] == 2880 and body["servers_tracked"] == 0
    assert body["warmup_complete"] is False


def test_status_serves_what_the_engine_published(client, container):
    client.simulate_post("/feed/data", json={"records": [wire_record(f"s{i}") for i in range(3)]})
    engine = container.engine()
    engine.start()
    body = client.simulate_get("/status").json
    assert body["servers_tracked"] == 3 and body["window_records"] == 3
    assert body["engine"]["running"] is True and isinstance(body["uptime_seconds"], int)
    assert client.simulate_get("/health").json["running"] is True


def test_the_feed_limit_is_60_per_minute_per_key_with_retry_after(client):
    codes = [_feed(client).status_code for _ in range(61)]
    assert codes[:60] == [200] * 60
    assert codes[60] == 429
    result = _feed(client)
    assert result.json["detail"].startswith("Rate limit exceeded. Try again in ")
    seconds = int(result.headers["Retry-After"])
    assert 1 <= seconds <= 60
    assert result.json["detail"] == f"Rate limit exceeded. Try again in {seconds} seconds."


def test_limits_are_configurable_per_group(settings, make_client):
    client = make_client(attrs.evolve(settings, rate_limits="feed=2/minute"))
    assert [_feed(client).status_code for _ in range(3)] == [200, 200, 429]


def test_limits_count_per_key(settings, make_client, tmp_path):
    limiter = RateLimiter("memory://", "feed=1/minute")
    assert limiter.hit("feed", "key-a").allowed
    assert limiter.hit("feed", "key-b").allowed
    assert not limiter.hit("feed", "key-a").allowed
    assert limiter.hit("admin", "key-a").allowed


def test_limit_spec_rejects_unknown_groups_and_bad_syntax():
    assert str(parse_limits("")["admin"]) == str(parse_limits("admin=10/minute")["admin"])
    assert set(parse_limits("")) == set(DEFAULT_LIMITS)
    with pytest.raises(ConfigurationError):
        parse_limits("fed=10/minute")
    with pytest.raises(ConfigurationError):
        parse_limits("feed=lots")


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="ARGUS_TEST_REDIS_URL not set (CI sets it)")
def test_limits_are_shared_through_redis_between_workers():
    first, second = RateLimiter(REDIS_URL, "feed=3/minute"), RateLimiter(REDIS_URL, "feed=3/minute")
    first.reset()
    key = f"shared-{os.getpid()}"
    verdicts = [first.hit("feed", key), second.hit("feed", key), first.hit("feed", key), second.hit("feed", key)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert 1 <= verdicts[-1].retry_after_s <= 60


def test_an_unreachable_limit_store_does_not_block_ingestion():
    limiter = RateLimiter("redis://127.0.0.1:1", "feed=1/minute")
    assert limiter.hit("feed", "k").allowed


def test_unknown_route_and_method_use_the_detail_style(client):
    assert client.simulate_get("/nope").json == {"detail": "Not Found"}
    result = client.simulate_delete("/feed/data")
    assert result.status_code == 405 and set(result.json) == {"detail"}


def test_an_unexpected_error_is_a_500_without_a_traceback(container, monkeypatch):
    def explode(*_args, **_kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(container.store(), "write_batch", explode)
    result = _feed(testing.TestClient(container.app(), headers={"X-API-Key": API_KEY}))
    assert result.status_code == 500
    assert result.json["detail"] == "Internal server error"
    assert "secret" not in result.text and "Traceback" not in result.text
    assert result.headers["X-Request-ID"] in result.json["error"]


def test_an_unreachable_database_is_a_503_with_retry_after(container, monkeypatch):
    import sqlalchemy as sa

    def down(*_args, **_kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("connection refused"))

    monkeypatch.setattr(container.store(), "write_batch", down)
    result = _feed(testing.TestClient(container.app(), headers={"X-API-Key": API_KEY}))
    assert result.status_code == 503 and result.headers["Retry-After"] == "5"


def test_every_response_carries_a_request_id_and_a_sane_incoming_one_is_kept(client):
    assert len(client.simulate_get("/health").headers["X-Request-ID"]) == 32
    kept = client.simulate_get("/health", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["X-Request-ID"] == "abc-123"
    replaced = client.simulate_get("/health", headers={"X-Request-ID": "bad id\n"})
    assert replaced.headers["X-Request-ID"] != "bad id\n"


def test_the_app_refuses_to_start_without_a_key(settings):
    from dependency_injector import providers

    from argus.entrypoints.container import Container

    container = Container()
    container.settings.override(providers.Object(attrs.evolve(settings, api_key=None)))
    with pytest.raises(ConfigurationError, match="No API key configured"):
        container.app()


def test_falcon_http_errors_never_leak_html(client):
    result = client.simulate_request("PATCH", "/health")
    assert result.headers["content-type"].startswith(falcon.MEDIA_JSON)
