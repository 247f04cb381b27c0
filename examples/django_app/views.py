"""The example's views: plain Django views, and one that answers a WebSocket upgrade.

The WebSocket view reads Django's session *before* answering the upgrade: without a user it
rejects with 403 and a reason; with one it accepts and echoes each text message as
``<name>: <text>`` (binary messages come back as they are). ``request.META`` is the WSGI
environ, which is where :func:`geventws.upgrade_request` finds the pending upgrade.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from geventws import upgrade_request

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>geventws + Django</title>
<h1>geventws + Django</h1>
<form id="login"><input id="name" placeholder="your name"> <button>Log in</button></form>
<form id="say"><input id="text" placeholder="message" autocomplete="off">
<button>Send</button></form>
<p id="status">not connected</p>
<ul id="log"></ul>
<script>
const status = document.getElementById("status");
let ws = null;
function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  ws = new WebSocket(scheme + location.host + "/ws");
  ws.onopen = () => { status.textContent = "connected"; };
  ws.onclose = (event) => { status.textContent = "closed " + event.code; };
  ws.onmessage = (event) => {
    const item = document.createElement("li");
    item.textContent = event.data;
    document.getElementById("log").appendChild(item);
  };
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


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The page with the little WebSocket client."""
    return HttpResponse(PAGE)


@csrf_exempt  # the page posts with fetch(); a real form would carry {% csrf_token %}
@require_POST
def login(request: HttpRequest) -> HttpResponse:
    """Store the posted ``name`` in the session (a signed cookie, see ``settings.py``)."""
    name = (request.POST.get("name") or "").strip()[:40]
    if not name:
        return JsonResponse({"error": "a name is required"}, status=400)
    request.session["user"] = name
    return JsonResponse({"user": name})


@require_GET
def health(request: HttpRequest) -> HttpResponse:
    """A JSON health check."""
    return JsonResponse({"status": "ok"})


@require_GET
def websocket(request: HttpRequest) -> HttpResponse:
    """The WebSocket: check the origin and the session, then accept (echo) or reject (403)."""
    ws_request = upgrade_request(request.META)
    if ws_request is None:
        # A plain GET (or an invalid handshake, already answered with 400/426).
        response = HttpResponse("This route speaks WebSocket.\n", status=426)
        response["Content-Type"] = "text/plain"
        response["Upgrade"] = "websocket"
        return response
    # Browsers send cookies with cross-site WebSocket handshakes too: check where it came from.
    if ws_request.origin not in (None, f"{request.scheme}://{request.get_host()}"):
        ws_request.reject(403, "Origin not allowed.")
        return HttpResponse(status=403)  # discarded: the client has its answer
    user = request.session.get("user")
    if not user:
        ws_request.reject(403, "Log in first: POST /login with a name.")
        return HttpResponse(status=403)  # discarded
    connection = ws_request.accept()
    for message in connection:  # until the connection closes
        connection.send(f"{user}: {message}" if isinstance(message, str) else message)
    return HttpResponse()  # discarded
