"""A plain WSGI application with WebSocket views, for running under geventws's gunicorn worker.

Routes:
- ``/echo``: WebSocket; sends back every message.
- ``/pid``: WebSocket; first sends the worker's pid, then echoes.
- ``/environ``: WebSocket; sends a JSON report of the upgrade request's WSGI environ, then echoes.
- ``/private``: WebSocket; rejected 403 with a reason unless the cookie ``session=good`` is sent.
- ``/hello``: plain HTTP, 200 with the worker's pid.
- ``/relay``: plain HTTP, streams ``started``, then the request body once it is all in.
- anything else: 404 from the application (an upgrade there is answered with it, too).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from geventws import ConnectionClosedError, WebSocketConnection, upgrade_request


def echo(connection: WebSocketConnection) -> None:
    """Send every message back until the connection closes."""
    for message in connection:
        try:
            connection.send(message)
        except ConnectionClosedError:
            return  # closed while we were sending (a client that stopped reading, say)


def _websocket_only(start_response: Any) -> list[bytes]:
    start_response(
        "426 Upgrade Required", [("Content-Type", "text/plain"), ("Upgrade", "websocket")]
    )
    return [b"WebSocket only\n"]


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The routes listed in the module docstring."""
    path = environ["PATH_INFO"]
    if path in ("/echo", "/pid", "/environ", "/private"):
        request = upgrade_request(environ)
        if request is None:
            return _websocket_only(start_response)
        if path == "/private" and environ.get("HTTP_COOKIE") != "session=good":
            request.reject(403, "Log in first.")
            return []
        connection = request.accept()
        if path == "/pid":
            connection.send(str(os.getpid()))
        elif path == "/environ":
            report = {
                "RAW_URI": environ.get("RAW_URI"),
                "gunicorn.sock": "gunicorn.sock" in environ,
                "SERVER_SOFTWARE": environ.get("SERVER_SOFTWARE"),
                "wsgi.url_scheme": environ.get("wsgi.url_scheme"),
                "QUERY_STRING": environ.get("QUERY_STRING"),
            }
            connection.send(json.dumps(report))
        echo(connection)
        return []
    if path == "/relay":
        # Streams "started", then waits for the whole request body, then sends it back: a
        # request the client can keep in flight for as long as it likes.
        def relay() -> Iterator[bytes]:
            yield b"started\n"
            yield b"got " + environ["wsgi.input"].read() + b"\n"

        start_response("200 OK", [("Content-Type", "text/plain")])
        return relay()
    if path == "/hello":
        body = f"hello from {os.getpid()}\n".encode()
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]
    body = f"no route {path}\n".encode()
    start_response(
        "404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    )
    return [body]
