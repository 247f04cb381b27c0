"""The exceptions geventws raises."""

from __future__ import annotations

from collections.abc import Mapping


class WebSocketError(Exception):
    """Base class of every exception geventws raises on its own account."""


class ProtocolError(WebSocketError):
    """The peer broke RFC 6455: the connection must be failed with ``code`` and ``reason``.

    ``code`` is the close status to send (1002, 1007, 1009, ...); ``reason`` its text.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = int(code)
        self.reason = reason


class HandshakeError(WebSocketError):
    """An opening handshake that cannot be accepted, with the HTTP answer it deserves.

    ``status`` is the HTTP status to send, ``reason`` goes into ``X-WebSocket-Reject-Reason``
    and ``headers`` are sent as well (for example ``Sec-WebSocket-Version`` on a 426).
    """

    def __init__(
        self, reason: str, status: int = 400, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers: dict[str, str] = dict(headers or {})


class ConnectionClosedError(WebSocketError):
    """An operation needed an open connection and it is closing or closed.

    ``code`` and ``description`` are the connection's close reason, when known.
    """

    def __init__(self, code: int, description: str | None) -> None:
        super().__init__(f"connection closed ({code} {description or ''})".rstrip())
        self.code = code
        self.description = description


class RequestResolvedError(WebSocketError):
    """``accept()`` or ``reject()`` was called on a request that was already answered."""
