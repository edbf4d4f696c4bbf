"""RequestReadahead: when the bytes of one HTTP/1.1 request are all in (headers, then its body).

The serving worker (``gunicorn_worker.ReadaheadThreadWorker``) collects each request with this
before a thread parses it, so a thread never waits on a slow client.
"""

from __future__ import annotations

_HEX = frozenset(b"0123456789abcdefABCDEF")
#: Decoded body bytes buffered past the limit before a chunked body is handed over anyway: the
#: application reads ``limit + 1`` bytes in steps of at least 1 KiB, all from what is buffered.
CHUNKED_OVERSHOOT = 64 * 1024


class RequestReadahead:
    """Collect one request's bytes; ``feed()`` says when gunicorn's parser can have them.

    Ready means the request is whole (``whole``), or it broke the framing rules or a limit, in
    which case the parser or the application answers 400/413/431 from the bytes already here.
    """

    def __init__(self, max_header_bytes: int, max_body_bytes: int) -> None:
        self.max_header_bytes, self.max_body_bytes = max_header_bytes, max_body_bytes
        self.data = bytearray()
        self.ready = False
        self.whole = False
        self.expects_continue = False
        self.headers_done = False
        self.content_length: int | None = None
        self.body_bytes = 0  # body bytes received so far (decoded, for a chunked body)
        self._scanned = 0
        self._body_start = 0
        self._chunked = False
        self._chunk_at = 0  # where the next chunk-size line starts
        self._decoded = 0  # bytes of the chunks already walked past

    def feed(self, data: bytes) -> bool:
        """Add bytes as they arrive; True once the parser can have the request."""
        self.data += data
        if not self.ready:
            self.ready = self._check()
        return self.ready

    def _check(self) -> bool:
        if not self.headers_done:
            lead = len(self.data) - len(self.data.lstrip(b"\r\n"))  # CRLFs before a request line are ignored
            end = self.data.find(b"\r\n\r\n", max(lead, self._scanned - 3))
            if end < 0:
                self._scanned = len(self.data)
                return len(self.data) > self.max_header_bytes
            self.headers_done, self._body_start = True, end + 4
            if not self._read_framing(bytes(self.data[lead:end])):
                return True
            if self.content_length is None and not self._chunked:
                self.whole = True
                return True
            self._chunk_at = self._body_start
        if self._chunked:
            return self._walk_chunks()
        self.body_bytes = len(self.data) - self._body_start
        self.whole = self.body_bytes >= self.content_length
        return self.whole

    def _read_framing(self, block: bytes) -> bool:
        """Read Content-Length, Transfer-Encoding and Expect; False when the parser must refuse the request."""
        lengths, codings = [], []
        for line in block.split(b"\r\n")[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                return False
            name, value = name.strip().lower(), value.strip()
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                codings.extend(c.strip().lower() for c in value.split(b","))
            elif name == b"expect" and value.lower() == b"100-continue":
                self.expects_continue = True
        if codings:
            self._chunked = not lengths and codings[-1] == b"chunked"
            return self._chunked
        if len(set(lengths)) > 1 or (lengths and not lengths[0].isdigit()):
            return False
        if lengths:
            self.content_length = int(lengths[0])
            return self.content_length <= self.max_body_bytes  # over it: the application answers 413 at once
        return True

    def _walk_chunks(self) -> bool:
        while True:
            line_end = self.data.find(b"\r\n", self._chunk_at)
            if line_end < 0:
                return len(self.data) - self._chunk_at > self.max_header_bytes
            size_field = bytes(self.data[self._chunk_at:line_end]).split(b";", 1)[0].rstrip(b" \t")
            if not size_field or not set(size_field) <= _HEX:
                return True
            size = int(size_field, 16)
            if size == 0:
                return self._trailers_end(line_end + 2)
            chunk_end = line_end + 2 + size + 2
            if len(self.data) < chunk_end:
                self.body_bytes = self._decoded + min(size, len(self.data) - line_end - 2)
                return self.body_bytes > self.max_body_bytes + CHUNKED_OVERSHOOT
            self._decoded += size
            self.body_bytes = self._decoded
            self._chunk_at = chunk_end
            if self._decoded > self.max_body_bytes + CHUNKED_OVERSHOOT:
                return True

    def _trailers_end(self, start: int) -> bool:
        if self.data[start:start + 2] == b"\r\n" or self.data.find(b"\r\n\r\n", start) >= 0:
            self.whole = True
            return True
        return len(self.data) - start > self.max_header_bytes
