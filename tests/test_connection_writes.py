"""How sends reach the socket and big payloads come from it, and that the peer sees the same
frames either way.

Answers to several messages that arrived together are written together (one system call for
the chunk, not one per message): the order of every frame holds, answers go out while a
listener waits, and before a Close. Big messages go out in one gathering write of headers and
payload pieces; what the socket does not take at once follows in order. The rest of a big
received payload is read straight into the message's memory.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import gevent
from conftest import wait_until
from gevent.event import Event
from rawclient import RawClient, client_frame

from geventws import WebSocketConnection
from geventws.frames import Opcode

WAIT = 5.0


class CountingSocket:
    """The connection's plain socket, passed through, counting the writes made on it and the
    reads made into a given buffer."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.sends = 0
        self.gathering_sends = 0
        self.bytes_read_into = 0
        #: The sends (with their data and flags) and shutdowns, in order.
        self.calls: list[tuple[Any, ...]] = []

    def recv_into(self, buffer: Any) -> int:
        count = int(self.raw.recv_into(buffer))
        self.bytes_read_into += count
        return count

    def send(self, data: Any, flags: int = 0) -> int:
        self.sends += 1
        self.calls.append(("send", bytes(data), flags))
        return int(self.raw.send(data, flags))

    def sendmsg(self, buffers: Any) -> int:
        self.gathering_sends += 1
        return int(self.raw.sendmsg(buffers))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def count_writes(connection: WebSocketConnection) -> CountingSocket:
    """Count the writes the connection makes from now on."""
    counting = CountingSocket(connection._raw_socket)
    connection._raw_socket = counting  # type: ignore[assignment]
    return counting


def texts(*names: str) -> bytes:
    """Masked client text frames, back to back, for one write."""
    return b"".join(client_frame(Opcode.TEXT, name.encode()) for name in names)


def test_answers_to_a_chunk_keep_their_order_around_an_automatic_pong(serve):
    served = serve()
    with RawClient(served.port) as client:
        client.handshake()
        client.send_raw(texts("a", "b") + client_frame(Opcode.PING, b"p") + texts("c", "d"))
        assert [client.read_message(), client.read_message()] == ["a", "b"]
        frame = client.read_frame()
        assert (frame.opcode, frame.payload) == (Opcode.PONG, b"p")
        assert [client.read_message(), client.read_message()] == ["c", "d"]
        client.close_handshake()
    served.wait_for_event("close")


def test_a_chunk_of_many_messages_is_answered_whole_in_order_and_with_one_write(serve):
    served = serve()
    names = [f"message-{number}" for number in range(200)]
    with RawClient(served.port) as client:
        client.handshake()
        ((_, connection),) = served.wait_for_event("connect")
        counting = count_writes(connection)
        client.send_raw(texts(*names))
        assert [client.read_message() for _ in names] == names
        # One write per read the server made of the 200 frames (7 KiB: one or a few), not
        # one per answer.
        assert 1 <= counting.sends <= 5
        client.close_handshake()
    served.wait_for_event("close")


def test_what_a_listener_sent_goes_out_when_it_then_waits(serve):
    """The listener of the first message answers, then waits until the client has that
    answer: were the answer held back for the rest of the chunk, neither would ever come."""
    client_has_it = Event()

    def on_connect(connection: WebSocketConnection) -> None:
        def on_message(data: str | bytes) -> None:
            connection.send(f"answer to {data}")
            if data == "first":
                assert client_has_it.wait(WAIT)

        connection.on("message", on_message)

    served = serve(on_connect=on_connect)
    with RawClient(served.port) as client:
        client.handshake()
        client.send_raw(texts("first", "second"))
        assert client.read_message() == "answer to first"
        client_has_it.set()
        assert client.read_message() == "answer to second"
        client.close_handshake()
    served.wait_for_event("close")


def echo_except(
    commands: dict[str, Callable[[WebSocketConnection], None]],
) -> Callable[[WebSocketConnection], None]:
    """A ``connect`` listener: echo every message but the texts named in ``commands``, for
    which it runs the command with the connection instead."""

    def on_connect(connection: WebSocketConnection) -> None:
        def on_message(data: str | bytes) -> None:
            command = commands.get(data) if isinstance(data, str) else None
            if command is not None:
                command(connection)
            else:
                connection.send(data)

        connection.on("message", on_message)

    return on_connect


def send_then_close(connection: WebSocketConnection) -> None:
    connection.send("closing")
    connection.close(1000, "done")


def send_then_drop(connection: WebSocketConnection) -> None:
    connection.send("dropping")
    connection.drop(1000, "dropped", skip_close_frame=True)


def test_answers_go_out_before_a_close_or_drop_made_by_a_later_listener(serve):
    on_connect = echo_except({"close": send_then_close, "drop": send_then_drop})
    served = serve(on_connect=on_connect)
    with RawClient(served.port) as client:
        client.handshake()
        client.send_raw(texts("one", "close"))
        assert [client.read_message(), client.read_message()] == ["one", "closing"]
        frame = client.read_until_close()
        assert (frame.close_code, frame.close_reason) == (1000, "done")
        client.send_close(1000)
        client.expect_eof()
    with RawClient(served.port) as client:
        client.handshake()
        client.send_raw(texts("two", "drop"))
        assert [client.read_message(), client.read_message()] == ["two", "dropping"]
        client.expect_eof()  # no Close frame: skipped
    assert len(served.wait_for_event("close", 2)) == 2


def test_a_broadcast_from_a_listener_keeps_its_place_among_the_answers(serve):
    on_connect = echo_except({"everyone": lambda connection: served.ws.broadcast("to all")})
    served = serve(on_connect=on_connect)
    with RawClient(served.port) as client:
        client.handshake()
        client.send_raw(texts("before", "everyone", "after"))
        assert [client.read_message() for _ in range(3)] == ["before", "to all", "after"]
        client.close_handshake()
    served.wait_for_event("close")


def test_big_messages_to_a_peer_that_reads_late_arrive_whole_and_in_order(serve):
    """Sent while the client reads nothing, the socket takes only part of the big messages
    (24 MiB: more than loopback buffers hold); the rest, and a small message after them,
    follow in order once it reads."""
    big = [bytes([number]) * (8 << 20) for number in range(3)]
    senders: list[WebSocketConnection] = []
    counted: list[CountingSocket] = []

    def on_connect(connection: WebSocketConnection) -> None:
        def send_all() -> None:
            for message in big:
                connection.send(message)
            connection.send("small")

        senders.append(connection)
        counted.append(count_writes(connection))
        connection.on("message", lambda data: gevent.spawn(send_all))

    served = serve(on_connect=on_connect)
    with RawClient(served.port) as client:
        client.handshake()
        client.send_text("go")
        assert [client.read_message() for _ in range(4)] == [*big, "small"]
        # Each big message went out through a gathering write first (the first for certain;
        # the others when the socket had room then), and a write had to wait for room: the
        # part a gathering write left went the slow way.
        assert counted[0].gathering_sends >= 1
        assert senders[0]._write_lock is not None
        client.close_handshake()
    served.wait_for_event("close")


def test_a_big_payload_is_read_into_its_message_and_echoed_whole(serve):
    """A 1 MiB binary frame sent in one write: after the read that brings its header, the
    rest of the payload is read into the message's own memory (no read buffers), unmasked
    there; the echo is the message, and a small message right behind it comes back too."""
    payload = bytes(range(251)) * 4200  # 1,054,200 bytes, no period of 4 (the mask's)
    counted: list[CountingSocket] = []

    def on_connect(connection: WebSocketConnection) -> None:
        counted.append(count_writes(connection))  # before the reader starts: it reads through it
        connection.on("message", connection.send)

    served = serve(
        on_connect=on_connect, max_received_frame_size=2 << 20, max_received_message_size=2 << 20
    )
    with RawClient(served.port) as client:
        client.handshake()
        client.send_raw(
            client_frame(Opcode.BINARY, payload) + client_frame(Opcode.TEXT, b"behind it")
        )
        assert client.read_message() == payload
        assert client.read_message() == "behind it"
        # The first read (at most 64 KiB) brought the header; most of the rest came by
        # recv_into the payload buffer, and nothing past the payload did.
        assert len(payload) - 65536 <= counted[0].bytes_read_into <= len(payload)
        client.close_handshake()
    served.wait_for_event("close")


def test_a_peer_that_leaves_in_the_middle_of_a_big_payload_is_a_dropped_connection(serve):
    """The client sends the header and 200 KB of a 1 MiB frame, then its FIN: the reader,
    waiting in the payload buffer, sees the end of the stream; no message is delivered and
    the connection closes with 1006."""
    messages: list[Any] = []

    def on_connect(connection: WebSocketConnection) -> None:
        connection.on("message", messages.append)

    served = serve(
        on_connect=on_connect, max_received_frame_size=2 << 20, max_received_message_size=2 << 20
    )
    frame = client_frame(Opcode.BINARY, b"\xab" * (1 << 20))
    with RawClient(served.port) as client:
        client.handshake()
        ((_, connection),) = served.wait_for_event("connect")
        client.send_raw(frame[:200_000])
        # The payload buffer is there once the first read is in; more is due.
        wait_until(lambda: connection._protocol.payload_pending, what="the payload buffer")
        client.shutdown_write()
        ((_, _, code, description),) = served.wait_for_event("close")
        assert (code, description) == (1006, "Connection dropped by remote peer.")
        assert client.expect_eof(timeout=WAIT) == b""
    assert messages == []


def test_big_messages_kept_by_the_application_stay_intact_while_others_are_reused(serve):
    """Big binary messages (received through the payload buffer) of one size, each different:
    the application keeps every other one and lets go of the rest, whose memory may receive
    later messages (see masking.release_spare_payloads). Every message arrives as sent, is
    echoed whole, and the kept ones never change."""
    size = 100_000
    sent = [
        bytes([fill]) * 7 + bytes(range(251)) * 398 + bytes([fill]) * (size - 7 - 99_898)
        for fill in range(12)
    ]
    kept: list[bytes] = []
    seen: list[bool] = []
    let_go: set[int] = set()  # ids of the messages let go of (the spare list keeps them)
    reused: list[int] = []

    def on_connect(connection: WebSocketConnection) -> None:
        def on_message(data: Any) -> None:
            seen.append(data == sent[len(seen)])
            if id(data) in let_go:
                reused.append(id(data))
            if len(seen) % 2:
                kept.append(data)
            else:
                let_go.add(id(data))
            connection.send(data)

        connection.on("message", on_message)

    served = serve(on_connect=on_connect, max_received_frame_size=size)
    with RawClient(served.port) as client:
        client.handshake()
        for payload in sent:
            client.send_raw(client_frame(Opcode.BINARY, payload))
            assert client.read_message() == payload
        client.close_handshake()
    served.wait_for_event("close")
    assert seen == [True] * len(sent)
    assert kept == sent[0::2]
    assert reused  # (the C accelerator is built here: see test_accelerator.py)


def test_the_answer_to_a_close_and_the_fin_go_out_together(serve):
    """The peer's Close is answered (with its code) with MSG_MORE (Linux holds it back),
    then at once shutdown(SHUT_WR), whose FIN goes out with it in one segment. The client
    reads the Close, then the end of the stream, and the connection closes with its code."""
    counted: list[CountingSocket] = []

    def on_connect(connection: WebSocketConnection) -> None:
        counting = count_writes(connection)
        counted.append(counting)
        connection.socket = _RecordingShutdown(connection.socket, counting.calls)

    served = serve(on_connect=on_connect)
    with RawClient(served.port) as client:
        client.handshake()
        client.send_raw(client_frame(Opcode.CLOSE, b"\x03\xe8bye"))
        frame = client.read_frame()
        assert (frame.opcode, frame.payload) == (Opcode.CLOSE, b"\x03\xe8")  # the code only
        assert client.expect_eof() == b""
    ((_, _, code, description),) = served.wait_for_event("close")
    assert (code, description) == (1000, "bye")
    # (Without MSG_MORE, on macOS or Windows: the Close with no flag, then FIN.)
    more = getattr(socket, "MSG_MORE", 0)
    assert counted[0].calls == [("send", b"\x88\x02\x03\xe8", more), ("shutdown", socket.SHUT_WR)]


class _RecordingShutdown:
    """The connection's gevent socket, passed through, adding its shutdowns to ``calls``."""

    def __init__(self, sock: Any, calls: list[tuple[Any, ...]]) -> None:
        self._sock_object = sock
        self._calls = calls

    def shutdown(self, how: int) -> None:
        self._calls.append(("shutdown", how))
        self._sock_object.shutdown(how)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock_object, name)
