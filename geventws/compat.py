"""A small bridge for applications written for gevent-websocket.

gevent-websocket's handler upgraded every WebSocket request before the application ran and
put the socket in ``environ["wsgi.websocket"]``. :class:`GeventWebSocketMiddleware` does the
same on top of geventws: mount a :class:`~geventws.server.WebSocketServer` with
``application_upgrades=True`` and wrap the application::

    from gevent.pywsgi import WSGIServer
    from geventws import WebSocketServer
    from geventws.compat import GeventWebSocketMiddleware

    server = WSGIServer(("127.0.0.1", 8000), GeventWebSocketMiddleware(app))
    WebSocketServer(server, application_upgrades=True)
    server.serve_forever()

For each WebSocket upgrade request the middleware accepts at once, sets
``environ["wsgi.websocket"]`` (a :class:`GeventWebSocket`) and
``environ["wsgi.websocket_version"]``, calls the application, consumes what it returns and
closes the WebSocket (1000) when it is done, as gevent-websocket's handler did. An application
that raises leaves the connection to geventws, which closes it with 1011. Plain HTTP requests
go to the application untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .close_codes import CloseCode
from .connection import OPEN, WebSocketConnection
from .errors import ConnectionClosedError
from .request import WebSocketRequest
from .wsgi import UPGRADE_ENVIRON_KEY, upgrade_request

#: A WSGI application, as this module sees it.
WSGIApplication = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
#: gevent-websocket's ``app_protocol(path)`` hook: the subprotocol to agree to for ``path``.
ProtocolChooser = Callable[[str], str | None]


class GeventWebSocket:
    """The ``environ["wsgi.websocket"]`` object: gevent-websocket's ``WebSocket`` API over a
    :class:`~geventws.connection.WebSocketConnection`.

    Differences from gevent-websocket: binary messages are ``bytes`` (not ``bytearray``);
    :meth:`receive` keeps returning None once the connection is closed (gevent-websocket raised
    on the call after that); :attr:`protocol` is the subprotocol agreed in the handshake (the
    client's offer is still in ``environ["HTTP_SEC_WEBSOCKET_PROTOCOL"]``); the exceptions are
    geventws's (:class:`~geventws.errors.WebSocketError` and its subclasses).
    """

    def __init__(self, connection: WebSocketConnection, environ: dict[str, Any]) -> None:
        #: The geventws connection underneath, for everything this API lacks.
        self.connection = connection
        #: The WSGI environ of the upgrade request.
        self.environ = environ

    def __repr__(self) -> str:
        return f"<GeventWebSocket {self.path!r} {self.connection.state}>"

    @property
    def closed(self) -> bool:
        """True once a Close was sent or received, or the socket failed."""
        return self.connection.state != OPEN

    @property
    def path(self) -> str | None:
        """The request path (``PATH_INFO``)."""
        path = self.environ.get("PATH_INFO")
        return None if path is None else str(path)

    @property
    def origin(self) -> str | None:
        """The ``Origin`` header, or None."""
        origin = self.environ.get("HTTP_ORIGIN")
        return None if origin is None else str(origin)

    @property
    def protocol(self) -> str | None:
        """The subprotocol agreed in the handshake, or None."""
        return self.connection.protocol

    @property
    def version(self) -> str:
        """The WebSocket protocol version the client speaks, as a string (``"13"``)."""
        return str(self.connection.web_socket_version)

    def receive(self) -> str | bytes | None:
        """Block until the next message and return it: ``str`` for text, ``bytes`` for binary.

        Returns None once the connection is closed and every message received was taken.
        """
        return self.connection.receive()

    def send(
        self, message: str | bytes | bytearray | memoryview, binary: bool | None = None
    ) -> None:
        """Send ``message`` as one message: binary when ``binary`` is true, text when false,
        and by type when None (``str`` is text, bytes-like data binary).

        Text given as bytes must be UTF-8 (else ``UnicodeDecodeError``). Raises
        :class:`~geventws.errors.ConnectionClosedError` once the connection is closed.
        """
        if self.closed:
            connection = self.connection
            raise ConnectionClosedError(connection.close_reason_code, connection.close_description)
        if binary is None:
            binary = not isinstance(message, str)
        if binary:
            data = message.encode("utf-8") if isinstance(message, str) else message
            self.connection.send_bytes(data)
        else:
            text = message if isinstance(message, str) else bytes(message).decode("utf-8")
            self.connection.send_utf(text)

    def close(self, code: int = CloseCode.NORMAL, message: str | bytes = b"") -> None:
        """Start the closing handshake with ``code`` and ``message`` (the Close reason).

        Does nothing once the connection is closed or closing. The socket itself closes when
        the peer answers, or after ``close_timeout``.
        """
        reason = message.decode("utf-8") if isinstance(message, bytes | bytearray) else message
        self.connection.close(code, reason)


class GeventWebSocketMiddleware:
    """WSGI middleware giving ``app`` gevent-websocket's ``environ["wsgi.websocket"]``.

    Needs a :class:`~geventws.server.WebSocketServer` mounted with
    ``application_upgrades=True`` on the server that runs it (under gunicorn, geventws's
    worker does that). ``protocol(path)`` names the subprotocol to agree to for a path, or
    None for none; it defaults to ``app.app_protocol`` when the application has one, as in
    gevent-websocket. A protocol the client did not offer is not agreed to.
    """

    def __init__(self, app: WSGIApplication, protocol: ProtocolChooser | None = None) -> None:
        self.app = app
        self.protocol: ProtocolChooser | None = (
            protocol if protocol is not None else getattr(app, "app_protocol", None)
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Serve one request: upgrade it and run ``app`` on the WebSocket, or pass it on."""
        if UPGRADE_ENVIRON_KEY not in environ:
            return self.app(environ, start_response)
        request = upgrade_request(environ)
        if request is None:
            # An invalid handshake, already answered (400, 426, ...): nothing more to say.
            return []
        connection = request.accept(self._choose_protocol(request, environ))
        websocket = GeventWebSocket(connection, environ)
        environ["wsgi.websocket"] = websocket
        environ["wsgi.websocket_version"] = websocket.version
        result = self.app(environ, _ignore_start_response)
        try:
            for _ in result:  # a generator application runs while it is iterated
                pass
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        websocket.close()
        return []

    def _choose_protocol(self, request: WebSocketRequest, environ: dict[str, Any]) -> str | None:
        if self.protocol is None:
            return None
        wanted = self.protocol(str(environ.get("PATH_INFO", "")))
        if wanted and wanted.lower() in request.requested_protocols:
            return wanted
        return None


def _ignore_start_response(
    status: str, headers: list[tuple[str, str]], exc_info: Any = None
) -> Callable[[bytes], None]:
    """The ``start_response`` the application gets on a WebSocket: the 101 is already sent,
    so its status, headers and body are dropped, as in gevent-websocket."""
    return _ignore_body


def _ignore_body(data: bytes) -> None:
    """The ``write`` callable returned by :func:`_ignore_start_response`: drops ``data``."""


__all__ = ["GeventWebSocket", "GeventWebSocketMiddleware"]
