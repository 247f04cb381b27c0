"""The pywsgi handler that upgrades a connection in place.

After pywsgi has parsed the request, a WebSocket upgrade for a server with a mounted
:class:`~geventws.server.WebSocketServer` is served on the same socket; bytes pywsgi had
already buffered past the headers are handed over as the first frames. Every other request
goes to the WSGI application as usual.
"""

from __future__ import annotations

import logging
import socket
import time
import weakref
from http import HTTPStatus
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import gevent
from gevent import pywsgi
from gevent.pywsgi import WSGIHandler
from greenlet import getcurrent, greenlet

from .handshake import Headers, is_websocket_request
from .header_block import HeaderBlock, HeadTooLargeError, check_head_line, read_header_block
from .wsgi import UPGRADE_ENVIRON_KEY, PendingUpgrade

if TYPE_CHECKING:
    from .server import WebSocketServer

logger = logging.getLogger("geventws.handler")

#: What pywsgi logs to with ``log=None`` (a private class; nothing is skipped if it is gone).
_NO_LOG: type = getattr(pywsgi, "_NoopLog", type("_NeverALog", (), {}))

#: The attribute of a gevent server that holds its mounted WebSocketServer.
SERVER_ATTRIBUTE = "geventws_server"


def mounted_server(http_server: Any) -> WebSocketServer | None:
    """Return the WebSocketServer mounted on ``http_server``, or None."""
    return getattr(http_server, SERVER_ATTRIBUTE, None)


# The attributes (with class defaults) that pywsgi and this mixin set while answering an
# upgrade, after pywsgi's __init__ has set the socket, address, server and rfile.
_UPGRADE_ATTRIBUTES = (
    "time_start",
    "time_finish",
    "_head_timer",
    "_head_limit",
    "requestline",
    "response_length",
    "_head_left",
    "command",
    "path",
    "request_version",
    "headers",
    "content_length",
    "close_connection",
    "_upgrade_headers",
    "environ",
    "application",
    "status",
    "response_headers",
    "wsgi_input",
    "_pending_upgrade",
    "_application_failed",
)

# What an upgraded handler keeps instead of its request's environ and response headers:
# shared by all of them, so read-only.
_NO_ENVIRON: Any = MappingProxyType({})
_NO_HEADERS: tuple[()] = ()


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
    response_headers: Any
    close_connection: bool
    time_start: float
    time_finish: float
    _orig_status: str | None
    wsgi_input: Any
    _head_timer: Any = None
    #: The request head's size limit, while a WebSocketServer is mounted.
    _head_limit: int | None = None
    #: What the header lines may take of it, while they are read.
    _head_left: int | None = None
    _pending_upgrade: PendingUpgrade | None = None
    _application_failed = False
    #: The headers of an upgrade answered here, once get_environ() has recognised it.
    _upgrade_headers: Headers | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # CPython keeps one table of attribute names for all instances of a class, and
        # lets it take new names only while it has room, which every new instance shrinks.
        # Under a burst of connections (a server's first seconds), dozens of handlers are
        # made before the first one has set all its attributes; the names set later then
        # give every handler a dict of its own, 0.8-1.5 KiB for each connection's whole life.
        # Setting them all here, in one order, enters them with the first handler.
        cls = type(self)
        for name in _UPGRADE_ATTRIBUTES:
            setattr(self, name, getattr(cls, name))

    def handle_one_request(self) -> Any:
        """pywsgi's request handling, with ``handshake_timeout`` on reading the request head
        and ``max_request_header_size`` on its size (a slow or huge head cannot hold a
        greenlet and its memory for long)."""
        ws_server = mounted_server(self.server)
        if ws_server is None:
            return super().handle_one_request()  # type: ignore[misc]
        # A bare loop timer rather than a gevent.Timeout: the same throw into this greenlet,
        # without a Timeout (an exception object) and its error made for every connection.
        # (No local for the seconds: this frame lives as long as the WebSocket.)
        self._head_timer = gevent.get_hub().loop.timer(ws_server.options.handshake_timeout / 1000.0)
        self._head_timer.start(_throw_head_timeout, getcurrent(), self.client_address, update=True)
        self._head_limit = ws_server.options.max_request_header_size
        try:
            return super().handle_one_request()  # type: ignore[misc]
        finally:
            self._close_head_timer()

    def _close_head_timer(self) -> None:
        # Dropped, not only closed: this greenlet may go on to serve a WebSocket for days.
        timer, self._head_timer = self._head_timer, None
        if timer is not None:
            timer.close()

    def MessageClass(self, rfile: Any, *args: Any) -> HeaderBlock:  # noqa: N802 (pywsgi's name)
        """Read the header block: the same message type pywsgi makes, without the email
        parser's cost (see :mod:`geventws.header_block`); within the head's size limit
        when a WebSocketServer is mounted."""
        return read_header_block(rfile, self._head_left)

    def _check_http_version(self) -> bool:
        # pywsgi's check parses the version through a generator; HTTP/1.1 needs no parsing.
        return self.request_version == "HTTP/1.1" or super()._check_http_version()  # type: ignore[misc]

    def read_request(self, raw_requestline: str) -> Any:
        """Parse the head, refusing more than the size limit."""
        limit = self._head_limit
        if limit is None:
            return super().read_request(raw_requestline)  # type: ignore[misc]
        rfile = self.rfile
        left = limit - len(raw_requestline)
        if type(self).MessageClass is UpgradeHandlerMixin.MessageClass:
            self._head_left = left  # our reader keeps to it
        else:  # a subclass's reader reads through one that does
            self.rfile = _LimitedHead(rfile, left)
        try:
            return super().read_request(raw_requestline)  # type: ignore[misc]
        except (IndexError, TypeError, UnicodeError) as error:
            # pywsgi lets these escape on some malformed heads (e.g. "HTTP/1"); as a
            # ValueError they get a 400 without a traceback in the log.
            raise ValueError(f"malformed request head: {error!r}") from None
        finally:
            self.rfile = rfile
            self._head_left = None

    def _handle_client_error(self, ex: BaseException) -> Any:
        if isinstance(ex, HeadTooLargeError):
            self.log_error("(from %s) request head over the size limit", self.client_address)  # type: ignore[attr-defined]
            return ("431", _HEAD_TOO_LARGE_RESPONSE)
        if isinstance(ex, _HeadTimeoutError):
            self.log_error("(from %s) request head not sent in time", self.client_address)  # type: ignore[attr-defined]
            return ("408", _HEAD_TIMEOUT_RESPONSE)
        return super()._handle_client_error(ex)  # type: ignore[misc]

    def _request_headers(self) -> Headers:
        message = self.headers
        if isinstance(message, HeaderBlock):
            return message.request_headers()
        return Headers.from_message(message)  # a subclass made its own

    def get_environ(self) -> dict[str, Any]:
        """pywsgi's WSGI environ; for an upgrade that is answered here, without the
        application, an empty stand-in: the request builds the real one if asked for it."""
        ws_server = mounted_server(self.server)
        if (
            ws_server is not None
            and not ws_server.options.application_upgrades
            # A subclass's get_environ() may add to the environ: that one is built at once.
            and type(self).get_environ is UpgradeHandlerMixin.get_environ
        ):
            headers = self._request_headers()
            if is_websocket_request(headers):
                self._upgrade_headers = headers
                return {}
        return super().get_environ()  # type: ignore[misc,no-any-return]

    def handle_one_response(self) -> None:
        """Serve a WebSocket upgrade here; hand any other request to the WSGI application."""
        self._close_head_timer()  # the head is in: the response may take as long as it takes
        ws_server = mounted_server(self.server)
        headers, self._upgrade_headers = self._upgrade_headers, None
        environ: dict[str, Any] | _EnvironOnDemand = self.environ
        environ_asked_for: weakref.ref[_EnvironOnDemand] | None = None
        if headers is not None and ws_server is not None:  # get_environ() left it to us
            environ = _EnvironOnDemand(self)
            environ_asked_for = weakref.ref(environ)
        else:
            headers = self._request_headers()
            if ws_server is None or not is_websocket_request(headers):
                super().handle_one_response()  # type: ignore[misc]
                return
            if ws_server.options.application_upgrades:
                self._serve_upgrade_in_application(ws_server, headers)
                return
        self.time_start = time.time()
        self.close_connection = True
        self.status = None
        self.response_length = 0
        self.response_headers = []  # read by access logs (gunicorn's); none came from an app
        status = 0
        connection = None
        try:
            status, self.response_length, connection = ws_server.answer_upgrade(
                self.socket,
                self.command,
                self.path,
                self.request_version,
                headers,
                peer_address=self.peer_address,
                initial_data=self._take_bytes_after_head(),
                environ=environ,
            )
        finally:
            if status:
                self.status = _status_line(status)
            self.time_finish = time.time()
            logging = not isinstance(self.server.log, _NO_LOG)  # log=None: no line formatted
            if environ_asked_for is not None:
                del environ
                # Still referenced: the application kept the request, which may read its
                # environ after the handler has let go of the request's state below. An
                # access log (gunicorn's) may read the environ too.
                on_demand = environ_asked_for()
                if on_demand is not None or logging:
                    self.environ = on_demand() if on_demand is not None else self._full_environ()
            # Logged when answered: a WebSocket may stay open for days.
            if logging:
                self.log_request()  # type: ignore[attr-defined]
        if connection is not None:
            del headers, environ_asked_for  # this frame lives as long as the WebSocket
            self._drop_request_state()
            connection.run()
            # run() closed the socket: pywsgi need not try to drain and close it again.
            self.socket = None

    def _drop_request_state(self) -> None:
        """Let go of what only the request and its access log line needed (the line is
        written): the handler lives as long as the WebSocket it upgraded, and idle
        connections are many. pywsgi reads none of it once the response is done."""
        self.environ = _NO_ENVIRON
        self.headers = None
        self.rfile = self.wsgi_input = None  # closed already; pywsgi checks nothing more
        self.requestline = self.command = self.path = self.request_version = ""
        self.response_headers = _NO_HEADERS
        self.time_start = self.time_finish = 0.0

    def _full_environ(self) -> dict[str, Any]:
        """The environ that :meth:`get_environ` left unbuilt (see :class:`_EnvironOnDemand`)."""
        return super().get_environ()  # type: ignore[misc,no-any-return]

    @property
    def peer_address(self) -> str:
        """The client's address as a string (its IP for TCP)."""
        address = self.client_address
        return str(address[0]) if isinstance(address, tuple) else str(address or "")

    # ------------------------------------------------------------------ application upgrades

    def _serve_upgrade_in_application(self, ws_server: WebSocketServer, headers: Headers) -> None:
        """Run the WSGI application with the upgrade pending in its environ; once a view
        accepted, keep the socket until the WebSocket connection has ended."""
        pending = PendingUpgrade(self, ws_server, headers)
        self.environ[UPGRADE_ENVIRON_KEY] = pending
        self._pending_upgrade = pending
        self._application_failed = False
        # Whatever the answer, the client meant this connection for a WebSocket: no keep-alive.
        self.close_connection = True
        try:
            super().handle_one_response()  # type: ignore[misc]
        finally:
            self._pending_upgrade = None
            pending.forget()
        connection = pending.connection
        if connection is None:
            return
        if self._application_failed and connection.state == "open":
            connection.close(1011, "The application failed.")
        connection.wait_closed()

    def process_result(self) -> None:
        """Send the application's response, unless a view already answered an upgrade."""
        pending = getattr(self, "_pending_upgrade", None)
        if pending is None or not pending.answered:
            super().process_result()  # type: ignore[misc]
            return
        self._log_upgrade_status(pending.status)

    def handle_error(self, t: Any, v: Any, tb: Any) -> None:
        """pywsgi's error handling; after a view answered an upgrade, nothing is written."""
        pending = getattr(self, "_pending_upgrade", None)
        if pending is not None and pending.answered:
            self._application_failed = True
            self._log_error(t, v, tb)  # type: ignore[attr-defined]
            self._log_upgrade_status(pending.status)
            return
        super().handle_error(t, v, tb)  # type: ignore[misc]

    def _log_upgrade_status(self, status: int) -> None:
        # The access log shows what the client got, not what the view returned afterwards.
        self.status = self._orig_status = _status_line(status)
        self.response_headers = []  # the application's headers (if any) were never sent
        self.close_connection = True

    def _take_bytes_after_head(self) -> bytes:
        """:meth:`take_buffered_bytes`, straight from the buffer when the header reader
        knows how much it holds (nothing has read from it since)."""
        message = self.headers
        unread = message.unread_after if isinstance(message, HeaderBlock) else None
        if unread is None:
            return self.take_buffered_bytes()
        rfile = self.rfile
        data: bytes = rfile.read(unread) if unread else b""
        rfile.close()
        return data

    def take_buffered_bytes(self) -> bytes:
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


class _EnvironOnDemand:
    """The WSGI environ of an upgrade answered by the handler, built when first called for.

    Building it (pywsgi's ``get_environ``) cost more than reading the request head, and only
    an application that reads ``request.environ`` needs it; it must be built while the
    handler still has the request's state, which it drops once the connection is open.
    """

    __slots__ = ("__weakref__", "_environ", "_handler")

    def __init__(self, handler: UpgradeHandlerMixin) -> None:
        self._handler: UpgradeHandlerMixin | None = handler
        self._environ: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any]:
        """The environ (built on the first call; the same dict every time)."""
        if self._environ is None:
            handler, self._handler = self._handler, None
            assert handler is not None
            self._environ = handler.environ = handler._full_environ()
        return self._environ


def _status_line(status: int) -> str:
    line = _status_lines.get(status)
    if line is None:
        try:
            line = f"{status} {HTTPStatus(status).phrase}"
        except ValueError:
            line = str(status)
        _status_lines[status] = line
    return line


#: Status lines made so far (HTTPStatus lookups are slow): at most one per status sent.
_status_lines: dict[int, str] = {}


class _HeadTimeoutError(socket.timeout):
    """The client did not send its request head within ``handshake_timeout``."""


def _throw_head_timeout(reader: greenlet, client_address: Any) -> None:
    """Raise :class:`_HeadTimeoutError` in the greenlet reading the request head."""
    # Logged here: pywsgi closes the connection without a word when no request line came.
    logger.debug("(from %s) no whole request head within handshake_timeout", client_address)
    reader.throw(_HeadTimeoutError("request head timed out"))


_HEAD_TOO_LARGE_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
    b"Content-Length: 0\r\n\r\n"
)
_HEAD_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
)


class _LimitedHead:
    """Stands in for pywsgi's rfile while a handler subclass's own ``MessageClass`` parses
    the headers; counts what they take and checks each line."""

    def __init__(self, rfile: Any, limit: int) -> None:
        self._rfile = rfile
        self._left = limit

    def readline(self, size: int = -1) -> bytes:
        line: bytes = self._rfile.readline(size)
        self._left -= len(line)
        if self._left < 0:
            raise HeadTooLargeError("request head too large")
        check_head_line(line)
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rfile, name)


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
