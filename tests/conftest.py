"""Fixtures: real gevent servers on 127.0.0.1 with a mounted WebSocketServer, and leak checks.

The tests run un-monkey-patched: the server and :class:`rawclient.RawClient` share the gevent
hub of the test's greenlet, and third-party blocking clients (the ``websockets`` package) run
in gevent's thread pool so the hub keeps serving meanwhile.
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import gevent
import pytest
from gevent.pywsgi import WSGIServer

sys.path.insert(0, os.path.dirname(__file__))

from geventws import WebSocketConnection, WebSocketRequest, WebSocketServer, broadcasting

WAIT = 5.0


def wait_until(predicate: Callable[[], object], timeout: float = WAIT, what: str = "") -> None:
    """Let the hub run until ``predicate()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        gevent.sleep(0.005)


def open_sockets() -> int:
    """How many sockets this process has open (file descriptors that are sockets)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass  # the descriptor listdir itself used, now closed
    return count


def live_greenlets() -> int:
    """How many gevent greenlets exist that have not finished."""
    count = 0
    for obj in gc.get_objects():
        try:
            if isinstance(obj, gevent.Greenlet) and not obj.dead:
                count += 1
        except ReferenceError:
            pass  # a dead weak proxy
    return count


def plain_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A WSGI application answering plain HTTP requests."""
    body = f"plain {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@dataclass
class Served:
    """A running WSGIServer with a mounted WebSocketServer, and what its events saw."""

    http: WSGIServer
    ws: WebSocketServer
    events: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.http.server_port)

    def wait_for_event(self, name: str, count: int = 1) -> list[tuple[Any, ...]]:
        """Wait until ``count`` server events named ``name`` were seen; return them."""
        wait_until(
            lambda: len([e for e in self.events if e[0] == name]) >= count, what=f"{name} x{count}"
        )
        return [e for e in self.events if e[0] == name]


def echo_connection(connection: WebSocketConnection) -> None:
    """Send every message back."""
    connection.on("message", connection.send)


def accept_first_protocol(request: WebSocketRequest) -> None:
    """Accept with the client's first subprotocol."""
    protocols = request.requested_protocols
    request.accept(protocols[0] if protocols else None)


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Start servers: ``serve(on_request=..., on_connect=..., **options)``.

    After the test every connection and pending request must be gone and the process must
    hold no more sockets and no more running greenlets than before.
    """
    started: list[Served] = []
    sockets_before = open_sockets()
    greenlets_before = live_greenlets()

    def start(
        on_request: Callable[[WebSocketRequest], None] | None = accept_first_protocol,
        on_connect: Callable[[WebSocketConnection], None] | None = echo_connection,
        app: Any = plain_app,
        ssl: dict[str, Any] | None = None,
        **options: Any,
    ) -> Served:
        options.setdefault("keepalive", False)
        http = WSGIServer(("127.0.0.1", 0), app, log=None, **(ssl or {}))
        ws = WebSocketServer(http, **options)
        served = Served(http, ws)
        ws.on("request", lambda request: served.events.append(("request", request)))
        ws.on("connect", lambda connection: served.events.append(("connect", connection)))
        ws.on("close", lambda *args: served.events.append(("close", *args)))
        ws.on("upgrade_error", lambda error: served.events.append(("upgrade_error", error)))
        if on_request is not None:
            ws.on("request", on_request)
        if on_connect is not None:
            ws.on("connect", on_connect)
        http.start()
        started.append(served)
        return served

    yield start

    for served in started:
        for connection in list(served.ws.connections):
            connection.drop(1001, "test over")
        wait_until(lambda s=served: not s.ws.connections, what="connections to close")
        assert served.ws.pending_requests == []
        served.http.stop(timeout=1)
    wait_until(lambda: open_sockets() <= sockets_before, what=f"sockets back to {sockets_before}")
    wait_until(
        lambda: live_greenlets() <= greenlets_before,
        what=f"greenlets back to {greenlets_before}",
    )


@pytest.fixture(autouse=True)
def _log_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG, logger="geventws")
    yield


def in_thread(function: Callable[..., Any], *args: Any, timeout: float = 20.0) -> Any:
    """Run a blocking (non-gevent) client in a real thread while the hub keeps serving."""
    pool = gevent.get_hub().threadpool
    return pool.spawn(function, *args).get(timeout=timeout)


def run_in_new_python(code: str) -> None:
    """Run ``code`` with ``python -c`` in a process of its own (for checks of process-wide
    state); it prints ``ok`` once all its assertions held."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr


@pytest.fixture(params=["send_each", "one send at a time"])
def broadcast_writer(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Broadcast tests run with the C writer to many sockets (checked to be used) and
    without it."""
    if request.param != "send_each":
        monkeypatch.setattr(broadcasting, "send_each", None)
        yield str(request.param)
        return
    real_send_each = broadcasting.send_each
    assert real_send_each is not None
    sockets_written: list[int] = []

    def counting_send_each(fds: list[int], data: bytes) -> list[tuple[int, int]]:
        sockets_written.append(len(fds))
        return real_send_each(fds, data)

    monkeypatch.setattr(broadcasting, "send_each", counting_send_each)
    yield str(request.param)
    assert sum(sockets_written) > 0  # the broadcasts went through it
