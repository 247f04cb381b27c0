"""Coverage-guided fuzz target: :func:`geventws.handshake.parse_handshake` and ``Headers``.

Run (see README.md)::

    pip install atheris
    python tests/fuzz/fuzz_handshake.py -max_total_time=600 [corpus_dir]

Without atheris the same target runs on hypothesis-generated inputs for as long.

The input is read as a request head, the way pywsgi hands it over: a request line of three
words and header lines ``name: value``, decoded as Latin-1 (any byte is possible), or, for
half of the inputs, as UTF-8 (any character, as an application calling the function directly
might pass). The checks:

- ``Headers`` and its methods never raise; ``get`` agrees with ``get_all``;
- ``parse_handshake`` returns a request or raises :class:`~geventws.errors.HandshakeError`
  (with status 400, 405 or 426) and nothing else;
- the answer built from the outcome is one well-formed HTTP response head: the reject response
  for the error, the 101 (with the first requested subprotocol) for a request. No CR or LF of
  the input can split it.
"""

from __future__ import annotations

import os
import re
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fuzz_runner import load_atheris, run

# ruff: noqa: E402  (geventws is imported after atheris instruments it)
atheris = load_atheris("geventws.handshake")

from geventws.errors import HandshakeError
from geventws.handshake import (
    Headers,
    accept_key,
    build_accept_response,
    build_reject_response,
    choose_protocol,
    is_websocket_request,
    parse_handshake,
)
from geventws.header_lists import is_token

#: A response head: the status line, header lines of a token, ": " and a value without
#: CR/LF, and the empty line.
_RESPONSE = re.compile(
    rb"HTTP/1\.1 [1-5][0-9]{2} [^\r\n]*\r\n"
    rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [^\r\n]*\r\n)*"
    rb"\r\n"
)


def request_parts(data: bytes) -> tuple[str, str, str, list[tuple[str, str]], bool, bool]:
    """Method, target, version, headers and the two parse flags, read from ``data``."""
    flags = data[0] if data else 0
    text = data[1:].decode("utf-8", "replace") if flags & 4 else data[1:].decode("latin-1")
    lines = text.split("\r\n")
    words = [*lines[0].split(" ", 2), "", ""][:3]
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name, value))
    return words[0], words[1], words[2], headers, bool(flags & 1), bool(flags & 2)


def test_one_input(data: bytes) -> None:
    method, resource, version, items, parse_extensions, parse_cookies = request_parts(data)
    headers = Headers(items)
    assert len(headers) == len(items)
    for name, _ in items:
        assert name in headers
        values = headers.get_all(name)
        assert values, name
        combined = headers.get(name)
        assert combined is not None and combined in (
            values[0],
            ", ".join(values),
            "; ".join(values),
        )
    assert headers == Headers(items)
    assert list(headers) == [(name, value) for name, value in headers]
    repr(headers)
    is_websocket_request(headers)

    try:
        request = parse_handshake(
            method,
            resource,
            version,
            headers,
            parse_extensions=parse_extensions,
            parse_cookies=parse_cookies,
        )
    except HandshakeError as error:
        assert error.status in (400, 405, 426), error.status
        response = build_reject_response(error.status, error.reason, error.headers)
        assert _RESPONSE.fullmatch(response), response
        return

    assert request.method == "GET"
    assert len(accept_key(request.key)) == 28
    url = request.resource_url
    assert isinstance(url.path, str) and isinstance(url.query, dict)
    protocol = None
    if request.requested_protocols:
        # Requested names are kept as sent (WebSocket-Node's split: empty items, spaces and
        # any character); choosing one that is not a token is refused with ValueError.
        requested = request.requested_protocols[0]
        try:
            protocol = choose_protocol(request, requested)
        except ValueError:
            assert requested and not is_token(requested), requested
        else:
            if requested:
                assert is_token(requested), requested
                assert protocol is not None and protocol.lower() == requested
            else:
                assert protocol is None  # an empty name means no subprotocol
    response = build_accept_response(request.key, protocol)
    assert _RESPONSE.fullmatch(response), response
    assert response.startswith(b"HTTP/1.1 101 ")


def seeds() -> list[bytes]:
    """Requests to start from: valid ones (versions 13 and 8, with protocols, extensions and
    cookies), under each setting of the flags byte."""
    base = (
        b"GET /chat?a=1&a=2 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
        b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    )
    tails = [
        b"Sec-WebSocket-Version: 13\r\nOrigin: http://o\r\n",
        b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Origin: http://o\r\n",
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, Super\r\n"
        b'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x; y="z"\r\n'
        b'Cookie: a=1; b="two"; c; d=%41%20x\r\n',
    ]
    return [bytes([flags]) + base + tail for flags in (0, 3, 4, 7) for tail in tails]


def main() -> None:
    run(atheris, test_one_input, seeds())


if __name__ == "__main__":
    main()
