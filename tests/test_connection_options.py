"""The connection options of the seed, observed on the wire over real sockets.

fragment_outgoing_messages / fragmentation_threshold, assemble_fragments, keepalive /
keepalive_interval / drop_connection_on_keepalive_timeout / keepalive_grace_period,
close_timeout and disable_nagle_algorithm. (The size limits are in test_connection_frames.py.)
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
import time
from typing import Any

import pytest
from conftest import wait_until
from rawclient import RawClient, client_frame
from recorder import Recorder, nothing_arrives, open_client

from geventws import Frame, WebSocketConnection

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def unread_bytes(sock: Any) -> int:
    """Bytes waiting in ``sock``'s receive queue (FIONREAD)."""
    raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", raw)[0])


# ------------------------------------------------------------------ outgoing fragmentation


@pytest.mark.parametrize(
    ("options", "size", "expected"),
    [
        ({}, 40000, [16384, 16384, 7232]),
        ({"fragmentation_threshold": 4096}, 10000, [4096, 4096, 1808]),
        ({}, 16384, [16384]),
        ({}, 16385, [16384, 1]),
        ({"fragmentation_threshold": 4096}, 4096, [4096]),
        ({}, 0, [0]),
        ({"fragment_outgoing_messages": False}, 40000, [40000]),
        ({"fragment_outgoing_messages": False, "fragmentation_threshold": 10}, 1000, [1000]),
    ],
    ids=["default", "4096", "exactly", "one-over", "exactly-4096", "empty", "off", "off-small"],
)
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_outgoing_fragmentation(serve, options, size, expected, kind):
    recorder = Recorder()
    served = serve(on_connect=recorder, **options)
    client, connection = open_client(served, recorder)
    with client:
        data: str | bytes = "t" * size if kind == "text" else bytes(i % 256 for i in range(size))
        connection.send(data)
        frames = [client.read_frame()]
        while not frames[-1].fin:
            assert len(frames) < 100
            frames.append(client.read_frame())
        assert [len(frame.payload) for frame in frames] == expected
        first_opcode = TEXT if kind == "text" else BINARY
        assert [frame.opcode for frame in frames] == [first_opcode] + [CONT] * (len(frames) - 1)
        assert [frame.fin for frame in frames] == [False] * (len(frames) - 1) + [True]
        assert not any(frame.masked or frame.rsv for frame in frames)
        payload = b"".join(frame.payload for frame in frames)
        assert payload == (data.encode() if isinstance(data, str) else data)


def test_fragmentation_is_byte_based_and_may_split_characters(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder, fragmentation_threshold=1000)
    client, connection = open_client(served, recorder)
    with client:
        text = "\u20ac" * 1000  # 3000 bytes; 1000 is not a multiple of 3
        connection.send(text)
        frames = [client.read_frame() for _ in range(3)]
        assert [len(frame.payload) for frame in frames] == [1000, 1000, 1000]
        assert frames[-1].fin
        assert b"".join(frame.payload for frame in frames).decode() == text
        # The client's own 40000-byte text still comes back whole.
        client.send_text("\u00e9" * 20000)
        assert client.read_message() == "\u00e9" * 20000


def test_a_threshold_under_125_bytes_fragments_small_messages_too(serve):
    """Messages up to 125 bytes are framed on a shortcut; it must not skip fragmentation."""
    recorder = Recorder()
    served = serve(on_connect=recorder, fragmentation_threshold=10)
    client, connection = open_client(served, recorder)
    with client:
        connection.send("0123456789abcdefghij-")  # 21 bytes: 10 + 10 + 1
        frames = [client.read_frame() for _ in range(3)]
        assert [frame.payload for frame in frames] == [b"0123456789", b"abcdefghij", b"-"]
        assert [frame.fin for frame in frames] == [False, False, True]
        assert [frame.opcode for frame in frames] == [0x1, 0x0, 0x0]
        connection.send(b"tenbytes!!")  # exactly the threshold: one frame
        frame = client.read_frame()
        assert (frame.opcode, frame.fin, frame.payload) == (0x2, True, b"tenbytes!!")


# ------------------------------------------------------------------ assemble_fragments=False


def test_assemble_fragments_false_emits_frames_and_single_frame_messages(serve):
    recorder = Recorder(echo=False)

    def on_connect(connection: WebSocketConnection) -> None:
        recorder(connection)
        connection.on("frame", lambda frame: recorder.events.append(("frame", frame)))

    served = serve(on_connect=on_connect, assemble_fragments=False)
    client, _ = open_client(served, recorder)
    with client:
        client.send_text("single")
        client.send_binary(b"\x00bin")
        client.send_frame(TEXT, b"frag-", fin=False)
        client.send_frame(PING, b"mid")
        client.send_frame(CONT, b"mented", fin=True)
        client.send_frame(PONG, b"pong-data")
        pong = client.read_frame()
        assert (pong.opcode, pong.payload) == (PONG, b"mid")  # pings are still answered
        client.send_close(1000, "bye")
        reply = client.read_frame()
        assert (reply.opcode, reply.payload) == (CLOSE, b"\x03\xe8")  # Close still handled
        assert client.expect_eof() == b""
    wait_until(lambda: recorder.named("close"), what="close")
    frames = [event[1] for event in recorder.named("frame")]
    summary = [(f.opcode, f.fin, f.payload, f.close_status) for f in frames]
    assert summary == [
        (TEXT, True, b"single", -1),
        (BINARY, True, b"\x00bin", -1),
        (TEXT, False, b"frag-", -1),
        (PING, True, b"mid", -1),
        (CONT, True, b"mented", -1),
        (PONG, True, b"pong-data", -1),
        (CLOSE, True, b"bye", 1000),
    ]
    assert all(isinstance(frame, Frame) and frame.masked for frame in frames)
    # `message` too for each single-frame message, and not for the fragmented one.
    assert recorder.named("message") == [("message", "single"), ("message", b"\x00bin")]
    assert recorder.named("close") == [("close", 1000, "bye")]
    # Each frame event comes before the message event of the same frame.
    kinds = [event[0] for event in recorder.events]
    assert kinds[:4] == ["frame", "message", "frame", "message"]


def test_assemble_fragments_false_single_text_frame_read_in_pieces_is_still_a_message(serve):
    # A single-frame message whose bytes reach the server in several reads is still a
    # single-frame message: it must produce `message` as well as `frame`.
    recorder = Recorder(echo=False)

    def on_connect(connection: WebSocketConnection) -> None:
        recorder(connection)
        connection.on("frame", lambda frame: recorder.events.append(("frame", frame)))

    served = serve(on_connect=on_connect, assemble_fragments=False)
    client, connection = open_client(served, recorder)
    text = "\u20ac" * 100
    frame = client_frame(TEXT, text.encode())
    with client:
        for start, end in [(0, 50), (50, len(frame))]:
            client.send_raw(frame[start:end])
            wait_until(lambda: unread_bytes(connection.socket) == 0, what="the server to read")
        wait_until(lambda: recorder.named("frame"), what="the frame event")
        client.send_text("next")  # a marker: once it is in, the text frame was handled
        wait_until(lambda: len(recorder.named("frame")) == 2, what="the marker frame")
    frames = [event[1] for event in recorder.named("frame")]
    assert [(f.opcode, f.fin, f.payload) for f in frames] == [
        (TEXT, True, text.encode()),
        (TEXT, True, b"next"),
    ]
    assert recorder.named("message") == [("message", text), ("message", "next")]


def test_assemble_fragments_false_still_enforces_the_frame_limit(serve):
    recorder = Recorder(echo=False)
    served = serve(on_connect=recorder, assemble_fragments=False, max_received_frame_size=50)
    client, _ = open_client(served, recorder)
    with client:
        client.send_binary(b"x" * 51)
        frame = client.read_frame()
        assert (frame.close_code, frame.close_reason) == (
            1009,
            "Frame size of 51 bytes exceeds maximum accepted frame size",
        )
        assert client.expect_eof() == b""
    wait_until(lambda: recorder.named("close"), what="close")
    assert recorder.named("close") == [
        ("close", 1009, "Frame size of 51 bytes exceeds maximum accepted frame size")
    ]


# ------------------------------------------------------------------ keepalive

KEEPALIVE = {
    "keepalive": True,
    "keepalive_interval": 100,
    "keepalive_grace_period": 100,
}


def test_silent_client_gets_a_ping_then_is_dropped_without_a_close_frame(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder, **KEEPALIVE)
    client, connection = open_client(served, recorder)
    with client:
        started = time.monotonic()
        ping = client.read_frame()
        pinged_after = time.monotonic() - started
        assert (ping.opcode, ping.fin, ping.masked, ping.payload) == (PING, True, False, b"")
        assert 0.05 <= pinged_after < 2.0
        assert client.expect_eof() == b""  # no Close frame: just the TCP close
        dropped_after = time.monotonic() - started
        assert 0.1 <= dropped_after < 2.5
    events = served.wait_for_event("close")
    assert [event[1:] for event in events] == [(connection, 1006, "Peer not responding.")]
    wait_until(lambda: recorder.named("close"), what="close")
    assert recorder.named("close") == [("close", 1006, "Peer not responding.")]
    assert recorder.named("error") == []


@pytest.mark.parametrize("answer", ["pong", "text"])
def test_client_that_answers_stays_connected_across_several_intervals(serve, answer):
    recorder = Recorder(echo=False)
    served = serve(on_connect=recorder, **KEEPALIVE)
    client, connection = open_client(served, recorder)
    with client:
        started = time.monotonic()
        for index in range(5):
            ping = client.read_frame()
            assert (ping.opcode, ping.payload) == (PING, b"")
            if answer == "pong":
                client.send_frame(PONG, b"")
            else:
                client.send_text(f"still here {index}")  # any data counts
        assert time.monotonic() - started >= 0.4  # five intervals of 100 ms went by
        assert connection.connected
        assert connection.state == "open"
        assert recorder.named("close") == []
        client.send_close(1000, "done")
        reply = client.read_until_close()
        assert reply.close_code == 1000
        assert client.expect_eof() == b""
    events = served.wait_for_event("close")
    assert [event[2:] for event in events] == [(1000, "done")]
    if answer == "text":
        assert [event[1] for event in recorder.named("message")] == [
            f"still here {index}" for index in range(5)
        ]


def test_without_drop_on_timeout_a_silent_client_is_pinged_repeatedly(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder, drop_connection_on_keepalive_timeout=False, **KEEPALIVE)
    client, connection = open_client(served, recorder)
    with client:
        started = time.monotonic()
        for _ in range(3):
            ping = client.read_frame()
            assert (ping.opcode, ping.payload) == (PING, b"")
        # Three pings, one per idle interval, and the connection still open.
        assert time.monotonic() - started >= 0.25
        assert connection.connected
        assert recorder.named("close") == []
        client.send_close(1000)
        assert client.read_until_close().close_code == 1000
        assert client.expect_eof() == b""
    events = served.wait_for_event("close")
    assert [event[2:] for event in events] == [(1000, "Normal connection closure")]


def test_keepalive_false_sends_no_ping(serve):
    recorder = Recorder()
    served = serve(
        on_connect=recorder, keepalive=False, keepalive_interval=50, keepalive_grace_period=50
    )
    client, connection = open_client(served, recorder)
    with client:
        assert nothing_arrives(client, 0.3)  # six intervals
        assert connection.connected
        client.send_text("alive")
        assert client.read_message() == "alive"


def test_keepalive_grace_period_is_its_own_setting(serve):
    # A long grace period: the ping comes after the interval, the drop only after the grace.
    recorder = Recorder()
    served = serve(
        on_connect=recorder, keepalive=True, keepalive_interval=100, keepalive_grace_period=600
    )
    client, _ = open_client(served, recorder)
    with client:
        started = time.monotonic()
        assert client.read_frame().opcode == PING
        assert client.expect_eof() == b""
        assert time.monotonic() - started >= 0.6
    events = served.wait_for_event("close")
    assert [event[2:] for event in events] == [(1006, "Peer not responding.")]


# ------------------------------------------------------------------ close_timeout


def test_close_timeout_closes_the_socket_when_the_client_never_answers(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder, close_timeout=200)
    client, connection = open_client(served, recorder)
    with client:
        started = time.monotonic()
        connection.close()
        frame = client.read_frame()
        assert (frame.opcode, frame.close_code, frame.close_reason) == (
            CLOSE,
            1000,
            "Normal connection closure",
        )
        assert connection.state == "ending"
        assert not connection.connected
        # The client never answers: the server gives up after close_timeout.
        assert client.expect_eof() == b""
        elapsed = time.monotonic() - started
        assert 0.15 <= elapsed < 2.0
    events = served.wait_for_event("close")
    assert [event[1:] for event in events] == [(connection, 1000, "Normal connection closure")]
    wait_until(lambda: recorder.named("close"), what="close")
    assert recorder.named("close") == [("close", 1000, "Normal connection closure")]
    assert connection.state == "closed"
    assert connection.wait_closed(0)


# ------------------------------------------------------------------ disable_nagle_algorithm


@pytest.mark.parametrize(
    ("options", "expected"), [({}, 1), ({"disable_nagle_algorithm": False}, 0)]
)
def test_disable_nagle_algorithm_sets_tcp_nodelay(serve, options, expected):
    seen: list[int] = []

    def on_connect(connection: WebSocketConnection) -> None:
        seen.append(connection.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        connection.on("message", connection.send)

    served = serve(on_connect=on_connect, **options)
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        client.send_text("x")
        assert client.read_message() == "x"
    assert seen == [expected]
