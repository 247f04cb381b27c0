"""The WebSocket server: mounted on pywsgi/StreamServer instances, it turns upgrade requests
into :class:`WebSocketRequest` and :class:`WebSocketConnection` objects and keeps count of them.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.socket

from .broadcasting import BroadcastPlan
from .close_codes import CloseCode
from .connection import WebSocketConnection
from .errors import HandshakeError, RequestResolvedError
from .events import EventEmitter
from .frames import Opcode
from .handshake import Headers, build_reject_response, parse_handshake
from .mounting import attach, detach
from .options import ServerOptions
from .request import WebSocketRequest

logger = logging.getLogger("geventws.server")

_NO_HANDLER = "No handler is configured to accept the connection."
_NOT_ANSWERED = "The request was neither accepted nor rejected in time."
_SHUTTING_DOWN = "The server is shutting down."
# Linux tcp_states.h: CLOSE_WAIT (8), LAST_ACK (9), CLOSE (7).
_TCP_PEER_CLOSED_STATES = frozenset({7, 8, 9})
_HANGUP_POLL_SECONDS = 0.05
#: How often idle connections give back their event-dispatching greenlet.
DISPATCHER_SWEEP_SECONDS = 10.0
_NO_HTTP_SERVER = "You must specify an http_server on which to mount the WebSocket server."


class WebSocketServer(EventEmitter):
    """Accepts WebSocket connections on one or several gevent servers at once.

    ``WebSocketServer(http_server=server_or_list, **options)`` mounts at once; without
    ``http_server`` call :meth:`mount` later. Options are those of
    :class:`~geventws.options.ServerOptions`; a bad one raises at construction.

    Events: ``request`` (``request``), ``connect`` (``connection``), ``close``
    (``connection``, ``code``, ``description``) and ``upgrade_error`` (``error``). A listener
    that raises is logged with its traceback; the server and the connection carry on.
    """

    EVENTS = ("request", "connect", "close", "upgrade_error")

    def __init__(self, http_server: Any = None, **options: Any) -> None:
        super().__init__()
        self.options = ServerOptions.from_kwargs(options)
        self.http_servers: list[Any] = []
        #: Accepted connections, from accept until their ``close`` event.
        self.connections: list[WebSocketConnection] = []
        # How broadcast() reaches them; made again after a connection comes or goes.
        self._broadcast_plan: BroadcastPlan | None = None
        #: Valid requests not yet accepted or rejected.
        self.pending_requests: list[WebSocketRequest] = []
        self._sweep_timer: Any = None
        if http_server is not None:
            self.mount(http_server)

    def mount(self, http_server: Any = None, **options: Any) -> None:
        """Attach to ``http_server`` (a ``WSGIServer``/``StreamServer`` or a list of them).

        Options given here replace the corresponding ones. Plain HTTP requests still reach the
        WSGI application; only WebSocket upgrade requests come here.
        """
        if http_server is None:
            raise ValueError(_NO_HTTP_SERVER)
        if options:
            self.options = self.options.replace(**options)
        servers = list(http_server) if isinstance(http_server, list | tuple) else [http_server]
        if not servers:
            raise ValueError(_NO_HTTP_SERVER)
        for server in servers:
            if server not in self.http_servers:
                attach(server, self)
                self.http_servers.append(server)

    def unmount(self) -> None:
        """Stop taking new WebSocket requests; open connections carry on."""
        if not self.http_servers:
            raise RuntimeError("WebSocketServer.unmount(): the server is not mounted")
        for server in self.http_servers:
            detach(server, self)
        self.http_servers = []

    def close_all_connections(
        self, code: int = CloseCode.NORMAL, description: str | None = None
    ) -> None:
        """Close every open connection (with ``code``, 1000 unless given) and reject every
        pending request (503). Returns at once, without waiting for slow peers to take their
        Close frame; :meth:`wait_closed` waits for the closing handshakes. An invalid code or
        description raises ``ValueError`` before any connection is touched."""
        for connection in list(self.connections):
            if connection.connected:
                connection._close(code, description, wait=False)
        for request in list(self.pending_requests):
            with contextlib.suppress(RequestResolvedError):
                request.reject(503, _SHUTTING_DOWN)

    def shut_down(self, code: int = CloseCode.NORMAL, description: str | None = None) -> None:
        """:meth:`unmount`, then :meth:`close_all_connections`; the HTTP servers keep running."""
        if self.http_servers:
            self.unmount()
        self.close_all_connections(code, description)

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Block until no connection is left; False if ``timeout`` seconds ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for connection in list(self.connections):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not connection.wait_closed(remaining):
                return False
        return not self.connections

    # The broadcast helpers of WebSocket-Node's server.
    def broadcast(self, data: str | bytes | bytearray | memoryview) -> None:
        """Send ``data`` to every open connection (text for ``str``, binary otherwise).

        The frames are encoded once for all. A peer that does not read never holds up the
        others: what its socket does not take at once is written in the background (and
        that peer is dropped after ``send_timeout`` as for any send).
        """
        if isinstance(data, str):
            opcode, payload = Opcode.TEXT, data.encode("utf-8")
        elif isinstance(data, bytes | bytearray | memoryview):
            opcode, payload = Opcode.BINARY, bytes(data)
        else:
            raise TypeError(
                f"broadcast() takes str or bytes-like data, got {type(data).__name__}: {data!r:.80}"
            )
        plan = self._broadcast_plan
        if plan is None:
            plan = self._broadcast_plan = BroadcastPlan(self.connections)
        plan.send(opcode, payload, data)

    def broadcast_utf(self, data: str) -> None:
        """Send the text ``data`` to every open connection."""
        if not isinstance(data, str):
            raise TypeError(f"broadcast_utf() takes str, got {type(data).__name__}")
        self.broadcast(data)

    def broadcast_bytes(self, data: bytes | bytearray | memoryview) -> None:
        """Send the binary ``data`` to every open connection."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"broadcast_bytes() takes bytes-like data, got {type(data).__name__}")
        self.broadcast(data)

    # ------------------------------------------------------------------ upgrade

    def answer_upgrade(
        self,
        sock: Any,
        method: str,
        resource: str,
        http_version: str,
        headers: Headers,
        *,
        peer_address: str,
        initial_data: bytes = b"",
        environ: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
    ) -> tuple[int, int, WebSocketConnection | None]:
        """Validate the upgrade request on ``sock`` and have it answered (``request`` event,
        auto-accept, or a rejection). Returns the HTTP status, the response length and the
        accepted connection, which the caller must :meth:`~WebSocketConnection.run` (in the
        greenlet that owns ``sock``; the socket is closed when that returns).

        ``environ`` becomes the request's :attr:`~WebSocketRequest.environ`; a callable is
        called only when that is first read."""
        try:
            handshake = parse_handshake(
                method,
                resource,
                http_version,
                headers,
                parse_extensions=self.options.parse_extensions,
                parse_cookies=self.options.parse_cookies,
            )
        except HandshakeError as error:
            response = build_reject_response(error.status, error.reason, error.headers)
            with contextlib.suppress(OSError):
                sock.sendall(response)
            logger.info("refused upgrade from %s: %s %s", peer_address, error.status, error.reason)
            self.emit("upgrade_error", error)
            return error.status, len(response), None

        request = WebSocketRequest(
            sock,
            handshake,
            self.options,
            peer_address=peer_address,
            initial_data=initial_data,
            environ=environ,
            server=self,
        )
        self.pending_requests.append(request)
        try:
            self._dispatch_request(request)
        finally:
            if request in self.pending_requests:
                self.pending_requests.remove(request)
        return request.status or 0, request.response_length, request.connection

    def _dispatch_request(self, request: WebSocketRequest) -> None:
        if self.options.auto_accept_connections:
            protocols = request.requested_protocols
            try:
                request.accept(protocols[0] if protocols else None, request.origin)
            except ValueError:
                logger.exception("auto-accept of %r failed; answered 500", request)
            return
        if not self.listener_count("request"):
            request.reject(404, _NO_HANDLER)
            return
        failures = self.emit_counting_failures("request", request)
        if request.resolved:
            request.wait_resolved()
            return
        if failures:
            request.reject(500, "The request handler failed.")
            return
        watcher = gevent.spawn(_watch_for_hangup, request)
        try:
            if request.wait_resolved(self.options.request_timeout / 1000.0):
                return
        finally:
            watcher.kill(block=False)
        try:
            request.reject(503, _NOT_ANSWERED)
            logger.warning("%r was not answered within request_timeout; rejected with 503", request)
        except RequestResolvedError:
            request.wait_resolved()

    # ------------------------------------------------------------------ bookkeeping

    def _request_resolved(self, request: WebSocketRequest) -> None:
        if request in self.pending_requests:
            self.pending_requests.remove(request)

    def _connection_accepted(self, connection: WebSocketConnection) -> None:
        self.connections.append(connection)
        self._broadcast_plan = None
        if self._sweep_timer is None:
            self._sweep_timer = gevent.get_hub().loop.timer(
                DISPATCHER_SWEEP_SECONDS, DISPATCHER_SWEEP_SECONDS, ref=False
            )
            self._sweep_timer.start(self._release_idle_dispatchers)
        self.emit("connect", connection)

    def _release_idle_dispatchers(self) -> None:
        # Runs in the hub: a connection that got no event for a whole period gives back
        # its dispatcher greenlet (and that greenlet's memory) until its next event.
        if not self.connections:
            if self._sweep_timer is not None:
                self._sweep_timer.close()
                self._sweep_timer = None
            return
        for connection in self.connections:
            connection.release_idle_dispatcher()

    def _connection_closed(self, connection: WebSocketConnection) -> None:
        if connection in self.connections:
            self.connections.remove(connection)
            self._broadcast_plan = None


def _watch_for_hangup(request: WebSocketRequest) -> None:
    """Notice a client that hangs up while its request waits for an answer."""
    sock = request.socket
    raw = getattr(sock, "_sock", sock)
    try:
        gevent.socket.wait_read(sock.fileno())
        if raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
            # Bytes wait unread (TLS records, or frames sent before the 101): the TCP state
            # tells whether the client has also sent FIN.
            while not request.resolved and not _peer_sent_fin(raw):
                gevent.sleep(_HANGUP_POLL_SECONDS)
    except OSError:
        pass
    if not request.resolved:
        request.peer_gone = True
        if request.server is not None:
            request.server._request_resolved(request)


def _peer_sent_fin(raw: socket.socket) -> bool:
    """True when the kernel says the peer closed its side (Linux TCP_INFO), else False."""
    if not hasattr(socket, "TCP_INFO"):
        return False
    state = raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    return state in _TCP_PEER_CLOSED_STATES
