"""Upgrades answered by the WSGI application (``application_upgrades=True``): a view takes the
request with ``geventws.upgrade_request(environ)`` and accepts or rejects it itself."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from conftest import in_thread, wait_until
from gevent.event import Event
from rawclient import RawClient

from geventws import WebSocketConnection, upgrade_request


def routes(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A WSGI app with WebSocket views at /echo, /events, /private, /fails and /ignores."""
    path = environ["PATH_INFO"]
    if path == "/echo":
        request = upgrade_request(environ)
        if request is None:
            body = b"WebSocket only\n"
            start_response(
                "426 Upgrade Required",
                [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
            )
            return [body]
        connection = request.accept(
            request.requested_protocols[0] if request.requested_protocols else None
        )
        for message in connection:
            connection.send(message)
        start_response("200 OK", [])
        return [b"this body must never reach the client"]
    if path == "/events":
        request = upgrade_request(environ)
        assert request is not None
        connection = request.accept()
        connection.on("message", lambda message: connection.send(f"event: {message}"))
        start_response("200 OK", [])
        return [b"discarded"]
    if path == "/private":
        request = upgrade_request(environ)
        assert request is not None
        if environ.get("HTTP_COOKIE") != "session=good":
            request.reject(403, "Log in first.")
            start_response("200 OK", [])
            return [b"discarded"]
        connection = request.accept()
        connection.send(f"welcome {environ['HTTP_COOKIE']}")
        connection.close()
        start_response("200 OK", [])
        return []
    if path == "/fails":
        request = upgrade_request(environ)
        assert request is not None
        request.accept()
        raise RuntimeError("the view broke after accepting")
    body = f"plain {path}".encode()
    start_response("404 Not Found", [("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def app_server(serve):
    return serve(on_request=None, on_connect=None, app=routes, application_upgrades=True)


def test_view_accepts_and_serves_in_sync_style(app_server):
    """The view's ``for message in connection`` loop echoes; the returned body never shows."""
    from websockets.sync.client import connect

    def talk() -> list[object]:
        with connect(f"ws://127.0.0.1:{app_server.port}/echo", subprotocols=["chat"]) as ws:
            ws.send("héllo")
            first = ws.recv(timeout=5)
            ws.send(b"\x00\x01")
            second = ws.recv(timeout=5)
            return [ws.subprotocol, first, second]

    assert in_thread(talk) == ["chat", "héllo", b"\x00\x01"]
    connections = app_server.wait_for_event("connect")
    assert len(connections) == 1
    app_server.wait_for_event("close")
    assert not [event for event in app_server.events if event[0] == "request"]


def test_view_that_attaches_listeners_and_returns_keeps_the_connection(app_server):
    """Returning from the view does not end the WebSocket; its listeners keep answering."""
    with RawClient(app_server.port) as client:
        assert client.handshake("/events").status == 101
        for text in ("one", "two"):
            client.send_text(text)
            assert client.read_message() == f"event: {text}"
        client.send_close(1000)
        assert client.read_until_close().close_code == 1000
        assert client.expect_eof() == b""


def test_view_rejects_after_reading_the_cookie(app_server):
    """The view reads the request's cookie first: without it 403 with the reason, with it 101."""
    with RawClient(app_server.port) as client:
        response = client.handshake("/private")
        assert response.status == 403
        assert response.header("X-WebSocket-Reject-Reason") == "Log in first."
        assert client.expect_eof() == b""
    with RawClient(app_server.port) as client:
        assert client.handshake("/private", {"Cookie": "session=good"}).status == 101
        assert client.read_message() == "welcome session=good"
        assert client.read_until_close().close_code == 1000
        client.send_close(1000)
        assert client.expect_eof() == b""


def test_upgrade_no_view_takes_gets_the_applications_answer(app_server):
    """An upgrade to a route without a WebSocket view gets that route's plain response."""
    with RawClient(app_server.port) as client:
        client.send_raw(client.request_bytes("/nowhere"))
        response = client.read_response()
        assert response.status == 404
        assert client.expect_eof() == b"plain /nowhere"
    assert app_server.ws.pending_requests == []
    assert app_server.ws.connections == []


def test_plain_http_on_a_websocket_route_stays_plain(app_server):
    """A GET without upgrade headers reaches the same view as plain HTTP, with keep-alive."""
    with RawClient(app_server.port) as client:
        for _ in range(2):
            client.send_raw(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            response = client.read_response()
            assert response.status == 426
            assert client._read_exact(int(response.header("Content-Length") or 0)) == (
                b"WebSocket only\n"
            )


def test_invalid_handshake_is_answered_precisely_and_the_view_response_discarded(app_server):
    """An unsupported version gets 426 with the versions we speak, before the view's body."""
    with RawClient(app_server.port) as client:
        client.send_raw(client.request_bytes("/echo", {"Sec-WebSocket-Version": "12"}))
        response = client.read_response()
        assert response.status == 426
        assert response.header("Sec-WebSocket-Version") == "13"
        assert client.expect_eof() == b""
    errors = app_server.wait_for_event("upgrade_error")
    assert "version" in str(errors[0][1]).lower()


def test_view_failing_after_accept_closes_with_1011(app_server, caplog):
    """An exception in the view after accept is logged and the client gets Close 1011."""
    caplog.set_level(logging.ERROR)
    with RawClient(app_server.port) as client:
        assert client.handshake("/fails").status == 101
        close = client.read_until_close()
        assert close.close_code == 1011
        client.send_close(1011)
        assert client.expect_eof() == b""


def test_frames_sent_with_the_handshake_reach_the_view(app_server):
    """Bytes buffered behind the request head are the connection's first frames."""
    from rawclient import client_frame

    with RawClient(app_server.port) as client:
        response = client.handshake("/echo", extra=client_frame(0x1, b"early"))
        assert response.status == 101
        assert client.read_message() == "early"
        client.send_close(1000)
        assert client.read_until_close().close_code == 1000


def test_shut_down_sends_going_away_and_waits(app_server):
    """``shut_down(1001)`` closes sync-style views' connections; ``wait_closed`` sees them end."""
    clients = [RawClient(app_server.port) for _ in range(3)]
    try:
        for client in clients:
            assert client.handshake("/echo").status == 101
        wait_until(lambda: len(app_server.ws.connections) == 3)
        app_server.ws.shut_down(1001, "server restarting")
        for client in clients:
            close = client.read_until_close()
            assert (close.close_code, close.close_reason) == (1001, "server restarting")
            client.send_close(1001)
            assert client.expect_eof() == b""
            client.close()
        assert app_server.ws.wait_closed(5)
        assert app_server.ws.connections == []
    finally:
        for client in clients:
            client.close()


def test_access_log_shows_101_for_the_upgrade(serve):
    """The WSGI server's access log has the status the client got, not the view's."""
    lines: list[str] = []
    logged = Event()

    class Log:
        def write(self, line: str) -> None:
            lines.append(line)
            logged.set()

    served = serve(on_request=None, on_connect=None, app=routes, application_upgrades=True)
    served.http.log = Log()
    with RawClient(served.port) as client:
        assert client.handshake("/private").status == 403
    assert logged.wait(5)
    assert '"GET /private HTTP/1.1" 403' in lines[0]
    logged.clear()
    with RawClient(served.port) as client:
        assert client.handshake("/private", {"Cookie": "session=good"}).status == 101
        client.read_until_close()
        client.send_close(1000)
        client.expect_eof()
    assert logged.wait(5)
    assert '"GET /private HTTP/1.1" 101' in lines[1]


def test_upgrade_request_outside_geventws_is_none():
    """Under another server (no geventws handler) a view sees None and answers plain HTTP."""
    assert upgrade_request({"PATH_INFO": "/", "HTTP_UPGRADE": "websocket"}) is None


def test_connection_type_is_the_server_side_connection(app_server):
    """What the view gets from accept() is the same WebSocketConnection the events carry."""
    with RawClient(app_server.port) as client:
        assert client.handshake("/events").status == 101
        ((_, connection),) = app_server.wait_for_event("connect")
        assert isinstance(connection, WebSocketConnection)
        assert connection.remote_address == "127.0.0.1"
        client.send_close(1000)
        client.read_until_close()
