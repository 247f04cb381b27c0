"""A gunicorn config file that sets WebSocketServer options from the ``post_worker_init`` hook."""

from __future__ import annotations

from typing import Any

worker_class = "geventws.gunicorn.Worker"


def post_worker_init(worker: Any) -> None:
    """Runs in each worker before it builds its WebSocketServer."""
    worker.websocket_options = {"max_received_message_size": 8}
