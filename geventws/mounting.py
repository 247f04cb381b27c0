"""Attaching a WebSocketServer to gevent servers, and detaching it.

A ``WSGIServer`` gets an upgrading subclass of its own handler class, so its application
(and its access log, and any handler customisation) keeps working for plain HTTP. A bare
``StreamServer`` speaks only WebSocket: its connections are read as HTTP upgrade requests
and anything else gets 426 Upgrade Required.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any

import gevent
from gevent.pywsgi import WSGIServer
from gevent.server import StreamServer
from greenlet import GreenletExit

from .handler import SERVER_ATTRIBUTE, WebSocketHandler, mounted_server, upgrade_handler_for

if TYPE_CHECKING:
    from .server import WebSocketServer

_ORIGINAL_HANDLE = "geventws_original_handle"
_ORIGINAL_WRAP = "geventws_original_wrap_socket"
logger = logging.getLogger("geventws.mounting")


def attach(http_server: Any, ws_server: WebSocketServer) -> None:
    """Make ``http_server`` hand its WebSocket upgrades to ``ws_server``."""
    current = mounted_server(http_server)
    if current is not None and current is not ws_server:
        raise ValueError(f"{http_server!r} already has a WebSocketServer mounted: {current!r}")
    if isinstance(http_server, WSGIServer):
        http_server.handler_class = upgrade_handler_for(http_server.handler_class)
    elif isinstance(http_server, StreamServer):
        if not hasattr(http_server, _ORIGINAL_HANDLE):
            setattr(http_server, _ORIGINAL_HANDLE, http_server.handle)
            _set_handle(http_server, _StreamUpgrade(http_server))
    else:
        raise TypeError(
            "http_server must be a gevent.pywsgi.WSGIServer or gevent.server.StreamServer, "
            f"got {http_server!r}"
        )
    if getattr(http_server, "ssl_enabled", False):
        _bound_tls_handshake(http_server)
    setattr(http_server, SERVER_ATTRIBUTE, ws_server)


def _bound_tls_handshake(http_server: Any) -> None:
    """Give the TLS handshake of each new connection ``handshake_timeout`` to finish.

    gevent wraps the socket before any handler runs, so a client that opens TCP and never
    sends its ClientHello would otherwise hold a greenlet and a socket forever.
    """
    wrap_socket = http_server.wrap_socket
    if hasattr(wrap_socket, _ORIGINAL_WRAP):
        return

    def wrap_socket_within_timeout(sock: Any, **kwargs: Any) -> Any:
        ws_server = mounted_server(http_server)
        seconds = ws_server.options.handshake_timeout / 1000.0 if ws_server else None
        try:
            with gevent.Timeout(seconds, _TLSHandshakeTimeoutError("TLS handshake timed out")):
                return wrap_socket(sock, **kwargs)
        except OSError as error:
            # A failed or abandoned TLS handshake is the client's doing: log it quietly and
            # end the greenlet without the traceback gevent would print for each one.
            logger.debug("TLS handshake failed: %r", error)
            raise GreenletExit() from None

    setattr(wrap_socket_within_timeout, _ORIGINAL_WRAP, wrap_socket)
    http_server.wrap_socket = wrap_socket_within_timeout


class _TLSHandshakeTimeoutError(socket.timeout):
    """A client did not finish its TLS handshake within ``handshake_timeout``."""


def detach(http_server: Any, ws_server: WebSocketServer) -> None:
    """Undo :func:`attach`: upgrades on ``http_server`` no longer reach ``ws_server``.

    A ``WSGIServer`` keeps its upgrading handler class, which passes requests to the WSGI
    application when no WebSocketServer is mounted.
    """
    if mounted_server(http_server) is ws_server:
        delattr(http_server, SERVER_ATTRIBUTE)
    original_wrap = getattr(http_server.__dict__.get("wrap_socket"), _ORIGINAL_WRAP, None)
    if original_wrap is not None:
        http_server.wrap_socket = original_wrap
    original = getattr(http_server, _ORIGINAL_HANDLE, None)
    if original is not None:
        delattr(http_server, _ORIGINAL_HANDLE)
        _set_handle(http_server, original)


def _set_handle(server: StreamServer, handle: Any) -> None:
    previous = server.handle
    server.handle = handle
    if getattr(server, "_handle", None) is previous:  # already started without TLS
        server._handle = handle


def _upgrade_required(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response(
        "426 Upgrade Required",
        [("Connection", "close"), ("Upgrade", "websocket"), ("Content-Length", "0")],
    )
    return []


class _StreamUpgrade:
    """The ``handle`` of a bare StreamServer: an HTTP upgrade, then the connection."""

    def __init__(self, stream_server: StreamServer) -> None:
        self.stream_server = stream_server
        self.shim = _WSGIServerShim(stream_server)

    def __call__(self, sock: Any, address: Any) -> None:
        WebSocketHandler(sock, address, self.shim).handle()


class _WSGIServerShim:
    """The little of a ``WSGIServer`` that a ``WSGIHandler`` uses, for a bare StreamServer."""

    application = staticmethod(_upgrade_required)
    secure_environ_class = WSGIServer.secure_environ_class

    def __init__(self, stream_server: StreamServer) -> None:
        self.stream_server = stream_server
        self.loop = stream_server.loop
        self.log = _NullLog()
        self.error_log = _NullLog()

    def __getattr__(self, name: str) -> Any:
        if name == SERVER_ATTRIBUTE:
            return mounted_server(self.stream_server)
        raise AttributeError(name)

    def get_environ(self) -> dict[str, Any]:
        """The base environ of a plain-HTTP WSGIServer."""
        environ = dict(WSGIServer.base_env)
        environ["wsgi.url_scheme"] = "https" if self.stream_server.ssl_enabled else "http"
        environ["wsgi.errors"] = self.error_log
        return environ


class _NullLog:
    def write(self, message: str) -> None:
        logger.debug("%s", message.rstrip())

    def flush(self) -> None:
        pass
