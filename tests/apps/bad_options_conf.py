"""A gunicorn config file with an option the WebSocketServer does not know (a boot error)."""

from __future__ import annotations

from typing import Any


def post_worker_init(worker: Any) -> None:
    """Sets an unknown WebSocketServer option."""
    worker.websocket_options = {"no_such_option": 1}
