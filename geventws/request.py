"""A WebSocket upgrade request waiting for the application's ``accept()`` or ``reject()``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import gevent
import gevent.socket
from gevent.event import Event

from .close_codes import CloseCode
from .connection import WebSocketConnection
from .cookies import Cookie, format_set_cookies
from .errors import RequestResolvedError
from .events import EventEmitter
from .forwarded import client_addresses
from .handshake import (
    HandshakeRequest,
    ResourceURL,
    build_accept_response,
    build_reject_response,
    choose_protocol,
)
from .header_lists import RequestedExtension
from .options import ServerOptions

if TYPE_CHECKING:
    from .server import WebSocketServer

_ALREADY_RESOLVED = "WebSocketRequest may only be accepted or rejected one time."
_LOST_BEFORE_ACCEPT = "TCP connection lost before handshake completed."


class WebSocketRequest(EventEmitter):
    """A valid opening handshake; answer it with :meth:`accept` or :meth:`reject`, once.

    Events: ``request_accepted`` (``connection``) and ``request_rejected`` (``request``).
    """

    EVENTS = ("request_accepted", "request_rejected")

    def __init__(
        self,
        sock: Any,
        handshake: HandshakeRequest,
        options: ServerOptions,
        *,
        peer_address: str,
        initial_data: bytes = b"",
        environ: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
        server: WebSocketServer | None = None,
        read_in_background: bool = False,
    ) -> None:
        super().__init__()
        self.socket = sock
        self.handshake = handshake
        self.options = options
        self.server = server
        self._environ = environ
        self._initial_data = initial_data
        # True when the greenlet that accepts goes on to use the connection (a WSGI view):
        # the reader then gets a greenlet of its own.
        self._read_in_background = read_in_background
        self.remote_address, self.remote_addresses = client_addresses(
            peer_address,
            handshake.headers.get("X-Forwarded-For"),
            ignore_forwarded=options.ignore_x_forwarded_for,
            trusted_proxies=options.trusted_proxies,
        )
        #: The connection once accepted, else None.
        self.connection: WebSocketConnection | None = None
        #: The HTTP status answered (101 when accepted), or None while pending.
        self.status: int | None = None
        #: How many response bytes were written.
        self.response_length = 0
        #: True when the client hung up before the request was answered.
        self.peer_gone = False
        self._answered = False
        # True once the answer is written and the connection registered: the upgrading
        # greenlet then starts reading. The Event is made only for a wait that must block.
        self._answer_complete = False
        self._resolved: Event | None = None

    def __repr__(self) -> str:
        return f"<WebSocketRequest {self.resource!r} from {self.remote_address}>"

    @property
    def environ(self) -> dict[str, Any] | None:
        """The WSGI environ of the upgrade request when it came through pywsgi, else None.

        Given as a callable, it is built when first read (and kept).
        """
        environ = self._environ
        if callable(environ):
            environ = self._environ = environ()
        return environ

    @environ.setter
    def environ(self, environ: dict[str, Any] | None) -> None:
        self._environ = environ

    # The properties of WebSocket-Node's request, under Python names.
    @property
    def resource(self) -> str:
        """The request-target as sent, e.g. ``/chat?room=1``."""
        return self.handshake.resource

    @property
    def resource_url(self) -> ResourceURL:
        """The request-target parsed: path, query (repeated keys as lists) and query string."""
        return self.handshake.resource_url

    @property
    def host(self) -> str:
        """The ``Host`` header."""
        return self.handshake.host

    @property
    def key(self) -> str:
        """The ``Sec-WebSocket-Key`` header."""
        return self.handshake.key

    @property
    def origin(self) -> str | None:
        """``Origin`` (version 13) or ``Sec-WebSocket-Origin`` (version 8), else None."""
        return self.handshake.origin

    @property
    def web_socket_version(self) -> int:
        """The protocol version the client asked for: 13 or 8."""
        return self.handshake.version

    @property
    def requested_protocols(self) -> list[str]:
        """The subprotocols the client offered, lower-cased, in its order."""
        return self.handshake.requested_protocols

    @property
    def requested_extensions(self) -> list[RequestedExtension]:
        """The extensions the client offered (empty when ``parse_extensions`` is off)."""
        return self.handshake.requested_extensions

    @property
    def cookies(self) -> list[Cookie]:
        """The cookies the client sent (empty when ``parse_cookies`` is off)."""
        return self.handshake.cookies

    @property
    def headers(self) -> Any:
        """All request headers (case-insensitive)."""
        return self.handshake.headers

    @property
    def resolved(self) -> bool:
        """True once accepted or rejected."""
        return self._answered

    def wait_resolved(self, timeout: float | None = None) -> bool:
        """Block until the request is accepted or rejected; False if ``timeout`` ran out."""
        if self._answer_complete:
            return True
        if self._resolved is None:
            self._resolved = Event()
        return bool(self._resolved.wait(timeout))

    def _check_unresolved(self) -> None:
        if self._answered:
            raise RequestResolvedError(_ALREADY_RESOLVED)

    def accept(
        self,
        protocol: str | None = None,
        allowed_origin: str | None = None,
        cookies: Iterable[Mapping[str, Any]] | None = None,
    ) -> WebSocketConnection:
        """Complete the handshake and return the open connection.

        ``protocol`` must be one the client offered (compared case-insensitively; the
        response uses the client's spelling). ``allowed_origin`` is accepted for WebSocket-Node
        compatibility and not sent (RFC 6455 has no such response header); check
        :attr:`origin` yourself. ``cookies`` are dicts with ``name``, ``value`` and optional
        ``path``, ``domain``, ``expires``, ``maxage``, ``secure``, ``httponly``.

        A bad protocol or cookie answers the client 500 and then raises ``ValueError``.
        Raises :class:`~geventws.errors.RequestResolvedError` when already answered.
        """
        self._check_unresolved()
        try:
            chosen = choose_protocol(self.handshake, protocol)
            set_cookies = format_set_cookies(cookies) if cookies is not None else []
        except ValueError:
            self.reject(500)
            raise
        response = build_accept_response(self.handshake.key, chosen, set_cookies)
        connection = WebSocketConnection(
            self.socket,
            self.options,
            protocol=chosen,
            remote_address=self.remote_address,
            remote_addresses=self.remote_addresses,
            web_socket_version=self.handshake.version,
            initial_data=self._initial_data,
            server=self.server,
        )
        self.connection = connection
        self._mark_resolved(101)
        written = False
        if not self.peer_gone:
            try:
                _send_all(self.socket, response)
                written = True
                self.response_length = len(response)
            except OSError:
                pass
        if not written:
            connection.state = "closed"
            connection.connected = False
            connection.close_reason_code = CloseCode.ABNORMAL
            connection.close_description = _LOST_BEFORE_ACCEPT
            connection._terminating = True
        if self.server is not None:
            self.server._connection_accepted(connection)
        self.emit("request_accepted", connection)
        self._complete_answer()
        if self._read_in_background:
            gevent.spawn(connection.run)
        return connection

    def reject(
        self,
        status: int = 403,
        reason: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        """Refuse the handshake with HTTP ``status`` (default 403) and close the socket.

        ``reason`` is sent in ``X-WebSocket-Reject-Reason``. An invalid status or header raises
        ``ValueError`` and leaves the request unanswered.
        """
        self._check_unresolved()
        response = build_reject_response(status, reason, extra_headers)
        self._mark_resolved(status)
        try:
            self.socket.sendall(response)
            self.response_length = len(response)
        except OSError:
            pass
        self.emit("request_rejected", self)
        self._complete_answer()

    def _complete_answer(self) -> None:
        self._answer_complete = True
        if self._resolved is not None:
            self._resolved.set()

    def _mark_resolved(self, status: int) -> None:
        self.status = status
        if self.server is not None:
            self.server._request_resolved(self)
        self._answered = True


def _send_all(sock: Any, data: bytes) -> None:
    """``sock.sendall(data)``, trying the plain socket under a gevent one first: a new
    connection's send buffer takes a handshake answer at once, without gevent's send loop
    in Python. (Not for TLS, whose records only gevent's SSL socket can write.)"""
    if type(sock) is gevent.socket.socket:
        try:
            sent = sock._sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    sock.sendall(data)
