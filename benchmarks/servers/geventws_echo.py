"""geventws echo server for the benchmarks (the approach of examples/echo_server.py).

    python geventws_echo.py --port PORT

Default options except: keepalive off (as for every peer) and the received frame/message
limits raised to 4 MiB (the defaults, 64 KiB per frame and 1 MiB per message, would refuse the
1 MiB single-frame messages of echo-large). Outgoing messages are fragmented at 16 KiB, the
default (WebSocket-Node does the same by default). A text message starting with
"broadcast:" is sent, unchanged, to every open connection with ``WebSocketServer.broadcast``.
"""

from __future__ import annotations

import argparse
import signal

import gevent
from gevent.event import Event
from gevent.pywsgi import WSGIServer

from geventws import WebSocketConnection, WebSocketRequest, WebSocketServer

LIMIT = 4 * 1024 * 1024


def app(environ, start_response):  # type: ignore[no-untyped-def]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    http_server = WSGIServer(("127.0.0.1", args.port), app, log=None)
    ws_server = WebSocketServer(
        http_server,
        keepalive=False,
        max_received_frame_size=LIMIT,
        max_received_message_size=LIMIT,
    )

    def on_message(connection: WebSocketConnection, data: str | bytes) -> None:
        if isinstance(data, str) and data.startswith("broadcast:"):
            ws_server.broadcast(data)
        else:
            connection.send(data)

    @ws_server.on("request")
    def accept(request: WebSocketRequest) -> None:
        connection = request.accept(None, request.origin)
        connection.on("message", lambda data: on_message(connection, data))

    http_server.start()
    print(f"ready geventws on {args.port}", flush=True)
    stop = Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop.wait()
    http_server.stop(timeout=1)


if __name__ == "__main__":
    main()
