"""geventws: a WebSocket server for gevent (RFC 6455), with WebSocket-Node's server API.

Mount a :class:`WebSocketServer` on one or several ``gevent.pywsgi.WSGIServer`` (or
``StreamServer``) instances; upgrade requests become :class:`WebSocketRequest` objects to
accept or reject, and accepted ones :class:`WebSocketConnection` objects.
"""

# Imported for its effect: greenlets' freed data stacks are kept for the next ones.
from . import stack_chunks  # noqa: F401
from .close_codes import CLOSE_DESCRIPTIONS, CloseCode
from .connection import WebSocketConnection
from .cookies import Cookie
from .errors import (
    ConnectionClosedError,
    HandshakeError,
    ProtocolError,
    RequestResolvedError,
    WebSocketError,
)
from .frames import Frame, Opcode
from .handler import WebSocketHandler
from .header_lists import ExtensionParam, RequestedExtension
from .options import ServerOptions
from .request import WebSocketRequest
from .server import WebSocketServer
from .wsgi import upgrade_request

__version__ = "0.1.0"

#: WebSocket-Node's name for the frame class.
WebSocketFrame = Frame

__all__ = [
    "CLOSE_DESCRIPTIONS",
    "CloseCode",
    "ConnectionClosedError",
    "Cookie",
    "ExtensionParam",
    "Frame",
    "HandshakeError",
    "Opcode",
    "ProtocolError",
    "RequestResolvedError",
    "RequestedExtension",
    "ServerOptions",
    "WebSocketConnection",
    "WebSocketError",
    "WebSocketFrame",
    "WebSocketHandler",
    "WebSocketRequest",
    "WebSocketServer",
    "__version__",
    "upgrade_request",
]
