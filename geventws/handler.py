"""The pywsgi handler that upgrades a connection in place.

After pywsgi has parsed the request, a WebSocket upgrade for a server with a mounted
:class:`~geventws.server.WebSocketServer` is served on the same socket; bytes pywsgi had
already buffered past the headers are handed over as the first frames. Every other request
goes to the WSGI application as usual.
"""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from gevent.pywsgi import WSGIHandler

from .handshake import Headers, is_websocket_request

if TYPE_CHECKING:
    from .server import WebSocketServer

#: The attribute of a gevent server that holds its mounted WebSocketServer.
SERVER_ATTRIBUTE = "geventws_server"


def mounted_server(http_server: Any) -> WebSocketServer | None:
    """Return the WebSocketServer mounted on ``http_server``, or None."""
    return getattr(http_server, SERVER_ATTRIBUTE, None)


class UpgradeHandlerMixin:
    """Mixed into a pywsgi ``WSGIHandler`` (sub)class to serve WebSocket upgrades."""

    socket: Any
    rfile: Any
    server: Any
    headers: Any
    command: str
    path: str
    request_version: str
    client_address: Any
    environ: dict[str, Any]
    status: Any
    response_length: int
    close_connection: bool
    time_start: float
    time_finish: float

    def handle_one_response(self) -> None:
        """Serve a WebSocket upgrade here; hand any other request to the WSGI application."""
        ws_server = mounted_server(self.server)
        headers = Headers.from_message(self.headers)
        if ws_server is None or not is_websocket_request(headers):
            super().handle_one_response()  # type: ignore[misc]
            return
        self.time_start = time.time()
        self.close_connection = True
        self.status = None
        self.response_length = 0
        status = 0
        try:
            initial_data = self._take_buffered_bytes()
            address = self.client_address
            peer = str(address[0]) if isinstance(address, tuple) else str(address or "")
            status, self.response_length = ws_server.handle_upgrade(
                self.socket,
                self.command,
                self.path,
                self.request_version,
                headers,
                peer_address=peer,
                initial_data=initial_data,
                environ=self.environ,
            )
        finally:
            if status:
                try:
                    self.status = f"{status} {HTTPStatus(status).phrase}"
                except ValueError:
                    self.status = str(status)
            self.time_finish = time.time()
            self.log_request()  # type: ignore[attr-defined]

    def _take_buffered_bytes(self) -> bytes:
        """Return what pywsgi read past the request headers, without waiting for more, and
        close its reader so the socket is ours alone."""
        rfile = self.rfile
        sock = self.socket
        timeout = sock.gettimeout()
        data = b""
        try:
            sock.settimeout(0.0)
            data = rfile.peek() or b""
            if data:
                data = rfile.read(len(data))
        except OSError:
            pass
        finally:
            sock.settimeout(timeout)
        rfile.close()
        return bytes(data)


class WebSocketHandler(UpgradeHandlerMixin, WSGIHandler):  # type: ignore[misc]
    """gevent's ``WSGIHandler`` that also serves WebSocket upgrades."""


_handler_classes: dict[type, type] = {WSGIHandler: WebSocketHandler}


def upgrade_handler_for(handler_class: type) -> type:
    """Return a subclass of ``handler_class`` (a ``WSGIHandler``) that serves upgrades."""
    if issubclass(handler_class, UpgradeHandlerMixin):
        return handler_class
    if not issubclass(handler_class, WSGIHandler):
        raise TypeError(
            f"the server's handler_class must be a gevent.pywsgi.WSGIHandler, got {handler_class!r}"
        )
    upgraded = _handler_classes.get(handler_class)
    if upgraded is None:
        upgraded = type(
            f"WebSocket{handler_class.__name__}", (UpgradeHandlerMixin, handler_class), {}
        )
        _handler_classes[handler_class] = upgraded
    return upgraded
