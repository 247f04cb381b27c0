"""BroadcastPlan: how a broadcast reaches each kind of connection, checked byte for byte on the
far ends of socket pairs (the server-level broadcast tests are in test_server_mounting.py)."""

from __future__ import annotations

from collections.abc import Iterator

import gevent.socket
import pytest
from conftest import wait_until

from geventws import ServerOptions, WebSocketConnection
from geventws.broadcasting import BroadcastPlan
from geventws.extensions import RSV1, Extension
from geventws.frames import Opcode


class ReversingExtension(Extension):
    """Claims RSV1 and sends payloads reversed, so its frames differ from everyone else's."""

    name = "x-reverse"
    rsv_mask = RSV1

    def decode_frame(self, rsv: int, payload: bytes, fin: bool, max_size: int) -> bytes:
        return payload[::-1]

    def encode_message(self, opcode: int, payload: bytes) -> tuple[int, bytes]:
        return RSV1, payload[::-1]


class Pairs:
    """Connections over socket pairs (the reader never runs), and the far ends."""

    def __init__(self) -> None:
        self.sockets: list[gevent.socket.socket] = []

    def connection(
        self, *, extension: bool = False, **options: object
    ) -> tuple[WebSocketConnection, gevent.socket.socket]:
        ours, theirs = gevent.socket.socketpair()
        self.sockets += [ours, theirs]
        theirs.setblocking(False)
        connection = WebSocketConnection(
            ours,
            ServerOptions(keepalive=False).replace(**options),
            extensions=[ReversingExtension()] if extension else (),
        )
        return connection, theirs


@pytest.fixture
def pairs() -> Iterator[Pairs]:
    made = Pairs()
    yield made
    for sock in made.sockets:
        sock.close()


def received(theirs: gevent.socket.socket) -> bytes:
    """What has reached the far end so far (a socket pair delivers at once)."""
    data = b""
    while True:
        try:
            chunk = theirs.recv(65536)
        except BlockingIOError:
            return data
        assert chunk, "the connection's end closed"
        data += chunk


def test_the_plan_groups_connections_by_the_frames_they_get(pairs):
    at_10, _ = pairs.connection(fragmentation_threshold=10)
    whole, _ = pairs.connection(fragment_outgoing_messages=False)
    also_at_10, _ = pairs.connection(fragmentation_threshold=10)
    extended, _ = pairs.connection(extension=True)
    plan = BroadcastPlan([at_10, whole, also_at_10, extended])
    assert plan.own_frames == [extended]
    assert [(group.fragment_size, group.plain, group.others) for group in plan.groups] == [
        (10, [at_10, also_at_10], []),
        (None, [whole], []),
    ]
    assert plan.groups[0].sockets == [at_10._raw_socket, also_at_10._raw_socket]


def test_each_connection_gets_its_own_frames_and_dropped_ones_none(pairs, broadcast_writer):
    at_10, far_at_10 = pairs.connection(fragmentation_threshold=10)
    whole, far_whole = pairs.connection(fragment_outgoing_messages=False)
    extended, far_extended = pairs.connection(extension=True, fragmentation_threshold=10)
    dropped, far_dropped = pairs.connection()
    dropped.drop(1001, "bye")
    assert received(far_dropped) == b"\x88\x05\x03\xe9bye"
    plan = BroadcastPlan([at_10, whole, extended, dropped])

    text = "abcdefghijklmnopqrstuvwxy"  # 25 bytes
    plan.send(Opcode.TEXT, text.encode(), text)
    assert received(far_at_10) == b"\x01\x0aabcdefghij\x00\x0aklmnopqrst\x80\x05uvwxy"
    assert received(far_whole) == b"\x81\x19" + text.encode()
    # RSV1 on the first frame only, and the reversed payload cut at 10 bytes.
    assert received(far_extended) == b"\x41\x0ayxwvutsrqp\x00\x0aonmlkjihgf\x80\x05edcba"
    assert received(far_dropped) == b""

    plan.send(Opcode.BINARY, b"\x00\xff", b"\x00\xff")
    assert received(far_at_10) == b"\x82\x02\x00\xff"
    assert received(far_whole) == b"\x82\x02\x00\xff"
    assert received(far_extended) == b"\xc2\x02\xff\x00"
    assert received(far_dropped) == b""


def test_a_connection_busy_writing_gets_the_frames_after_what_it_writes(pairs, broadcast_writer):
    """While one connection's write lock is held (a write waiting for room), a broadcast
    reaches the others at once and queues behind that write for it."""
    idle, far_idle = pairs.connection()
    busy, far_busy = pairs.connection()
    lock = busy._lock_for_writing()
    lock.acquire()
    plan = BroadcastPlan([busy, idle])
    plan.send(Opcode.TEXT, b"now", "now")
    assert received(far_idle) == b"\x81\x03now"
    assert received(far_busy) == b""
    busy.socket.sendall(b"[what the holder wrote]")
    lock.release()
    expected = b"[what the holder wrote]\x81\x03now"
    got = bytearray()

    def arrived() -> bool:
        got.extend(received(far_busy))
        return len(got) >= len(expected)

    wait_until(arrived, what="the queued broadcast")
    assert bytes(got) == expected
