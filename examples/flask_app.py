"""Flask with a WebSocket route: plain pages, a login, and /ws that only logged-in users open.

    gunicorn -k geventws.gunicorn.Worker examples.flask_app:app     (from the repository root)
    python examples/flask_app.py [--host 127.0.0.1] [--port 8080]

Routes: ``/`` a page with a small client, ``POST /login`` (form field ``name``) stores the name
in Flask's session cookie, ``/health`` JSON, and ``/ws``: the view reads the session *before*
answering the upgrade. Without a user it rejects with 403 and a reason; with one it accepts
and echoes each text message as ``<name>: <text>`` (binary messages come back as they are).
Set ``SECRET_KEY`` in the environment for anything but a local try-out.
"""

if __name__ == "__main__":  # as a script: patch first, before anything imports socket
    from gevent import monkey

    monkey.patch_all()

import argparse
import logging
import os
import signal

import gevent
from flask import Flask, jsonify, request, session
from flask.typing import ResponseReturnValue
from gevent.event import Event
from gevent.pywsgi import WSGIServer

from geventws import WebSocketServer, upgrade_request

app = Flask(__name__)
app.secret_key = os.environ.get("SECRET_KEY", "geventws-example-only")

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>geventws + Flask</title>
<h1>geventws + Flask</h1>
<form id="login"><input id="name" placeholder="your name"> <button>Log in</button></form>
<form id="say"><input id="text" placeholder="message" autocomplete="off">
<button>Send</button></form>
<p id="status">not connected</p>
<ul id="log"></ul>
<script>
const status = document.getElementById("status");
let ws = null;
function show(text) {
  const item = document.createElement("li");
  item.textContent = text;
  document.getElementById("log").appendChild(item);
}
function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  ws = new WebSocket(scheme + location.host + "/ws");
  ws.onopen = () => { status.textContent = "connected"; };
  ws.onclose = (event) => { status.textContent = "closed " + event.code; };
  ws.onmessage = (event) => show(event.data);
}
document.getElementById("login").onsubmit = async (event) => {
  event.preventDefault();
  const body = new URLSearchParams({name: document.getElementById("name").value});
  await fetch("/login", {method: "POST", body: body});
  connect();
};
document.getElementById("say").onsubmit = (event) => {
  event.preventDefault();
  const text = document.getElementById("text");
  if (ws && text.value) { ws.send(text.value); }
  text.value = "";
};
connect();  // before logging in: the server refuses (403), the page shows "closed 1006"
</script>
"""


@app.get("/")
def index() -> str:
    """The page with the little WebSocket client."""
    return PAGE


@app.post("/login")
def login() -> ResponseReturnValue:
    """Store the posted ``name`` in the session (Flask's signed cookie)."""
    name = (request.form.get("name") or "").strip()[:40]
    if not name:
        return jsonify(error="a name is required"), 400
    session["user"] = name
    return jsonify(user=name)


@app.get("/health")
def health() -> ResponseReturnValue:
    """A JSON health check."""
    return jsonify(status="ok")


# Werkzeug routes an upgrade request (Connection: Upgrade, Upgrade: websocket) only to a rule
# declared with websocket=True (any other match is a 400); the plain rule takes plain GETs.
@app.get("/ws", websocket=True)
@app.get("/ws")
def websocket() -> ResponseReturnValue:
    """The WebSocket: check the origin and the session, then accept (echo) or reject (403)."""
    ws_request = upgrade_request(request.environ)
    if ws_request is None:
        # A plain GET (or an invalid handshake, already answered with 400/426).
        headers = {"Upgrade": "websocket", "Content-Type": "text/plain"}
        return "This route speaks WebSocket.\n", 426, headers
    # Browsers send cookies with cross-site WebSocket handshakes too: check where it came from.
    if ws_request.origin not in (None, f"{request.scheme}://{request.host}"):
        ws_request.reject(403, "Origin not allowed.")
        return "", 403  # discarded: the client has its answer
    user = session.get("user")
    if not user:
        ws_request.reject(403, "Log in first: POST /login with a name.")
        return "", 403  # discarded
    connection = ws_request.accept()
    for message in connection:  # until the connection closes
        connection.send(f"{user}: {message}" if isinstance(message, str) else message)
    return ""  # discarded


def main(argv: list[str] | None = None) -> None:
    """Serve the app on gevent's WSGIServer until SIGINT or SIGTERM (then Close 1001)."""
    parser = argparse.ArgumentParser(description="geventws Flask example")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    http_server = WSGIServer((args.host, args.port), app)
    ws_server = WebSocketServer(http_server, application_upgrades=True)
    http_server.start()
    print(f"Flask example on http://{args.host}:{http_server.server_port}/", flush=True)
    stop = Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop.wait()
    seconds = ws_server.options.close_timeout / 1000.0
    ws_server.shut_down(1001)
    ws_server.wait_closed(seconds)
    http_server.stop(timeout=seconds)


if __name__ == "__main__":
    main()
