"""A small chat: the page at / and its WebSocket at /chat, served by one process.

    python examples/chat_server.py [--host 127.0.0.1] [--port 8080]

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

from geventws import WebSocketConnection, WebSocketRequest, WebSocketServer

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


def page(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The WSGI application for plain HTTP: the chat page at /, 404 elsewhere."""
    if environ["PATH_INFO"] != "/":
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


def make_chat(ws_server: WebSocketServer) -> None:
    """Wire the chat onto ``ws_server``: accept /chat, broadcast every line."""

    @ws_server.on("request")
    def on_request(request: WebSocketRequest) -> None:
        if request.resource_url.path != "/chat":
            request.reject(404, "Only /chat speaks WebSocket here.")
            return
        request.accept()

    @ws_server.on("connect")
    def on_connect(connection: WebSocketConnection) -> None:
        def on_message(message: str | bytes) -> None:
            line = chat_line(message)
            if line is not None:
                ws_server.broadcast_utf(line)

        connection.on("message", on_message)


def main(argv: list[str] | None = None) -> None:
    """Serve the chat until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description="geventws chat example")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    http_server = WSGIServer((args.host, args.port), page, log=None)
    ws_server = WebSocketServer(http_server)
    make_chat(ws_server)
    http_server.start()
    print(f"chat on http://{args.host}:{http_server.server_port}/", flush=True)
    stop = Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop.wait()
    ws_server.shut_down()
    http_server.stop(timeout=ws_server.options.close_timeout / 1000.0)


if __name__ == "__main__":
    main()
