"""Upgrades answered by the WSGI application's own views.

With the option ``application_upgrades=True``, a mounted :class:`~geventws.server.WebSocketServer`
leaves upgrade requests to the WSGI application: they reach it like any other request, with
``environ["geventws.upgrade"]`` set. The view of the route takes the request with
:func:`upgrade_request`, checks what it wants (cookies, session, headers), then accepts or
rejects it. Nothing is written to the client until it does, so a route that never asks stays
plain HTTP, and a response the application returns for an upgrade it did not take goes out as
usual (Flask's 404 for an unknown route, say).

After an accept, the view may serve the connection in its own greenlet (``for message in
connection: ...``) or attach listeners and return; either way the HTTP connection stays the
WebSocket's until it closes, and whatever the view returns is discarded.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from .errors import HandshakeError
from .handshake import Headers, build_reject_response, parse_handshake
from .request import WebSocketRequest

if TYPE_CHECKING:
    from .connection import WebSocketConnection
    from .server import WebSocketServer

#: The environ key of a pending upgrade (a :class:`PendingUpgrade`).
UPGRADE_ENVIRON_KEY = "geventws.upgrade"

logger = logging.getLogger("geventws.wsgi")


def upgrade_request(environ: dict[str, Any]) -> WebSocketRequest | None:
    """Take the WebSocket upgrade request of this WSGI request, to accept or reject it.

    Returns None when the request is no WebSocket upgrade served by geventws (answer it with
    plain HTTP), or when its handshake is invalid: that one has already been answered with the
    precise status (400, 426, ...) and the view's own response will be discarded. Calling it
    again returns the same request.
    """
    pending = environ.get(UPGRADE_ENVIRON_KEY)
    if not isinstance(pending, PendingUpgrade):
        return None
    return pending.take()


class PendingUpgrade:
    """One upgrade request on its way through the WSGI application.

    The handler creates it before calling the application; :func:`upgrade_request` turns it
    into a :class:`WebSocketRequest` on first use. ``answered`` tells the handler that the
    client got its answer on the socket, so the application's response must not follow it.
    """

    def __init__(self, handler: Any, ws_server: WebSocketServer, headers: Headers) -> None:
        self._handler = handler
        self._ws_server = ws_server
        self._headers = headers
        self._taken = False
        #: The request once a view took it (None for an invalid handshake).
        self.request: WebSocketRequest | None = None
        #: True once a response (101, or an error status) was written to the client.
        self.answered = False
        #: The HTTP status written, 0 while none.
        self.status = 0
        #: How many response bytes were written.
        self.response_length = 0

    @property
    def connection(self) -> WebSocketConnection | None:
        """The accepted connection, or None."""
        return self.request.connection if self.request is not None else None

    def take(self) -> WebSocketRequest | None:
        """The request to accept or reject (see :func:`upgrade_request`)."""
        if self._taken:
            return self.request
        self._taken = True
        handler = self._handler
        ws_server = self._ws_server
        options = ws_server.options
        # Past this point the HTTP connection ends with this request, whatever the view does.
        handler.close_connection = True
        try:
            handshake = parse_handshake(
                handler.command,
                handler.path,
                handler.request_version,
                self._headers,
                parse_extensions=options.parse_extensions,
                parse_cookies=options.parse_cookies,
            )
        except HandshakeError as error:
            response = build_reject_response(error.status, error.reason, error.headers)
            with contextlib.suppress(OSError):
                handler.socket.sendall(response)
            self._answer(error.status, len(response))
            logger.info(
                "refused upgrade from %s: %s %s", handler.peer_address, error.status, error.reason
            )
            ws_server.emit("upgrade_error", error)
            return None
        request = WebSocketRequest(
            handler.socket,
            handshake,
            options,
            peer_address=handler.peer_address,
            initial_data=handler.take_buffered_bytes(),
            environ=handler.environ,
            server=ws_server,
            read_in_background=True,
        )
        request.on("request_accepted", lambda _connection: self._request_answered())
        request.on("request_rejected", lambda _request: self._request_answered())
        ws_server.pending_requests.append(request)
        self.request = request
        return request

    def _request_answered(self) -> None:
        request = self.request
        assert request is not None
        self._answer(request.status or 0, request.response_length)

    def _answer(self, status: int, length: int) -> None:
        self.answered = True
        self.status = status
        self.response_length = length
        # pywsgi's error path writes a 500 only while nothing was written.
        self._handler.response_length = length

    def forget(self) -> None:
        """Drop the request from the server's pending list if no view answered it."""
        request = self.request
        if request is not None and not request.resolved:
            self._ws_server._request_resolved(request)


__all__ = ["UPGRADE_ENVIRON_KEY", "PendingUpgrade", "upgrade_request"]
