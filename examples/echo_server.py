"""Echo server: every message comes back to its sender, with the same type (text or binary).

    python examples/echo_server.py [--host 127.0.0.1] [--port 8080] [--<option> VALUE ...]

Every server option is a flag: ``--max-received-frame-size 16777216``, ``--no-keepalive``,
``--fragmentation-threshold 4096``, ... (``--help`` lists them). A browser opening
http://127.0.0.1:8080/ gets a small page that talks to the same address over WebSocket.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from dataclasses import fields
from typing import Any

import gevent
from gevent.event import Event
from gevent.pywsgi import WSGIServer

from geventws import ServerOptions, WebSocketConnection, WebSocketRequest, WebSocketServer

PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>geventws echo</title>
<h1>geventws echo</h1>
<form id="form"><input id="text" autocomplete="off" autofocus> <button>Send</button></form>
<pre id="log"></pre>
<script>
const log = (line) => { document.getElementById("log").textContent += line + "\\n"; };
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const ws = new WebSocket(scheme + location.host + "/");
ws.onopen = () => log("connected");
ws.onmessage = (event) => log("echo: " + event.data);
ws.onclose = (event) => log("closed " + event.code);
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  ws.send(input.value);
  input.value = "";
};
</script>
"""


def page(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The WSGI application for plain HTTP: the page at /, 404 elsewhere."""
    if environ["PATH_INFO"] != "/":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [PAGE]


def option_parser() -> argparse.ArgumentParser:
    """Command-line flags: --host, --port, TLS files, and one flag per server option."""
    parser = argparse.ArgumentParser(description="geventws echo server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--certfile", help="serve wss:// with this certificate (PEM)")
    parser.add_argument("--keyfile", help="the certificate's private key (PEM)")
    parser.add_argument("--log-level", default="WARNING")
    defaults = ServerOptions()
    group = parser.add_argument_group("server options (defaults as in the seed)")
    for option in fields(ServerOptions):
        flag = "--" + option.name.replace("_", "-")
        default = getattr(defaults, option.name)
        if option.type == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif option.type == "int":
            group.add_argument(flag, type=int, default=default, metavar="N")
        elif option.type == "float":
            group.add_argument(flag, type=float, default=default, metavar="MS")
        else:
            group.add_argument(flag, nargs="*", default=default, metavar="NETWORK")
    return parser


def echo(connection: WebSocketConnection) -> None:
    """Send every message of ``connection`` back to it."""
    connection.on("message", connection.send)


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and serve until SIGINT or SIGTERM."""
    args = vars(option_parser().parse_args(argv))
    logging.basicConfig(level=args.pop("log_level").upper(), stream=sys.stderr)
    host, port = args.pop("host"), args.pop("port")
    certfile, keyfile = args.pop("certfile"), args.pop("keyfile")
    tls = {"certfile": certfile, "keyfile": keyfile} if certfile else {}
    http_server = WSGIServer((host, port), page, log=None, **tls)
    ws_server = WebSocketServer(http_server, **args)

    @ws_server.on("request")
    def accept(request: WebSocketRequest) -> None:
        protocols = request.requested_protocols
        request.accept(protocols[0] if protocols else None)

    ws_server.on("connect", echo)
    http_server.start()
    scheme = "wss" if tls else "ws"
    print(f"echo server listening on {scheme}://{host}:{http_server.server_port}/", flush=True)
    stop = Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop.wait()
    ws_server.shut_down()
    http_server.stop(timeout=ws_server.options.close_timeout / 1000.0)


if __name__ == "__main__":
    main()
