"""A worker subclass that sets WebSocketServer options, as users do with ``-k module.Class``."""

from __future__ import annotations

from geventws.gunicorn import Worker


class SmallMessagesWorker(Worker):
    """geventws's worker with messages capped at 16 bytes and a short close timeout."""

    websocket_options = {"max_received_message_size": 16, "close_timeout": 1500}  # noqa: RUF012
