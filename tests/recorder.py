"""Shared helpers of the connection tests: a recording ``connect`` listener, and opening a
raw client against a served WebSocketServer."""

from __future__ import annotations

import socket
from typing import Any

from conftest import wait_until
from rawclient import RawClient

from geventws import WebSocketConnection


class Recorder:
    """``on_connect`` callback: keeps connections and their events; echoes if asked."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.connections: list[WebSocketConnection] = []
        self.events: list[tuple[Any, ...]] = []

    def __call__(self, connection: WebSocketConnection) -> None:
        self.connections.append(connection)

        def on_message(message: str | bytes) -> None:
            self.events.append(("message", message))
            if self.echo and connection.state == "open":
                connection.send(message)

        connection.on("message", on_message)
        self.listen(connection)

    def listen(self, connection: WebSocketConnection) -> None:
        """Record ``close`` and ``error`` events of ``connection``."""
        connection.on("close", lambda code, text: self.events.append(("close", code, text)))
        connection.on("error", lambda error: self.events.append(("error", error)))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        """The recorded events called ``name``."""
        return [event for event in self.events if event[0] == name]

    @property
    def messages(self) -> list[str | bytes]:
        """The messages received, in order."""
        return [event[1] for event in self.named("message")]

    @property
    def closes(self) -> list[tuple[int, str | None]]:
        """The (code, description) of every ``close`` event."""
        return [(event[1], event[2]) for event in self.named("close")]

    @property
    def errors(self) -> list[BaseException]:
        """The exceptions of every ``error`` event."""
        return [event[1] for event in self.named("error")]


def open_client(served: Any, recorder: Any) -> tuple[RawClient, WebSocketConnection]:
    """Connect a RawClient, complete the handshake, and return it with the server's side."""
    client = RawClient(served.port)
    assert client.handshake().status == 101
    wait_until(lambda: recorder.connections, what="the connection")
    return client, recorder.connections[-1]


def nothing_arrives(client: RawClient, seconds: float) -> bool:
    """A bounded negative check: True if the server sent nothing (and kept TCP open) for
    ``seconds``."""
    if client.buffer:
        return False
    client.sock.settimeout(seconds)
    try:
        client.sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        return True
    finally:
        client.sock.settimeout(5.0)
    return False
