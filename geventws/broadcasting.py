"""One message to many connections (``WebSocketServer.broadcast``).

The frames are encoded once per fragment size, and the plain sockets with room for them are
written by one C call (``send_each``) instead of a Python call each. Which connection takes
which path is sorted out once and kept (:class:`BroadcastPlan`) until a connection comes or
goes; what changes from one broadcast to the next (the connection closing, a write waiting for
room, answers being gathered) is checked at each.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence

from .accelerator import accelerated
from .connection import OPEN, WebSocketConnection, sockets_taking_frames_now
from .frames import encode_message

#: The C writer of one frame to many sockets, or None where it did not build: every
#: connection is then written in turn.
send_each: Callable[..., list[tuple[int, int]]] | None = accelerated("send_each")

logger = logging.getLogger("geventws.server")


class FragmentGroup:
    """The connections that get the very same frames: no extension, one fragment size."""

    __slots__ = ("fragment_size", "others", "plain", "sockets")

    def __init__(self, fragment_size: int | None) -> None:
        #: Where messages are cut into frames (None: never).
        self.fragment_size = fragment_size
        #: Connections on plain sockets, and those sockets in the same order.
        self.plain: list[WebSocketConnection] = []
        self.sockets: list[socket.socket] = []
        #: Connections gevent alone can write to (TLS).
        self.others: list[WebSocketConnection] = []


class BroadcastPlan:
    """The connections of one moment sorted by how a broadcast reaches them. It holds no
    state that changes while they are open, so it stays right until one comes or goes."""

    __slots__ = ("groups", "own_frames")

    def __init__(self, connections: Sequence[WebSocketConnection]) -> None:
        #: Connections with an extension (compression, say): each encodes its own frames.
        self.own_frames: list[WebSocketConnection] = []
        groups: dict[int | None, FragmentGroup] = {}
        for connection in connections:
            if connection.extensions:
                self.own_frames.append(connection)
                continue
            size = connection._protocol.fragment_size
            group = groups.get(size)
            if group is None:
                group = groups[size] = FragmentGroup(size)
            raw = connection._raw_socket
            if raw is None:
                group.others.append(connection)
            else:
                group.plain.append(connection)
                group.sockets.append(raw)
        self.groups = list(groups.values())

    def send(self, opcode: int, payload: bytes, data: str | bytes | bytearray | memoryview) -> None:
        """Send one message (``payload`` under ``opcode``; ``data`` as the caller gave it) to
        every connection of the plan that is still open, without waiting for any peer: what
        a socket does not take at once is written in the background."""
        for connection in self.own_frames:
            if connection.state == OPEN:
                try:
                    connection.send(data)
                except Exception:
                    logger.debug("broadcast to %r failed", connection, exc_info=True)
        for group in self.groups:
            frames = encode_message(opcode, payload, group.fragment_size)
            for connection in group.others:
                _write_in_background(connection, frames)
            writer = send_each
            if writer is None:
                for connection in group.plain:
                    _write_in_background(connection, frames)
                continue
            connections = group.plain
            sockets = sockets_taking_frames_now(connections, group.sockets)
            if sockets is None:  # some are closing or busy: they go the slow way
                connections, sockets = _take_busy_aside(connections, frames)
            for index, sent in writer(sockets, frames):
                if sent >= 0:  # (a failed send is the reader's to see and report)
                    connections[index]._write_rest_in_background(frames, sent)


def _write_in_background(connection: WebSocketConnection, frames: bytes) -> None:
    if connection.state == OPEN:
        try:
            connection._write_in_background(frames)
        except Exception:
            logger.debug("broadcast to %r failed", connection, exc_info=True)


def _take_busy_aside(
    connections: list[WebSocketConnection], frames: bytes
) -> tuple[list[WebSocketConnection], list[socket.socket]]:
    """Hand ``frames`` to the open connections whose sockets may not be written to now (they
    queue them behind what they are writing), and return the rest with their sockets."""
    ready: list[WebSocketConnection] = []
    sockets: list[socket.socket] = []
    for connection in connections:
        if connection.state != OPEN:
            continue
        raw = connection._socket_taking_frames_now()
        if raw is None:
            _write_in_background(connection, frames)
        else:
            ready.append(connection)
            sockets.append(raw)
    return ready, sockets
