"""WebSocketRequest over real sockets: what a ``request`` listener sees, accept(), reject(),
dispatch (auto-accept, failing or slow listeners, request_timeout), and the server's events."""

from __future__ import annotations

import gc
import logging
import time
from datetime import datetime, timezone

import gevent
import pytest
from conftest import echo_connection, wait_until
from gevent.pywsgi import WSGIHandler
from rawclient import HTTPResponse, RawClient, expected_accept

from geventws import (
    Cookie,
    ExtensionParam,
    RequestedExtension,
    RequestResolvedError,
    WebSocketConnection,
)

ONE_TIME = "WebSocketRequest may only be accepted or rejected one time."
NOT_REQUESTED = "Specified protocol was not requested by the client."
SERVER_ERROR_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
)


def event_names(served) -> list[str]:
    return [event[0] for event in served.events]


def answer_101(key: str, *lines: str) -> bytes:
    """The exact bytes of a 101 response, with ``lines`` after Sec-WebSocket-Accept."""
    head = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {expected_accept(key)}",
        *lines,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


def refused(client: RawClient, headers: dict[str, str] | None = None) -> HTTPResponse:
    """Send an upgrade request expected to be refused; read the answer and the EOF."""
    client.send_raw(client.request_bytes("/", headers))
    response = client.read_response()
    assert client.expect_eof() == b""
    return response


def pending_request(served, client: RawClient, path: str = "/", headers=None):
    """Send a handshake that the listener leaves unanswered; return the WebSocketRequest."""
    client.send_raw(client.request_bytes(path, headers))
    wait_until(lambda: len(served.ws.pending_requests) == 1, what="a pending request")
    (request,) = served.ws.pending_requests
    return request


# ---------------------------------------------------------------- request properties


def snapshot(request) -> dict:
    return {
        "resource": request.resource,
        "path": request.resource_url.path,
        "query": request.resource_url.query,
        "query_string": request.resource_url.query_string,
        "host": request.host,
        "key": request.key,
        "origin": request.origin,
        "version": request.web_socket_version,
        "protocols": list(request.requested_protocols),
        "extensions": list(request.requested_extensions),
        "cookies": list(request.cookies),
        "remote_address": request.remote_address,
        "remote_addresses": list(request.remote_addresses),
    }


def capture_and_accept(seen: list[dict]):
    def on_request(request):
        seen.append(snapshot(request))
        protocols = request.requested_protocols
        request.accept(protocols[0] if protocols else None)

    return on_request


def test_request_properties_version_13(serve):
    seen: list[dict] = []
    served = serve(on_request=capture_and_accept(seen))
    with RawClient(served.port) as client:
        response = client.handshake(
            "/chat/room?x=1&y=2&y=3&z=&w=a+b%21",
            {
                "Host": "example.com:8080",
                "Origin": "https://app.example",
                "Sec-WebSocket-Origin": "https://ignored.example",
                "Sec-WebSocket-Protocol": "Chat, SuperChat,x-Y",
                "Sec-WebSocket-Extensions": (
                    'permessage-deflate; client_max_window_bits, x-foo; A=1; b="q", Bar'
                ),
                "Cookie": 'a=1; b="two"; c; d=%41%20x, e = 5 ;f=',
            },
        )
        assert response.status == 101
        assert response.header("Sec-WebSocket-Protocol") == "Chat"
        # Extensions are parsed for the application, not negotiated by default.
        assert response.header("Sec-WebSocket-Extensions") is None
        client.send_text("x")
        assert client.read_message() == "x"
        key = client.key

    (got,) = seen
    assert got == {
        "resource": "/chat/room?x=1&y=2&y=3&z=&w=a+b%21",
        "path": "/chat/room",
        "query": {"x": "1", "y": ["2", "3"], "z": "", "w": "a b!"},
        "query_string": "x=1&y=2&y=3&z=&w=a+b%21",
        "host": "example.com:8080",
        "key": key,
        "origin": "https://app.example",
        "version": 13,
        "protocols": ["chat", "superchat", "x-y"],
        "extensions": [
            RequestedExtension(
                "permessage-deflate", (ExtensionParam("client_max_window_bits", None),)
            ),
            RequestedExtension("x-foo", (ExtensionParam("a", "1"), ExtensionParam("b", '"q"'))),
            RequestedExtension("bar", ()),
        ],
        "cookies": [
            Cookie("a", "1"),
            Cookie("b", "two"),
            Cookie("c", None),
            Cookie("d", "A x"),
            Cookie("e", "5"),
            Cookie("f", ""),
        ],
        "remote_address": "127.0.0.1",
        "remote_addresses": ["127.0.0.1"],
    }


def test_request_properties_version_8_origin_and_defaults(serve):
    seen: list[dict] = []
    served = serve(on_request=capture_and_accept(seen))
    with RawClient(served.port) as client:
        response = client.handshake(
            "/v8",
            {
                "Sec-WebSocket-Version": "8",
                "Sec-WebSocket-Origin": "https://v8.example",
                "Origin": "https://not-for-v8.example",
            },
        )
        assert response.status == 101
        client.send_text("v8")
        assert client.read_message() == "v8"
    with RawClient(served.port) as client:
        assert client.handshake("/plain").status == 101
        client.send_text("v13")
        assert client.read_message() == "v13"

    v8, v13 = seen
    assert v8["version"] == 8
    assert v8["origin"] == "https://v8.example"
    assert v8["path"] == "/v8"
    assert v8["query"] == {}
    assert v13["version"] == 13
    assert v13["origin"] is None
    assert v13["protocols"] == []
    assert v13["extensions"] == []
    assert v13["cookies"] == []
    assert v13["host"] == "127.0.0.1"
    connections = [event[1] for event in served.wait_for_event("connect", 2)]
    assert [c.web_socket_version for c in connections] == [8, 13]


def test_parse_extensions_and_parse_cookies_off(serve):
    seen: list[dict] = []
    served = serve(on_request=capture_and_accept(seen), parse_extensions=False, parse_cookies=False)
    with RawClient(served.port) as client:
        response = client.handshake(
            "/", {"Sec-WebSocket-Extensions": "x-foo; a=1", "Cookie": "a=1; b=2"}
        )
        assert response.status == 101
    (got,) = seen
    assert got["extensions"] == []
    assert got["cookies"] == []


XFF = "1.1.1.1, 2.2.2.2,3.3.3.3"


@pytest.mark.parametrize(
    ("options", "forwarded", "address", "addresses"),
    [
        pytest.param(
            {}, XFF, "1.1.1.1", ["1.1.1.1", "2.2.2.2", "3.3.3.3", "127.0.0.1"], id="trusted-default"
        ),
        pytest.param({}, None, "127.0.0.1", ["127.0.0.1"], id="no-header"),
        pytest.param(
            {"ignore_x_forwarded_for": True}, XFF, "127.0.0.1", ["127.0.0.1"], id="ignored"
        ),
        pytest.param(
            {"trusted_proxies": ["127.0.0.1"]},
            "6.6.6.6, 1.1.1.1",
            "1.1.1.1",
            ["6.6.6.6", "1.1.1.1", "127.0.0.1"],
            id="peer-trusted",
        ),
        pytest.param(
            {"trusted_proxies": ["127.0.0.0/8", "1.1.1.0/24"]},
            "6.6.6.6, 1.1.1.1",
            "6.6.6.6",
            ["6.6.6.6", "1.1.1.1", "127.0.0.1"],
            id="peer-and-inner-proxy-trusted",
        ),
        pytest.param(
            {"trusted_proxies": ["10.0.0.0/8"]},
            "6.6.6.6, 1.1.1.1",
            "127.0.0.1",
            ["127.0.0.1"],
            id="peer-not-trusted",
        ),
        pytest.param(
            {"trusted_proxies": ["127.0.0.1"], "ignore_x_forwarded_for": True},
            "6.6.6.6",
            "127.0.0.1",
            ["127.0.0.1"],
            id="ignore-wins-over-trusted",
        ),
    ],
)
def test_remote_addresses(serve, options, forwarded, address, addresses):
    seen: list[dict] = []
    served = serve(on_request=capture_and_accept(seen), **options)
    with RawClient(served.port) as client:
        headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
        assert client.handshake("/", headers).status == 101
        client.send_text("a")
        assert client.read_message() == "a"
        (event,) = served.wait_for_event("connect")
        connection = event[1]
        assert connection.remote_address == address
        assert connection.remote_addresses == addresses
        assert connection.web_socket_version == 13
    (got,) = seen
    assert got["remote_address"] == address
    assert got["remote_addresses"] == addresses


# ---------------------------------------------------------------- accept()


@pytest.mark.parametrize("spelling", ["SUPERCHAT", "superchat", "SuperChat", "sUpErChAt"])
def test_accept_compares_protocols_case_insensitively(serve, spelling):
    served = serve(on_request=lambda request: request.accept(spelling))
    with RawClient(served.port) as client:
        response = client.handshake("/", {"Sec-WebSocket-Protocol": "Chat, SuperChat"})
        assert response.raw == answer_101(client.key, "Sec-WebSocket-Protocol: SuperChat")
        client.send_text("p")
        assert client.read_message() == "p"
    (event,) = served.wait_for_event("connect")
    assert event[1].protocol == "SuperChat"


def test_accept_without_protocol_sends_no_protocol_header(serve):
    served = serve(on_request=lambda request: request.accept(None))
    with RawClient(served.port) as client:
        response = client.handshake("/", {"Sec-WebSocket-Protocol": "chat"})
        assert response.raw == answer_101(client.key)
    (event,) = served.wait_for_event("connect")
    assert event[1].protocol is None


def failing_accept(errors: list[BaseException], *args, **kwargs):
    """A listener calling accept(*args, **kwargs) and keeping what it raised."""

    def on_request(request):
        try:
            request.accept(*args, **kwargs)
        except Exception as error:
            errors.append(error)

    return on_request


@pytest.mark.parametrize(
    ("offered", "protocol", "message"),
    [
        pytest.param("chat", "other", NOT_REQUESTED, id="not-requested"),
        pytest.param(None, "chat", NOT_REQUESTED, id="none-requested"),
        pytest.param("chat", "a b", "Illegal character ' ' in subprotocol.", id="space"),
        pytest.param("chat", "a;b", "Illegal character ';' in subprotocol.", id="semicolon"),
        pytest.param("chat", "chat\r\n", "Illegal character '\\r' in subprotocol.", id="crlf"),
        pytest.param(
            "chat", "ch\u00e4t", "Illegal character '\u00e4' in subprotocol.", id="latin1"
        ),
    ],
)
def test_accept_with_a_bad_protocol_answers_500_and_raises(serve, offered, protocol, message):
    errors: list[BaseException] = []
    served = serve(on_request=failing_accept(errors, protocol))
    with RawClient(served.port) as client:
        headers = {"Sec-WebSocket-Protocol": offered} if offered else {}
        response = refused(client, headers)
    assert response.raw == SERVER_ERROR_500
    (error,) = errors
    assert type(error) is ValueError
    assert str(error) == message
    assert event_names(served) == ["request"]
    assert served.ws.connections == []


def test_accept_sets_cookies_with_exact_lines(serve):
    cookies = [
        {
            "name": "id",
            "value": "1",
            "path": "/",
            "domain": "Example.COM",
            "expires": datetime(2030, 1, 1, tzinfo=timezone.utc),
            "maxage": 2.6,
            "secure": True,
            "httponly": True,
        },
        {"name": "plain", "value": "two"},
        {"name": "q", "value": '"quoted"', "maxage": "60"},
        {"name": "a b", "value": "x y;z"},
    ]
    served = serve(on_request=lambda request: request.accept("chat", None, cookies))
    with RawClient(served.port) as client:
        response = client.handshake("/", {"Sec-WebSocket-Protocol": "chat"})
        assert response.raw == answer_101(
            client.key,
            "Sec-WebSocket-Protocol: chat",
            "Set-Cookie: id=1;Path=/;Domain=example.com;Expires=Tue, 01 Jan 2030 00:00:00 GMT;"
            "Max-Age=3;Secure;HttpOnly",
            "Set-Cookie: plain=two",
            'Set-Cookie: q="quoted";Max-Age=60',
            "Set-Cookie: ab=xyz",
        )
        client.send_text("c")
        assert client.read_message() == "c"


NEEDS_NAME_AND_VALUE = 'Each cookie to set must at least provide a "name" and "value"'
BAD_COOKIES = {
    "not-list": (
        {"name": "a", "value": "1"},
        'Value supplied for "cookies" argument must be a list.',
    ),
    "no-value": ([{"name": "a"}], NEEDS_NAME_AND_VALUE),
    "empty-value": ([{"name": "a", "value": ""}], NEEDS_NAME_AND_VALUE),
    "duplicate": (
        [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}],
        "You may not specify the same cookie name twice.",
    ),
    "name": ([{"name": "a(b", "value": "1"}], "Illegal character ( in cookie name"),
    "value": ([{"name": "a", "value": 'x"y'}], 'Illegal character " in cookie value'),
    "domain-type": (
        [{"name": "a", "value": "1", "domain": 5}],
        "Domain must be specified and must be a string.",
    ),
    "expires": (
        [{"name": "a", "value": "1", "expires": "tomorrow"}],
        'Value supplied for cookie "expires" must be a valid date object',
    ),
    "maxage": (
        [{"name": "a", "value": "1", "maxage": -5}],
        'Value supplied for cookie "maxage" must be a non-zero number',
    ),
    "secure": (
        [{"name": "a", "value": "1", "secure": "yes"}],
        'Value supplied for cookie "secure" must be of type boolean',
    ),
}


@pytest.mark.parametrize(("cookies", "message"), list(BAD_COOKIES.values()), ids=list(BAD_COOKIES))
def test_accept_with_a_bad_cookie_answers_500_and_raises(serve, cookies, message):
    errors: list[BaseException] = []
    served = serve(on_request=failing_accept(errors, None, None, cookies))
    with RawClient(served.port) as client:
        response = refused(client)
    assert response.raw == SERVER_ERROR_500
    (error,) = errors
    assert type(error) is ValueError
    assert str(error) == message
    assert event_names(served) == ["request"]


@pytest.mark.parametrize("version", ["13", "8"])
def test_accept_never_sends_an_origin_header(serve, version):
    served = serve(on_request=lambda request: request.accept("chat", "https://allowed.example"))
    with RawClient(served.port) as client:
        response = client.handshake(
            "/",
            {
                "Sec-WebSocket-Version": version,
                "Sec-WebSocket-Protocol": "chat",
                "Origin": "https://allowed.example",
                "Sec-WebSocket-Origin": "https://allowed.example",
            },
        )
        assert response.raw == answer_101(client.key, "Sec-WebSocket-Protocol: chat")
        assert response.header("Origin") is None
        assert response.header("Sec-WebSocket-Origin") is None


# ---------------------------------------------------------------- reject()


def reject_with(*args, **kwargs):
    return lambda request: request.reject(*args, **kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        pytest.param(
            (),
            {},
            b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            id="default-403",
        ),
        pytest.param(
            (401, "Log in first", {"WWW-Authenticate": 'Basic realm="x"', "X-Retry": 5}),
            {},
            b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n"
            b"X-WebSocket-Reject-Reason: Log in first\r\n"
            b'WWW-Authenticate: Basic realm="x"\r\nX-Retry: 5\r\n'
            b"Content-Length: 0\r\n\r\n",
            id="custom",
        ),
        pytest.param(
            (),
            {"status": 429, "reason": "Slow down", "extra_headers": {"Retry-After": "10"}},
            b"HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\n"
            b"X-WebSocket-Reject-Reason: Slow down\r\nRetry-After: 10\r\n"
            b"Content-Length: 0\r\n\r\n",
            id="429-phrase-from-httpstatus",
        ),
        pytest.param(
            (451,),
            {},
            b"HTTP/1.1 451 Unavailable For Legal Reasons\r\nConnection: close\r\n"
            b"Content-Length: 0\r\n\r\n",
            id="451",
        ),
        pytest.param(
            (400, "bad\r\nInjected: 1", {"X-A": "v\r\nEvil: 1"}),
            {},
            b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
            b"X-WebSocket-Reject-Reason: badInjected: 1\r\nX-A: vEvil: 1\r\n"
            b"Content-Length: 0\r\n\r\n",
            id="crlf-stripped",
        ),
    ],
)
def test_reject_response_bytes(serve, args, kwargs, expected):
    served = serve(on_request=reject_with(*args, **kwargs))
    with RawClient(served.port) as client:
        response = refused(client)
    assert response.raw == expected
    (event,) = served.wait_for_event("request")
    request = event[1]
    assert request.resolved
    assert request.connection is None
    assert event_names(served) == ["request"]


def test_invalid_reject_raises_and_leaves_the_request_unanswered(serve):
    served = serve(on_request=lambda request: None)
    with RawClient(served.port) as client:
        request = pending_request(served, client)
        for status in (999, 99, "404", True, 404.0, None):
            with pytest.raises(ValueError, match="status"):
                request.reject(status)
            assert not request.resolved
            assert served.ws.pending_requests == [request]
        with pytest.raises(ValueError, match="header name"):
            request.reject(404, "x", {"Bad Name": "v"})
        assert not request.resolved
        assert served.ws.pending_requests == [request]

        request.reject(404, "Not here")
        response = client.read_response()
        assert response.raw == (
            b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n"
            b"X-WebSocket-Reject-Reason: Not here\r\nContent-Length: 0\r\n\r\n"
        )
        assert client.expect_eof() == b""
    assert served.ws.pending_requests == []
    assert request.status == 404


def test_second_answer_raises_after_accept(serve):
    served = serve(on_request=lambda request: None)
    with RawClient(served.port) as client:
        request = pending_request(served, client)
        assert served.ws.pending_requests == [request]
        assert not request.resolved
        connection = request.accept()
        assert isinstance(connection, WebSocketConnection)
        assert request.resolved
        assert served.ws.pending_requests == []
        for answer in (request.accept, request.reject):
            with pytest.raises(RequestResolvedError) as raised:
                answer()
            assert str(raised.value) == ONE_TIME
        with pytest.raises(RequestResolvedError, match=ONE_TIME):
            request.reject(500, "late")
        response = client.read_response()
        assert response.raw == answer_101(client.key)
        client.send_text("only one answer")
        assert client.read_message() == "only one answer"


def test_second_answer_raises_after_reject(serve):
    served = serve(on_request=lambda request: None)
    with RawClient(served.port) as client:
        request = pending_request(served, client)
        request.reject(409, "conflict")
        for answer in (request.accept, request.reject):
            with pytest.raises(RequestResolvedError) as raised:
                answer()
            assert str(raised.value) == ONE_TIME
        response = client.read_response()
        assert response.status == 409
        assert client.expect_eof() == b"", "nothing may follow the first answer"
    assert event_names(served) == ["request"]


# ---------------------------------------------------------------- events and dispatch


def test_event_order_request_connect_close(serve):
    log: list[tuple] = []

    def on_request(request):
        log.append(("request", request))
        connection = request.accept()
        log.append(("accept returned", connection))

    def on_connect(connection):
        log.append(("connect", connection))
        echo_connection(connection)

    served = serve(on_request=on_request, on_connect=on_connect)
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        client.send_text("m")
        assert client.read_message() == "m"
        connection = log[-1][1]
        assert served.ws.connections == [connection]
        client.send_close(1000, "bye")
        assert client.read_until_close().close_code == 1000
        assert client.expect_eof() == b""
    assert connection.wait_closed(5)

    assert [entry[0] for entry in log] == ["request", "connect", "accept returned"]
    assert log[1][1] is log[2][1] is connection
    assert event_names(served) == ["request", "connect", "close"]
    assert served.events[2] == ("close", connection, 1000, "bye")
    assert served.ws.connections == []


def test_server_close_event_mirrors_a_server_side_close(serve):
    served = serve(on_connect=None)
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        (event,) = served.wait_for_event("connect")
        connection = event[1]
        connection.close(4000, "done")
        frame = client.read_until_close()
        assert (frame.close_code, frame.close_reason) == (4000, "done")
        client.send_close(4000)
        assert client.expect_eof() == b""
    (closed,) = served.wait_for_event("close")
    assert closed == ("close", connection, 4000, "done")
    assert connection.wait_closed(5)
    assert len([e for e in served.events if e[0] == "close"]) == 1


def test_connect_listener_can_send_at_once_and_bytes_follow_the_101(serve):
    def on_connect(connection):
        connection.send("welcome")
        echo_connection(connection)

    served = serve(on_connect=on_connect)
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        assert client.read_message() == "welcome"
        client.send_text("then echo")
        assert client.read_message() == "then echo"


def test_connect_listener_that_raises_is_logged_and_the_connection_carries_on(serve, caplog):
    def on_connect(connection):
        echo_connection(connection)
        raise RuntimeError("boom in connect")

    accepted = []
    served = serve(
        on_request=lambda request: accepted.append(request.accept()), on_connect=on_connect
    )
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        client.send_text("still echoing")
        assert client.read_message() == "still echoing"
    assert len(accepted) == 1
    assert "RuntimeError: boom in connect" in caplog.text


def test_upgrade_error_listener_that_raises_does_not_stop_the_server(serve, caplog):
    served = serve()

    def broken(error):
        raise RuntimeError("boom in upgrade_error")

    served.ws.on("upgrade_error", broken)
    with RawClient(served.port) as client:
        assert refused(client, {"Sec-WebSocket-Version": "7"}).status == 426
    assert "RuntimeError: boom in upgrade_error" in caplog.text
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        client.send_text("ok")
        assert client.read_message() == "ok"


def test_listener_that_raises_gets_500_and_is_logged(serve, caplog):
    calls = []

    def on_request(request):
        calls.append(request)
        if len(calls) == 1:
            raise RuntimeError("boom in listener")
        request.accept()

    served = serve(on_request=on_request)
    with caplog.at_level(logging.ERROR, logger="geventws"), RawClient(served.port) as client:
        response = refused(client)
    assert response.raw == (
        b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n"
        b"X-WebSocket-Reject-Reason: The request handler failed.\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    records = [r for r in caplog.records if r.exc_info and r.exc_info[0] is RuntimeError]
    assert len(records) == 1
    assert str(records[0].exc_info[1]) == "boom in listener"
    assert "Traceback (most recent call last)" in caplog.text
    assert "RuntimeError: boom in listener" in caplog.text
    assert calls[0].status == 500

    # The server keeps serving.
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        client.send_text("next")
        assert client.read_message() == "next"
    assert served.ws.pending_requests == []


def test_listener_that_raises_after_accepting_keeps_the_connection(serve, caplog):
    def on_request(request):
        request.accept()
        raise RuntimeError("after accept")

    served = serve(on_request=on_request)
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        client.send_text("alive")
        assert client.read_message() == "alive"
    assert "RuntimeError: after accept" in caplog.text


def test_listener_answering_later_from_another_greenlet(serve):
    served = serve(on_request=lambda request: gevent.spawn_later(0.05, request.accept, "chat"))
    with RawClient(served.port) as client:
        client.send_raw(client.request_bytes("/", {"Sec-WebSocket-Protocol": "Chat"}))
        wait_until(lambda: len(served.ws.pending_requests) == 1, what="the pending request")
        response = client.read_response()
        assert response.raw == answer_101(client.key, "Sec-WebSocket-Protocol: Chat")
        client.send_text("late but fine")
        assert client.read_message() == "late but fine"
    assert served.ws.pending_requests == []


def test_later_reject_from_another_greenlet(serve):
    served = serve(on_request=lambda request: gevent.spawn_later(0.05, request.reject, 418))
    with RawClient(served.port) as client:
        response = refused(client)
    assert response.status == 418
    assert served.ws.pending_requests == []


def test_unanswered_request_gets_503_after_request_timeout(serve, caplog):
    served = serve(on_request=lambda request: None, request_timeout=200)
    with RawClient(served.port) as client:
        started = time.monotonic()
        client.send_raw(client.request_bytes())
        wait_until(lambda: len(served.ws.pending_requests) == 1, what="the pending request")
        (request,) = served.ws.pending_requests
        response = client.read_response()
        elapsed = time.monotonic() - started
        assert client.expect_eof() == b""
    assert response.raw == (
        b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
        b"X-WebSocket-Reject-Reason: The request was neither accepted nor rejected in time.\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert 0.18 <= elapsed < 1.5
    assert request.resolved and request.status == 503
    assert served.ws.pending_requests == []
    assert "not answered within request_timeout" in caplog.text
    with pytest.raises(RequestResolvedError):
        request.accept()


def test_pending_requests_hold_each_unanswered_request(serve):
    served = serve(on_request=lambda request: None)
    with RawClient(served.port) as first, RawClient(served.port) as second:
        first.send_raw(first.request_bytes("/one"))
        second.send_raw(second.request_bytes("/two"))
        wait_until(lambda: len(served.ws.pending_requests) == 2, what="two pending requests")
        by_path = {r.resource: r for r in served.ws.pending_requests}
        assert set(by_path) == {"/one", "/two"}
        assert [e[1] for e in served.events if e[0] == "request"] == list(
            served.ws.pending_requests
        )

        by_path["/one"].reject(403)
        assert served.ws.pending_requests == [by_path["/two"]]
        assert first.read_response().status == 403
        connection = by_path["/two"].accept()
        assert served.ws.pending_requests == []
        assert second.read_response().status == 101
        assert served.ws.connections == [connection]


def test_frames_sent_while_the_request_waits_are_delivered_after_accept(serve):
    served = serve(on_request=lambda request: None)
    with RawClient(served.port) as client:
        request = pending_request(served, client)
        client.send_frame(0x1, b"early one")
        client.send_frame(0x2, b"early two")
        request.accept()
        assert client.read_response().status == 101
        assert client.read_message() == "early one"
        assert client.read_message() == b"early two"


def test_auto_accept_connections(serve):
    served = serve(on_request=None, on_connect=echo_connection, auto_accept_connections=True)
    with RawClient(served.port) as client:
        response = client.handshake(
            "/any/path",
            {"Sec-WebSocket-Protocol": "Chat, other", "Origin": "https://o.example"},
        )
        assert response.raw == answer_101(client.key, "Sec-WebSocket-Protocol: Chat")
        client.send_text("auto")
        assert client.read_message() == "auto"
    with RawClient(served.port) as client:
        assert client.handshake().raw == answer_101(client.key)
    connections = [event[1] for event in served.wait_for_event("connect", 2)]
    assert [c.protocol for c in connections] == ["Chat", None]
    assert "request" not in event_names(served)


def test_auto_accept_with_an_illegal_first_protocol_answers_500_and_keeps_serving(serve, caplog):
    served = serve(on_request=None, auto_accept_connections=True)
    with RawClient(served.port) as client:
        response = refused(client, {"Sec-WebSocket-Protocol": "a b, chat"})
    assert response.raw == SERVER_ERROR_500
    assert "Illegal character ' ' in subprotocol." in caplog.text
    with RawClient(served.port) as client:
        assert client.handshake("/", {"Sec-WebSocket-Protocol": "chat"}).status == 101
        client.send_text("fine")
        assert client.read_message() == "fine"
    assert event_names(served).count("connect") == 1


def test_client_hangs_up_while_its_request_waits(serve):
    served = serve(on_request=lambda request: None)
    with RawClient(served.port) as client:
        request = pending_request(served, client)
    wait_until(lambda: request.peer_gone, what="the server to notice the hang-up")
    assert served.ws.pending_requests == []
    assert not request.resolved

    connection = request.accept()

    assert isinstance(connection, WebSocketConnection)
    assert not connection.connected
    assert connection.wait_closed(5)
    assert event_names(served) == ["request", "connect", "close"]
    assert served.events[1] == ("connect", connection)
    assert served.events[2] == (
        "close",
        connection,
        1006,
        "TCP connection lost before handshake completed.",
    )
    assert connection.close_reason_code == 1006
    assert connection.state == "closed"
    assert served.ws.connections == []


def test_client_hangs_up_and_nobody_answers(serve):
    served = serve(on_request=lambda request: None, request_timeout=200)
    with RawClient(served.port) as client:
        request = pending_request(served, client)
    wait_until(lambda: request.resolved, what="the request_timeout to answer")
    assert request.status == 503
    assert event_names(served) == ["request"]


def environ_facts(environ: dict) -> dict:
    """The parts of a pywsgi environ a WebSocket application reads."""
    return {
        key: environ.get(key)
        for key in (
            "REQUEST_METHOD",
            "PATH_INFO",
            "QUERY_STRING",
            "SERVER_PROTOCOL",
            "REMOTE_ADDR",
            "HTTP_HOST",
            "HTTP_X_TRACE",
            "HTTP_COOKIE",
            "HTTP_SEC_WEBSOCKET_VERSION",
            "wsgi.url_scheme",
        )
    }


def test_request_environ_is_the_same_read_in_the_listener_or_after_the_connection_closed(serve):
    read_in_listener: list[dict] = []

    def on_request(request):
        if request.resource.startswith("/now"):
            read_in_listener.append(request.environ)
        request.accept()

    served = serve(on_request=on_request)
    for path in ("/now?a=1", "/later?a=1"):
        with RawClient(served.port) as client:
            headers = {"X-Trace": "t-1", "Cookie": "a=1"}
            assert client.handshake(path, headers).status == 101
            client.send_text("x")
            assert client.read_message() == "x"
            client.close_handshake()
    served.wait_for_event("close", 2)
    now_request, later_request = [e[1] for e in served.events if e[0] == "request"]

    later = environ_facts(later_request.environ)
    now = environ_facts(now_request.environ)
    assert now_request.environ is read_in_listener[0]
    assert later == {**now, "PATH_INFO": "/later"}
    assert now == {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/now",
        "QUERY_STRING": "a=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_X_TRACE": "t-1",
        "HTTP_COOKIE": "a=1",
        "HTTP_SEC_WEBSOCKET_VERSION": "13",
        "wsgi.url_scheme": "http",
    }
    assert later_request.environ is later_request.environ  # built once


def test_an_open_connections_handler_keeps_nothing_of_the_request(serve):
    # The handler's greenlet lives as long as the WebSocket: what only the request and its
    # access log needed is let go, while the request's environ can still be read.
    served = serve()
    with RawClient(served.port) as client:
        assert client.handshake("/kept?q=1", {"X-Trace": "t-2"}).status == 101
        wait_until(lambda: served.ws.connections, what="the connection open")
        (connection,) = served.ws.connections
        (handler,) = [
            o
            for o in gc.get_objects()
            # type(), not isinstance(): the heap may hold dead weak proxies, which raise.
            if issubclass(type(o), WSGIHandler) and getattr(o, "socket", None) is connection.socket
        ]
        assert (handler.requestline, handler.command, handler.path) == ("", "", "")
        assert handler.request_version == ""
        assert handler.headers is None and handler.rfile is None
        assert dict(handler.environ) == {} and handler.response_headers == ()
        with pytest.raises(TypeError):
            handler.environ["x"] = 1  # shared by every upgraded handler: read-only
        assert handler.status.startswith("101")
        (request,) = [e[1] for e in served.events if e[0] == "request"]
        assert request.environ["PATH_INFO"] == "/kept"
        assert request.environ["HTTP_X_TRACE"] == "t-2"
        client.send_text("still echoes")
        assert client.read_message() == "still echoes"
        client.close_handshake()


def test_request_environ_is_not_built_when_nobody_keeps_the_request(serve, monkeypatch):
    built: list[str] = []
    original = WSGIHandler.get_environ

    def counting_get_environ(handler):
        built.append(handler.path)
        return original(handler)

    monkeypatch.setattr(WSGIHandler, "get_environ", counting_get_environ)
    served = serve(on_request=lambda request: request.accept())
    served.events.clear()
    served.ws.remove_all_listeners("request")  # the fixture's recorder keeps every request
    served.ws.on("request", lambda request: request.accept())
    with RawClient(served.port) as client:
        assert client.handshake("/unread").status == 101
        client.close_handshake()
    wait_until(lambda: not served.ws.connections, what="the connection closed")
    with RawClient(served.port) as client:
        client.send_raw(b"GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert client.read_response().status == 200
    assert built == ["/plain"]
