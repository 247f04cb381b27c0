"""The gevent-websocket bridge (``geventws.compat``): an application written for
gevent-websocket's ``environ["wsgi.websocket"]`` runs unchanged behind
``GeventWebSocketMiddleware`` on a server mounted with ``application_upgrades=True``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import in_thread
from gevent.event import Event
from rawclient import RawClient

from geventws import ConnectionClosedError, WebSocketError
from geventws.compat import GeventWebSocket, GeventWebSocketMiddleware


class Record:
    """What the application saw, for the test to check after the fact."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.after_close: dict[str, Any] = {}
        self.finished = Event()
        self.result_closed = Event()


class ClosingBody:
    """A response iterable with ``close()``, as WSGI allows: sends while it is iterated."""

    def __init__(self, websocket: GeventWebSocket, record: Record) -> None:
        self.websocket = websocket
        self.record = record

    def __iter__(self) -> Iterator[bytes]:
        self.websocket.send("while iterated")
        yield b"ignored"
        self.websocket.send("still iterated")

    def close(self) -> None:
        """Called by the middleware once the body is consumed."""
        self.record.result_closed.set()


def legacy_app(record: Record) -> Any:
    """A WSGI app in gevent-websocket's style: ``environ.get("wsgi.websocket")`` decides."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ["PATH_INFO"]
        record.calls.append(path)
        ws = environ.get("wsgi.websocket")
        if ws is None:
            body = f"plain {path}".encode()
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        if path == "/echo":
            while True:
                message = ws.receive()
                if message is None:
                    break
                ws.send(message)
            record.after_close["closed"] = ws.closed
            record.after_close["receive"] = ws.receive()
            try:
                ws.send("too late")
            except WebSocketError as error:
                record.after_close["send"] = error
            record.finished.set()
        elif path == "/info":
            ws.send(
                json.dumps(
                    {
                        "path": ws.path,
                        "origin": ws.origin,
                        "protocol": ws.protocol,
                        "version": ws.version,
                        "environ_version": environ["wsgi.websocket_version"],
                        "closed": ws.closed,
                        "same_environ": ws.environ is environ,
                    }
                )
            )
        elif path == "/types":
            ws.send("text sent as binary", binary=True)
            ws.send(b"bytes sent as text", binary=False)
            ws.send(bytearray(b"\x00\x01"))
        elif path == "/close":
            ws.close(4000, b"custom bye")
            record.after_close["closed"] = ws.closed
        elif path == "/fails":
            ws.send("about to fail")
            raise RuntimeError("the application broke on a WebSocket")
        elif path == "/body":
            return ClosingBody(ws, record)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"never sent on a WebSocket"]

    return app


@pytest.fixture
def record() -> Record:
    """A fresh record per test."""
    return Record()


@pytest.fixture
def legacy(serve: Any, record: Record) -> Any:
    """The legacy app behind the middleware; ``/echo`` agrees to the ``chat`` subprotocol."""
    middleware = GeventWebSocketMiddleware(
        legacy_app(record), protocol=lambda path: "chat" if path == "/echo" else None
    )
    return serve(on_request=None, on_connect=None, app=middleware, application_upgrades=True)


def test_echo_loop_until_receive_returns_none(legacy: Any, record: Record) -> None:
    """``receive()`` gives str and bytes, the loop ends on None at the client's close; then
    ``closed`` is true, ``receive()`` stays None and ``send()`` raises a WebSocketError."""
    from websockets.sync.client import connect

    def talk() -> list[object]:
        with connect(f"ws://127.0.0.1:{legacy.port}/echo", subprotocols=["chat"]) as ws:
            ws.send("héllo")
            text = ws.recv(timeout=5)
            ws.send(b"\x00\xff")
            data = ws.recv(timeout=5)
            return [ws.subprotocol, text, data]

    assert in_thread(talk) == ["chat", "héllo", b"\x00\xff"]
    assert record.finished.wait(5)
    assert record.after_close["closed"] is True
    assert record.after_close["receive"] is None
    assert isinstance(record.after_close["send"], ConnectionClosedError)
    ((_, _, code, _),) = legacy.wait_for_event("close")
    assert code == 1000


def test_attributes_and_environ_version(legacy: Any) -> None:
    """``path``, ``origin``, ``protocol``, ``version``, ``environ`` and
    ``environ["wsgi.websocket_version"]``; the app returning closes with 1000."""
    with RawClient(legacy.port) as client:
        response = client.handshake(
            "/info", {"Origin": "http://example.test", "Sec-WebSocket-Protocol": "chat"}
        )
        assert response.status == 101
        assert response.header("Sec-WebSocket-Protocol") is None  # not agreed for /info
        assert json.loads(client.read_message()) == {
            "path": "/info",
            "origin": "http://example.test",
            "protocol": None,
            "version": "13",
            "environ_version": "13",
            "closed": False,
            "same_environ": True,
        }
        close = client.read_until_close()
        assert (close.close_code, close.close_reason) == (1000, "")
        client.send_close(1000)
        assert client.expect_eof() == b""


def test_send_binary_flag_overrides_the_type(legacy: Any) -> None:
    """``send(str, binary=True)`` is binary UTF-8, ``send(bytes, binary=False)`` is text,
    a bytearray goes as binary."""
    with RawClient(legacy.port) as client:
        assert client.handshake("/types").status == 101
        frames = [client.read_frame() for _ in range(3)]
        assert [(frame.opcode, frame.payload) for frame in frames] == [
            (0x2, b"text sent as binary"),
            (0x1, b"bytes sent as text"),
            (0x2, b"\x00\x01"),
        ]
        assert client.read_until_close().close_code == 1000


def test_close_with_code_and_message(legacy: Any, record: Record) -> None:
    """``close(4000, b"custom bye")`` sends that code and reason; ``closed`` turns true."""
    with RawClient(legacy.port) as client:
        assert client.handshake("/close").status == 101
        close = client.read_until_close()
        assert (close.close_code, close.close_reason) == (4000, "custom bye")
        client.send_close(4000)
        assert client.expect_eof() == b""
    assert record.after_close["closed"] is True


def test_application_failure_closes_with_1011(legacy: Any) -> None:
    """An exception in the app after the upgrade: what it sent arrives, then Close 1011."""
    with RawClient(legacy.port) as client:
        assert client.handshake("/fails").status == 101
        assert client.read_message() == "about to fail"
        assert client.read_until_close().close_code == 1011
        client.send_close(1011)
        assert client.expect_eof() == b""


def test_response_body_is_consumed_and_closed_before_the_close(legacy: Any, record: Record) -> None:
    """A body the app returns is iterated (its sends go out) and closed, then Close 1000."""
    with RawClient(legacy.port) as client:
        assert client.handshake("/body").status == 101
        assert client.read_message() == "while iterated"
        assert client.read_message() == "still iterated"
        assert client.read_until_close().close_code == 1000
    assert record.result_closed.is_set()


def test_plain_requests_pass_through_untouched(legacy: Any, record: Record) -> None:
    """Requests without an upgrade reach the app without ``wsgi.websocket``, keep-alive."""
    with RawClient(legacy.port) as client:
        for path in ("/echo", "/other"):
            client.send_raw(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            response = client.read_response()
            assert response.status == 200
            body = f"plain {path}".encode()
            assert response.header("Content-Length") == str(len(body))
            while len(client.buffer) < len(body):
                chunk = client.sock.recv(1024)
                assert chunk, "closed before the body"
                client.buffer += chunk
            assert client.buffer == body
            client.buffer = b""
    assert record.calls == ["/echo", "/other"]


def test_invalid_handshake_never_reaches_the_app(legacy: Any, record: Record) -> None:
    """A bad upgrade gets geventws's precise answer and the app is not called."""
    with RawClient(legacy.port) as client:
        client.send_raw(client.request_bytes("/echo", {"Sec-WebSocket-Version": "12"}))
        response = client.read_response()
        assert response.status == 426
        assert response.header("Sec-WebSocket-Version") == "13"
        assert client.expect_eof() == b""
    assert record.calls == []


def test_app_protocol_hook_of_the_application_is_used(serve: Any) -> None:
    """Without ``protocol=``, the application's ``app_protocol(path)`` (gevent-websocket's
    hook) picks the subprotocol, answered in the client's spelling; one the client did not
    offer is not agreed to."""

    class App:
        """A gevent-websocket application object with the ``app_protocol`` hook."""

        def app_protocol(self, path: str) -> str | None:
            """The subprotocol for ``path``."""
            return "v2.chat" if path == "/chat" else None

        def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
            """Tell the client which subprotocol was agreed, then return (Close 1000)."""
            ws = environ["wsgi.websocket"]
            ws.send(str(ws.protocol))
            return []

    served = serve(
        on_request=None,
        on_connect=None,
        app=GeventWebSocketMiddleware(App()),
        application_upgrades=True,
    )
    for offered, agreed in (("v1.chat, V2.Chat", "V2.Chat"), ("v1.chat", None)):
        with RawClient(served.port) as client:
            response = client.handshake("/chat", {"Sec-WebSocket-Protocol": offered})
            assert response.status == 101
            assert response.header("Sec-WebSocket-Protocol") == agreed
            assert client.read_message() == str(agreed)
            assert client.read_until_close().close_code == 1000
