"""gevent-websocket echo server for the benchmarks: geventwebsocket's WebSocketHandler on
gevent.pywsgi, the way its README shows.

    python gevent_websocket_echo.py --port PORT

gevent-websocket has no keepalive, no size limits and no broadcast helper: a text message
starting with "broadcast:" is sent, unchanged, to every open connection by a loop over the
open sockets (what applications of it do). Its optional C accelerator, wsaccel, is not
installed (it only speeds up UTF-8 validation; unmasking is pure Python either way).
"""

from __future__ import annotations

import argparse
import contextlib
import signal

import gevent
from gevent.event import Event
from gevent.pywsgi import WSGIServer
from geventwebsocket import WebSocketError
from geventwebsocket.handler import WebSocketHandler

clients: set = set()


def app(environ, start_response):  # type: ignore[no-untyped-def]
    ws = environ.get("wsgi.websocket")
    if ws is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    clients.add(ws)
    try:
        while True:
            message = ws.receive()
            if message is None:
                break
            if isinstance(message, str):
                if message.startswith("broadcast:"):
                    for client in list(clients):
                        with contextlib.suppress(WebSocketError):
                            client.send(message)
                else:
                    ws.send(message)
            else:
                ws.send(message, binary=True)
    except WebSocketError:
        pass
    finally:
        clients.discard(ws)
    return []


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = WSGIServer(("127.0.0.1", args.port), app, handler_class=WebSocketHandler, log=None)
    server.start()
    print(f"ready gevent-websocket on {args.port}", flush=True)
    stop = Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop.wait()
    server.stop(timeout=1)


if __name__ == "__main__":
    main()
