"""The Flask and Django examples: WebSocket views that authenticate from the framework's
session before accepting, served in-process by a gevent ``WSGIServer`` with a mounted
``WebSocketServer(application_upgrades=True)``, under real gunicorn with geventws's worker,
and (Flask) as a script. Real clients over 127.0.0.1: ``http.client``, ``websockets`` and
the raw client."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import in_thread
from gunicorn_helpers import REPOSITORY, gunicorn
from rawclient import RawClient

if REPOSITORY not in sys.path:
    sys.path.insert(0, REPOSITORY)  # the examples are imported as ``examples.<name>``

NOT_LOGGED_IN = "Log in first: POST /login with a name."


@dataclass(frozen=True)
class Example:
    """One example application: where its WSGI callable lives, as module and attribute."""

    name: str
    module: str
    attribute: str

    @property
    def gunicorn_spec(self) -> str:
        """The ``module:attribute`` argument of gunicorn."""
        return f"{self.module}:{self.attribute}"

    def load(self) -> Any:
        """Import the example (in this process) and return its WSGI application."""
        module = __import__(self.module, fromlist=[self.attribute])
        return getattr(module, self.attribute)


FLASK = Example("flask", "examples.flask_app", "app")
DJANGO = Example("django", "examples.django_app.wsgi", "application")


@pytest.fixture(params=[FLASK, DJANGO], ids=lambda example: example.name)
def example(request: pytest.FixtureRequest) -> Example:
    """Each test runs once with the Flask example and once with the Django one."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def served(serve: Any, example: Example) -> Any:
    """The example app on an in-process gevent WSGIServer with application upgrades."""
    return serve(on_request=None, on_connect=None, app=example.load(), application_upgrades=True)


# ---------------------------------------------------------------------------- client helpers


@dataclass
class Reply:
    """An HTTP response as ``http.client`` read it."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes


def http_requests(
    port: int, requests: list[tuple[str, str, dict[str, str], bytes | None]]
) -> tuple[list[Reply], int]:
    """Send ``(method, path, headers, body)`` requests over one keep-alive connection (in a
    thread); return the replies and how many TCP connections were used."""

    def run() -> tuple[list[Reply], int]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        replies = []
        local_ports = set()
        try:
            for method, path, headers, body in requests:
                connection.request(method, path, body=body, headers=headers)
                assert connection.sock is not None
                local_ports.add(connection.sock.getsockname()[1])
                response = connection.getresponse()
                replies.append(Reply(response.status, response.headers, response.read()))
        finally:
            connection.close()
        return replies, len(local_ports)

    return in_thread(run)  # type: ignore[no-any-return]


def log_in(port: int, name: str) -> str:
    """POST /login with ``name``; return the session cookie (``name=value``) it set."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    (reply,), _ = http_requests(port, [("POST", "/login", form, f"name={name}".encode())])
    assert reply.status == 200, reply.body
    assert json.loads(reply.body) == {"user": name}
    set_cookie = reply.headers["Set-Cookie"]
    assert set_cookie, reply.headers
    return str(set_cookie).split(";", 1)[0]


def websocket_echo(port: int, cookie: str, messages: list[str | bytes]) -> list[object]:
    """Open /ws with the ``websockets`` client and ``cookie``; send each message, collect
    each answer; close normally. Runs in a thread."""
    from websockets.sync.client import connect

    def run() -> list[object]:
        answers: list[object] = []
        with connect(
            f"ws://127.0.0.1:{port}/ws", additional_headers={"Cookie": cookie}, open_timeout=10
        ) as ws:
            for message in messages:
                ws.send(message)
                answers.append(ws.recv(timeout=10))
        return answers

    return in_thread(run)  # type: ignore[no-any-return]


def websocket_refusal(port: int, headers: dict[str, str]) -> tuple[int, str | None]:
    """Open /ws with the ``websockets`` client, expecting a refusal: return the status and
    ``X-WebSocket-Reject-Reason``."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    def run() -> tuple[int, str | None]:
        try:
            with connect(f"ws://127.0.0.1:{port}/ws", additional_headers=headers):
                pass
        except InvalidStatus as refused:
            response = refused.response
            return response.status_code, response.headers.get("X-WebSocket-Reject-Reason")
        raise AssertionError("the handshake was accepted")

    return in_thread(run)  # type: ignore[no-any-return]


def check_plain_routes(port: int) -> None:
    """``/``, ``/health`` and a plain GET of ``/ws`` answer over one keep-alive connection."""
    replies, connections = http_requests(
        port,
        [("GET", "/", {}, None), ("GET", "/health", {}, None), ("GET", "/ws", {}, None)],
    )
    page, health, plain_ws = replies
    assert page.status == 200
    assert b"new WebSocket(" in page.body
    assert health.status == 200
    assert health.headers["Content-Type"] == "application/json"
    assert json.loads(health.body) == {"status": "ok"}
    assert plain_ws.status == 426
    assert plain_ws.body == b"This route speaks WebSocket.\n"
    assert connections == 1, "keep-alive: the three requests shared one TCP connection"


# ---------------------------------------------------------------------------- in-process


def test_plain_routes_answer_over_keep_alive(served: Any) -> None:
    """The plain views answer HTTP as usual, several requests on one connection."""
    check_plain_routes(served.port)
    assert served.ws.connections == []


def test_websocket_without_login_is_refused_with_403_and_the_reason(served: Any) -> None:
    """No session: the view rejects before accepting; 403, the reason header, then EOF."""
    assert websocket_refusal(served.port, {}) == (403, NOT_LOGGED_IN)
    with RawClient(served.port) as client:
        response = client.handshake("/ws", {"Cookie": "sessionid=forged; session=forged"})
        assert response.status == 403
        assert response.header("X-WebSocket-Reject-Reason") == NOT_LOGGED_IN
        assert client.expect_eof() == b""
    assert served.ws.connections == []
    assert served.ws.pending_requests == []


def test_websocket_with_the_session_cookie_echoes_with_the_name(served: Any) -> None:
    """With the cookie /login set, the view accepts (101) and echoes in sync style."""
    cookie = log_in(served.port, "alice")
    answers = websocket_echo(served.port, cookie, ["hello", "héllo again", b"\x00\x01\xff"])
    assert answers == ["alice: hello", "alice: héllo again", b"\x00\x01\xff"]
    ((_, connection, code, _description),) = served.wait_for_event("close")
    assert code == 1000
    assert connection.remote_address == "127.0.0.1"


def test_foreign_origin_is_refused_even_with_the_cookie(served: Any) -> None:
    """A browser on another site would send the cookie too: its Origin gets 403; the
    server's own origin gets 101."""
    cookie = log_in(served.port, "bob")
    with RawClient(served.port) as client:
        response = client.handshake("/ws", {"Cookie": cookie, "Origin": "http://evil.example"})
        assert response.status == 403
        assert response.header("X-WebSocket-Reject-Reason") == "Origin not allowed."
    with RawClient(served.port) as client:
        response = client.handshake("/ws", {"Cookie": cookie, "Origin": "http://127.0.0.1"})
        assert response.status == 101
        client.send_text("same site")
        assert client.read_message() == "bob: same site"
        client.send_close(1000)
        assert client.read_until_close().close_code == 1000
        assert client.expect_eof() == b""


def test_invalid_handshake_gets_the_precise_answer_not_the_views(served: Any) -> None:
    """An upgrade with an unsupported version gets 426 + ``Sec-WebSocket-Version: 13`` from
    geventws; the view's own 426 body never follows."""
    with RawClient(served.port) as client:
        client.send_raw(client.request_bytes("/ws", {"Sec-WebSocket-Version": "12"}))
        response = client.read_response()
        assert response.status == 426
        assert response.header("Sec-WebSocket-Version") == "13"
        assert client.expect_eof() == b""


# ---------------------------------------------------------------------------- gunicorn


def access_line(method: str, path: str, status: int) -> Any:
    """A predicate for gunicorn's access log line of one request."""
    return lambda line: f'"{method} {path} HTTP/1.1" {status} ' in line


def test_under_gunicorn_plain_routes_and_websocket_with_access_log(example: Example) -> None:
    """``gunicorn -k geventws.gunicorn.Worker``: plain routes answer (keep-alive), /ws refuses
    without login (403) and echoes with it (101); the access log has each status."""
    with gunicorn(example.gunicorn_spec) as server:
        check_plain_routes(server.port)
        assert websocket_refusal(server.port, {}) == (403, NOT_LOGGED_IN)
        cookie = log_in(server.port, "carol")
        assert websocket_echo(server.port, cookie, ["hi", b"\x01"]) == ["carol: hi", b"\x01"]
        server.wait_for_line(access_line("GET", "/", 200))
        server.wait_for_line(access_line("GET", "/health", 200))
        server.wait_for_line(access_line("POST", "/login", 200))
        server.wait_for_line(access_line("GET", "/ws", 426))
        server.wait_for_line(access_line("GET", "/ws", 403))
        server.wait_for_line(access_line("GET", "/ws", 101))
        assert not [line for line in server.lines if "Traceback" in line], server.lines


def test_under_gunicorn_sigterm_closes_websockets_with_1001(example: Example) -> None:
    """SIGTERM to the master: each open WebSocket gets Close 1001, plain routes answered
    until then, and gunicorn exits 0."""
    with gunicorn(example.gunicorn_spec) as server:
        cookie = log_in(server.port, "dave")
        clients = [RawClient(server.port, timeout=15) for _ in range(2)]
        try:
            for client in clients:
                assert client.handshake("/ws", {"Cookie": cookie}).status == 101
                client.send_text("ready")
                assert client.read_message() == "dave: ready"
            check_plain_routes(server.port)
            server.signal(signal.SIGTERM)
            for client in clients:
                close = client.read_until_close()
                assert close.close_code == 1001
                client.send_close(1001)
                assert client.expect_eof(timeout=15) == b""
        finally:
            for client in clients:
                client.close()
        assert server.wait(timeout=30) == 0
        server.wait_for_line(lambda line: "Shutting down: Master" in line)
        assert server.wait_for_line(access_line("GET", "/ws", 101), count=2)


# ---------------------------------------------------------------------------- as a script


@contextmanager
def flask_script() -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Run ``python examples/flask_app.py --port 0``; yield it and its port (from the banner).
    Whatever still runs at the end is stopped by its handle."""
    process = subprocess.Popen(
        [sys.executable, os.path.join(REPOSITORY, "examples", "flask_app.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = in_thread(process.stdout.readline, timeout=20)
        assert banner.startswith("Flask example on http://127.0.0.1:"), banner
        yield process, int(banner.rstrip().rstrip("/").rsplit(":", 1)[1])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_flask_script_serves_echoes_and_stops_on_sigterm_with_1001() -> None:
    """The script's gevent server: plain routes, login, echo; SIGTERM sends 1001 to the open
    WebSocket and the process exits 0."""
    with flask_script() as (process, port):
        check_plain_routes(port)
        cookie = log_in(port, "erin")
        assert websocket_echo(port, cookie, ["one"]) == ["erin: one"]
        with RawClient(port, timeout=15) as client:
            assert client.handshake("/ws", {"Cookie": cookie}).status == 101
            client.send_text("two")
            assert client.read_message() == "erin: two"
            process.send_signal(signal.SIGTERM)
            close = client.read_until_close()
            assert close.close_code == 1001
            client.send_close(1001)
            assert client.expect_eof(timeout=15) == b""
        assert process.wait(timeout=20) == 0
        assert process.stderr is not None
        errors = process.stderr.read()
        assert "Traceback" not in errors, errors
