"""A gunicorn worker that serves WebSocket upgrades next to the WSGI application.

    gunicorn -k geventws.gunicorn.Worker myproject.wsgi:app

:class:`Worker` is gunicorn's own gevent pywsgi worker (``GeventPyWSGIWorker``) with one
:class:`~geventws.server.WebSocketServer` per worker process, mounted with
``application_upgrades=True`` on every listener of the worker (``ws://``, and ``wss://`` with
``--certfile``/``--keyfile``). Views take upgrade requests with
:func:`geventws.upgrade_request`. The handler is gunicorn's ``PyWSGIHandler`` (as
:class:`IdleTrackingHandler`) with the upgrade mixed in, so gunicorn's access log (101 for an
accepted upgrade) and its environ keys (``gunicorn.sock``, ``RAW_URI``) are there for
WebSocket requests too.

Server options come from :attr:`Worker.websocket_options`: set it in a subclass (and run
``-k mymodule.MyWorker``), or per worker from gunicorn's ``post_worker_init`` hook in the
config file (``worker.websocket_options = {...}``); the server is built after that hook.

Shutting down (SIGTERM, SIGQUIT/SIGINT, and SIGTERM to the old workers on SIGHUP): the worker
stops accepting, sends every open WebSocket a Close 1001 (going away), answers pending upgrade
requests 503, closes idle keep-alive HTTP connections, then waits for the closing handshakes
and the HTTP requests in flight (whose connections close after their response). The wait
ends within gunicorn's ``graceful_timeout`` (after SIGQUIT/SIGINT within
:attr:`Worker.quick_shutdown_timeout`); the worker keeps notifying the arbiter meanwhile. What
is still open then is dropped.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from types import FrameType, MappingProxyType
from typing import Any

import gevent
from gevent.event import Event
from gevent.pool import Pool
from greenlet import GreenletExit, getcurrent
from gunicorn.arbiter import Arbiter
from gunicorn.http.wsgi import base_environ
from gunicorn.sock import ssl_context
from gunicorn.workers.ggevent import VERSION, GeventPyWSGIWorker, PyWSGIHandler

from .close_codes import CloseCode
from .handler import upgrade_handler_for
from .server import WebSocketServer

__all__ = ["IdleTrackingHandler", "Worker"]

#: The part of ``graceful_timeout`` (at most a second) kept for dropping what did not close in
#: time and exiting, so the worker is gone before the arbiter's own deadline (then SIGKILL).
_FORCE_SHARE = 0.25
_FORCE_MARGIN_MAX = 1.0
#: Longest wait between two notifications of the arbiter.
_NOTIFY_INTERVAL = 1.0
#: How long the last resort (killing handlers still running) may take.
_KILL_TIMEOUT = 0.25
_SHUTTING_DOWN = "The server is shutting down."
#: The attribute of a worker's servers that holds its :class:`_HandlerTracker`.
_TRACKER_ATTRIBUTE = "geventws_handler_tracker"


class _HandlerTracker:
    """The handlers of one worker waiting for a request (idle keep-alive connections)."""

    def __init__(self) -> None:
        self.stopping = False
        self.idle: dict[Any, Any] = {}

    def close_idle(self) -> None:
        """Stop taking requests; end every handler that waits for one (from the hub, and
        only if it still waits when the hub gets to it)."""
        self.stopping = True
        loop = gevent.get_hub().loop
        for handler, waiting in list(self.idle.items()):
            loop.run_callback(self._end_if_idle, handler, waiting)

    def _end_if_idle(self, handler: Any, waiting: Any) -> None:
        still_waiting = self.idle.get(handler, None) is waiting
        if still_waiting and not waiting.dead:
            waiting.throw(GreenletExit)  # pywsgi closes the socket on its way out


class IdleTrackingHandler(PyWSGIHandler):  # type: ignore[misc]
    """gunicorn's ``PyWSGIHandler`` that lets a stopping worker close idle keep-alive
    connections at once (otherwise each would hold the graceful stop until it timed out)."""

    def read_requestline(self) -> Any:
        """pywsgi's wait for the next request line, noted as idle while it lasts."""
        tracker = getattr(self.server, _TRACKER_ATTRIBUTE, None)
        if tracker is None:
            return super().read_requestline()
        if tracker.stopping:
            return ""  # no new request once the worker stops: pywsgi closes the connection
        tracker.idle[self] = getcurrent()
        try:
            return super().read_requestline()
        finally:
            tracker.idle.pop(self, None)


class Worker(GeventPyWSGIWorker):  # type: ignore[misc]
    """gunicorn's gevent pywsgi worker, serving WebSocket upgrades through the WSGI app.

    Use it as ``gunicorn -k geventws.gunicorn.Worker module:app``. Subclass it to set
    :attr:`websocket_options` (``-k mymodule.MyWorker``). After startup,
    :attr:`websocket_server` is the worker's :class:`~geventws.server.WebSocketServer`.
    """

    #: gunicorn's access-logging handler (closing idle keep-alive connections on stop), with
    #: WebSocket upgrades mixed in.
    wsgi_handler = upgrade_handler_for(IdleTrackingHandler)
    #: Keyword options of the worker's WebSocketServer (see ``ServerOptions``), e.g.
    #: ``{"max_received_message_size": 65536, "close_timeout": 2000}``. Set it in a subclass,
    #: or on the worker in gunicorn's ``post_worker_init`` hook. ``application_upgrades`` is
    #: always True under this worker.
    websocket_options: Mapping[str, Any] = MappingProxyType({})
    #: Seconds to wait for closing handshakes after SIGQUIT or SIGINT (bounded by
    #: ``graceful_timeout`` as well); the Close 1001 goes out either way.
    quick_shutdown_timeout: float = 1.0
    #: The close code and reason sent to every open WebSocket when the worker stops.
    shutdown_close_code: int = CloseCode.GOING_AWAY
    shutdown_close_reason: str = _SHUTTING_DOWN

    #: The worker's WebSocketServer, once :meth:`run` has started the servers.
    websocket_server: WebSocketServer | None = None
    _stop_requested: Event | None = None
    _handlers: _HandlerTracker | None = None
    _quick = False
    _stopping_since: float | None = None

    # ------------------------------------------------------------------ options

    def websocket_server_options(self) -> dict[str, Any]:
        """The options the worker's WebSocketServer is built with.

        :attr:`websocket_options` with ``application_upgrades=True``; a subclass may
        override this to compute them (from ``self.cfg``, say).
        """
        options = dict(self.websocket_options)
        if options.get("application_upgrades", True) is not True:
            raise ValueError(
                "geventws.gunicorn.Worker serves upgrades through the WSGI application: "
                "application_upgrades cannot be turned off"
            )
        options["application_upgrades"] = True
        return options

    # ------------------------------------------------------------------ running

    def run(self) -> None:
        """Serve until a stop signal, then close every WebSocket with 1001 and drain.

        Invalid WebSocket options end the worker with gunicorn's boot error status, which
        stops gunicorn with the message in its log.
        """
        try:
            ws_server = WebSocketServer(**self.websocket_server_options())
        except (TypeError, ValueError) as error:
            # A boot error stops gunicorn with this message, rather than a restart loop.
            self.log.error("Invalid WebSocket options for %s: %s", type(self).__name__, error)
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
        self.websocket_server = ws_server
        self._stop_requested = Event()
        self._handlers = _HandlerTracker()
        servers = self._make_servers()
        for server in servers:
            setattr(server, _TRACKER_ATTRIBUTE, self._handlers)
        # Mounted before the servers start: no upgrade can slip through unserved.
        ws_server.mount(servers)
        for server in servers:
            server.start()
        while self.alive:
            self.notify()
            self._stop_requested.wait(_NOTIFY_INTERVAL)
        self._shut_down(servers, ws_server)

    def _make_servers(self) -> list[Any]:
        """One gunicorn ``PyWSGIServer`` per listening socket, as gunicorn's worker builds them."""
        ssl_args: dict[str, Any] = {}
        if self.cfg.is_ssl:
            ssl_args = {"ssl_context": ssl_context(self.cfg)}
        servers = []
        for listener in self.sockets:
            listener.setblocking(1)
            environ = base_environ(self.cfg)
            environ.update({"wsgi.multithread": True, "SERVER_SOFTWARE": VERSION})
            servers.append(
                self.server_class(
                    listener,
                    application=self.wsgi,
                    spawn=Pool(self.worker_connections),
                    log=self.log,
                    handler_class=self.wsgi_handler,
                    environ=environ,
                    **ssl_args,
                )
            )
        return servers

    # ------------------------------------------------------------------ signals

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """SIGTERM: stop gracefully, within ``graceful_timeout``."""
        super().handle_exit(sig, frame)
        self._wake()

    def handle_quit(self, sig: int, frame: FrameType | None) -> None:
        """SIGQUIT and SIGINT: stop quickly (the ``worker_int`` hook runs first)."""
        self.alive = False
        self._quick = True
        # Out of the signal handler, as gunicorn's gevent worker does: the hook may block.
        gevent.spawn(self._after_quit_signal)

    def _after_quit_signal(self) -> None:
        try:
            self.cfg.worker_int(self)
        finally:
            self._wake()

    def _wake(self) -> None:
        """Make :meth:`run` notice the stop now rather than at its next tick."""
        if self._stop_requested is not None:
            # A greenlet sets the event: the signal handler may be running inside the hub.
            gevent.spawn(self._stop_requested.set)

    # ------------------------------------------------------------------ shutting down

    def _deadline(self) -> float:
        """When the wait for the closing handshakes ends (it shrinks after SIGQUIT)."""
        assert self._stopping_since is not None
        graceful = float(self.cfg.graceful_timeout)
        budget = graceful - min(_FORCE_MARGIN_MAX, graceful * _FORCE_SHARE)
        if self._quick:
            budget = min(budget, self.quick_shutdown_timeout)
        return self._stopping_since + budget

    def _shut_down(self, servers: list[Any], ws_server: WebSocketServer) -> None:
        self._stopping_since = time.monotonic()
        for server in servers:
            server.close()  # stop accepting; the arbiter's listener stays open for others
        if ws_server.http_servers:
            ws_server.unmount()
        count = len(ws_server.connections)
        # Every Close goes out without waiting for slow peers; pending upgrades get 503.
        ws_server.close_all_connections(self.shutdown_close_code, self.shutdown_close_reason)
        if self._handlers is not None:
            self._handlers.close_idle()
        if count:
            self.log.info(
                "Closing %d WebSocket connection(s) with %d (pid:%s)",
                count,
                self.shutdown_close_code,
                self.pid,
            )
        drained = self._wait_for_handlers(servers)
        if count:
            elapsed = time.monotonic() - self._stopping_since
            self.log.info(
                "%d of %d WebSocket connection(s) closed in %.3f s (pid:%s)",
                count - len(ws_server.connections),
                count,
                elapsed,
                self.pid,
            )
        if drained:
            return
        self.log.warning(
            "Worker graceful timeout (pid:%s): dropping %d WebSocket connection(s)",
            self.pid,
            len(ws_server.connections),
        )
        for connection in list(ws_server.connections):
            connection.drop(self.shutdown_close_code, self.shutdown_close_reason)
        for server in servers:
            if not self._pool_empty(server):
                server.pool.join(timeout=_KILL_TIMEOUT)
                server.pool.kill(block=True, timeout=_KILL_TIMEOUT)

    def _wait_for_handlers(self, servers: list[Any]) -> bool:
        """Wait until every handler greenlet (WebSocket or HTTP) has finished, or the
        deadline; keep notifying the arbiter. True when all finished."""
        while True:
            busy = [server for server in servers if not self._pool_empty(server)]
            if not busy:
                return True
            remaining = self._deadline() - time.monotonic()
            if remaining <= 0:
                return False
            self.notify()
            busy[0].pool.join(timeout=min(_NOTIFY_INTERVAL, remaining))

    @staticmethod
    def _pool_empty(server: Any) -> bool:
        pool = server.pool
        return pool is None or len(pool) == 0
