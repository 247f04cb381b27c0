"""The opening handshake over real sockets: refusals, the 404 without a handler, plain HTTP.

Every refusal is checked byte for byte (status line, ``Connection: close``, the reject reason,
extra headers), then that the server closes the socket and reports the ``upgrade_error``.
"""

from __future__ import annotations

import base64

import pytest
from conftest import wait_until
from rawclient import HTTPResponse, RawClient

from geventws import HandshakeError

GOOD_KEY = base64.b64encode(bytes(range(16))).decode()


def refusal_bytes(status: int, phrase: str, reason: str, extra: str = "") -> bytes:
    """The exact bytes geventws answers a refused handshake with."""
    return (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Connection: close\r\n"
        f"X-WebSocket-Reject-Reason: {reason}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode("latin-1")


def send_and_read(port: int, request: bytes | None = None, **request_kwargs) -> HTTPResponse:
    """Send one upgrade request, read the answer and check the server then closes TCP."""
    with RawClient(port) as client:
        client.send_raw(request if request is not None else client.request_bytes(**request_kwargs))
        response = client.read_response()
        assert client.expect_eof() == b"", "no body may follow a refusal"
    return response


REFUSALS = [
    pytest.param(
        {"omit": ("Host",)},
        400,
        "Bad Request",
        "Client must provide a Host header.",
        "",
        id="missing-host",
    ),
    pytest.param(
        {"headers": {"Host": ""}},
        400,
        "Bad Request",
        "Client must provide a Host header.",
        "",
        id="empty-host",
    ),
    pytest.param(
        {"method": "POST"},
        405,
        "Method Not Allowed",
        "Method must be GET, got POST.",
        "Allow: GET\r\n",
        id="post",
    ),
    pytest.param(
        {"version": "HTTP/1.0"},
        400,
        "Bad Request",
        "HTTP/1.1 or higher is required, got HTTP/1.0.",
        "",
        id="http-1.0",
    ),
    pytest.param(
        {"headers": {"Connection": "keep-alive"}},
        400,
        "Bad Request",
        "Connection header must include the upgrade token.",
        "",
        id="connection-without-upgrade",
    ),
    pytest.param(
        {"omit": ("Connection",)},
        400,
        "Bad Request",
        "Connection header must include the upgrade token.",
        "",
        id="connection-missing",
    ),
    pytest.param(
        {"headers": {"Upgrade": "h2c"}},
        400,
        "Bad Request",
        "Upgrade header must include the websocket token.",
        "",
        id="upgrade-not-websocket-but-key-present",
    ),
    pytest.param(
        {"omit": ("Sec-WebSocket-Key",)},
        400,
        "Bad Request",
        "Client must provide a value for Sec-WebSocket-Key.",
        "",
        id="missing-key",
    ),
    pytest.param(
        {"headers": {"Sec-WebSocket-Key": "abc"}},
        400,
        "Bad Request",
        "Sec-WebSocket-Key must be base64 of 16 bytes.",
        "",
        id="key-too-short",
    ),
    pytest.param(
        {"headers": {"Sec-WebSocket-Key": base64.b64encode(b"x" * 15).decode()}},
        400,
        "Bad Request",
        "Sec-WebSocket-Key must be base64 of 16 bytes.",
        "",
        id="key-15-bytes",
    ),
    pytest.param(
        {"headers": {"Sec-WebSocket-Key": base64.b64encode(b"x" * 17).decode()}},
        400,
        "Bad Request",
        "Sec-WebSocket-Key must be base64 of 16 bytes.",
        "",
        id="key-17-bytes",
    ),
    pytest.param(
        {"headers": {"Sec-WebSocket-Key": "!" * 22 + "=="}},
        400,
        "Bad Request",
        "Sec-WebSocket-Key must be base64 of 16 bytes.",
        "",
        id="key-not-base64",
    ),
    pytest.param(
        {"omit": ("Sec-WebSocket-Version",)},
        400,
        "Bad Request",
        "Client must provide a value for Sec-WebSocket-Version.",
        "",
        id="missing-version",
    ),
    pytest.param(
        {"headers": {"Sec-WebSocket-Version": "abc"}},
        400,
        "Bad Request",
        "Client must provide a value for Sec-WebSocket-Version.",
        "",
        id="non-numeric-version",
    ),
    pytest.param(
        {"headers": {"Sec-WebSocket-Version": "13abc"}},
        400,
        "Bad Request",
        "Client must provide a value for Sec-WebSocket-Version.",
        "",
        id="version-with-trailing-garbage",
    ),
    pytest.param(
        {"headers": {"Sec-WebSocket-Version": "7"}},
        426,
        "Upgrade Required",
        "Unsupported websocket client version: 7Only versions 8 and 13 are supported.",
        "Sec-WebSocket-Version: 13\r\n",
        id="version-7",
    ),
    pytest.param(
        {"headers": {"Sec-WebSocket-Version": "14"}},
        426,
        "Upgrade Required",
        "Unsupported websocket client version: 14Only versions 8 and 13 are supported.",
        "Sec-WebSocket-Version: 13\r\n",
        id="version-14",
    ),
    pytest.param(
        {"headers": {"Cookie": "a=1; b=%zz"}},
        400,
        "Bad Request",
        "URI malformed",
        "",
        id="cookie-bad-percent",
    ),
    pytest.param(
        {"headers": {"Cookie": "a=%E0%A4%A"}},
        400,
        "Bad Request",
        "URI malformed",
        "",
        id="cookie-truncated-escape",
    ),
    pytest.param(
        {"headers": {"Cookie": "a=%FF"}},
        400,
        "Bad Request",
        "URI malformed",
        "",
        id="cookie-escape-not-utf8",
    ),
]


@pytest.mark.parametrize(("request_kwargs", "status", "phrase", "reason", "extra"), REFUSALS)
def test_refused_handshake(serve, request_kwargs, status, phrase, reason, extra):
    served = serve()
    response = send_and_read(served.port, **request_kwargs)

    assert response.raw == refusal_bytes(status, phrase, reason, extra)
    assert response.status == status
    assert response.header("Connection") == "close"
    assert response.header("X-WebSocket-Reject-Reason") == reason

    (event,) = served.wait_for_event("upgrade_error")
    error = event[1]
    assert isinstance(error, HandshakeError)
    assert error.status == status
    assert error.reason == reason
    assert str(error) == reason
    if status == 426:
        assert error.headers == {"Sec-WebSocket-Version": "13"}
    elif status == 405:
        assert error.headers == {"Allow": "GET"}
    else:
        assert error.headers == {}
    # Nothing else happened on the server.
    assert [e[0] for e in served.events] == ["upgrade_error"]
    assert served.ws.pending_requests == []
    assert served.ws.connections == []


def test_refusals_keep_the_server_serving(serve):
    served = serve()
    for _ in range(3):
        response = send_and_read(served.port, headers={"Sec-WebSocket-Version": "7"})
        assert response.status == 426
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        client.send_text("still here")
        assert client.read_message() == "still here"
    assert len(served.wait_for_event("upgrade_error", 3)) == 3


def test_bad_cookie_is_accepted_when_cookie_parsing_is_off(serve):
    served = serve(parse_cookies=False)
    with RawClient(served.port) as client:
        response = client.handshake(headers={"Cookie": "a=1; b=%zz"})
        assert response.status == 101
        client.send_text("ok")
        assert client.read_message() == "ok"
    (event,) = served.wait_for_event("request")
    assert event[1].cookies == []
    assert event[1].headers.get("Cookie") == "a=1; b=%zz"
    assert not [e for e in served.events if e[0] == "upgrade_error"]


def test_version_8_and_leading_zero_version_are_accepted(serve):
    served = serve()
    for version in ("8", "013"):
        with RawClient(served.port) as client:
            assert client.handshake(headers={"Sec-WebSocket-Version": version}).status == 101
            client.send_text(version)
            assert client.read_message() == version
    versions = [event[1].web_socket_version for event in served.wait_for_event("connect", 2)]
    assert versions == [8, 13]


def test_upgrade_and_connection_tokens_are_case_insensitive_lists(serve):
    served = serve()
    with RawClient(served.port) as client:
        response = client.handshake(
            headers={"Upgrade": "foo/1, WebSocket", "Connection": "keep-alive, UPGRADE"}
        )
        assert response.status == 101
        client.send_text("x")
        assert client.read_message() == "x"
    assert not [e for e in served.events if e[0] == "upgrade_error"]


def test_no_request_listener_and_no_auto_accept_gives_404(serve):
    served = serve(on_request=None)
    served.ws.remove_all_listeners("request")
    assert served.ws.listener_count("request") == 0

    response = send_and_read(served.port)

    assert response.raw == refusal_bytes(
        404, "Not Found", "No handler is configured to accept the connection."
    )
    # EOF came after the upgrade was answered, so any upgrade_error would be recorded by now.
    assert served.events == []
    assert served.ws.pending_requests == []


def _read_plain_response(client: RawClient) -> tuple[HTTPResponse, bytes]:
    response = client.read_response()
    length = int(response.header("Content-Length") or 0)
    while len(client.buffer) < length:
        chunk = client.sock.recv(65536)
        assert chunk, "EOF before the whole body"
        client.buffer += chunk
    body, client.buffer = client.buffer[:length], client.buffer[length:]
    return response, body


def test_plain_http_get_reaches_the_wsgi_app(serve):
    served = serve()
    with RawClient(served.port) as client:
        client.send_raw(b"GET /some/path?q=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        response, body = _read_plain_response(client)
        assert response.status == 200
        assert body == b"plain /some/path"
        # Keep-alive still works: a second plain request on the same connection.
        client.send_raw(b"GET /again HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        response, body = _read_plain_response(client)
        assert response.status == 200
        assert body == b"plain /again"
        assert client.expect_eof() == b""
    assert served.events == []


def test_h2c_upgrade_request_reaches_the_wsgi_app(serve):
    served = serve()
    with RawClient(served.port) as client:
        client.send_raw(
            b"GET /h2 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        )
        response, body = _read_plain_response(client)
        assert response.status == 200
        assert body == b"plain /h2"
        assert response.header("Upgrade") is None
    assert served.events == []


def test_plain_request_then_upgrade_on_the_same_keep_alive_connection(serve):
    served = serve()
    with RawClient(served.port) as client:
        client.send_raw(b"GET /first HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        response, body = _read_plain_response(client)
        assert (response.status, body) == (200, b"plain /first")
        assert client.handshake("/ws").status == 101
        client.send_text("upgraded")
        assert client.read_message() == "upgraded"
    (event,) = served.wait_for_event("request")
    assert event[1].resource == "/ws"


def test_successful_handshake_response_bytes(serve):
    served = serve()
    with RawClient(served.port) as client:
        client.key = GOOD_KEY
        response = client.handshake()
        assert response.raw == (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            # RFC 6455 4.2.2: base64(SHA-1(key + GUID)) for key = bytes 0..15.
            b"Sec-WebSocket-Accept: Bz3qJYTGdOe8gUSpLosEdiLKDrk=\r\n"
            b"\r\n"
        )
        client.send_text("hi")
        assert client.read_message() == "hi"
    wait_until(lambda: not served.ws.connections)


def test_rfc_6455_sample_key(serve):
    served = serve()
    with RawClient(served.port) as client:
        client.key = "dGhlIHNhbXBsZSBub25jZQ=="
        response = client.handshake()
        assert response.status == 101
        assert response.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
