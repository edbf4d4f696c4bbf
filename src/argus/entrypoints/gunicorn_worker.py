"""ReadaheadThreadWorker: gunicorn's gthread worker, but no thread ever waits on a slow client.

gthread hands a connection to a thread as soon as its first byte arrives; the thread then reads
the rest with blocking calls and no deadline, so eight clients sending headers a byte at a time
(or a body shorter than its Content-Length) took every thread, ``/health`` included. Here the
worker's event loop reads each request without blocking until all of it is in (headers, then its
Content-Length or chunked body), as a buffering proxy would, and only then gives it to a thread
to parse and serve from memory. A slow client costs a socket and its bytes, never a thread:

- headers must arrive within ``ARGUS_REQUEST_READ_TIMEOUT_S`` (10 s) of the connection (or of a
  kept-alive connection's next byte); a body gets that again plus a second per 64 KiB;
  past the deadline the client gets 408 and the connection is closed;
- a client that leaves before its request is whole is dropped: nothing half-sent is processed;
- bytes buffered per worker are bounded (503 past the budget), connections by ``worker_connections``.

Handlers still run in threads (SQLite and CPU work do not stall other requests the way they
would on one gevent loop), the app sees the same WSGI environ, and nothing is monkey-patched.
Plain HTTP/1.1 only: with TLS or HTTP/2 configured this is gthread unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
from functools import partial

import orjson
from gunicorn import util
from gunicorn.workers.gthread import TConn, ThreadWorker

from argus.entrypoints.readahead import RequestReadahead
from argus.entrypoints.settings import Settings

MIN_BODY_BYTES_PER_S = 64 * 1024
RECV_BYTES = 256 * 1024
SWEEP_EVERY_S = 0.25
LINGER_S = 2.0
LINGER_MAX_BYTES = 64 * 1024


def _response(status: str, detail: str) -> bytes:
    body = orjson.dumps({"detail": detail})
    head = (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + body


class _Reading:
    """A connection whose request is still arriving."""

    def __init__(self, request: RequestReadahead, deadline: float) -> None:
        self.request, self.deadline = request, deadline
        self.body_started: float | None = None


class _Conn(TConn):
    """gthread's connection, closed gracefully by the event loop without blocking it."""

    def __init__(self, worker: ReadaheadThreadWorker, *args) -> None:
        super().__init__(*args)
        self.worker = worker

    def close(self, graceful: bool = False) -> None:
        # gthread lingers up to 2 s in a blocking recv() on the event loop itself after each
        # "Connection: close" answer: a client that never closes would stall every connection.
        if graceful and self.worker.readahead:
            self.worker.linger(self)
        else:
            super().close()


class ReadaheadThreadWorker(ThreadWorker):
    """gthread whose event loop reads each request whole, under a deadline, before a thread serves it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        settings = Settings.from_env()
        cfg = self.cfg
        self.read_timeout_s = settings.request_read_timeout_s
        self.max_body_bytes = settings.max_body_bytes
        self.max_header_bytes = cfg.limit_request_line + max(cfg.limit_request_fields, 100) * (
            cfg.limit_request_field_size or 8190)
        self.buffer_budget = max(256 * 1024 * 1024, 4 * settings.max_body_bytes)
        self.readahead = not cfg.is_ssl and list(cfg.http_protocols) == ["h1"]
        self._reading: dict[TConn, _Reading] = {}
        self._lingering: dict[_Conn, tuple[float, int]] = {}  # closing: (until, bytes drained)
        self._buffered = 0
        self._next_sweep = 0.0
        self.timed_out = _response("408 Request Timeout",
                                   f"Request not received within {self.read_timeout_s:g} seconds")
        self.overloaded = _response("503 Service Unavailable", "Too many request bytes in flight; retry later")

    def accept(self, listener) -> None:
        """Accept a connection (as gthread does, with our connection class)."""
        try:
            client, address = listener.accept()
        except OSError as ex:
            if ex.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        client.setblocking(True)
        self.enqueue_req(_Conn(self, self.cfg, client, address, listener.getsockname()))

    def enqueue_req(self, conn) -> None:
        """Every new or kept-alive connection comes here: read its request before a thread gets it."""
        if not self.readahead:
            super().enqueue_req(conn)
            return
        request = RequestReadahead(self.max_header_bytes, self.max_body_bytes)
        leftover = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        conn.sock.setblocking(False)
        if leftover and request.feed(leftover):  # a pipelined request, already whole
            self._hand_over(conn, request)
            return
        self._buffered += len(leftover)
        self._reading[conn] = _Reading(request, time.monotonic() + self.read_timeout_s)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn, _sock) -> None:
        reading = self._reading[conn]
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client left before its request was whole: nothing of it is processed
            self._drop(conn)
            return
        self._buffered += len(data)
        if self._buffered > self.buffer_budget:
            self._drop(conn, self.overloaded)
            return
        request = reading.request
        if request.feed(data):
            self.poller.unregister(conn.sock)
            self._forget(conn)
            self._hand_over(conn, request)
            return
        if request.headers_done:
            if reading.body_started is None:
                reading.body_started = time.monotonic()
                if request.expects_continue:
                    self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            # The body gets the timeout again plus a second per 64 KiB (a chunked one as it arrives).
            expected = max(request.content_length or 0, request.body_bytes)
            reading.deadline = reading.body_started + self.read_timeout_s + expected / MIN_BODY_BYTES_PER_S

    def _hand_over(self, conn, request: RequestReadahead) -> None:
        conn.prebuffered, conn.whole = bytes(request.data), request.whole
        conn.data_ready = True
        super().enqueue_req(conn)

    def handle(self, conn):
        """Run in a thread: give the parser the request's bytes, then serve it as gthread does."""
        data = conn.__dict__.pop("prebuffered", None)
        if data is not None:
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(data)
        return super().handle(conn)

    def _keepalive_after(self, conn, keepalive):
        # A request handed over before its body was whole (over a limit) is answered and closed:
        # draining the rest would be a blocking read on a client that may never send it.
        if not getattr(conn, "whole", True):
            return False
        return super()._keepalive_after(conn, keepalive)

    def murder_pending(self) -> None:
        """Also close connections whose request is past its deadline (408), and lingering ones."""
        super().murder_pending()
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_EVERY_S
        for conn in [c for c, reading in self._reading.items() if reading.deadline <= now]:
            self._drop(conn, self.timed_out)
        for conn in [c for c, (until, _) in self._lingering.items() if until <= now]:
            self._end_linger(conn)

    def linger(self, conn: _Conn) -> None:
        """Close after the answer as RFC 9112 9.6 asks (FIN, then read until the peer closes), on the loop."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_lingering, conn))
        except (OSError, ValueError):
            util.close(conn.sock)
            return
        self._lingering[conn] = (time.monotonic() + LINGER_S, 0)

    def _on_lingering(self, conn: _Conn, _sock) -> None:
        until, drained = self._lingering[conn]
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data or drained + len(data) >= LINGER_MAX_BYTES:
            self._end_linger(conn)
        else:
            self._lingering[conn] = (until, drained + len(data))

    def _end_linger(self, conn: _Conn) -> None:
        del self._lingering[conn]
        self.poller.unregister(conn.sock)
        util.close(conn.sock)

    def _forget(self, conn) -> None:
        reading = self._reading.pop(conn)
        self._buffered -= len(reading.request.data)

    def _drop(self, conn, answer: bytes = b"") -> None:
        self.poller.unregister(conn.sock)
        self._forget(conn)
        if answer:
            self._send(conn, answer)
        self.nr_conns -= 1
        conn.close()

    @staticmethod
    def _send(conn, data: bytes) -> None:
        with contextlib.suppress(OSError):  # small, into an idle socket's buffer: never blocks, best effort
            conn.sock.send(data)
