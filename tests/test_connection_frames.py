"""Receiving frames over real sockets: protocol violations, size limits, valid traffic.

Every bad frame must be answered with a Close carrying the exact code and reason, followed by
the server closing TCP, and a single ``close`` event (on the connection and on the server)
with that code and reason (RFC 6455 7.1.7, WebSocket-Node 2(a), 2(d); decisions.md).
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios
import time
from typing import Any

import pytest
from conftest import in_thread, wait_until
from rawclient import RawClient, client_frame, expected_accept
from recorder import Recorder, open_client

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
INVALID_UTF8 = "Invalid UTF-8 Data Received"


def unread_bytes(sock: Any) -> int:
    """Bytes waiting in ``sock``'s receive queue (FIONREAD)."""
    raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", raw)[0])


def assert_failed(
    client: RawClient, served: Any, recorder: Recorder, code: int, reason: str
) -> None:
    """The server sent Close ``code`` ``reason``, closed TCP at once (not after the 5 s
    close_timeout, nor waiting for the client's Close), and reported it once."""
    frame = client.read_frame()
    assert frame.opcode == CLOSE
    assert frame.fin
    assert not frame.masked
    assert (frame.close_code, frame.close_reason) == (code, reason)
    assert client.expect_eof(timeout=2.0) == b""
    events = served.wait_for_event("close")
    assert [event[1:] for event in events] == [(recorder.connections[0], code, reason)]
    wait_until(lambda: recorder.closes, what="the connection's close event")
    assert recorder.closes == [(code, reason)]
    connection = recorder.connections[0]
    assert connection.state == "closed"
    assert not connection.connected
    assert (connection.close_reason_code, connection.close_description) == (code, reason)
    assert served.ws.connections == []


def header(opcode: int, length: int, *, fin: bool = True, mask: bytes = b"\x01\x02\x03\x04"):
    """A masked frame header declaring ``length`` payload bytes (the payload not included)."""
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        head = bytes([first, 0x80 | length])
    elif length < 65536:
        head = bytes([first, 0x80 | 126]) + struct.pack("!H", length)
    else:
        head = bytes([first, 0x80 | 127]) + struct.pack("!Q", length)
    return head + mask


def masked(data: bytes, mask: bytes = b"\x01\x02\x03\x04", offset: int = 0) -> bytes:
    return bytes(byte ^ mask[(index + offset) % 4] for index, byte in enumerate(data))


# ------------------------------------------------------------------ protocol violations


def test_unmasked_client_frame_fails_with_1002(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_frame(TEXT, b"not masked", masked=False)
        assert_failed(client, served, recorder, 1002, "Received an unmasked frame from the client.")
    assert recorder.messages == []


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70])
def test_rsv_bits_without_extension_fail_with_1002(serve, rsv):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_frame(TEXT, b"hello", rsv=rsv)
        assert_failed(
            client,
            served,
            recorder,
            1002,
            "Unsupported usage of rsv bits without negotiated extension.",
        )
    assert recorder.messages == []


@pytest.mark.parametrize(
    ("opcode", "text"), [(0x3, "0x3"), (0x7, "0x7"), (0xB, "0xb"), (0xF, "0xf")]
)
def test_reserved_opcodes_fail_with_1002(serve, opcode, text):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_frame(opcode, b"x")
        assert_failed(client, served, recorder, 1002, f"Unrecognized Opcode: {text}")


def test_ping_of_126_bytes_fails_with_1002(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_frame(PING, b"p" * 126)
        assert_failed(
            client, served, recorder, 1002, "Illegal control frame longer than 125 bytes."
        )


def test_long_control_frame_is_refused_on_its_header(serve):
    # The header of a 126-byte Close alone is enough: no payload needs to be sent.
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_raw(header(CLOSE, 126))
        assert_failed(
            client, served, recorder, 1002, "Illegal control frame longer than 125 bytes."
        )


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_fragmented_control_frame_fails_with_1002(serve, opcode):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_frame(opcode, b"\x03\xe8" if opcode == CLOSE else b"ab", fin=False)
        assert_failed(client, served, recorder, 1002, "Control frames must not be fragmented.")


def test_continuation_without_start_fails_with_1002(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_frame(CONT, b"orphan")
        assert_failed(client, served, recorder, 1002, "Unexpected Continuation Frame")


def test_continuation_after_a_complete_message_fails_with_1002(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_frame(TEXT, b"whole")
        assert client.read_message() == "whole"
        client.send_frame(CONT, b"late", fin=True)
        assert_failed(client, served, recorder, 1002, "Unexpected Continuation Frame")
    assert recorder.messages == ["whole"]


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_data_frame_in_the_middle_of_a_fragmented_message_fails(serve, opcode):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_frame(TEXT, b"first part", fin=False)
        client.send_frame(opcode, b"intruder")
        assert_failed(
            client,
            served,
            recorder,
            1002,
            f"Illegal frame opcode 0x{opcode:x} received in middle of fragmented message.",
        )
    assert recorder.messages == []


def test_64_bit_length_with_the_most_significant_bit_fails_with_1002(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_raw(bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 63) + b"\x00" * 4)
        assert_failed(
            client,
            served,
            recorder,
            1002,
            "Invalid 64-bit frame length (most significant bit set).",
        )


# ------------------------------------------------------------------ UTF-8


def test_invalid_utf8_text_fails_with_1007(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_frame(TEXT, b"valid start \xff\xfe")
        assert_failed(client, served, recorder, 1007, INVALID_UTF8)
    assert recorder.messages == []


@pytest.mark.parametrize(
    "bad",
    [b"\xf4\x90", b"\xed\xa0", b"\xc0\xaf", b"\xf5"],
    ids=["above-U+10FFFF", "surrogate", "overlong", "F5"],
)
def test_invalid_utf8_fails_fast_before_the_rest_of_the_frame(serve, bad):
    # Declare 1000 bytes, send only 20 containing the invalid sequence: the Close 1007 must
    # come without the other 980 bytes ever being sent (decisions.md, Autobahn 6.4.3/6.4.4).
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        prefix = b"abcdefgh" + bad
        first_bytes = prefix + b"x" * (20 - len(prefix))
        client.send_raw(header(TEXT, 1000) + masked(first_bytes))
        assert_failed(client, served, recorder, 1007, INVALID_UTF8)
    assert recorder.messages == []


def test_invalid_utf8_across_fragments_fails_with_1007(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_frame(TEXT, b"ok \xce", fin=False)  # a valid start of a 2-byte character
        client.send_frame(CONT, b"A rest", fin=True)  # ... not continued
        assert_failed(client, served, recorder, 1007, INVALID_UTF8)
    assert recorder.messages == []


def test_invalid_utf8_in_a_fragment_fails_before_the_final_fragment(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_frame(TEXT, b"fine", fin=False)
        client.send_frame(CONT, b"still fine \xf0\x9f", fin=False)
        client.send_frame(CONT, b"\x41", fin=False)  # breaks the 4-byte sequence
        # No final fragment is ever sent.
        assert_failed(client, served, recorder, 1007, INVALID_UTF8)


def test_text_message_ending_inside_a_character_fails_with_1007(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_frame(TEXT, b"abc", fin=False)
        client.send_frame(CONT, b"\xe2\x82", fin=True)  # truncated euro sign
        assert_failed(client, served, recorder, 1007, INVALID_UTF8)


def test_invalid_utf8_in_a_binary_message_is_fine(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_frame(BINARY, b"\xff\xfe\xf4\x90")
        assert client.read_message() == b"\xff\xfe\xf4\x90"
    assert recorder.messages == [b"\xff\xfe\xf4\x90"]


# ------------------------------------------------------------------ size limits


def test_frame_over_max_received_frame_size_fails_with_1009(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder, max_received_frame_size=100)
    with open_client(served, recorder)[0] as client:
        client.send_binary(b"b" * 101)
        assert_failed(
            client,
            served,
            recorder,
            1009,
            "Frame size of 101 bytes exceeds maximum accepted frame size",
        )
    assert recorder.messages == []


def test_frame_size_is_checked_on_the_header_before_the_payload(serve):
    # A header declaring 2**62 bytes is answered at once; no payload byte is sent.
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_raw(header(BINARY, 2**62))
        assert_failed(
            client,
            served,
            recorder,
            1009,
            f"Frame size of {2**62} bytes exceeds maximum accepted frame size",
        )


def test_frame_of_exactly_max_received_frame_size_is_accepted(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder, max_received_frame_size=100)
    with open_client(served, recorder)[0] as client:
        client.send_binary(b"b" * 100)
        assert client.read_message() == b"b" * 100
        client.send_text("t" * 100)
        assert client.read_message() == "t" * 100
        client.send_frame(TEXT, b"x" * 60, fin=False)  # each frame within the limit
        client.send_frame(CONT, b"y" * 100, fin=True)
        assert client.read_message() == "x" * 60 + "y" * 100
    assert recorder.messages == [b"b" * 100, "t" * 100, "x" * 60 + "y" * 100]


def test_continuation_frame_over_the_frame_limit_fails_with_1009(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder, max_received_frame_size=100)
    with open_client(served, recorder)[0] as client:
        client.send_frame(BINARY, b"a" * 10, fin=False)
        client.send_raw(header(CONT, 5000))
        assert_failed(
            client,
            served,
            recorder,
            1009,
            "Frame size of 5000 bytes exceeds maximum accepted frame size",
        )


def test_default_frame_limit_is_64_kib(serve):
    recorder = Recorder(echo=False)
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_binary(b"\x07" * 65536)
        wait_until(lambda: recorder.messages, what="the 64 KiB message")
        assert recorder.messages == [b"\x07" * 65536]
        client.send_raw(header(BINARY, 65537))
        assert_failed(
            client,
            served,
            recorder,
            1009,
            "Frame size of 65537 bytes exceeds maximum accepted frame size",
        )


def test_fragmented_message_over_max_received_message_size_fails_with_1009(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder, max_received_message_size=100)
    with open_client(served, recorder)[0] as client:
        client.send_frame(BINARY, b"a" * 60, fin=False)
        client.send_frame(CONT, b"b" * 30, fin=False)
        # The continuation's header already shows the total (60 + 30 + 20 > 100).
        client.send_raw(header(CONT, 20, fin=True))
        assert_failed(client, served, recorder, 1009, "Maximum message size exceeded.")
    assert recorder.messages == []


def test_fragmented_message_of_exactly_the_message_limit_is_accepted(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder, max_received_message_size=100)
    with open_client(served, recorder)[0] as client:
        client.send_frame(TEXT, b"a" * 60, fin=False)
        client.send_frame(CONT, b"b" * 40, fin=True)
        assert client.read_message() == "a" * 60 + "b" * 40
        client.send_binary(b"c" * 100)
        assert client.read_message() == b"c" * 100


def test_single_frame_over_the_message_limit_fails_with_1009(serve):
    # Decision: the limit means the whole message, even when it comes in one frame that
    # is within max_received_frame_size (WebSocket-Node delivers it).
    recorder = Recorder()
    served = serve(on_connect=recorder, max_received_message_size=100)
    with open_client(served, recorder)[0] as client:
        client.send_binary(b"m" * 101)
        assert_failed(client, served, recorder, 1009, "Maximum message size exceeded.")
    assert recorder.messages == []


def test_default_message_limit_is_1_mib(serve):
    recorder = Recorder(echo=False)
    served = serve(on_connect=recorder)
    chunk = b"\x00" * 65536
    zero_mask = b"\x00\x00\x00\x00"
    with open_client(served, recorder)[0] as client:
        frames = [header(BINARY, 65536, fin=False, mask=zero_mask) + chunk]
        frames += [header(CONT, 65536, fin=False, mask=zero_mask) + chunk] * 14
        frames += [header(CONT, 65536, fin=True, mask=zero_mask) + chunk]
        client.send_raw(b"".join(frames))
        wait_until(lambda: recorder.messages, what="the 1 MiB message")
        assert recorder.messages == [b"\x00" * 1048576]
        client.send_raw(b"".join(frames[:-1]) + header(CONT, 65537, fin=True))
        frame_limit = "Frame size of 65537 bytes exceeds maximum accepted frame size"
        frame = client.read_frame()
        assert (frame.close_code, frame.close_reason) == (1009, frame_limit)
    served.wait_for_event("close")

    # With a frame limit big enough, the message limit is what trips.
    recorder = Recorder(echo=False)
    served = serve(on_connect=recorder, max_received_frame_size=1 << 21)
    with open_client(served, recorder)[0] as client:
        client.send_raw(b"".join(frames[:-1]) + header(CONT, 65537, fin=True))
        frame = client.read_frame()
        assert (frame.close_code, frame.close_reason) == (1009, "Maximum message size exceeded.")
        assert client.expect_eof(timeout=2.0) == b""
    assert recorder.messages == []


# ------------------------------------------------------------------ valid traffic


def test_masked_frames_of_every_length_encoding_are_unmasked(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    sizes = [0, 1, 125, 126, 127, 65535, 65536]
    with open_client(served, recorder)[0] as client:
        for size in sizes:
            payload = bytes(index % 251 for index in range(size))
            client.send_frame(BINARY, payload, mask=b"\xa5\x5a\x0f\xf0")
            assert client.read_message() == payload
    assert [len(message) for message in recorder.messages] == sizes


def test_fragmented_text_is_reassembled_even_split_inside_a_character(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    text = "h\u00e9llo \u20ac \U0001f600!"
    encoded = text.encode("utf-8")
    cuts = [2, encoded.index(b"\xe2") + 1, encoded.index(b"\xf0") + 2, encoded.index(b"\xf0") + 3]
    pieces = [encoded[a:b] for a, b in zip([0, *cuts], [*cuts, len(encoded)], strict=True)]
    with open_client(served, recorder)[0] as client:
        for index, piece in enumerate(pieces):
            client.send_frame(TEXT if index == 0 else CONT, piece, fin=index == len(pieces) - 1)
        assert client.read_message() == text
        client.send_frame(BINARY, b"\x00\x01", fin=False)
        client.send_frame(CONT, b"", fin=False)
        client.send_frame(CONT, b"\x02", fin=True)
        assert client.read_message() == b"\x00\x01\x02"
    assert recorder.messages == [text, b"\x00\x01\x02"]


def test_single_text_frame_arriving_in_pieces_is_one_message(serve):
    # The server reads the frame in three pieces (we wait until it has consumed each one),
    # the cuts falling inside multi-byte characters.
    recorder = Recorder()
    served = serve(on_connect=recorder)
    text = "\u20ac" * 50 + "\U0001f600" * 10
    frame = client_frame(TEXT, text.encode("utf-8"))
    with open_client(served, recorder)[0] as client:
        server_socket = recorder.connections[0].socket
        for start, end in [(0, 9), (9, 101), (101, len(frame))]:
            client.send_raw(frame[start:end])
            wait_until(lambda: unread_bytes(server_socket) == 0, what="the server to read")
        assert client.read_message() == text
    assert recorder.messages == [text]


def test_ping_is_answered_with_an_identical_pong(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        for payload in [b"", b"ping!", bytes(range(125))]:
            client.send_frame(PING, payload)
            frame = client.read_frame()
            assert (frame.opcode, frame.fin, frame.masked) == (PONG, True, False)
            assert frame.payload == payload


def test_ping_between_fragments_is_answered_and_the_message_completes(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_frame(TEXT, b"frag-1 ", fin=False)
        client.send_frame(PING, b"in between")
        pong = client.read_frame()
        assert (pong.opcode, pong.payload) == (PONG, b"in between")
        client.send_frame(CONT, b"frag-2 ", fin=False)
        client.send_frame(PONG, b"unsolicited")  # ignored, not answered
        client.send_frame(PING, b"again")
        client.send_frame(CONT, b"frag-3", fin=True)
        pong = client.read_frame()
        assert (pong.opcode, pong.payload) == (PONG, b"again")
        assert client.read_message() == "frag-1 frag-2 frag-3"
    assert recorder.messages == ["frag-1 frag-2 frag-3"]


def test_empty_text_and_binary_messages_are_delivered(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_frame(TEXT, b"")
        client.send_frame(BINARY, b"")
        client.send_frame(TEXT, b"", fin=False)
        client.send_frame(CONT, b"", fin=True)
        echoes = []
        for _ in range(3):
            frame = client.read_frame()
            echoes.append((frame.opcode, frame.fin, frame.payload))
        assert echoes == [(TEXT, True, b""), (BINARY, True, b""), (TEXT, True, b"")]
    assert recorder.messages == ["", b"", ""]
    assert [type(message) for message in recorder.messages] == [str, bytes, str]


def _one_byte_per_write_client(port: int, data: bytes) -> bytes:
    """In a real thread: handshake, write ``data`` one byte per send(), send a Close, and
    return what the server sent after the handshake (up to EOF)."""
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(
            (
                "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(4096)
            assert chunk, "EOF during the handshake"
            response += chunk
        head, rest = response.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert expected_accept(key).encode() in head
        for index in range(len(data)):
            sock.send(data[index : index + 1])
        sock.sendall(client_frame(CLOSE, struct.pack("!H", 1000)))
        received = rest
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk


def test_frames_written_one_byte_at_a_time_still_parse(serve):
    recorder = Recorder(echo=False)
    served = serve(on_connect=recorder)
    expected: list[str | bytes] = []
    frames = []
    index = 0
    while sum(map(len, frames)) < 10_000:
        kind = index % 4
        if kind == 0:
            text = f"message {index} \u00e9\u20ac\U0001f600"
            frames.append(client_frame(TEXT, text.encode()))
            expected.append(text)
        elif kind == 1:
            data = os.urandom(index % 300)  # some use the 16-bit length
            frames.append(client_frame(BINARY, data))
            expected.append(data)
        elif kind == 2:
            text = f"fragmented {index} \u20ac"
            encoded = text.encode()
            frames.append(client_frame(TEXT, encoded[:-2], fin=False))
            frames.append(client_frame(PING, b"p%d" % index))
            frames.append(client_frame(CONT, encoded[-2:], fin=True))
            expected.append(text)
        else:
            frames.append(client_frame(PONG, b"unsolicited"))
        index += 1
    data = b"".join(frames)
    assert len(data) >= 10_000

    received = in_thread(_one_byte_per_write_client, served.port, data)

    assert recorder.messages == expected
    pong_payloads = []
    offset = 0
    # The answer: one Pong per Ping, in order, then the Close reply, then EOF.
    while offset < len(received):
        first, second = received[offset], received[offset + 1]
        size = second & 0x7F
        assert size < 126
        pong_payloads.append((first, received[offset + 2 : offset + 2 + size]))
        offset += 2 + size
    pings = [b"p%d" % i for i in range(index) if i % 4 == 2]
    assert pong_payloads == [(0x80 | PONG, p) for p in pings] + [(0x80 | CLOSE, b"\x03\xe8")]
    events = served.wait_for_event("close")
    assert [event[2:] for event in events] == [(1000, "Normal connection closure")]


def test_pipelined_frames_in_one_write_are_all_delivered_in_order(serve):
    recorder = Recorder(echo=False)
    served = serve(on_connect=recorder)
    expected = [f"pipelined {index}" for index in range(500)]
    with open_client(served, recorder)[0] as client:
        started = time.monotonic()
        client.send_raw(b"".join(client_frame(TEXT, text.encode()) for text in expected))
        wait_until(lambda: len(recorder.messages) == 500, what="500 messages")
        assert time.monotonic() - started < 3
    assert recorder.messages == expected


def test_echo_of_a_message_goes_out_before_the_close_for_a_bad_frame_behind_it(serve):
    # Autobahn 3.2 / 5.15 shape: a good message and a bad frame in one write. The listener
    # sees the message and its answer leaves before our Close 1002.
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_raw(client_frame(TEXT, b"first") + client_frame(TEXT, b"bad", rsv=0x40))
        assert client.read_message() == "first"
        close = client.read_frame()
        assert (close.opcode, close.close_code) == (CLOSE, 1002)
        client.expect_eof()
    assert recorder.messages == ["first"]


def test_echo_of_a_message_goes_out_before_the_reply_to_a_close_behind_it(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    with open_client(served, recorder)[0] as client:
        client.send_raw(
            client_frame(TEXT, b"last words") + client_frame(CLOSE, struct.pack("!H", 1000))
        )
        assert client.read_message() == "last words"
        close = client.read_frame()
        assert (close.opcode, close.close_code) == (CLOSE, 1000)
        client.expect_eof()
    served.wait_for_event("close")
