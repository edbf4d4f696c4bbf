"""Failed logins: every 401 names its challenge, and an address that keeps guessing keys gets 429."""

from __future__ import annotations

import time

import attrs
from falcon import testing

from argus.testing import wire_record
from tests.conftest import API_KEY


def _get(client, key: str | None, address: str = "203.0.113.7"):
    headers = {} if key is None else {"X-API-Key": key}
    return client.simulate_get("/alerts/active", headers=headers, remote_addr=address)


def test_every_401_carries_a_www_authenticate_challenge(container):
    client = testing.TestClient(container.app())
    for key in (None, "", "wrong-key"):
        result = _get(client, key)
        assert result.status_code == 401
        assert result.json == {"detail": "Invalid or missing API key"}
        assert result.headers["WWW-Authenticate"] == 'ApiKey realm="argus", header="X-API-Key"'


def test_a_thousand_wrong_keys_are_cut_off_after_ten_by_default(container):
    client = testing.TestClient(container.app())
    codes = [_get(client, f"guess-{i:04d}").status_code for i in range(1000)]
    assert codes[:10] == [401] * 10
    assert set(codes[10:]) == {429}


def test_past_the_limit_the_address_gets_429_with_retry_after_even_with_the_right_key(settings, make_client):
    client = make_client(attrs.evolve(settings, rate_limits="auth_failures=3/minute"))
    assert [_get(client, "wrong").status_code for _ in range(3)] == [401] * 3
    for key in ("wrong", API_KEY):  # the right key must not stand out from a wrong one now
        result = _get(client, key)
        assert result.status_code == 429
        seconds = int(result.headers["Retry-After"])
        assert 1 <= seconds <= 60
        assert result.json == {"detail": f"Rate limit exceeded. Try again in {seconds} seconds."}
    assert client.simulate_get("/health", remote_addr="203.0.113.7").status_code == 200  # public stays public
    assert _get(client, API_KEY, address="198.51.100.1").status_code == 200  # another address is not locked out


def test_a_locked_out_address_is_served_again_once_the_window_frees(settings, make_client):
    client = make_client(attrs.evolve(settings, rate_limits="auth_failures=2/second"))
    assert [_get(client, "wrong").status_code for _ in range(3)] == [401, 401, 429]
    time.sleep(1.1)
    assert _get(client, API_KEY).status_code == 200


def test_requests_with_the_right_key_never_count_as_failures(settings, make_client):
    client = make_client(attrs.evolve(settings, rate_limits="auth_failures=2/minute,feed=1000/minute"))
    for step in range(20):
        result = client.simulate_post("/feed/data", json={"records": [wire_record("ppdb001", step)]},
                                      headers={"X-API-Key": API_KEY}, remote_addr="203.0.113.7")
        assert result.status_code != 429
    assert _get(client, "wrong").status_code == 401
