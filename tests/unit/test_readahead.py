"""RequestReadahead: a request is handed to the parser only once all of it is here (or it broke a rule)."""

from __future__ import annotations

import pytest

from argus.entrypoints.readahead import CHUNKED_OVERSHOOT, RequestReadahead

HEAD = b"POST /feed/data HTTP/1.1\r\nHost: a\r\n"


def fed(*pieces: bytes, max_body: int = 1000) -> RequestReadahead:
    request = RequestReadahead(max_header_bytes=4096, max_body_bytes=max_body)
    for piece in pieces:
        request.feed(piece)
    return request


def byte_by_byte(data: bytes, max_body: int = 1000) -> list[bool]:
    request = RequestReadahead(max_header_bytes=4096, max_body_bytes=max_body)
    return [request.feed(data[i:i + 1]) for i in range(len(data))]


def test_headers_sent_a_byte_at_a_time_are_ready_only_at_the_blank_line():
    readiness = byte_by_byte(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
    assert readiness[-1] and not any(readiness[:-1])


def test_a_body_is_waited_for_up_to_its_content_length():
    request = fed(HEAD + b"Content-Length: 10\r\n\r\n", b"12345")
    assert request.headers_done and not request.ready and request.body_bytes == 5
    assert request.feed(b"67890") and request.whole


def test_a_chunked_body_is_ready_after_its_last_chunk_and_trailers():
    message = HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n"
    readiness = byte_by_byte(message)
    assert readiness[-1] and not any(readiness[:-1])
    assert fed(message).body_bytes == 11


def test_a_chunked_body_without_trailers_ends_at_the_empty_line():
    readiness = byte_by_byte(HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert readiness[-1] and not any(readiness[:-1])


def test_a_declared_body_over_the_limit_is_handed_over_at_once_for_a_413():
    request = fed(HEAD + b"Content-Length: 1001\r\n\r\n")
    assert request.ready and not request.whole


def test_a_chunked_body_over_the_limit_is_handed_over_once_the_app_can_read_past_the_limit():
    request = fed(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 1000
    while not request.feed(b"%x\r\n" % len(chunk) + chunk + b"\r\n"):
        pass
    assert not request.whole and request.body_bytes > 1000 + CHUNKED_OVERSHOOT


@pytest.mark.parametrize("headers", [
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",  # both: request smuggling, refused
    b"Content-Length: 5\r\nContent-Length: 6\r\n",
    b"Content-Length: -1\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Broken header line\r\n",
])
def test_framing_the_parser_refuses_is_handed_over_at_once(headers):
    request = fed(HEAD + headers + b"\r\n")
    assert request.ready and not request.whole


def test_headers_past_the_limit_are_handed_over_for_the_parser_to_refuse():
    request = fed(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 5000)
    assert request.ready and not request.whole


def test_expect_100_continue_is_noticed():
    assert fed(HEAD + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\n").expects_continue


def test_blank_lines_before_the_request_line_are_not_an_empty_request():
    assert not fed(b"\r\n\r\nGET /health HTTP/1.1\r\n").ready
