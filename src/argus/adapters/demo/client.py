"""A small stdlib HTTP client for Argus's public API: POST /feed/data with retries, GET JSON.

Used by ``argus feed`` (replays and backfills) and ``argus demo``. Retries what is worth retrying:
429 after the server's ``Retry-After``, 5xx and connection failures with exponential back-off
(a re-sent batch is harmless: ``(server_name, timestamp)`` replaces the earlier record). Anything
else the server refuses (401, 422, 413, ...) raises ``FeedRejectedError`` with the server's detail.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


class FeedRejectedError(Exception):
    """The server refused a request for a reason retrying will not fix."""

    def __init__(self, status: int, detail: Any) -> None:
        self.status, self.detail = status, detail
        super().__init__(f"HTTP {status}: {format_detail(detail)}")


class ServerUnavailableError(Exception):
    """The server kept failing (5xx or no connection) after every retry."""


def format_detail(detail: Any) -> str:
    """The server's ``detail`` as text; 422 lists become one line per problem."""
    if isinstance(detail, list):
        lines = []
        for item in detail[:20]:
            if isinstance(item, dict):
                loc = ".".join(str(part) for part in item.get("loc", []))
                lines.append(f"{loc}: {item.get('msg')}")
            else:
                lines.append(str(item))
        more = f"\n... and {len(detail) - 20} more" if len(detail) > 20 else ""
        return "\n".join(lines) + more
    return str(detail)


#: ``on_wait(reason, seconds)``: told before every wait, so a progress display can say why it stalls.
WaitListener = Callable[[str, float], None]


class ArgusClient:
    """Talk to one Argus at ``url`` with ``api_key``; ``sleep`` is injectable for tests.

    Safe to share between threads (``argus feed --backfill`` keeps several requests in flight).
    """

    def __init__(self, url: str, api_key: str, *, timeout_s: float = 60.0, max_retries: int = len(BACKOFF_S),
                 sleep: Callable[[float], None] | None = None, on_wait: WaitListener | None = None) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self._stopped = threading.Event()
        self.sleep = sleep or self._stopped.wait  # stop() cuts a wait short
        self.on_wait = on_wait
        self.retries = 0  # every retry so far (429s included), for progress reports
        self.rate_limited = 0  # of which 429s
        self.waited_s = 0.0
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Retry nothing more: a request that fails from now on raises ServerUnavailableError at once."""
        self._stopped.set()

    def feed(self, records: Sequence[dict]) -> dict:
        """POST one batch to /feed/data; return the response body once it is committed."""
        body = json.dumps({"records": list(records)}, separators=(",", ":")).encode()
        return self.request("POST", "/feed/data", body)

    def post_body(self, path: str, body: bytes) -> Any:
        """POST an already encoded JSON body; same retries as ``feed``."""
        return self.request("POST", path, body)

    def get(self, path: str) -> Any:
        """GET ``path`` with the key; same retries as ``feed``."""
        return self.request("GET", path)

    def request(self, method: str, path: str, body: bytes | None = None) -> Any:
        failures = 0
        while True:
            try:
                return self._once(method, path, body)
            except urllib.error.HTTPError as ex:
                status, payload = ex.code, _json_or_text(ex.read())
                if status == 429:
                    self._wait(_retry_after(ex.headers.get("Retry-After")), "rate-limited")
                    continue
                if status < 500:
                    detail = payload.get("detail", payload) if isinstance(payload, dict) else payload
                    raise FeedRejectedError(status, detail) from None
                reason = f"HTTP {status}: {payload}"
            except (urllib.error.URLError, ConnectionError, TimeoutError) as ex:
                reason = str(getattr(ex, "reason", ex))
            if failures >= self.max_retries:
                raise ServerUnavailableError(f"{method} {self.url}{path} failed {failures + 1} times: {reason}")
            self._wait(BACKOFF_S[min(failures, len(BACKOFF_S) - 1)], reason)
            failures += 1

    def _once(self, method: str, path: str, body: bytes | None) -> Any:
        headers = {"X-API-Key": self.api_key, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            return _json_or_text(response.read())

    def _wait(self, seconds: float, reason: str) -> None:
        if self._stopped.is_set():
            raise ServerUnavailableError(f"stopped before retrying ({reason})")
        with self._lock:
            self.retries += 1
            self.rate_limited += reason == "rate-limited"
            self.waited_s += seconds
        if self.on_wait is not None:
            self.on_wait(reason, seconds)
        self.sleep(seconds)


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")
