"""Mounting a WebSocketServer on gevent servers, and the server-wide operations: unmount,
close_all_connections, shut_down, broadcast, and option checking at construction."""

from __future__ import annotations

import gc
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from conftest import accept_first_protocol, echo_connection, in_thread, plain_app, wait_until
from gevent.pywsgi import WSGIHandler, WSGIServer
from gevent.server import StreamServer
from rawclient import HTTPResponse, RawClient, client_frame
from tls_helpers import tls_contexts, tls_raw_client

from geventws import ServerOptions, WebSocketServer
from geventws.handler import WebSocketHandler, mounted_server

SHUTTING_DOWN_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
    b"X-WebSocket-Reject-Reason: The server is shutting down.\r\nContent-Length: 0\r\n\r\n"
)


@pytest.fixture
def extra(serve) -> Iterator[Callable[..., Any]]:
    """Start more gevent servers, each with its WebSocketServer: ``extra(server, ws)``.

    Depends on ``serve`` so that its socket-leak check runs after these are stopped.
    """
    started: list[tuple[Any, WebSocketServer]] = []

    def start(server: Any, ws: WebSocketServer, *, start: bool = True) -> Any:
        if start:
            server.start()
        started.append((server, ws))
        return server

    yield start

    for server, ws in started:
        for connection in list(ws.connections):
            connection.drop(1001, "test over")
        wait_until(lambda ws=ws: not ws.connections, what="connections to close")
        assert ws.pending_requests == []
        server.stop(timeout=1)


def recorded(ws: WebSocketServer) -> list[tuple[Any, ...]]:
    """Record the server's events like the ``serve`` fixture does, and serve echo."""
    events: list[tuple[Any, ...]] = []
    ws.on("request", lambda request: events.append(("request", request)))
    ws.on("connect", lambda connection: events.append(("connect", connection)))
    ws.on("close", lambda *args: events.append(("close", *args)))
    ws.on("upgrade_error", lambda error: events.append(("upgrade_error", error)))
    ws.on("request", accept_first_protocol)
    ws.on("connect", echo_connection)
    return events


def read_plain(client: RawClient) -> tuple[HTTPResponse, bytes]:
    """Read a plain HTTP response and its Content-Length body."""
    response = client.read_response()
    length = int(response.header("Content-Length") or 0)
    while len(client.buffer) < length:
        chunk = client.sock.recv(65536)
        assert chunk, "EOF before the whole body"
        client.buffer += chunk
    body, client.buffer = client.buffer[:length], client.buffer[length:]
    return response, body


def echo_round_trip(client: RawClient, text: str) -> None:
    client.send_text(text)
    assert client.read_message() == text


# ---------------------------------------------------------------- mounting


def test_one_server_on_a_plain_and_a_tls_wsgi_server(extra):
    tls = tls_contexts()
    plain = WSGIServer(("127.0.0.1", 0), plain_app, log=None)
    secure = WSGIServer(("127.0.0.1", 0), plain_app, log=None, ssl_context=tls.server)
    # The TLS client runs in a thread, which a loaded machine may starve for seconds: the
    # handshake_timeout (10 s by default) must not cut it off.
    ws = WebSocketServer([plain, secure], keepalive=False, handshake_timeout=60_000)
    events = recorded(ws)
    extra(plain, ws)
    extra(secure, ws)
    assert ws.http_servers == [plain, secure]
    assert mounted_server(plain) is ws
    assert mounted_server(secure) is ws

    opened = threading.Event()
    finish = threading.Event()

    def tls_session() -> tuple[str | None, str, str]:
        from websockets.sync.client import connect

        uri = f"wss://127.0.0.1:{secure.server_port}/secure"
        # A generous bound: the client runs in a thread, which a loaded machine may starve.
        with connect(uri, ssl=tls.client, subprotocols=["chat"], open_timeout=15) as client:
            client.send("over tls")
            first = client.recv(timeout=5)
            opened.set()
            if not finish.wait(10):
                raise TimeoutError("the test never let the TLS client finish")
            client.send("tls again")
            return client.subprotocol, first, client.recv(timeout=5)

    with RawClient(plain.server_port) as client:
        assert client.handshake("/plain").status == 101
        echo_round_trip(client, "over tcp")
        started = time.monotonic()
        session = gevent.get_hub().threadpool.spawn(tls_session)
        try:
            wait_until(
                lambda: opened.is_set() or session.ready(), timeout=20, what="the TLS client"
            )
            assert opened.is_set(), (
                f"the TLS client failed after {time.monotonic() - started:.1f} s with "
                f"{session.exception!r}; the server's events: {events}"
            )
            # Both connections are open at once, on two servers, in one WebSocketServer.
            wait_until(lambda: len(ws.connections) == 2, what="both connections")
            connects = [e[1] for e in events if e[0] == "connect"]
            assert ws.connections == connects
            requests = {e[1].resource: e[1] for e in events if e[0] == "request"}
            assert set(requests) == {"/plain", "/secure"}
            assert requests["/plain"].environ["wsgi.url_scheme"] == "http"
            assert requests["/secure"].environ["wsgi.url_scheme"] == "https"
            echo_round_trip(client, "tcp while tls is open")
        finally:
            finish.set()
        assert session.get(timeout=20) == ("chat", "over tls", "tls again")
        wait_until(lambda: len(ws.connections) == 1, what="the TLS connection to close")
        closes = [e for e in events if e[0] == "close"]
        assert [(c[1], c[2]) for c in closes] == [(connects[1], 1000)]
        echo_round_trip(client, "plain still open")

    # Plain HTTPS still reaches the application.
    def https_get() -> bytes:
        import http.client

        conn = http.client.HTTPSConnection("127.0.0.1", secure.server_port, context=tls.client)
        try:
            conn.request("GET", "/page")
            return conn.getresponse().read()
        finally:
            conn.close()

    assert in_thread(https_get) == b"plain /page"


@pytest.mark.parametrize("who_closes", ["client", "server"])
def test_tls_close_handshake_ends_with_close_notify(serve, who_closes):
    """After the WebSocket closing handshake the server must end TLS properly: a TCP FIN
    without a ``close_notify`` alert is a truncation (RFC 8446 6.1: each party MUST send
    close_notify before closing its write side)."""
    tls = tls_contexts()
    served = serve(ssl={"ssl_context": tls.server})
    client = tls_raw_client(served.port, tls, strict_eof=True)
    try:
        assert client.handshake().status == 101
        echo_round_trip(client, "tls")
        if who_closes == "client":
            client.send_close(1000, "bye")
            assert client.read_until_close().close_code == 1000
        else:
            (event,) = served.wait_for_event("connect")
            event[1].close(4000, "server")
            assert client.read_until_close().close_code == 4000
            client.send_close(4000)
        assert client.expect_eof() == b""
    finally:
        client.close()
    (close,) = served.wait_for_event("close")
    assert close[2] == (1000 if who_closes == "client" else 4000)


def test_tls_client_hanging_up_while_its_request_waits(serve):
    tls = tls_contexts()
    served = serve(on_request=lambda request: None, ssl={"ssl_context": tls.server})
    client = tls_raw_client(served.port, tls)
    client.send_raw(client.request_bytes())
    wait_until(lambda: len(served.ws.pending_requests) == 1, what="the pending request")
    (request,) = served.ws.pending_requests
    client.close()
    try:
        wait_until(
            lambda: not served.ws.pending_requests, timeout=1.5, what="the hang-up to be noticed"
        )
        assert request.peer_gone
    finally:
        connection = request.accept()
    assert connection.wait_closed(5)
    assert [e[0] for e in served.events] == ["request", "connect", "close"]
    assert served.events[2] == (
        "close",
        connection,
        1006,
        "TCP connection lost before handshake completed.",
    )


def test_tls_frames_sent_with_the_handshake_are_the_first_frames(serve):
    tls = tls_contexts()
    served = serve(ssl={"ssl_context": tls.server})
    client = tls_raw_client(served.port, tls, strict_eof=False)
    try:
        early = client_frame(0x1, b"first") + client_frame(0x2, b"second")
        assert client.handshake("/", extra=early).status == 101
        assert client.read_message() == "first"
        assert client.read_message() == b"second"
        echo_round_trip(client, "then more")
    finally:
        client.close()


def test_bare_stream_server_with_tls(extra):
    tls = tls_contexts()
    stream = StreamServer(
        ("127.0.0.1", 0), handle=lambda sock, address: None, ssl_context=tls.server
    )
    ws = WebSocketServer(stream, keepalive=False)
    events = recorded(ws)
    extra(stream, ws)
    client = tls_raw_client(stream.server_port, tls, strict_eof=False)
    try:
        client.send_raw(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert client.read_response().status == 426
    finally:
        client.close()
    client = tls_raw_client(stream.server_port, tls, strict_eof=False)
    try:
        assert client.handshake("/wss").status == 101
        echo_round_trip(client, "stream over tls")
    finally:
        client.close()
    (request,) = [e[1] for e in events if e[0] == "request"]
    assert request.environ["wsgi.url_scheme"] == "https"


def test_mount_later_with_a_single_server(extra):
    http = WSGIServer(("127.0.0.1", 0), plain_app, log=None)
    ws = WebSocketServer(keepalive=False)
    assert ws.http_servers == []
    recorded(ws)
    ws.mount(http)
    ws.mount(http)  # mounting the same server again changes nothing
    assert ws.http_servers == [http]
    extra(http, ws)
    with RawClient(http.server_port) as client:
        assert client.handshake().status == 101
        echo_round_trip(client, "mounted later")


def test_mount_options_replace_the_constructor_ones(extra):
    http = WSGIServer(("127.0.0.1", 0), plain_app, log=None)
    ws = WebSocketServer(keepalive=False, parse_cookies=True)
    ws.mount(http, parse_cookies=False)
    assert ws.options.parse_cookies is False
    assert ws.options.keepalive is False
    events = recorded(ws)
    extra(http, ws)
    with RawClient(http.server_port) as client:
        assert client.handshake("/", {"Cookie": "a=%zz"}).status == 101
    (request,) = [e[1] for e in events if e[0] == "request"]
    assert request.cookies == []


@pytest.mark.parametrize("started_before_mount", [False, True])
def test_bare_stream_server(extra, started_before_mount):
    original_calls: list[Any] = []
    stream = StreamServer(("127.0.0.1", 0), handle=lambda sock, address: original_calls.append(1))
    if started_before_mount:
        stream.start()
    ws = WebSocketServer(stream, keepalive=False)
    events = recorded(ws)
    extra(stream, ws, start=not started_before_mount)
    port = stream.server_port

    with RawClient(port) as client:
        client.send_raw(b"GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        response = client.read_response()
        assert response.status == 426
        assert response.reason == "Upgrade Required"
        assert response.header("Upgrade") == "websocket"
        assert response.header("Connection") == "close"
        assert client.expect_eof() == b""

    with RawClient(port) as client:
        assert client.handshake("/ws", {"Sec-WebSocket-Protocol": "chat"}).status == 101
        echo_round_trip(client, "over a stream server")
        wait_until(lambda: len(ws.connections) == 1)

    with RawClient(port) as client:
        response = client.handshake("/bad", {"Sec-WebSocket-Version": "7"})
        assert response.status == 426
        assert response.header("Sec-WebSocket-Version") == "13"
        assert client.expect_eof() == b""

    assert [e[0] for e in events][:2] == ["request", "connect"]
    assert events[0][1].environ["wsgi.url_scheme"] == "http"
    assert [e[1].status for e in events if e[0] == "upgrade_error"] == [426]
    assert original_calls == [], "the handle passed to StreamServer is replaced"


class TaggingHandler(WSGIHandler):
    """A customised pywsgi handler: its customisation must survive the mount."""

    def get_environ(self):
        environ = super().get_environ()
        environ["tagged.by"] = "TaggingHandler"
        return environ


class ListLog:
    """A pywsgi access log that keeps its lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, line: str) -> None:
        self.lines.append(line)


def tag_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ.get("tagged.by", "untagged").encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def test_custom_handler_class_and_access_log_keep_working(extra):
    log = ListLog()
    http = WSGIServer(("127.0.0.1", 0), tag_app, log=log, handler_class=TaggingHandler)
    ws = WebSocketServer(http, keepalive=False)
    events = recorded(ws)
    extra(http, ws)
    assert issubclass(http.handler_class, TaggingHandler)

    with RawClient(http.server_port) as client:
        client.send_raw(b"GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        response, body = read_plain(client)
        assert (response.status, body) == (200, b"TaggingHandler")
    with RawClient(http.server_port) as client:
        assert client.handshake("/logged").status == 101
        echo_round_trip(client, "custom handler")
    with RawClient(http.server_port) as client:
        assert client.handshake("/refused", {"Sec-WebSocket-Version": "7"}).status == 426

    (request,) = [e[1] for e in events if e[0] == "request"]
    assert request.environ["tagged.by"] == "TaggingHandler"
    wait_until(lambda: len(log.lines) == 3, what="three access log lines")
    assert '"GET /plain HTTP/1.1" 200' in log.lines[0]
    assert '"GET /logged HTTP/1.1" 101' in log.lines[1]
    assert '"GET /refused HTTP/1.1" 426' in log.lines[2]


class FreshHandler(WebSocketHandler):
    """A class of its own: CPython's shared table of its instances' attribute names starts
    empty."""


def test_a_burst_of_connections_leaves_upgraded_handlers_without_a_dict_of_their_own(extra):
    # CPython shares one table of attribute names among a class's instances while the table
    # has room, and every new instance shrinks the room: 40 handlers waiting for their
    # request line use it up before any of them has set what an upgrade sets. A handler
    # that then sets a name missing from the table gets a dict of its own (0.8-1.5 KiB),
    # kept as long as its WebSocket lives.
    http = WSGIServer(("127.0.0.1", 0), plain_app, log=None, handler_class=FreshHandler)
    ws = WebSocketServer(http, keepalive=False)
    recorded(ws)
    extra(http, ws)

    def handlers() -> list[Any]:
        # type(), not isinstance(): the heap may hold dead weak proxies, which raise.
        return [o for o in gc.get_objects() if type(o) is FreshHandler]

    waiting = [socket.create_connection(("127.0.0.1", http.server_port)) for _ in range(40)]
    try:
        wait_until(lambda: len(handlers()) >= 40, what="40 handlers waiting for a request")
        with RawClient(http.server_port) as client:
            assert client.handshake("/after-the-burst").status == 101
            echo_round_trip(client, "after the burst")
            (connection,) = ws.connections
            (handler,) = [h for h in handlers() if getattr(h, "socket", None) is connection.socket]
            if sys.version_info >= (3, 11):  # attributes inline, no dict object unless its own
                assert not [r for r in gc.get_referents(handler) if type(r) is dict]
            attributes = handler.__dict__
            # A dict sharing the class's table of names is smaller than a copy with its own.
            assert sys.getsizeof(attributes) < sys.getsizeof(dict(attributes))
    finally:
        for sock in waiting:
            sock.close()


class EmailHeadersHandler(WebSocketHandler):
    """A subclass of geventws's handler that reads headers with pywsgi's own reader."""

    MessageClass = WSGIHandler.MessageClass


def test_a_handler_subclass_with_its_own_header_reader_keeps_the_head_checks(extra):
    http = WSGIServer(("127.0.0.1", 0), plain_app, log=None, handler_class=EmailHeadersHandler)
    ws = WebSocketServer(http, keepalive=False, max_request_header_size=1024)
    events = recorded(ws)
    extra(http, ws)

    with RawClient(http.server_port) as client:
        assert client.handshake("/fine").status == 101
        echo_round_trip(client, "read by the email parser")
        client.close_handshake()
    with RawClient(http.server_port) as client:
        client.send_raw(client.request_bytes(headers={"X-Big": "b" * 1024}))
        assert client.read_response().status == 431
    with RawClient(http.server_port) as client:
        client.send_raw(client.request_bytes(headers={"X-Note": "a\rUpgrade: websocket"}))
        assert client.read_response().status == 400
    assert [e[1].resource for e in events if e[0] == "request"] == ["/fine"]


def test_mount_refuses_a_handler_class_that_is_not_a_wsgi_handler():
    class NotAHandler:
        pass

    http = WSGIServer(("127.0.0.1", 0), plain_app, log=None, handler_class=NotAHandler)
    with pytest.raises(TypeError, match="WSGIHandler"):
        WebSocketServer(http)


def test_unmount_from_a_stream_server_restores_its_handle(extra):
    def original(sock: Any, address: Any) -> None:
        sock.sendall(b"original handle\n")

    stream = StreamServer(("127.0.0.1", 0), handle=original)
    ws = WebSocketServer(stream, keepalive=False)
    recorded(ws)
    extra(stream, ws)
    with RawClient(stream.server_port) as client:
        assert client.handshake().status == 101
        ws.unmount()
        echo_round_trip(client, "existing connection unaffected")
    with RawClient(stream.server_port) as client:
        client.send_raw(client.request_bytes())
        assert client.expect_eof() == b"original handle\n"


def test_unmount_sends_new_upgrades_to_the_wsgi_app(serve):
    served = serve()
    with RawClient(served.port) as old:
        assert old.handshake("/before").status == 101
        echo_round_trip(old, "before")
        served.ws.unmount()
        assert served.ws.http_servers == []
        assert mounted_server(served.http) is None

        with RawClient(served.port) as new:
            new.send_raw(new.request_bytes("/after"))
            response, body = read_plain(new)
            assert response.status == 200
            assert body == b"plain /after"

        echo_round_trip(old, "existing connection still echoes")
        assert len(served.ws.connections) == 1

    with pytest.raises(RuntimeError, match="not mounted"):
        served.ws.unmount()

    # Mounting again takes upgrades again.
    served.ws.mount(served.http)
    with RawClient(served.port) as client:
        assert client.handshake("/again").status == 101
        echo_round_trip(client, "remounted")
    assert [e[1].resource for e in served.events if e[0] == "request"] == ["/before", "/again"]


def test_unmount_leaves_pending_requests_answerable(serve):
    served = serve(on_request=lambda request: None)
    with RawClient(served.port) as client:
        client.send_raw(client.request_bytes("/pending"))
        wait_until(lambda: len(served.ws.pending_requests) == 1, what="the pending request")
        (request,) = served.ws.pending_requests
        served.ws.unmount()
        assert served.ws.pending_requests == [request]
        connection = request.accept()
        assert client.read_response().status == 101
        echo_round_trip(client, "accepted after unmount")
        assert served.ws.connections == [connection]


@pytest.mark.parametrize("argument", [None, [], ()])
def test_mount_without_an_http_server_raises(argument):
    ws = WebSocketServer()
    with pytest.raises(ValueError, match="http_server") as raised:
        ws.mount(argument)
    assert str(raised.value) == (
        "You must specify an http_server on which to mount the WebSocket server."
    )
    with pytest.raises(ValueError, match="http_server"):
        ws.mount()
    assert ws.http_servers == []
    with pytest.raises(RuntimeError, match="not mounted"):
        ws.unmount()


def test_mount_on_something_that_is_not_a_gevent_server_raises():
    with pytest.raises(TypeError, match="http_server must be"):
        WebSocketServer(object())


def test_a_second_websocket_server_on_the_same_server_raises(serve, extra):
    served = serve()
    with pytest.raises(ValueError, match="already has a WebSocketServer mounted"):
        WebSocketServer(served.http)
    other = WebSocketServer()
    with pytest.raises(ValueError, match="already has a WebSocketServer mounted"):
        other.mount(served.http)
    assert other.http_servers == []
    assert mounted_server(served.http) is served.ws

    stream = StreamServer(("127.0.0.1", 0), handle=lambda sock, address: None)
    first = WebSocketServer(stream, keepalive=False)
    recorded(first)
    extra(stream, first)
    with pytest.raises(ValueError, match="already has a WebSocketServer mounted"):
        WebSocketServer(stream)
    assert mounted_server(stream) is first

    # The first one still serves.
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        echo_round_trip(client, "first server")


# ---------------------------------------------------------------- server-wide operations


def connect_clients(served, count: int) -> list[RawClient]:
    clients = [RawClient(served.port) for _ in range(count)]
    for client in clients:
        assert client.handshake().status == 101
    wait_until(lambda: len(served.ws.connections) == count, what=f"{count} connections")
    return clients


def test_close_all_connections(serve):
    served = serve(
        on_request=lambda request: None if request.resource == "/wait" else request.accept()
    )
    clients = connect_clients(served, 2)
    waiting = RawClient(served.port)
    try:
        waiting.send_raw(waiting.request_bytes("/wait"))
        wait_until(lambda: len(served.ws.pending_requests) == 1, what="the pending request")

        served.ws.close_all_connections()

        assert waiting.read_response().raw == SHUTTING_DOWN_503
        assert waiting.expect_eof() == b""
        assert served.ws.pending_requests == []
        for client in clients:
            frame = client.read_until_close()
            assert (frame.close_code, frame.close_reason) == (1000, "Normal connection closure")
            client.send_close(1000)
            assert client.expect_eof() == b""
            client.close()  # the server waits for our FIN (bounded by close_timeout)
        closes = served.wait_for_event("close", 2)
        assert {(c[2], c[3]) for c in closes} == {(1000, "Normal connection closure")}
        wait_until(lambda: not served.ws.connections)

        # Still mounted: new connections are accepted.
        with RawClient(served.port) as client:
            assert client.handshake().status == 101
            echo_round_trip(client, "after close_all_connections")
    finally:
        waiting.close()
        for client in clients:
            client.close()


def test_close_all_connections_does_not_wait_for_a_peer_that_does_not_read(serve):
    """With one client's socket full (it never reads), close_all_connections returns with
    that peer's Close still pending, the reading client gets its Close at once, and the
    stuck one is dropped after send_timeout. A bad code raises before anything is closed."""
    served = serve(on_connect=None, send_timeout=1000)
    clients = connect_clients(served, 2)
    reader = clients[1]  # clients[0] never reads
    try:
        stuck, reading = served.ws.connections
        for _ in range(1000):  # 64 MiB at most: far beyond loopback socket buffers
            if stuck._write_in_progress():  # its socket is full: a background write waits
                break
            served.ws.broadcast(b"x" * 65536)
            reader.read_message()
        assert stuck._write_in_progress()
        with pytest.raises(ValueError, match="1005"):
            served.ws.close_all_connections(1005)
        assert (stuck.state, reading.state) == ("open", "open")
        served.ws.close_all_connections(1001, "bye")
        assert stuck.state == "ending"
        frame = reader.read_until_close()
        assert (frame.close_code, frame.close_reason) == (1001, "bye")
        reader.send_close(1001)
        assert reader.expect_eof() == b""
        assert stuck.wait_closed(5)
        assert stuck.close_reason_code == 1006
        assert reading.wait_closed(5)
    finally:
        for client in clients:
            client.close()


def test_close_all_connections_with_nothing_open(serve):
    served = serve()
    served.ws.close_all_connections()
    with RawClient(served.port) as client:
        assert client.handshake().status == 101


def test_shut_down_unmounts_and_closes_everything(serve):
    served = serve(
        on_request=lambda request: None if request.resource == "/wait" else request.accept()
    )
    (client,) = connect_clients(served, 1)
    waiting = RawClient(served.port)
    try:
        waiting.send_raw(waiting.request_bytes("/wait"))
        wait_until(lambda: len(served.ws.pending_requests) == 1, what="the pending request")

        served.ws.shut_down()

        assert served.ws.http_servers == []
        assert mounted_server(served.http) is None
        assert waiting.read_response().raw == SHUTTING_DOWN_503
        frame = client.read_until_close()
        assert frame.close_code == 1000
        client.send_close(1000)
        assert client.expect_eof() == b""
        client.close()
        (close,) = served.wait_for_event("close")
        assert close[2:] == (1000, "Normal connection closure")

        with RawClient(served.port) as new:
            new.send_raw(new.request_bytes("/late"))
            response, body = read_plain(new)
            assert (response.status, body) == (200, b"plain /late")

        served.ws.shut_down()  # a second shut_down is harmless
    finally:
        waiting.close()
        client.close()
    assert [e[1].resource for e in served.events if e[0] == "request"] == ["/", "/wait"]


def test_broadcast_reaches_every_open_connection(serve, broadcast_writer):
    served = serve(on_connect=None)
    clients = connect_clients(served, 3)
    try:
        served.ws.broadcast("text for all")
        served.ws.broadcast(b"\x00binary")
        served.ws.broadcast(bytearray(b"from bytearray"))
        served.ws.broadcast_utf("utf")
        served.ws.broadcast_bytes(memoryview(b"bytes"))
        expected = ["text for all", b"\x00binary", b"from bytearray", "utf", b"bytes"]
        for client in clients:
            assert [client.read_message() for _ in expected] == expected

        with pytest.raises(TypeError, match="broadcast_utf"):
            served.ws.broadcast_utf(b"not text")
        with pytest.raises(TypeError, match="broadcast_bytes"):
            served.ws.broadcast_bytes("not bytes")

        # A connection that is closing is left out.
        closing = served.ws.connections[2]
        closing.close()
        served.ws.broadcast("to the open ones")
        assert clients[0].read_message() == "to the open ones"
        assert clients[1].read_message() == "to the open ones"
        frame = clients[2].read_frame()
        assert (frame.opcode, frame.close_code) == (0x8, 1000)
        clients[2].send_close(1000)
        assert clients[2].expect_eof() == b""
        clients[2].close()
        wait_until(lambda: len(served.ws.connections) == 2)
    finally:
        for client in clients:
            client.close()


def fragment_sizes(client: RawClient, opcode: int = 0x1) -> tuple[bytes, list[int]]:
    """Read one message frame by frame: its payload and the size of each frame."""
    frames = [client.read_frame()]
    while not frames[-1].fin:
        frames.append(client.read_frame())
    assert frames[0].opcode == opcode and all(frame.opcode == 0 for frame in frames[1:])
    return b"".join(frame.payload for frame in frames), [len(frame.payload) for frame in frames]


def test_broadcast_reaches_tls_connections_and_follows_connections_that_come_and_go(
    serve, extra, broadcast_writer
):
    """One server on a plain and a TLS gevent server: a broadcast reaches both kinds, each
    copy fragmented at its connection's threshold (mounting again with another threshold
    gives later connections that one); a connection opened after a broadcast gets the next,
    and one that closed is left out."""
    served = serve(on_connect=None, fragmentation_threshold=10)
    tls = tls_contexts()
    secure = WSGIServer(("127.0.0.1", 0), plain_app, log=None, ssl_context=tls.server)
    served.ws.mount(secure)
    extra(secure, served.ws)
    first = RawClient(served.port)
    encrypted = tls_raw_client(secure.server_port, tls)
    clients = [first, encrypted]
    try:
        for client in clients:
            assert client.handshake().status == 101
        wait_until(lambda: len(served.ws.connections) == 2, what="2 connections")
        served.ws.broadcast("a" * 25)
        for client in clients:
            assert fragment_sizes(client) == (b"a" * 25, [10, 10, 5])

        served.ws.mount(served.http, fragmentation_threshold=1000)  # for new connections
        later = RawClient(served.port)
        clients.append(later)
        assert later.handshake().status == 101
        wait_until(lambda: len(served.ws.connections) == 3, what="the third connection")
        served.ws.broadcast(b"b" * 25)
        assert fragment_sizes(first, 0x2) == (b"b" * 25, [10, 10, 5])
        assert fragment_sizes(encrypted, 0x2) == (b"b" * 25, [10, 10, 5])
        assert fragment_sizes(later, 0x2) == (b"b" * 25, [25])

        first.close_handshake()
        first.close()
        wait_until(lambda: len(served.ws.connections) == 2, what="the first to close")
        served.ws.broadcast("c")
        assert [encrypted.read_message(), later.read_message()] == ["c", "c"]
    finally:
        for client in clients:
            client.close()


def test_broadcast_does_not_wait_for_a_peer_that_does_not_read(serve, broadcast_writer):
    """A client that never reads does not hold the broadcast up: it returns with that peer
    still open (a blocking broadcast would sit out send_timeout and drop it first), every
    reader gets every message in order, fragmented at the threshold, and the stuck peer is
    dropped after send_timeout."""
    served = serve(on_connect=None, send_timeout=1000)
    clients = connect_clients(served, 2)
    reader = clients[1]  # clients[0] never reads
    try:
        stuck = served.ws.connections[0]
        payloads = [bytes([number]) * 50_000 for number in range(100)]  # 5 MB in all
        for payload in payloads:
            served.ws.broadcast(payload)
        assert stuck.state == "open"
        assert [reader.read_message() for _ in payloads] == payloads
        assert stuck.wait_closed(5)
        assert stuck.close_reason_code == 1006
        assert "not reading" in (stuck.close_description or "")
        served.ws.broadcast("after")
        assert reader.read_message() == "after"
    finally:
        for client in clients:
            client.close()


def test_broadcast_rejects_other_types_naming_them(serve):
    served = serve(on_connect=None)
    with pytest.raises(TypeError, match="got int: 5"):
        served.ws.broadcast(5)  # type: ignore[arg-type]


# ---------------------------------------------------------------- options


def test_default_options():
    options = WebSocketServer().options
    assert options == ServerOptions()
    assert (
        options.max_received_frame_size,
        options.max_received_message_size,
        options.fragment_outgoing_messages,
        options.fragmentation_threshold,
        options.keepalive,
        options.keepalive_interval,
        options.drop_connection_on_keepalive_timeout,
        options.keepalive_grace_period,
        options.assemble_fragments,
        options.auto_accept_connections,
        options.close_timeout,
        options.disable_nagle_algorithm,
        options.ignore_x_forwarded_for,
        options.parse_extensions,
        options.parse_cookies,
    ) == (
        0x10000,
        0x100000,
        True,
        0x4000,
        True,
        20000,
        True,
        10000,
        True,
        False,
        5000,
        True,
        False,
        True,
        True,
    )


BAD_OPTIONS = {
    "unknown": ({"bogus_option": 1}, TypeError),
    "node-name": ({"maxReceivedFrameSize": 10}, TypeError),
    "bool-as-str": ({"keepalive": "yes"}, TypeError),
    "bool-as-int": ({"auto_accept_connections": 1}, TypeError),
    "negative-size": ({"max_received_frame_size": -1}, ValueError),
    "zero-size": ({"max_received_message_size": 0}, ValueError),
    "float-size": ({"fragmentation_threshold": 1.5}, TypeError),
    "bool-size": ({"max_queue": True}, TypeError),
    "negative-ms": ({"close_timeout": -5}, ValueError),
    "zero-ms": ({"keepalive_interval": 0}, ValueError),
    "infinite-ms": ({"request_timeout": float("inf")}, ValueError),
    "str-ms": ({"keepalive_grace_period": "10"}, TypeError),
    "bad-proxy": ({"trusted_proxies": ["not-an-ip"]}, ValueError),
    "proxy-str": ({"trusted_proxies": "127.0.0.1"}, TypeError),
}


@pytest.mark.parametrize(("options", "error"), list(BAD_OPTIONS.values()), ids=list(BAD_OPTIONS))
def test_bad_options_raise_at_construction_naming_the_option(serve, options, error):
    (name,) = options
    served = serve()
    with pytest.raises(error, match=name):
        WebSocketServer(**options)
    # Nothing is mounted when the options are bad.
    plain = WSGIServer(("127.0.0.1", 0), plain_app, log=None)
    with pytest.raises(error, match=name):
        WebSocketServer(plain, **options)
    assert mounted_server(plain) is None
    with pytest.raises(error, match=name):
        served.ws.mount(served.http, **options)
    assert served.ws.options == ServerOptions(keepalive=False)
