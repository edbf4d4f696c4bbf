"""End to end: 200 slow clients (headers byte by byte, bodies shorter than declared) against `argus serve`.

The slow clients are held open (reopened whenever the server cuts one) while /health and an
authenticated GET are timed; every one of those must succeed, p99 under a second.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import orjson
import pytest

from argus.testing import wire_record
from tests.e2e.test_serve import KEY, Served, _free_port, _wait_for

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 200
HEADERS = (b"POST /feed/data HTTP/1.1\r\nHost: argus\r\nContent-Type: application/json\r\n"
           b"X-API-Key: " + KEY.encode() + b"\r\nContent-Length: 4096\r\n\r\n")


class SlowClients:
    """Half send their headers a byte at a time; half send whole headers and 10 bytes of a 4 KiB body."""

    def __init__(self, port: int, count: int, byte_every_s: float = 0.5) -> None:
        self.port, self.count, self.byte_every_s = port, count, byte_every_s
        self.open = 0
        self.reopened = 0
        self.cut_after_s: dict[bool, list[float]] = {True: [], False: []}  # trickle? -> lifetimes the server allowed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SlowClients:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _connect(self, index: int) -> dict:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.setblocking(False)
        trickle = index % 2 == 0
        sent = 0 if trickle else len(HEADERS)
        if not trickle:
            sock.sendall(HEADERS + b'{"records"')  # 10 of 4,096 bytes, then nothing more
        return {"sock": sock, "trickle": trickle, "sent": sent, "opened": time.monotonic(), "next": 0.0}

    def _run(self) -> None:
        conns = [self._connect(i) for i in range(self.count)]
        poll = selectors.DefaultSelector()
        for i, conn in enumerate(conns):
            poll.register(conn["sock"], selectors.EVENT_READ, i)
        while not self._stop.is_set():
            self.open = sum(1 for c in conns if c is not None)
            for key, _ in poll.select(0.05):  # readable: an answer (408) or the server closed it
                i = key.data
                poll.unregister(conns[i]["sock"])
                self._closed(conns[i])
                conns[i] = self._connect(i)
                self.reopened += 1
                poll.register(conns[i]["sock"], selectors.EVENT_READ, i)
            now = time.monotonic()
            for conn in conns:
                if conn["trickle"] and conn["sent"] < len(HEADERS) - 2 and now >= conn["next"]:
                    try:
                        conn["sock"].send(HEADERS[conn["sent"]:conn["sent"] + 1])
                        conn["sent"] += 1
                    except OSError:
                        pass  # the select above reopens it
                    conn["next"] = now + self.byte_every_s
        for conn in conns:
            conn["sock"].close()

    def _closed(self, conn: dict) -> None:
        self.cut_after_s[conn["trickle"]].append(time.monotonic() - conn["opened"])
        conn["sock"].close()


def _timed_get(port: int, path: str, key: str | None) -> tuple[int, float]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if key:
        request.add_header("X-API-Key", key)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as ex:
        status = ex.code
    except OSError:
        status = 0  # refused, reset or timed out: not served
    return status, time.perf_counter() - started


def test_two_hundred_slow_clients_do_not_starve_health_or_authenticated_requests(tmp_path, monkeypatch):
    monkeypatch.setenv("ARGUS_RATE_LIMITS", "alerts=100000/minute")
    monkeypatch.setenv("ARGUS_REQUEST_READ_TIMEOUT_S", "3")
    port = _free_port()
    served = Served(tmp_path, port, workers=1)
    try:
        _wait_for(lambda: _timed_get(port, "/health", None)[0] == 200)
        with SlowClients(port, SLOW_CLIENTS) as slow:
            time.sleep(2.0)  # every slow connection is open and has started to trickle
            results = []
            give_up = time.monotonic() + 30  # the old server answered none of them: do not wait 120 x 5 s
            for i in range(120):
                if time.monotonic() > give_up:
                    break
                path, key = ("/health", None) if i % 2 == 0 else ("/alerts/active", KEY)
                results.append(_timed_get(port, path, key))
                time.sleep(0.05)
            held = slow.open
        statuses = [status for status, _ in results]
        latencies = sorted(elapsed for _, elapsed in results)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        assert held == SLOW_CLIENTS
        assert statuses.count(200) == len(results) == 120, statuses
        print(f"slow clients: {held} held, {slow.reopened} reopened; {len(results)} requests, "
              f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
        assert p99 < 1.0, f"p99 {p99:.3f}s"
        # The server cut them at its deadlines: 3 s for headers, 3 s (plus 4 KiB at 64 KiB/s) for a body.
        for trickle in (True, False):
            assert slow.cut_after_s[trickle] and 2.5 < min(slow.cut_after_s[trickle]) < 6.0, slow.cut_after_s[trickle]
    finally:
        assert served.stop() == 0


def _exchange(port: int, data: bytes, *, leave: bool = False, wait_s: float = 10.0) -> bytes:
    """Send raw bytes (then half-close when ``leave``) and return all the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(data)
        if leave:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(65536):
                answer += chunk
        return answer


def _post_head(length: int | None = None) -> bytes:
    framing = b"Transfer-Encoding: chunked" if length is None else b"Content-Length: %d" % length
    return (b"POST /feed/data HTTP/1.1\r\nHost: argus\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"X-API-Key: " + KEY.encode() + b"\r\n" + framing + b"\r\n\r\n")


def test_the_served_worker_takes_chunked_bodies_and_never_processes_a_truncated_one(tmp_path, monkeypatch):
    import sqlalchemy as sa

    monkeypatch.setenv("ARGUS_MAX_BODY_BYTES", "65536")
    monkeypatch.setenv("ARGUS_REQUEST_READ_TIMEOUT_S", "2")
    port = _free_port()
    served = Served(tmp_path, port, workers=1)
    try:
        _wait_for(lambda: _timed_get(port, "/health", None)[0] == 200)
        now = datetime.now(UTC)
        body = orjson.dumps({"records": [wire_record(f"web{i:03d}", timestamp=now.isoformat()) for i in range(5)]})
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 100]), body[i:i + 100]) for i in range(0, len(body), 100))
        answer = _exchange(port, _post_head() + chunks + b"0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200") and b'"records_received":5' in answer, answer

        endless = _post_head() + b"".join(b"400\r\n" + b" " * 1024 + b"\r\n" for _ in range(200))  # 200 KiB, no end
        assert _exchange(port, endless).startswith(b"HTTP/1.1 413"), "chunked past the limit"

        truncated = _post_head(len(body) + 100) + body  # valid JSON, 100 bytes short of what was declared
        assert _exchange(port, truncated, leave=True) == b""  # the client left: no answer, nothing processed
        assert _exchange(port, truncated).startswith(b"HTTP/1.1 408")  # it stayed but never finished
    finally:
        assert served.stop() == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'argus.db'}")
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM records")).scalar_one() == 5
    engine.dispose()
