"""A small chat: the page at / and its WebSocket at /chat, one WSGI application.

    python examples/chat_server.py [--host 127.0.0.1] [--port 8080] [--certfile C --keyfile K]
    gunicorn -k geventws.gunicorn.Worker examples.chat_server:app

Open http://127.0.0.1:8080/ in two tabs: what one tab sends, every tab shows. Each text
message is broadcast to every connected client as ``<name>: <text>``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
from typing import Any

import gevent
from gevent.event import Event
from gevent.pywsgi import WSGIServer

from geventws import WebSocketConnection, WebSocketServer, upgrade_request

PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>geventws chat</title>
<h1>geventws chat</h1>
<p id="status">connecting...</p>
<form id="form">
  <input id="name" placeholder="name" size="10">
  <input id="text" placeholder="message" autocomplete="off" autofocus>
  <button id="send">Send</button>
</form>
<ul id="messages"></ul>
<script>
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const ws = new WebSocket(scheme + location.host + "/chat");
const status = document.getElementById("status");
ws.onopen = () => { status.textContent = "connected"; };
ws.onclose = (event) => { status.textContent = "closed " + event.code; };
ws.onmessage = (event) => {
  const item = document.createElement("li");
  item.textContent = event.data;
  document.getElementById("messages").appendChild(item);
};
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const text = document.getElementById("text");
  const name = document.getElementById("name").value || "anonymous";
  if (text.value) { ws.send(JSON.stringify({name: name, text: text.value})); }
  text.value = "";
};
</script>
"""


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The chat as a WSGI application: the page at /, the WebSocket at /chat, 404 elsewhere.

    Served by this script (``main``) or by gunicorn with geventws's worker::

        gunicorn -k geventws.gunicorn.Worker examples.chat_server:app
    """
    path = environ["PATH_INFO"]
    if path == "/chat":
        request = upgrade_request(environ)
        if request is None:
            start_response("426 Upgrade Required", [("Content-Type", "text/plain")])
            return [b"/chat speaks WebSocket only\n"]
        serve_chat(request.accept())
        return []
    if path != "/":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [PAGE]


def chat_line(message: str | bytes) -> str | None:
    """Turn a client's JSON ``{"name", "text"}`` message into the line everyone sees."""
    if not isinstance(message, str):
        return None
    try:
        fields = json.loads(message)
        name = str(fields.get("name") or "anonymous")[:40]
        text = str(fields["text"])[:2000]
    except (ValueError, KeyError, AttributeError):
        return None
    return f"{name}: {text}"


def serve_chat(connection: WebSocketConnection) -> None:
    """Broadcast each line from ``connection`` to every client of its server, until it closes."""
    server = connection.server
    assert server is not None
    for message in connection:
        line = chat_line(message)
        if line is not None:
            server.broadcast_utf(line)


def main(argv: list[str] | None = None) -> None:
    """Serve the chat until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description="geventws chat example")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--certfile", help="serve https:// and wss:// with this certificate")
    parser.add_argument("--keyfile", help="the private key of --certfile")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    tls = {"certfile": args.certfile, "keyfile": args.keyfile} if args.certfile else {}
    http_server = WSGIServer((args.host, args.port), app, log=None, **tls)
    ws_server = WebSocketServer(http_server, application_upgrades=True)
    http_server.start()
    scheme = "https" if tls else "http"
    print(f"chat on {scheme}://{args.host}:{http_server.server_port}/", flush=True)
    stop = Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop.wait()
    ws_server.shut_down(1001)
    ws_server.wait_closed(ws_server.options.close_timeout / 1000.0)
    http_server.stop(timeout=ws_server.options.close_timeout / 1000.0)


if __name__ == "__main__":
    main()
