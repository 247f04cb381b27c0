"""WebSocketConnection's API over real sockets: sending, control frames, events, the
blocking style, concurrency and fairness, and a third-party client (``websockets``)."""

from __future__ import annotations

import fcntl
import logging
import socket
import struct
import termios
import time
from typing import Any

import gevent
import pytest
from conftest import in_thread, wait_until
from gevent.event import Event
from rawclient import RawClient, client_frame
from recorder import Recorder, open_client

from geventws import CloseCode, ConnectionClosedError, Frame, Opcode, WebSocketConnection

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


class Connections:
    """``on_connect`` callback that only remembers the connections (no listeners)."""

    def __init__(self) -> None:
        self.connections: list[WebSocketConnection] = []

    def __call__(self, connection: WebSocketConnection) -> None:
        self.connections.append(connection)


def unread_bytes(sock: Any) -> int:
    """Bytes waiting in ``sock``'s receive queue (FIONREAD)."""
    raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", raw)[0])


def unsent_bytes(sock: Any) -> int:
    """Bytes in ``sock``'s send queue not yet taken by the peer (TIOCOUTQ)."""
    raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    return int(struct.unpack("i", raw)[0])


def close_from_client(client: RawClient, code: int = 1000) -> None:
    client.close_handshake(code)


# ------------------------------------------------------------------ attributes


def test_a_new_connection_describes_itself(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with RawClient(served.port) as client:
        response = client.handshake(headers={"Sec-WebSocket-Protocol": "Chat, other"})
        assert response.status == 101
        wait_until(lambda: recorder.connections, what="the connection")
        connection = recorder.connections[0]
        assert connection.connected is True
        assert connection.state == "open"
        assert connection.close_reason_code == -1
        assert connection.close_description is None
        assert connection.protocol == "Chat"
        assert connection.extensions == []
        assert connection.remote_address == "127.0.0.1"
        assert connection.remote_addresses == ["127.0.0.1"]
        assert connection.web_socket_version == 13
        assert connection in served.ws.connections
        assert connection.wait_closed(0) is False
        close_from_client(client)
    assert connection.wait_closed(2) is True
    assert connection not in served.ws.connections


def test_close_reason_constants():
    # WebSocket-Node's constants (its table has no 1012-1014); values pinned in test_close_codes.
    names = [code.name for code in CloseCode if code not in (1012, 1013, 1014)]
    for name in names:
        assert getattr(WebSocketConnection, f"CLOSE_REASON_{name}") == CloseCode[name]


# ------------------------------------------------------------------ sending


def test_send_picks_text_or_binary_by_type(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        connection.send("h\u00e9llo \U0001f600")
        connection.send(b"\x00bytes")
        connection.send(bytearray(b"\x01bytearray"))
        connection.send(memoryview(b"\x02memoryview-and-more")[:11])
        connection.send_utf("send_utf")
        connection.send_bytes(b"send_bytes")
        frames = [client.read_frame() for _ in range(6)]
        assert [(f.opcode, f.fin, f.masked, f.payload) for f in frames] == [
            (TEXT, True, False, "h\u00e9llo \U0001f600".encode()),
            (BINARY, True, False, b"\x00bytes"),
            (BINARY, True, False, b"\x01bytearray"),
            (BINARY, True, False, b"\x02memoryview"),
            (TEXT, True, False, b"send_utf"),
            (BINARY, True, False, b"send_bytes"),
        ]
        close_from_client(client)


def test_short_messages_go_out_with_the_exact_two_byte_header_up_to_125_bytes(serve):
    # Up to 125 bytes the header comes from a table; from 126 on the general encoder writes a
    # 16-bit length: the bytes on the wire at both sides of that line, text and binary.
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        sent = ["", "t" * 125, "t" * 126, b"", b"b" * 125, b"b" * 126]
        for data in sent:
            connection.send(data)
        expected = (
            b"\x81\x00"
            + b"\x81\x7d"
            + b"t" * 125
            + b"\x81\x7e\x00\x7e"
            + b"t" * 126
            + b"\x82\x00"
            + b"\x82\x7d"
            + b"b" * 125
            + b"\x82\x7e\x00\x7e"
            + b"b" * 126
        )
        assert client._read_exact(len(expected)) == expected
        close_from_client(client)


@pytest.mark.parametrize(
    ("call", "value", "type_name"),
    [
        ("send", 123, "int"),
        ("send", None, "NoneType"),
        ("send", 1.5, "float"),
        ("send", ["list"], "list"),
        ("send_utf", b"bytes", "bytes"),
        ("send_bytes", "text", "str"),
    ],
)
def test_send_with_a_wrong_type_raises_type_error_and_sends_nothing(serve, call, value, type_name):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        with pytest.raises(TypeError, match=rf"\b{type_name}\b"):
            getattr(connection, call)(value)
        assert connection.state == "open"
        client.send_text("marker")  # the first frame back is the echo: nothing was sent
        frame = client.read_frame()
        assert (frame.opcode, frame.payload) == (TEXT, b"marker")
        close_from_client(client)


def test_send_after_close_raises_connection_closed_error(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        connection.close(4000, "bye")
        for call, argument in [
            (connection.send, "text"),
            (connection.send, b"binary"),
            (connection.send_utf, "text"),
            (connection.send_bytes, b"binary"),
            (connection.ping, b""),
            (connection.pong, b""),
            (connection.send_frame, Frame(opcode=Opcode.TEXT, payload=b"frame")),
        ]:
            with pytest.raises(ConnectionClosedError) as caught:
                call(argument)
            assert caught.value.code == 4000
            assert caught.value.description == "bye"
        frame = client.read_frame()
        assert (frame.opcode, frame.close_code) == (CLOSE, 4000)
        client.send_close(1000)
        assert client.expect_eof() == b""  # nothing was sent after the Close
    assert connection.wait_closed(2)
    with pytest.raises(ConnectionClosedError):
        connection.send("closed")


def test_ping_and_pong_payloads(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        connection.ping()
        connection.ping(b"x" * 125)
        connection.ping("h\u00e9")
        connection.pong(b"unsolicited")
        connection.pong("text pong")
        for call in (connection.ping, connection.pong):
            with pytest.raises(ValueError, match="125"):
                call(b"x" * 126)
            with pytest.raises(ValueError, match="125"):
                call("\u00e9" * 63)  # 126 bytes
        frames = [client.read_frame() for _ in range(5)]
        assert [(f.opcode, f.fin, f.masked, f.payload) for f in frames] == [
            (PING, True, False, b""),
            (PING, True, False, b"x" * 125),
            (PING, True, False, "h\u00e9".encode()),
            (PONG, True, False, b"unsolicited"),
            (PONG, True, False, b"text pong"),
        ]
        # The client answers our ping; with no listener that is all.
        client.send_frame(PONG, b"")
        close_from_client(client)


def test_send_frame_sends_frames_as_given(serve):
    recorder = Recorder(echo=False)
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        connection.send_frame(Frame(opcode=Opcode.TEXT, payload=b"whole"))
        connection.send_frame(Frame(opcode=Opcode.BINARY, payload=b"part1", fin=False))
        connection.send_frame(Frame(opcode=Opcode.PING, payload=b"between"))
        connection.send_frame(Frame(opcode=Opcode.CONTINUATION, payload=b"part2", fin=True))
        frames = [client.read_frame() for _ in range(4)]
        assert [(f.opcode, f.fin, f.masked, f.payload) for f in frames] == [
            (TEXT, True, False, b"whole"),
            (BINARY, False, False, b"part1"),
            (PING, True, False, b"between"),
            (CONT, True, False, b"part2"),
        ]
        with pytest.raises(ValueError):
            connection.send_frame(Frame(opcode=Opcode.PING, payload=b"p" * 126))
        with pytest.raises(ValueError):
            connection.send_frame(Frame(opcode=Opcode.PONG, payload=b"p", fin=False))
        # A Close frame through send_frame, answered by the client.
        connection.send_frame(Frame(opcode=Opcode.CLOSE, close_status=4321, payload=b"raw"))
        frame = client.read_frame()
        assert (frame.opcode, frame.close_code, frame.close_reason) == (CLOSE, 4321, "raw")
        close_from_client(client)


# ------------------------------------------------------------------ ping / pong events


def test_ping_listener_can_cancel_the_automatic_pong(serve):
    pings: list[bytes] = []

    def on_connect(connection: WebSocketConnection) -> None:
        def on_ping(cancel: Any, data: bytes) -> None:
            pings.append(data)
            if data.startswith(b"cancel"):
                cancel()

        connection.on("ping", on_ping)
        connection.on("message", connection.send)

    served = serve(on_connect=on_connect)
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        client.send_frame(PING, b"cancel me")
        client.send_text("marker")
        # Events are handled in order: had a Pong been sent, it would come before the echo.
        frame = client.read_frame()
        assert (frame.opcode, frame.payload) == (TEXT, b"marker")
        client.send_frame(PING, b"answer me")
        frame = client.read_frame()
        assert (frame.opcode, frame.payload) == (PONG, b"answer me")
        close_from_client(client)
    assert pings == [b"cancel me", b"answer me"]


def test_pong_is_sent_after_the_ping_listener_ran(serve):
    calls: list[tuple[bytes, float]] = []
    release = Event()

    def on_connect(connection: WebSocketConnection) -> None:
        def on_ping(cancel: Any, data: bytes) -> None:
            calls.append((data, time.monotonic()))
            release.wait(5)  # the pong must wait for this listener

        connection.on("ping", on_ping)

    served = serve(on_connect=on_connect)
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        client.send_frame(PING, b"slow")
        wait_until(lambda: calls, what="the ping listener")
        assert unread_bytes(client.sock) == 0  # no Pong while the listener runs
        release.set()
        frame = client.read_frame()
        assert (frame.opcode, frame.payload) == (PONG, b"slow")
        close_from_client(client)
    assert [data for data, _ in calls] == [b"slow"]


def test_pong_event_for_every_pong(serve):
    pongs: list[bytes] = []

    def on_connect(connection: WebSocketConnection) -> None:
        connection.on("pong", pongs.append)
        connection.on("message", connection.send)

    served = serve(on_connect=on_connect)
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        client.send_frame(PONG, b"first")
        client.send_frame(PONG, b"")
        client.send_frame(PONG, bytes(range(125)))
        client.send_text("marker")
        assert client.read_message() == "marker"  # and no frame answered the pongs before it
        wait_until(lambda: len(pongs) == 3, what="three pong events")
        close_from_client(client)
    assert pongs == [b"first", b"", bytes(range(125))]


# ------------------------------------------------------------------ error event


def test_error_event_on_a_socket_error_then_close_1006(serve):
    recorder = Recorder(echo=False)
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    outcome: list[BaseException] = []

    def sender() -> None:
        for _ in range(5000):  # about 300 MiB at most; the reset comes long before
            try:
                connection.send(b"\xaa" * 65536)
            except ConnectionClosedError as error:
                outcome.append(error)
                return

    with client:
        greenlet = gevent.spawn(sender)
        # Wait until the server is sending (data is queued for the client, unread).
        client.sock.settimeout(5)
        assert client.sock.recv(1, socket.MSG_PEEK)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # The client closed with SO_LINGER 0: a reset while the server sends.
    greenlet.join(5)
    assert greenlet.dead
    assert len(outcome) == 1 and isinstance(outcome[0], ConnectionClosedError)
    wait_until(lambda: recorder.named("close"), what="close")
    errors = recorder.named("error")
    assert len(errors) == 1
    assert isinstance(errors[0][1], OSError)
    kinds = [event[0] for event in recorder.events]
    assert kinds == ["error", "close"]
    code, description = recorder.named("close")[0][1:]
    assert code == 1006
    assert description.startswith("Socket Error: ")
    events = served.wait_for_event("close")
    assert [event[1:] for event in events] == [(connection, code, description)]


# ------------------------------------------------------------------ blocking style


def test_iterating_a_connection_receives_every_message_until_close(serve):
    received: list[str | bytes] = []
    loops: list[gevent.Greenlet] = []

    def reader(connection: WebSocketConnection) -> None:
        for message in connection:
            received.append(message)
            connection.send(message)  # blocking style both ways

    served = serve(on_connect=lambda connection: loops.append(gevent.spawn(reader, connection)))
    expected = [f"message {index}" for index in range(20)] + [b"\x00binary", ""]
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        for message in expected:
            if isinstance(message, str):
                client.send_text(message)
            else:
                client.send_binary(message)
        assert [client.read_message() for _ in expected] == expected
        close_from_client(client)
    loops[0].join(5)
    assert loops[0].dead and loops[0].successful()
    assert received == expected


def test_receive_with_a_timeout_returns_none(serve):
    connections = Connections()
    served = serve(on_connect=connections)
    client, connection = open_client(served, connections)
    with client:
        started = time.monotonic()
        assert connection.receive(timeout=0.1) is None
        assert 0.08 <= time.monotonic() - started < 1.0
        client.send_text("now")
        assert connection.receive(timeout=5) == "now"
        client.send_binary(b"\x01")
        assert connection.receive(timeout=5) == b"\x01"
        close_from_client(client)
    assert connection.receive(timeout=5) is None  # closed and drained: None at once
    assert connection.receive() is None


def test_messages_that_arrived_before_a_listener_go_to_it_in_order(serve):
    connections = Connections()
    served = serve(on_connect=connections)
    client, connection = open_client(served, connections)
    with client:
        for index in range(5):
            client.send_text(f"early {index}")
        client.send_frame(PING, b"sync")
        # The Pong proves the server has read (and queued) the five messages before it.
        assert client.read_frame().payload == b"sync"
        received: list[str | bytes] = []
        connection.on("message", received.append)
        client.send_text("late")
        wait_until(lambda: len(received) == 6, what="six messages")
        assert received == [f"early {index}" for index in range(5)] + ["late"]
        close_from_client(client)


# ------------------------------------------------------------------ concurrency


def test_concurrent_senders_never_interleave_frames(serve):
    connections = Connections()
    served = serve(on_connect=connections)
    client, connection = open_client(served, connections)
    size = 30 * 1024  # two frames each with the default 16 KiB fragmentation

    def body(sender: int, index: int) -> bytes:
        head = f"{sender:02d}:{index:02d}:".encode()
        return head + bytes([sender * 20 + index & 0xFF]) * (size - len(head))

    def send_all(sender: int) -> None:
        for index in range(20):
            connection.send(body(sender, index))

    with client:
        senders = [gevent.spawn(send_all, sender) for sender in range(50)]
        seen: dict[int, list[int]] = {sender: [] for sender in range(50)}
        deadline = time.monotonic() + 20
        for _ in range(1000):
            assert time.monotonic() < deadline
            message = client.read_message()
            assert isinstance(message, bytes)
            sender, index = int(message[:2]), int(message[3:5])
            assert message == body(sender, index)  # intact: no foreign frame inside
            seen[sender].append(index)
        gevent.joinall(senders, timeout=5, raise_error=True)
        assert all(greenlet.successful() for greenlet in senders)
        assert seen == {sender: list(range(20)) for sender in range(50)}
        close_from_client(client)


def test_a_listener_that_raises_is_logged_and_the_next_message_still_arrives(serve, caplog):
    def on_connect(connection: WebSocketConnection) -> None:
        def on_message(message: str | bytes) -> None:
            if message == "boom":
                raise RuntimeError("listener exploded")
            connection.send(message)

        connection.on("message", on_message)

    served = serve(on_connect=on_connect)
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        client.send_text("boom")
        client.send_text("after")
        assert client.read_message() == "after"
        close_from_client(client)
    failures = [
        record
        for record in caplog.records
        if record.levelno >= logging.ERROR
        and record.exc_info
        and isinstance(record.exc_info[1], RuntimeError)
    ]
    assert len(failures) == 1
    assert "listener exploded" in str(failures[0].exc_info[1])
    assert "message" in failures[0].getMessage()


def test_a_blocking_listener_does_not_stop_pongs(serve):
    entered = Event()
    release = Event()

    def on_connect(connection: WebSocketConnection) -> None:
        def on_message(message: str | bytes) -> None:
            if message == "block":
                entered.set()
                release.wait(5)
                connection.send("released")
            else:
                connection.send(message)

        connection.on("message", on_message)

    served = serve(on_connect=on_connect)
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        client.send_text("block")
        wait_until(entered.is_set, what="the listener to block")
        client.send_frame(PING, b"are you there")
        frame = client.read_frame()
        assert (frame.opcode, frame.payload) == (PONG, b"are you there")
        assert not release.is_set()  # the listener is still blocked
        release.set()
        assert client.read_message() == "released"
        client.send_text("next")
        assert client.read_message() == "next"
        close_from_client(client)


def test_a_flooding_client_does_not_starve_another(serve):
    flood_count = [0]

    def on_connect(connection: WebSocketConnection) -> None:
        def on_message(message: str | bytes) -> None:
            if isinstance(message, str) and message.startswith("echo"):
                connection.send(message)
            else:
                flood_count[0] += 1

        connection.on("message", on_message)

    served = serve(on_connect=on_connect)
    frame = client_frame(BINARY, b"f" * 100, mask=b"\x11\x22\x33\x44")
    batch = frame * 1000
    batches = 100  # 100,000 pipelined frames (10 MB) in big writes, never reading
    with RawClient(served.port) as flooder, RawClient(served.port) as talker:
        assert flooder.handshake().status == 101
        assert talker.handshake().status == 101

        def flood() -> None:
            for _ in range(batches):
                flooder.send_raw(batch)

        flooding = gevent.spawn(flood)
        started = time.monotonic()
        round_trips = []
        for index in range(20):
            sent_at = time.monotonic()
            talker.send_text(f"echo {index}")
            assert talker.read_message() == f"echo {index}"
            round_trips.append(time.monotonic() - sent_at)
        talked_for = time.monotonic() - started
        # Each request/response is served while the flood goes on, not after it.
        assert talked_for < 5.0
        assert max(round_trips) < 1.0
        flooding.join(10)
        assert flooding.successful()
        wait_until(lambda: flood_count[0] == batches * 1000, timeout=10, what="the flood")
        close_from_client(talker)
        close_from_client(flooder)


def test_a_reader_that_waited_for_each_read_is_not_also_made_to_yield(serve, monkeypatch):
    """The forced yield is for a socket that always has data. A client that sends one
    message at a time and waits for its echo makes the reader wait in the hub before every
    read; an extra yield after some reads would only cost a round trip through the hub."""
    yields = [0]
    real_idle = gevent.idle

    def counting_idle(*args: Any) -> Any:
        yields[0] += 1
        return real_idle(*args)

    monkeypatch.setattr(gevent, "idle", counting_idle)
    served = serve()
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        for index in range(50):
            client.send_text(f"one at a time {index}")
            assert client.read_message() == f"one at a time {index}"
        assert yields[0] == 0
        close_from_client(client)


def test_a_backlog_of_control_frames_does_not_hold_up_other_connections(serve):
    # One client has megabytes of pipelined Pong frames waiting in the kernel buffers (Pongs
    # cause no event, so no queue fills up and pauses its reader). Another client's request
    # must be answered while that backlog is being worked through, not after all of it.
    served = serve()
    batch = client_frame(PONG, b"p" * 100, mask=b"\x55\x66\x77\x88") * 1000  # 106 KB
    with RawClient(served.port) as flooder, RawClient(served.port) as talker:
        assert flooder.handshake().status == 101
        wait_until(lambda: len(served.ws.connections) == 1, what="the flooding connection")
        flood_socket = served.ws.connections[0].socket
        assert talker.handshake().status == 101
        wait_until(lambda: len(served.ws.connections) == 2, what="the talking connection")
        # Fill the kernel buffers without yielding, so the server has not read any of it yet.
        flooder.sock.settimeout(0)
        written, rest = 0, b""
        for _ in range(300):
            try:
                sent = flooder.sock.send(batch)
            except BlockingIOError:
                break
            written += sent
            if sent < len(batch):
                rest = batch[sent:]
                break
        flooder.sock.settimeout(5)
        if written < 2_000_000:
            pytest.skip(f"the kernel buffered only {written} bytes; the test needs 2 MB")
        started = time.monotonic()
        talker.send_text("through the flood")
        assert talker.read_message() == "through the flood"
        answered_after = time.monotonic() - started
        backlog = unread_bytes(flood_socket) + unsent_bytes(flooder.sock)
        assert backlog > 0, (
            f"the echo came after the whole {written}-byte backlog was parsed "
            f"({answered_after * 1000:.0f} ms)"
        )
        flooder.sock.sendall(rest)
        close_from_client(flooder)
        close_from_client(talker)


def test_many_connections_pipelining_get_their_echoes_in_order(serve):
    served = serve()

    def client_session(number: int) -> list[str]:
        with RawClient(served.port, timeout=20) as client:
            assert client.handshake().status == 101
            messages = [f"client {number} message {index}" for index in range(50)]
            client.send_raw(b"".join(client_frame(TEXT, text.encode()) for text in messages))
            echoes = [client.read_message() for _ in messages]
            close_from_client(client)
            return echoes

    sessions = [gevent.spawn(client_session, number) for number in range(64)]
    gevent.joinall(sessions, timeout=20, raise_error=True)
    for number, session in enumerate(sessions):
        assert session.successful()
        assert session.value == [f"client {number} message {index}" for index in range(50)]
    events = served.wait_for_event("close", 64)
    assert len(events) == 64
    assert {event[2] for event in events} == {1000}


# ------------------------------------------------------------------ the websockets package


def test_websockets_client_fragments_pings_and_long_messages(serve):
    from websockets.sync.client import connect

    served = serve(fragmentation_threshold=1000)

    def talk() -> tuple[Any, ...]:
        with connect(f"ws://127.0.0.1:{served.port}/", open_timeout=5, close_timeout=5) as ws:
            ws.send(["fr", "ag", "m\u00e9nt\u00e9"])  # a fragmented text message
            fragmented = ws.recv(timeout=5)
            ws.send(b"\x05" * 5000)  # comes back in five frames
            long_binary = ws.recv(timeout=5)
            ws.send("\u20ac" * 2000)  # 6000 bytes; frames split characters
            long_text = ws.recv(timeout=5)
            pong = ws.ping(b"websockets ping")
            answered = pong.wait(5)
            return fragmented, long_binary, long_text, answered

    fragmented, long_binary, long_text, answered = in_thread(talk)
    assert fragmented == "fragm\u00e9nt\u00e9"
    assert long_binary == b"\x05" * 5000
    assert long_text == "\u20ac" * 2000
    assert answered
    events = served.wait_for_event("close")
    assert [event[2:] for event in events] == [(1000, "Normal connection closure")]


def test_websockets_client_sees_the_servers_close_code_and_reason(serve):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    def on_connect(connection: WebSocketConnection) -> None:
        def on_message(message: str | bytes) -> None:
            if message == "close me":
                connection.close(4000, "server says bye")

        connection.on("message", on_message)

    served = serve(on_connect=on_connect)

    def talk() -> tuple[int, str, float]:
        with connect(f"ws://127.0.0.1:{served.port}/", open_timeout=5, close_timeout=5) as ws:
            ws.send("close me")
            started = time.monotonic()
            try:
                ws.recv(timeout=5)
            except ConnectionClosed as closed:
                assert closed.rcvd is not None
                return closed.rcvd.code, closed.rcvd.reason, time.monotonic() - started
            raise AssertionError("no close")

    code, reason, elapsed = in_thread(talk)
    assert (code, reason) == (4000, "server says bye")
    assert elapsed < 2.0  # the handshake completes without waiting for timeouts
    events = served.wait_for_event("close")
    assert [event[2:] for event in events] == [(4000, "server says bye")]


def test_applications_may_hang_their_own_attributes_on_a_connection(serve):
    """Slots keep connections small, yet ``connection.user = ...`` and weak references work."""
    import weakref

    served = serve()
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        ((_, connection),) = served.wait_for_event("connect")
        connection.user = "alice"  # type: ignore[attr-defined]
        assert connection.user == "alice"  # type: ignore[attr-defined]
        assert weakref.ref(connection)() is connection
        client.send_close(1000)
        client.read_until_close()
