"""The request header reader that replaces pywsgi's email-based one: byte-level units, then
over a real socket through pywsgi (environ, 400 on malformed heads)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rawclient import RawClient

from geventws.handshake import Headers
from geventws.header_block import HeaderBlock, read_header_block


def read(raw: bytes) -> HeaderBlock:
    return read_header_block(io.BytesIO(raw))


def test_fields_in_order_with_spelling_and_values_trimmed():
    block = read(b"Host: a\r\nX-Two:  b c \t\r\nx-two: d\r\nEmpty:\r\n\r\nbody")
    assert block.fields() == [("Host", "a"), ("X-Two", "b c"), ("x-two", "d"), ("Empty", "")]
    assert block.get("x-TWO") == "b c"
    assert block.get_all("X-Two") == ["b c", "d"]
    assert block.getheader("missing", "default") == "default"
    assert list(block.headers) == ["Host: a\r\n", "X-Two: b c\r\n", "x-two: d\r\n", "Empty: \r\n"]
    assert block.status == ""


def test_bare_lf_lines_and_end_of_input_end_the_block():
    assert read(b"A: 1\nB: 2\n\n").fields() == [("A", "1"), ("B", "2")]
    assert read(b"A: 1\r\n").fields() == [("A", "1")]


def test_obsolete_folding_becomes_one_space():
    block = read(b"X-Long: one\r\n  two\r\n\tthree\r\nNext: x\r\n\r\n")
    assert block.fields() == [("X-Long", "one two three"), ("Next", "x")]


def test_content_type_and_deletion_work_as_pywsgi_expects():
    block = read(b"Content-Type: text/plain\r\nContent-Length: 3\r\n\r\n")
    assert block.typeheader == "text/plain"
    del block["content-length"]
    assert block.get("Content-Length") is None
    assert read(b"\r\n").typeheader is None


@pytest.mark.parametrize(
    "raw",
    [
        b"No colon here\r\n\r\n",
        b"Space Before : x\r\n\r\n",
        b": no name\r\n\r\n",
        b"Bad\x7fName: x\r\n\r\n",
        b" leading continuation\r\n\r\n",
    ],
)
def test_malformed_lines_raise_value_error_naming_the_line(raw: bytes):
    with pytest.raises(ValueError, match="header") as caught:
        read(raw)
    assert repr(raw.split(b"\r\n")[0].decode("latin-1"))[1:-1] in str(caught.value)


def test_limits_of_http_client_are_kept():
    too_many = b"".join(b"H%d: v\r\n" % number for number in range(101)) + b"\r\n"
    assert read(too_many).status == "got more than 100 headers"
    assert len(read(too_many[: -len(b"H100: v\r\n\r\n")] + b"\r\n").fields()) == 100
    assert read(b"X: " + b"a" * 70000 + b"\r\n\r\n").status == "Line too long"


def test_latin1_bytes_are_kept_as_latin1_text():
    assert read(b"X-Name: caf\xe9\r\n\r\n").get("X-Name") == "caf\u00e9"


def read_with_outcome(stream: Any, limit: int | None) -> tuple[Any, ...]:
    """What reading ``stream`` gave: fields and status, or the error; and what is left."""
    try:
        block = read_header_block(stream, limit)
        outcome: tuple[Any, ...] = (block.fields(), block.status)
    except ValueError as error:
        outcome = (type(error), str(error))
    return (*outcome, stream.read())


@pytest.mark.parametrize("limit", [None, 60])
@pytest.mark.parametrize(
    "raw",
    [
        b"Host: a\r\nX-Two:  b c \t\r\nx-two: d\r\nEmpty:\r\n\r\nframes",
        b"\r\nframes\r\n\r\n",
        b"X-Long: one\r\n  two\r\n\tthree\r\nNext: x\r\n\r\n",
        b"A: 1\nB: 2\r\n\r\n",
        b"A: 1\r\n\nB: 2\r\n\r\n",
        b"A: 1\rB: 2\r\n\r\n",
        b"No colon here\r\n\r\n",
        b" leading continuation\r\n\r\n",
        b"Bad\x7fName: x\r\n\r\n",
        b"X-Name: caf\xe9\r\n\r\n",
        b"X-A: b:c\r\n \r\nY_1: 1\r\n\r\nrest",
        b"Host:x\r\n\r\n\r\n\r\n",
        b"\nHost: x\r\n\r\n",
        b"Host: x\r\n\t\r\n\r\n",
        b"A: 1\r\nB: 2\r\n",
        b"X-Big: " + b"b" * 60 + b"\r\n\r\n",
        b"".join(b"H%d: v\r\n" % number for number in range(101)) + b"\r\n",
        b"".join(b"H%d: v\r\n" % number for number in range(100)) + b"\r\n",
    ],
)
def test_a_block_taken_in_one_piece_reads_as_line_by_line(raw: bytes, limit: int | None):
    """A buffered reader holding the whole block gives the block in one piece; the outcome
    (fields, status, error, what is left to read) is that of reading line by line."""
    buffered = io.BufferedReader(io.BytesIO(raw))
    assert read_with_outcome(buffered, limit) == read_with_outcome(io.BytesIO(raw), limit)


@pytest.mark.parametrize("buffered", [False, True])
def test_request_headers_read_as_headers_made_from_the_fields(buffered: bool):
    raw = b"Host: a\r\nX-A:  1 \r\nx-a: 2\r\nX-Fold: b\r\n\t c \r\nCookie: k=v\r\n\r\n"
    stream = io.BufferedReader(io.BytesIO(raw)) if buffered else io.BytesIO(raw)
    block = read_header_block(stream)
    made = Headers(block.fields())
    headers = block.request_headers()
    assert headers == made
    for name in ("host", "X-A", "x-fold", "COOKIE", "missing"):
        assert (headers.get(name), headers.get_all(name)) == (made.get(name), made.get_all(name))


def test_a_block_taken_in_one_piece_tells_what_the_reader_still_holds():
    buffered = io.BufferedReader(io.BytesIO(b"Host: a\r\n\r\n\x81\x85frame"))
    assert read_header_block(buffered).unread_after == 7
    assert read_header_block(io.BytesIO(b"Host: a\r\n\r\nrest")).unread_after is None


def environ_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers with the environ's HTTP_X_* entries."""
    body = repr(sorted((k, v) for k, v in environ.items() if k.startswith("HTTP_X_"))).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def test_plain_requests_reach_the_application_with_the_same_environ(serve):
    """Through pywsgi: repeated headers joined with a comma, values trimmed, folding a space,
    names with underscores dropped (pywsgi's rule)."""
    served = serve(app=environ_app)
    with RawClient(served.port) as client:
        client.send_raw(
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A:  1 \r\nX-A: 2\r\nX-Fold: a\r\n b\r\n"
            b"X_Under: hidden\r\nConnection: close\r\n\r\n"
        )
        response = client.read_response()
        assert response.status == 200
        body = client.expect_eof()
    assert body == repr([("HTTP_X_A", "1,2"), ("HTTP_X_FOLD", "a b")]).encode()


def test_malformed_header_line_gets_400_over_a_socket(serve):
    served = serve(app=environ_app)
    with RawClient(served.port) as client:
        client.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\nNot a header\r\n\r\n")
        assert client.read_response().status == 400
