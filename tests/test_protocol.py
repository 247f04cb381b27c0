"""The sans-I/O protocol core, byte for byte: receiving, failing, closing and sending.

Client frames are built with :mod:`protocol_helpers` (independent of geventws.frames); the
expected server bytes are written out by hand.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_helpers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    bytewise,
    chunked,
    client_close,
    client_frame,
    feed,
    parse_frames,
    server_close,
)

from geventws import protocol as protocol_module
from geventws.errors import ProtocolError
from geventws.extensions import RSV1, Extension
from geventws.frames import Frame, Opcode, encode_frame
from geventws.masking import PythonPayloadBuffer
from geventws.protocol import (
    CloseReceived,
    ConnectionFailed,
    Event,
    FrameReceived,
    MessageReceived,
    PingReceived,
    PongReceived,
    State,
    WebSocketProtocol,
)


@pytest.fixture(autouse=True, scope="module", params=["C scanner", "pure Python"])
def parser(request: pytest.FixtureRequest):
    """Every test here runs twice: with the C scanner of whole messages and payload buffer
    (where built) and with the pure-Python parser and payload buffer alone, which both must
    match byte for byte."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "pure Python":
            patch.setattr(protocol_module, "accelerated_scan_messages", None)
            patch.setattr(protocol_module, "payload_buffer_type", PythonPayloadBuffer)
        yield request.param


INVALID_UTF8 = "Invalid UTF-8 Data Received"
RSV_REASON = "Unsupported usage of rsv bits without negotiated extension."
CONTROL_TOO_LONG = "Illegal control frame longer than 125 bytes."
CONTROL_FRAGMENTED = "Control frames must not be fragmented."
UNMASKED = "Received an unmasked frame from the client."
MSB_SET = "Invalid 64-bit frame length (most significant bit set)."
UNEXPECTED_CONTINUATION = "Unexpected Continuation Frame"
MESSAGE_TOO_BIG = "Maximum message size exceeded."
KOSME = "κόσμε".encode()  # ce ba e1 bd b9 cf 83 ce bc ce b5, as in Autobahn case 6.4


def frame_too_big(size: int) -> str:
    return f"Frame size of {size} bytes exceeds maximum accepted frame size"


def failed(code: int, reason: str) -> ConnectionFailed:
    """The ConnectionFailed event expected for ``code`` and ``reason``, with exact bytes."""
    return ConnectionFailed(code, reason, server_close(code, reason))


def assert_failed_with(
    protocol: WebSocketProtocol, events: list[Event], code: int, reason: str
) -> None:
    assert events[-1] == failed(code, reason)
    assert sum(isinstance(event, ConnectionFailed) for event in events) == 1
    assert protocol.state is State.CLOSED
    assert len(protocol._buffer) == 0
    # Whatever comes next is ignored.
    assert protocol.receive(client_frame(OP_TEXT, "after")) == []


# =========================================================================== receiving


class TestReceivingMessages:
    def test_rfc_masked_hello_example(self) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(bytes.fromhex("818537fa213d7f9f4d5158"))
        assert events == [MessageReceived("Hello")]
        assert protocol.state is State.OPEN

    def test_text_message_is_str_and_binary_message_is_bytes(self) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(
            client_frame(OP_TEXT, "héllo wörld") + client_frame(OP_BINARY, b"\x00\xff\xfe")
        )
        assert events == [MessageReceived("héllo wörld"), MessageReceived(b"\x00\xff\xfe")]
        assert type(events[0].data) is str  # type: ignore[union-attr]
        assert type(events[1].data) is bytes  # type: ignore[union-attr]

    def test_empty_text_and_binary_messages_are_delivered(self) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_frame(OP_TEXT, b"") + client_frame(OP_BINARY, b""))
        assert events == [MessageReceived(""), MessageReceived(b"")]

    def test_empty_fragmented_message_is_delivered(self) -> None:
        protocol = WebSocketProtocol()
        stream = client_frame(OP_TEXT, b"", fin=False) + client_frame(OP_CONT, b"")
        stream += client_frame(OP_BINARY, b"", fin=False) + client_frame(OP_CONT, b"")
        assert protocol.receive(stream) == [MessageReceived(""), MessageReceived(b"")]

    @pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536])
    def test_each_length_encoding_is_read(self, size: int) -> None:
        payload = bytes((index * 7) & 0xFF for index in range(size))
        protocol = WebSocketProtocol()
        assert protocol.receive(client_frame(OP_BINARY, payload)) == [MessageReceived(payload)]

    def test_frames_with_different_masks_are_each_unmasked_with_their_key(self) -> None:
        protocol = WebSocketProtocol()
        stream = client_frame(OP_TEXT, "one", mask=b"\x00\x00\x00\x00")
        stream += client_frame(OP_TEXT, "two", mask=b"\xff\xff\xff\xff")
        stream += client_frame(OP_TEXT, "three", mask=b"\x01\x02\x03\x04")
        assert protocol.receive(stream) == [
            MessageReceived("one"),
            MessageReceived("two"),
            MessageReceived("three"),
        ]

    def test_many_frames_in_one_receive_call_come_out_in_order(self) -> None:
        protocol = WebSocketProtocol()
        stream = b"".join(client_frame(OP_TEXT, f"message {index}") for index in range(200))
        events = protocol.receive(stream)
        assert events == [MessageReceived(f"message {index}") for index in range(200)]

    def test_fragmented_text_is_reassembled(self) -> None:
        protocol = WebSocketProtocol()
        stream = client_frame(OP_TEXT, "Hel", fin=False)
        stream += client_frame(OP_CONT, "lo, ", fin=False)
        stream += client_frame(OP_CONT, "world")
        assert protocol.receive(stream) == [MessageReceived("Hello, world")]

    def test_fragmented_binary_is_reassembled(self) -> None:
        protocol = WebSocketProtocol()
        stream = client_frame(OP_BINARY, b"\x01\x02", fin=False)
        stream += client_frame(OP_CONT, b"", fin=False)
        stream += client_frame(OP_CONT, b"\x03")
        assert protocol.receive(stream) == [MessageReceived(b"\x01\x02\x03")]

    def test_fragments_arriving_in_separate_calls(self) -> None:
        protocol = WebSocketProtocol()
        assert protocol.receive(client_frame(OP_BINARY, b"ab", fin=False)) == []
        assert protocol.receive(client_frame(OP_CONT, b"cd", fin=False)) == []
        assert protocol.receive(client_frame(OP_CONT, b"ef")) == [MessageReceived(b"abcdef")]

    def test_control_frames_between_fragments_are_reported_at_once(self) -> None:
        protocol = WebSocketProtocol()
        events = feed(
            protocol,
            [
                client_frame(OP_TEXT, "frag", fin=False),
                client_frame(OP_PING, b"ping payload"),
                client_frame(OP_CONT, "ment", fin=False),
                client_frame(OP_PONG, b"pong payload"),
                client_frame(OP_CONT, "ed"),
            ],
        )
        assert events == [
            PingReceived(b"ping payload"),
            PongReceived(b"pong payload"),
            MessageReceived("fragmented"),
        ]

    def test_close_between_fragments_ends_the_connection(self) -> None:
        protocol = WebSocketProtocol()
        stream = client_frame(OP_TEXT, "never", fin=False) + client_close(1001)
        stream += client_frame(OP_CONT, " finished")
        assert protocol.receive(stream) == [CloseReceived(1001, "", b"\x88\x02\x03\xe9")]

    def test_ping_and_pong_payloads(self) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(
            client_frame(OP_PING, b"")
            + client_frame(OP_PING, b"\x00\xff" * 62 + b"!")
            + client_frame(OP_PONG, b"")
            + client_frame(OP_PONG, "é".encode())
        )
        assert events == [
            PingReceived(b""),
            PingReceived(b"\x00\xff" * 62 + b"!"),
            PongReceived(b""),
            PongReceived(b"\xc3\xa9"),
        ]

    def test_ping_payload_need_not_be_utf8(self) -> None:
        protocol = WebSocketProtocol()
        assert protocol.receive(client_frame(OP_PING, b"\xff\xfe")) == [PingReceived(b"\xff\xfe")]

    def test_control_frames_of_exactly_125_bytes_are_accepted(self) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(
            client_frame(OP_PING, b"p" * 125)
            + client_frame(OP_PONG, b"q" * 125)
            + client_close(1000, b"r" * 123)
        )
        assert events == [
            PingReceived(b"p" * 125),
            PongReceived(b"q" * 125),
            CloseReceived(1000, "r" * 123, b"\x88\x02\x03\xe8"),
        ]

    def test_unmasked_frames_are_accepted_when_masking_is_not_required(self) -> None:
        protocol = WebSocketProtocol(require_mask=False)
        stream = client_frame(OP_TEXT, "plain", mask=None) + client_frame(OP_TEXT, "x")
        assert protocol.receive(stream) == [MessageReceived("plain"), MessageReceived("x")]

    def test_binary_payload_with_invalid_utf8_is_fine(self) -> None:
        protocol = WebSocketProtocol()
        data = b"\xff\xfe\xed\xa0\x80\xc0"
        assert protocol.receive(client_frame(OP_BINARY, data)) == [MessageReceived(data)]

    def test_bytearray_input_is_accepted_and_not_kept(self) -> None:
        protocol = WebSocketProtocol()
        data = bytearray(client_frame(OP_TEXT, "abc") + client_frame(OP_TEXT, "de")[:3])
        assert protocol.receive(data) == [MessageReceived("abc")]
        data[:] = b"\x00" * len(data)  # the caller reuses its buffer
        assert protocol.receive(client_frame(OP_TEXT, "de")[3:]) == [MessageReceived("de")]

    def test_empty_input_gives_no_events(self) -> None:
        protocol = WebSocketProtocol()
        assert protocol.receive(b"") == []
        assert protocol.receive(client_frame(OP_TEXT, "x")[:1]) == []
        assert protocol.receive(b"") == []
        assert protocol.receive(client_frame(OP_TEXT, "x")[1:]) == [MessageReceived("x")]

    def test_incomplete_frame_gives_no_event_until_its_last_byte(self) -> None:
        protocol = WebSocketProtocol()
        frame = client_frame(OP_BINARY, b"x" * 300)
        assert protocol.receive(frame[:-1]) == []
        assert protocol.receive(frame[-1:]) == [MessageReceived(b"x" * 300)]


def _mixed_stream() -> bytes:
    return b"".join(
        [
            client_frame(OP_TEXT, "€ and 𝄞 ", fin=False),
            client_frame(OP_PING, b"are you there"),
            client_frame(OP_CONT, "κόσμε", fin=False),
            client_frame(OP_CONT, b""),
            client_frame(OP_BINARY, bytes(range(256)) * 2, mask=b"\xa1\xb2\xc3\xd4"),
            client_frame(OP_PONG, b""),
            client_frame(OP_TEXT, b""),
            client_frame(OP_BINARY, b"x" * 70000),
            client_close(1000, "done"),
        ]
    )


MIXED_EVENTS = [
    PingReceived(b"are you there"),
    MessageReceived("€ and 𝄞 κόσμε"),
    MessageReceived(bytes(range(256)) * 2),
    PongReceived(b""),
    MessageReceived(""),
    MessageReceived(b"x" * 70000),
    CloseReceived(1000, "done", b"\x88\x02\x03\xe8"),
]


class TestChunking:
    def test_whole_stream_at_once(self) -> None:
        protocol = WebSocketProtocol(max_frame_size=100000)
        assert protocol.receive(_mixed_stream()) == MIXED_EVENTS

    def test_one_byte_at_a_time_gives_the_same_events(self) -> None:
        protocol = WebSocketProtocol(max_frame_size=100000)
        assert feed(protocol, bytewise(_mixed_stream())) == MIXED_EVENTS

    def test_split_at_every_byte_boundary_gives_the_same_events(self) -> None:
        stream = b"".join(
            [
                client_frame(OP_TEXT, "€𝄞", fin=False),
                client_frame(OP_PING, b"hi"),
                client_frame(OP_CONT, "é"),
                client_frame(OP_BINARY, b"b" * 130),
                client_close(3000, "ok"),
            ]
        )
        expected = [
            PingReceived(b"hi"),
            MessageReceived("€𝄞é"),
            MessageReceived(b"b" * 130),
            CloseReceived(3000, "ok", b"\x88\x02\x0b\xb8"),
        ]
        for cut in range(len(stream) + 1):
            protocol = WebSocketProtocol()
            assert feed(protocol, [stream[:cut], stream[cut:]]) == expected, cut

    def test_split_at_every_pair_of_boundaries_of_a_short_stream(self) -> None:
        stream = client_frame(OP_TEXT, "a€", fin=False) + client_frame(OP_CONT, "𝄞")
        for first in range(len(stream) + 1):
            for second in range(first, len(stream) + 1):
                protocol = WebSocketProtocol()
                pieces = [stream[:first], stream[first:second], stream[second:]]
                assert feed(protocol, pieces) == [MessageReceived("a€𝄞")], (first, second)

    def test_long_frame_in_uneven_chunks(self) -> None:
        payload = "".join(chr(0x20 + index % 0x3000) for index in range(5000)).encode()
        stream = client_frame(OP_TEXT, payload, mask=b"\x9a\x00\x5c\xee")
        for sizes in ([1, 2, 3], [7], [4096], [3, 1000, 1]):
            protocol = WebSocketProtocol()
            events = feed(protocol, chunked(stream, sizes))
            assert events == [MessageReceived(payload.decode())], sizes

    # Binary payloads of 64 KiB or more that come in several reads are kept as the list of
    # reads and joined when complete: the same events, whatever the cuts.

    @pytest.mark.parametrize("sizes", [[65536], [1, 70000, 3], [65540, 7], [200_000]])
    def test_a_big_binary_payload_in_many_reads_then_more_frames(self, sizes) -> None:
        payload = bytes(range(256)) * 800  # 204,800 bytes
        stream = (
            client_frame(OP_BINARY, payload, mask=b"\x9a\x00\x5c\xee")
            + client_frame(OP_TEXT, "next")
            + client_frame(OP_PING, b"p")
        )
        protocol = WebSocketProtocol(max_frame_size=1 << 20)
        events = feed(protocol, chunked(stream, sizes))
        assert events == [MessageReceived(payload), MessageReceived("next"), PingReceived(b"p")]
        assert not protocol.inside_frame
        assert len(protocol._buffer) == 0

    def test_big_binary_fragments_are_joined_into_one_message(self) -> None:
        first, second = b"\x01" * 100_000, b"\x02" * 90_000
        stream = client_frame(OP_BINARY, first, fin=False) + client_frame(OP_CONT, second)
        protocol = WebSocketProtocol(max_frame_size=1 << 20)
        assert feed(protocol, chunked(stream, [4096, 65536])) == [MessageReceived(first + second)]

    def test_more_is_due_while_a_big_payload_is_incomplete(self) -> None:
        stream = client_frame(OP_BINARY, b"x" * 100_000)
        protocol = WebSocketProtocol(max_frame_size=1 << 20)
        assert protocol.receive(stream[:70_000]) == []
        assert protocol.inside_frame
        assert protocol.payload_pending  # received into its message, not one growing buffer
        assert len(protocol._buffer) == 0
        assert protocol.receive(stream[70_000:-1]) == []
        assert protocol.inside_frame
        assert protocol.receive(stream[-1:]) == [MessageReceived(b"x" * 100_000)]
        assert not protocol.payload_pending

    def test_a_big_payload_written_into_its_view_gives_the_message_and_what_follows_parses(
        self,
    ) -> None:
        payload = bytes(range(256)) * 400
        stream = client_frame(OP_BINARY, payload) + client_frame(OP_TEXT, b"after")
        header_and_start = 14 + 1000  # 2 + 8 length bytes + 4 mask bytes, then payload
        protocol = WebSocketProtocol(max_frame_size=1 << 20)
        assert protocol.receive(stream[:header_and_start]) == []
        assert protocol.payload_pending
        done = header_and_start
        events: list = []
        for size in (1, 4095, 60_000, 10**6):
            view = protocol.payload_view()
            assert len(view) == 14 + len(payload) - done
            piece = stream[done : done + min(size, len(view))]
            view[: len(piece)] = piece
            view.release()
            done += len(piece)
            events = protocol.payload_received(len(piece))
            if events:
                break
        assert events == [MessageReceived(payload)]
        assert not protocol.payload_pending
        with pytest.raises(ValueError, match="no payload is being received"):
            protocol.payload_view()
        with pytest.raises(ValueError, match="no payload is being received"):
            protocol.payload_received(1)
        assert protocol.receive(stream[done:]) == [MessageReceived("after")]

    def test_a_big_payload_over_the_message_limit_fails_with_1009_when_complete(self) -> None:
        first = b"a" * 70_000
        stream = client_frame(OP_BINARY, first, fin=False) + client_frame(OP_CONT, b"b" * 70_000)
        protocol = WebSocketProtocol(max_frame_size=1 << 20, max_message_size=100_000)
        assert protocol.receive(stream[:100]) == []
        assert protocol.payload_pending
        view = protocol.payload_view()
        rest_of_first = 14 + len(first) - 100
        view[:] = stream[100 : 100 + rest_of_first]
        view.release()
        assert protocol.payload_received(rest_of_first) == []
        events = protocol.receive(stream[100 + rest_of_first :])
        assert [type(event) for event in events] == [ConnectionFailed]
        assert events[0].code == 1009
        assert protocol.state is State.CLOSED
        assert not protocol.payload_pending
        assert not protocol.inside_frame

    def test_a_bad_frame_right_after_a_big_payload_fails_after_its_message(self) -> None:
        stream = client_frame(OP_BINARY, b"y" * 80_000) + client_frame(OP_TEXT, "bare", mask=None)
        protocol = WebSocketProtocol(max_frame_size=1 << 20)
        events = feed(protocol, chunked(stream, [65536]))
        assert events[0] == MessageReceived(b"y" * 80_000)
        assert events[1:] == [failed(1002, UNMASKED)]
        assert protocol.state is State.CLOSED


# ====================================================================== header checks


class TestHeaderChecks:
    @pytest.mark.parametrize(
        ("rsv1", "rsv2", "rsv3"),
        [(True, False, False), (False, True, False), (False, False, True), (True, True, True)],
    )
    @pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY, OP_PING, OP_CLOSE])
    def test_rsv_bits_without_extension_fail_with_1002(
        self, opcode: int, rsv1: bool, rsv2: bool, rsv3: bool
    ) -> None:
        protocol = WebSocketProtocol()
        frame = client_frame(opcode, b"", rsv1=rsv1, rsv2=rsv2, rsv3=rsv3)
        assert_failed_with(protocol, protocol.receive(frame), 1002, RSV_REASON)

    def test_rsv_bit_on_continuation_fails_with_1002(self) -> None:
        protocol = WebSocketProtocol()
        stream = client_frame(OP_TEXT, "a", fin=False) + client_frame(OP_CONT, "b", rsv2=True)
        assert_failed_with(protocol, protocol.receive(stream), 1002, RSV_REASON)

    @pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
    def test_unknown_opcodes_fail_with_1002_naming_the_opcode_in_hex(self, opcode: int) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_frame(opcode, b"abc"))
        assert_failed_with(protocol, events, 1002, f"Unrecognized Opcode: 0x{opcode:x}")

    def test_unknown_opcode_reason_text_is_lower_case_hex(self) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_frame(0xB, b""))
        assert events == [failed(1002, "Unrecognized Opcode: 0xb")]
        protocol = WebSocketProtocol()
        assert protocol.receive(client_frame(3, b"")) == [failed(1002, "Unrecognized Opcode: 0x3")]

    @pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
    @pytest.mark.parametrize("size", [126, 127, 65535, 65536])
    def test_control_frame_over_125_bytes_fails_on_its_header(self, opcode: int, size: int) -> None:
        protocol = WebSocketProtocol()
        header = client_frame(opcode, b"", declared_length=size)  # no payload sent
        assert_failed_with(protocol, protocol.receive(header), 1002, CONTROL_TOO_LONG)

    @pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
    def test_fragmented_control_frame_fails_with_1002(self, opcode: int) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_frame(opcode, b"", fin=False))
        assert_failed_with(protocol, events, 1002, CONTROL_FRAGMENTED)

    @pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY, OP_PING, OP_PONG, OP_CLOSE])
    def test_unmasked_client_frame_fails_with_1002(self, opcode: int) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_frame(opcode, b"", mask=None))
        assert_failed_with(protocol, events, 1002, UNMASKED)

    def test_connection_failed_carries_the_exact_close_frame(self) -> None:
        protocol = WebSocketProtocol()
        (event,) = protocol.receive(client_frame(OP_TEXT, b"", mask=None))
        assert isinstance(event, ConnectionFailed)
        assert event.code == 1002
        assert event.reason == "Received an unmasked frame from the client."
        assert event.close_frame == (
            b"\x88\x2d\x03\xea" + b"Received an unmasked frame from the client."
        )
        protocol = WebSocketProtocol()
        (event,) = protocol.receive(client_frame(OP_TEXT, b"\xff"))
        assert event == ConnectionFailed(
            1007, INVALID_UTF8, b"\x88\x1d\x03\xefInvalid UTF-8 Data Received"
        )

    def test_failure_after_our_close_sends_no_second_close(self) -> None:
        protocol = WebSocketProtocol()
        protocol.start_close(1000, None)
        (event,) = protocol.receive(client_frame(OP_TEXT, b"\xff"))
        assert event == ConnectionFailed(1007, INVALID_UTF8, b"")
        assert protocol.state is State.CLOSED

    def test_unmasked_frame_after_good_frames_keeps_the_earlier_events(self) -> None:
        protocol = WebSocketProtocol()
        stream = client_frame(OP_TEXT, "ok") + client_frame(OP_PING, b"p")
        stream += client_frame(OP_TEXT, "bad", mask=None)
        events = protocol.receive(stream)
        assert events == [MessageReceived("ok"), PingReceived(b"p"), failed(1002, UNMASKED)]

    def test_continuation_without_a_message_fails_with_1002(self) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_frame(OP_CONT, "orphan"))
        assert_failed_with(protocol, events, 1002, UNEXPECTED_CONTINUATION)

    def test_continuation_after_a_finished_message_fails_with_1002(self) -> None:
        protocol = WebSocketProtocol()
        stream = client_frame(OP_TEXT, "a", fin=False) + client_frame(OP_CONT, "b")
        stream += client_frame(OP_CONT, "c")
        events = protocol.receive(stream)
        assert events[0] == MessageReceived("ab")
        assert_failed_with(protocol, events, 1002, UNEXPECTED_CONTINUATION)

    @pytest.mark.parametrize(
        ("first", "second"),
        [(OP_TEXT, OP_TEXT), (OP_TEXT, OP_BINARY), (OP_BINARY, OP_TEXT), (OP_BINARY, OP_BINARY)],
    )
    def test_new_data_frame_in_the_middle_of_a_message_fails_with_1002(
        self, first: int, second: int
    ) -> None:
        protocol = WebSocketProtocol()
        stream = client_frame(first, b"a", fin=False) + client_frame(second, b"b")
        reason = f"Illegal frame opcode 0x{second:x} received in middle of fragmented message."
        assert_failed_with(protocol, protocol.receive(stream), 1002, reason)

    def test_frame_of_exactly_the_frame_limit_is_accepted(self) -> None:
        protocol = WebSocketProtocol(max_frame_size=100)
        assert protocol.receive(client_frame(OP_BINARY, b"z" * 100)) == [
            MessageReceived(b"z" * 100)
        ]

    def test_frame_one_byte_over_the_limit_fails_with_1009_before_its_payload(self) -> None:
        protocol = WebSocketProtocol(max_frame_size=100)
        header = client_frame(OP_BINARY, b"z" * 101)[:6]  # 2 header bytes and the mask
        assert_failed_with(protocol, protocol.receive(header), 1009, frame_too_big(101))

    def test_default_frame_limit_is_64_kib(self) -> None:
        protocol = WebSocketProtocol()
        payload = b"y" * 65536
        assert protocol.receive(client_frame(OP_BINARY, payload)) == [MessageReceived(payload)]
        protocol = WebSocketProtocol()
        header = client_frame(OP_BINARY, b"", declared_length=65537)
        assert_failed_with(protocol, protocol.receive(header), 1009, frame_too_big(65537))

    def test_frame_declaring_2_to_the_62_bytes_fails_with_1009_on_its_header(self) -> None:
        protocol = WebSocketProtocol()
        header = client_frame(OP_BINARY, b"", declared_length=2**62)
        assert len(header) == 14
        # Nothing before the whole header (and mask) is in.
        assert feed(protocol, bytewise(header[:-1])) == []
        events = protocol.receive(header[-1:])
        assert_failed_with(protocol, events, 1009, frame_too_big(2**62))

    @pytest.mark.parametrize("length", [2**63, 2**63 + 5, 2**64 - 1])
    def test_64_bit_length_with_most_significant_bit_set_fails_with_1002(self, length: int) -> None:
        protocol = WebSocketProtocol()
        header = client_frame(OP_BINARY, b"", declared_length=length)
        assert header[2] & 0x80
        assert_failed_with(protocol, protocol.receive(header), 1002, MSB_SET)

    def test_single_frame_message_over_the_message_limit_fails_with_1009(self) -> None:
        protocol = WebSocketProtocol(max_frame_size=1000, max_message_size=100)
        header = client_frame(OP_TEXT, b"", declared_length=101)
        assert_failed_with(protocol, protocol.receive(header), 1009, MESSAGE_TOO_BIG)

    def test_single_frame_message_of_exactly_the_message_limit_is_accepted(self) -> None:
        protocol = WebSocketProtocol(max_frame_size=1000, max_message_size=100)
        assert protocol.receive(client_frame(OP_TEXT, "m" * 100)) == [MessageReceived("m" * 100)]

    def test_fragmented_message_of_exactly_the_limit_is_accepted(self) -> None:
        protocol = WebSocketProtocol(max_frame_size=40, max_message_size=100)
        stream = client_frame(OP_BINARY, b"a" * 40, fin=False)
        stream += client_frame(OP_CONT, b"b" * 40, fin=False)
        stream += client_frame(OP_CONT, b"c" * 20)
        assert protocol.receive(stream) == [MessageReceived(b"a" * 40 + b"b" * 40 + b"c" * 20)]

    def test_fragmented_message_one_byte_over_fails_on_the_header_of_the_last_fragment(
        self,
    ) -> None:
        protocol = WebSocketProtocol(max_frame_size=40, max_message_size=100)
        stream = client_frame(OP_BINARY, b"a" * 40, fin=False)
        stream += client_frame(OP_CONT, b"b" * 40, fin=False)
        assert protocol.receive(stream) == []
        header = client_frame(OP_CONT, b"", declared_length=21)
        assert_failed_with(protocol, protocol.receive(header), 1009, MESSAGE_TOO_BIG)

    def test_message_limit_counts_only_the_current_message(self) -> None:
        protocol = WebSocketProtocol(max_frame_size=100, max_message_size=100)
        stream = b"".join(client_frame(OP_BINARY, b"q" * 100) for _ in range(5))
        assert protocol.receive(stream) == [MessageReceived(b"q" * 100)] * 5
        stream = client_frame(OP_TEXT, "a" * 60, fin=False) + client_frame(OP_CONT, "b" * 40)
        stream += client_frame(OP_TEXT, "c" * 60, fin=False) + client_frame(OP_CONT, "d" * 40)
        assert protocol.receive(stream) == [
            MessageReceived("a" * 60 + "b" * 40),
            MessageReceived("c" * 60 + "d" * 40),
        ]

    def test_control_frames_do_not_count_toward_the_message_size(self) -> None:
        protocol = WebSocketProtocol(max_message_size=10)
        stream = client_frame(OP_TEXT, "12345", fin=False)
        stream += client_frame(OP_PING, b"p" * 100)
        stream += client_frame(OP_CONT, "67890")
        assert protocol.receive(stream) == [PingReceived(b"p" * 100), MessageReceived("1234567890")]

    def test_frame_limit_is_checked_before_the_control_frame_rules_allow_it(self) -> None:
        protocol = WebSocketProtocol(max_frame_size=10)
        events = protocol.receive(client_frame(OP_PING, b"p" * 11))
        assert_failed_with(protocol, events, 1009, frame_too_big(11))

    def test_unmasked_header_is_refused_before_its_size(self) -> None:
        protocol = WebSocketProtocol(max_frame_size=10)
        events = protocol.receive(client_frame(OP_BINARY, b"", mask=None, declared_length=2**62))
        assert_failed_with(protocol, events, 1002, UNMASKED)


# =========================================================================== UTF-8


class TestUtf8:
    def test_invalid_utf8_in_a_complete_text_frame_fails_with_1007(self) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_frame(OP_TEXT, b"abc\xff"))
        assert_failed_with(protocol, events, 1007, INVALID_UTF8)

    @pytest.mark.parametrize(
        "payload",
        [
            b"\xc0\xaf",  # overlong
            b"\xe0\x80\xaf",  # overlong
            b"\xed\xa0\x80",  # encoded surrogate
            b"\xf4\x90\x80\x80",  # above U+10FFFF
            b"\xf5",
            b"\x80",
            b"\xce",  # truncated at the end of the message
            b"ok\xf0\x9d\x84",  # truncated 4-byte character
        ],
    )
    def test_invalid_sequences_fail_with_1007(self, payload: bytes) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_frame(OP_TEXT, payload))
        assert_failed_with(protocol, events, 1007, INVALID_UTF8)

    @pytest.mark.parametrize("bad", [b"\xf4\x90", b"\xed\xa0", b"\xff", b"\xc0"])
    def test_invalid_byte_in_the_first_piece_of_a_frame_fails_before_the_rest(
        self, bad: bytes
    ) -> None:
        payload = b"0123456789" + bad + b"x" * (100 - 10 - len(bad))
        frame = client_frame(OP_TEXT, payload)
        assert frame[1] == 0x80 | 100
        protocol = WebSocketProtocol()
        events = protocol.receive(frame[: 6 + 20])  # header, mask and 20 of 100 bytes
        assert_failed_with(protocol, events, 1007, INVALID_UTF8)

    def test_invalid_byte_fails_as_soon_as_it_arrives_one_byte_at_a_time(self) -> None:
        payload = b"abc\xed\xa0\x80" + b"x" * 50
        frame = client_frame(OP_TEXT, payload)
        protocol = WebSocketProtocol()
        for index, byte in enumerate(bytewise(frame)):
            events = protocol.receive(byte)
            if index < 6 + 4:  # header + mask + "abc" + ED: still possibly valid
                assert events == [], index
            else:
                assert events == [failed(1007, INVALID_UTF8)], index
                break
        assert protocol.state is State.CLOSED

    def test_valid_prefix_of_an_incomplete_frame_does_not_fail(self) -> None:
        payload = KOSME + b"\xf4" + b"x" * 50  # F4 alone may start a valid character
        frame = client_frame(OP_TEXT, payload)
        protocol = WebSocketProtocol()
        assert protocol.receive(frame[: 6 + len(KOSME) + 1]) == []
        assert protocol.state is State.OPEN

    def test_autobahn_6_4_1_invalid_fragment_fails_before_the_last_fragment(self) -> None:
        protocol = WebSocketProtocol()
        assert protocol.receive(client_frame(OP_TEXT, KOSME, fin=False)) == []
        events = protocol.receive(client_frame(OP_CONT, b"\xf4\x90\x80\x80", fin=False))
        assert_failed_with(protocol, events, 1007, INVALID_UTF8)

    def test_autobahn_6_4_2_invalid_fragment_after_a_valid_lead_byte(self) -> None:
        protocol = WebSocketProtocol()
        assert protocol.receive(client_frame(OP_TEXT, KOSME + b"\xf4", fin=False)) == []
        events = protocol.receive(client_frame(OP_CONT, b"\x90\x80\x80", fin=False))
        assert_failed_with(protocol, events, 1007, INVALID_UTF8)

    def test_autobahn_6_4_2_fails_on_the_first_byte_of_the_continuation_payload(self) -> None:
        protocol = WebSocketProtocol()
        assert protocol.receive(client_frame(OP_TEXT, KOSME + b"\xf4", fin=False)) == []
        continuation = client_frame(OP_CONT, b"\x90\x80\x80" + b"edited")
        assert protocol.receive(continuation[:6]) == []  # header only
        events = protocol.receive(continuation[6:7])
        assert_failed_with(protocol, events, 1007, INVALID_UTF8)

    def test_autobahn_6_4_3_one_frame_in_pieces_fails_after_the_invalid_piece(self) -> None:
        payload = KOSME + b"\xf4\x90\x80\x80" + b"edited"
        frame = client_frame(OP_TEXT, payload)
        header = 6
        protocol = WebSocketProtocol()
        assert protocol.receive(frame[: header + len(KOSME)]) == []
        events = protocol.receive(frame[header + len(KOSME) : header + len(KOSME) + 4])
        assert_failed_with(protocol, events, 1007, INVALID_UTF8)

    def test_autobahn_6_4_4_one_frame_in_pieces_fails_on_the_second_byte(self) -> None:
        payload = KOSME + b"\xf4\x90\x80\x80" + b"edited"
        frame = client_frame(OP_TEXT, payload)
        cut = 6 + len(KOSME) + 1
        protocol = WebSocketProtocol()
        assert protocol.receive(frame[:cut]) == []
        events = protocol.receive(frame[cut : cut + 1])
        assert_failed_with(protocol, events, 1007, INVALID_UTF8)

    def test_encoded_surrogate_split_across_fragments_fails_on_its_second_byte(self) -> None:
        protocol = WebSocketProtocol()
        assert protocol.receive(client_frame(OP_TEXT, b"a\xed", fin=False)) == []
        events = protocol.receive(client_frame(OP_CONT, b"\xa0", fin=False))
        assert_failed_with(protocol, events, 1007, INVALID_UTF8)

    def test_truncated_character_at_the_end_of_a_fragmented_message_fails(self) -> None:
        protocol = WebSocketProtocol()
        assert protocol.receive(client_frame(OP_TEXT, b"ok\xe2", fin=False)) == []
        events = protocol.receive(client_frame(OP_CONT, b"\x82"))  # FIN, still one byte short
        assert_failed_with(protocol, events, 1007, INVALID_UTF8)

    @pytest.mark.parametrize("character", ["é", "€", "𝄞", "\U0010ffff", "\ud7ff", "\ue000"])
    def test_valid_multibyte_character_split_at_every_point_across_fragments(
        self, character: str
    ) -> None:
        encoded = ("<" + character + ">").encode()
        for cut in range(len(encoded) + 1):
            stream = client_frame(OP_TEXT, encoded[:cut], fin=False)
            stream += client_frame(OP_CONT, encoded[cut:])
            protocol = WebSocketProtocol()
            assert protocol.receive(stream) == [MessageReceived("<" + character + ">")], cut
            protocol = WebSocketProtocol()
            events = feed(protocol, bytewise(stream))
            assert events == [MessageReceived("<" + character + ">")], cut

    def test_character_split_over_three_fragments_with_a_ping_between(self) -> None:
        encoded = "𝄞".encode()
        stream = client_frame(OP_TEXT, encoded[:1], fin=False)
        stream += client_frame(OP_CONT, encoded[1:2], fin=False)
        stream += client_frame(OP_PING, b"")
        stream += client_frame(OP_CONT, encoded[2:3], fin=False)
        stream += client_frame(OP_CONT, encoded[3:])
        protocol = WebSocketProtocol()
        assert feed(protocol, bytewise(stream)) == [PingReceived(b""), MessageReceived("𝄞")]

    def test_long_text_frame_in_pieces_that_cut_characters(self) -> None:
        text = "aé€𝄞" * 500
        frame = client_frame(OP_TEXT, text, mask=b"\x10\x20\x30\x40")
        for size in (1, 2, 3, 5, 7, 64, 1000):
            protocol = WebSocketProtocol()
            assert feed(protocol, chunked(frame, [size])) == [MessageReceived(text)], size


# ===================================================================== closing handshake


class TestPeerClose:
    def test_close_with_code_and_reason_while_open_is_echoed_with_the_code_only(self) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_close(1000, "bye"))
        assert events == [CloseReceived(1000, "bye", b"\x88\x02\x03\xe8")]
        assert protocol.state is State.CLOSED

    @pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, *range(1007, 1015), 3000, 4999])
    def test_every_valid_code_is_reported_and_echoed(self, code: int) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_close(code))
        assert events == [CloseReceived(code, "", bytes([0x88, 0x02, code >> 8, code & 0xFF]))]

    def test_close_reason_is_decoded(self) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_close(4000, "fin du jeu — 終わり"))
        assert events == [CloseReceived(4000, "fin du jeu — 終わり", b"\x88\x02\x0f\xa0")]

    def test_one_byte_reason_is_kept(self) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_close(1000, "x"))
        assert events == [CloseReceived(1000, "x", b"\x88\x02\x03\xe8")]

    def test_empty_close_is_reported_as_1005_and_answered_with_an_empty_close(self) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_close(None))
        assert events == [CloseReceived(1005, "Reason not provided", b"\x88\x00")]
        assert protocol.state is State.CLOSED

    @pytest.mark.parametrize(
        "code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
    )
    def test_invalid_close_code_fails_with_1002(self, code: int) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_close(code, "why"))
        assert_failed_with(protocol, events, 1002, f"Invalid close code {code}.")

    def test_one_byte_close_payload_fails_with_1002(self) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_frame(OP_CLOSE, b"\x03"))
        assert_failed_with(protocol, events, 1002, "Close frame with a 1-byte payload.")

    @pytest.mark.parametrize("reason", [b"\xff", b"ab\xc3", b"\xed\xa0\x80", b"\xc0\xaf"])
    def test_close_reason_that_is_not_utf8_fails_with_1007(self, reason: bytes) -> None:
        protocol = WebSocketProtocol()
        events = protocol.receive(client_close(1000, reason))
        assert_failed_with(protocol, events, 1007, INVALID_UTF8)

    def test_close_after_our_close_completes_the_handshake_without_reply(self) -> None:
        protocol = WebSocketProtocol()
        assert protocol.start_close(1000, "bye") == b"\x88\x05\x03\xe8bye"
        assert protocol.state is State.CLOSING
        events = protocol.receive(client_close(1000, "bye too"))
        assert events == [CloseReceived(1000, "bye too", None)]
        assert protocol.state is State.CLOSED

    def test_empty_close_after_our_close(self) -> None:
        protocol = WebSocketProtocol()
        protocol.start_close(4001, None)
        events = protocol.receive(client_close(None))
        assert events == [CloseReceived(1005, "Reason not provided", None)]
        assert protocol.state is State.CLOSED

    def test_messages_still_arrive_while_closing(self) -> None:
        protocol = WebSocketProtocol()
        protocol.start_close(1000, None)
        stream = client_frame(OP_TEXT, "late", fin=False) + client_frame(OP_CONT, " data")
        stream += client_frame(OP_PING, b"p") + client_close(1000)
        assert protocol.receive(stream) == [
            MessageReceived("late data"),
            PingReceived(b"p"),
            CloseReceived(1000, "", None),
        ]

    def test_bytes_after_the_close_in_the_same_call_are_ignored(self) -> None:
        protocol = WebSocketProtocol()
        stream = client_frame(OP_TEXT, "before") + client_close(1001) + client_frame(OP_TEXT, "x")
        stream += b"\xff\xff garbage"
        assert protocol.receive(stream) == [
            MessageReceived("before"),
            CloseReceived(1001, "", b"\x88\x02\x03\xe9"),
        ]
        assert len(protocol._buffer) == 0

    def test_input_after_closed_is_ignored(self) -> None:
        protocol = WebSocketProtocol()
        protocol.receive(client_close(1000))
        assert protocol.receive(client_frame(OP_TEXT, "ignored")) == []
        assert protocol.receive(client_close(1000)) == []
        assert protocol.receive(b"\x00garbage that would fail") == []
        assert protocol.state is State.CLOSED
        assert len(protocol._buffer) == 0

    def test_close_arriving_one_byte_at_a_time(self) -> None:
        protocol = WebSocketProtocol()
        events = feed(protocol, bytewise(client_close(1000, "slow")))
        assert events == [CloseReceived(1000, "slow", b"\x88\x02\x03\xe8")]


# ================================================================= assemble_fragments=False


class TestFramesDelivered:
    def test_single_frame_message_gives_frame_and_message(self) -> None:
        protocol = WebSocketProtocol(assemble_fragments=False)
        events = protocol.receive(client_frame(OP_TEXT, "hi") + client_frame(OP_BINARY, b"\x01"))
        assert events == [
            FrameReceived(Frame(opcode=OP_TEXT, payload=b"hi", fin=True, masked=True)),
            MessageReceived("hi"),
            FrameReceived(Frame(opcode=OP_BINARY, payload=b"\x01", fin=True, masked=True)),
            MessageReceived(b"\x01"),
        ]

    def test_fragmented_message_gives_only_frames(self) -> None:
        protocol = WebSocketProtocol(assemble_fragments=False)
        stream = client_frame(OP_TEXT, "ab", fin=False) + client_frame(OP_CONT, "cd", fin=False)
        stream += client_frame(OP_CONT, "e")
        assert protocol.receive(stream) == [
            FrameReceived(Frame(opcode=OP_TEXT, payload=b"ab", fin=False, masked=True)),
            FrameReceived(Frame(opcode=OP_CONT, payload=b"cd", fin=False, masked=True)),
            FrameReceived(Frame(opcode=OP_CONT, payload=b"e", fin=True, masked=True)),
        ]

    def test_unmasked_frames_are_reported_as_unmasked(self) -> None:
        protocol = WebSocketProtocol(assemble_fragments=False, require_mask=False)
        events = protocol.receive(client_frame(OP_BINARY, b"u", mask=None))
        assert events == [
            FrameReceived(Frame(opcode=OP_BINARY, payload=b"u", masked=False)),
            MessageReceived(b"u"),
        ]

    def test_control_frames_are_delivered_as_frames_too(self) -> None:
        protocol = WebSocketProtocol(assemble_fragments=False)
        stream = client_frame(OP_PING, b"pi") + client_frame(OP_PONG, b"po")
        stream += client_close(1000, "bye")
        assert protocol.receive(stream) == [
            FrameReceived(Frame(opcode=OP_PING, payload=b"pi", masked=True)),
            PingReceived(b"pi"),
            FrameReceived(Frame(opcode=OP_PONG, payload=b"po", masked=True)),
            PongReceived(b"po"),
            FrameReceived(Frame(opcode=OP_CLOSE, payload=b"bye", masked=True, close_status=1000)),
            CloseReceived(1000, "bye", b"\x88\x02\x03\xe8"),
        ]

    def test_close_frame_has_status_and_reason_bytes_as_payload(self) -> None:
        protocol = WebSocketProtocol(assemble_fragments=False)
        events = protocol.receive(client_close(3001, "é"))
        frame = events[0].frame  # type: ignore[union-attr]
        assert frame.close_status == 3001
        assert frame.payload == b"\xc3\xa9"
        assert frame.length == 4
        assert events[1] == CloseReceived(3001, "é", b"\x88\x02\x0b\xb9")

    def test_empty_close_frame_has_no_status(self) -> None:
        protocol = WebSocketProtocol(assemble_fragments=False)
        events = protocol.receive(client_close(None))
        assert events == [
            FrameReceived(Frame(opcode=OP_CLOSE, payload=b"", masked=True, close_status=-1)),
            CloseReceived(1005, "Reason not provided", b"\x88\x00"),
        ]

    def test_control_frame_between_fragments(self) -> None:
        protocol = WebSocketProtocol(assemble_fragments=False)
        stream = client_frame(OP_BINARY, b"1", fin=False) + client_frame(OP_PING, b"")
        stream += client_frame(OP_CONT, b"2")
        assert protocol.receive(stream) == [
            FrameReceived(Frame(opcode=OP_BINARY, payload=b"1", fin=False, masked=True)),
            FrameReceived(Frame(opcode=OP_PING, payload=b"", masked=True)),
            PingReceived(b""),
            FrameReceived(Frame(opcode=OP_CONT, payload=b"2", fin=True, masked=True)),
        ]

    def test_single_frame_text_message_arriving_in_pieces_still_gives_the_message(self) -> None:
        frame = client_frame(OP_TEXT, "split €uro")
        expected = [
            FrameReceived(
                Frame(opcode=OP_TEXT, payload="split €uro".encode(), fin=True, masked=True)
            ),
            MessageReceived("split €uro"),
        ]
        protocol = WebSocketProtocol(assemble_fragments=False)
        assert protocol.receive(frame) == expected
        for cut in range(1, len(frame)):
            protocol = WebSocketProtocol(assemble_fragments=False)
            assert feed(protocol, [frame[:cut], frame[cut:]]) == expected, cut
        protocol = WebSocketProtocol(assemble_fragments=False)
        assert feed(protocol, bytewise(frame)) == expected

    def test_single_frame_binary_message_arriving_in_pieces_gives_the_message(self) -> None:
        frame = client_frame(OP_BINARY, b"\x00\x01\x02\x03\x04")
        protocol = WebSocketProtocol(assemble_fragments=False)
        assert feed(protocol, bytewise(frame)) == [
            FrameReceived(Frame(opcode=OP_BINARY, payload=b"\x00\x01\x02\x03\x04", masked=True)),
            MessageReceived(b"\x00\x01\x02\x03\x04"),
        ]

    def test_no_message_size_limit_when_frames_are_delivered(self) -> None:
        protocol = WebSocketProtocol(
            assemble_fragments=False, max_frame_size=100, max_message_size=100
        )
        stream = client_frame(OP_BINARY, b"a" * 100, fin=False)
        stream += client_frame(OP_CONT, b"b" * 100)
        events = protocol.receive(stream)
        assert [type(event) for event in events] == [FrameReceived, FrameReceived]
        assert protocol.state is State.OPEN

    def test_frame_level_checks_still_apply(self) -> None:
        protocol = WebSocketProtocol(assemble_fragments=False, max_frame_size=10)
        events = protocol.receive(client_frame(OP_BINARY, b"x" * 11))
        assert_failed_with(protocol, events, 1009, frame_too_big(11))
        protocol = WebSocketProtocol(assemble_fragments=False)
        events = protocol.receive(client_frame(OP_PING, b"", fin=False))
        assert_failed_with(protocol, events, 1002, CONTROL_FRAGMENTED)
        protocol = WebSocketProtocol(assemble_fragments=False)
        events = protocol.receive(client_frame(0x5, b""))
        assert_failed_with(protocol, events, 1002, "Unrecognized Opcode: 0x5")
        protocol = WebSocketProtocol(assemble_fragments=False)
        events = protocol.receive(client_frame(OP_TEXT, b"", rsv1=True))
        assert_failed_with(protocol, events, 1002, RSV_REASON)

    def test_continuation_sequencing_is_still_checked(self) -> None:
        protocol = WebSocketProtocol(assemble_fragments=False)
        events = protocol.receive(client_frame(OP_CONT, b"lone"))
        assert_failed_with(protocol, events, 1002, UNEXPECTED_CONTINUATION)

    @pytest.mark.parametrize("payload", [b"\xff" + b"x" * 20, b"x" * 20 + b"\xff", b"ok\xe2\x82"])
    def test_frame_with_invalid_utf8_is_never_delivered_however_it_arrives(
        self, payload: bytes
    ) -> None:
        frame = client_frame(OP_TEXT, payload)
        for pieces in ([frame], [frame[:8], frame[8:]], bytewise(frame)):
            protocol = WebSocketProtocol(assemble_fragments=False)
            assert feed(protocol, pieces) == [failed(1007, INVALID_UTF8)]

    def test_invalid_utf8_text_still_fails_with_1007(self) -> None:
        protocol = WebSocketProtocol(assemble_fragments=False)
        stream = client_frame(OP_TEXT, b"ok", fin=False) + client_frame(OP_CONT, b"\xff")
        events = protocol.receive(stream)
        assert events[0] == FrameReceived(
            Frame(opcode=OP_TEXT, payload=b"ok", fin=False, masked=True)
        )
        assert_failed_with(protocol, events, 1007, INVALID_UTF8)

    def test_peer_close_after_our_close_has_no_reply(self) -> None:
        protocol = WebSocketProtocol(assemble_fragments=False)
        protocol.start_close(1000, None)
        events = protocol.receive(client_close(1000))
        assert events[-1] == CloseReceived(1000, "", None)
        assert protocol.state is State.CLOSED


# ============================================================================ extensions


class _IdentityExtension(Extension):
    """Claims RSV1 and leaves payloads as they are."""

    name = "x-identity"
    rsv_mask = RSV1

    def __init__(self) -> None:
        self.decoded: list[tuple[int, bytes, bool, int]] = []

    def decode_frame(self, rsv: int, payload: bytes, fin: bool, max_size: int) -> bytes:
        self.decoded.append((rsv, payload, fin, max_size))
        if len(payload) > max_size:
            raise ProtocolError(1009, "Maximum message size exceeded.")
        return payload

    def encode_message(self, opcode: int, payload: bytes) -> tuple[int, bytes]:
        return RSV1, payload[::-1]


class TestRsvWithAnExtension:
    def test_claimed_rsv_bit_is_accepted_and_the_frame_decoded(self) -> None:
        extension = _IdentityExtension()
        protocol = WebSocketProtocol(extensions=[extension])
        events = protocol.receive(client_frame(OP_TEXT, "ext", rsv1=True))
        assert events == [MessageReceived("ext")]
        assert extension.decoded == [(RSV1, b"ext", True, 0x100000)]

    def test_unclaimed_rsv_bit_is_still_refused(self) -> None:
        protocol = WebSocketProtocol(extensions=[_IdentityExtension()])
        events = protocol.receive(client_frame(OP_TEXT, "x", rsv2=True))
        assert_failed_with(protocol, events, 1002, RSV_REASON)

    def test_claimed_rsv_bit_on_a_control_frame_is_refused(self) -> None:
        protocol = WebSocketProtocol(extensions=[_IdentityExtension()])
        events = protocol.receive(client_frame(OP_PING, b"", rsv1=True))
        assert_failed_with(
            protocol, events, 1002, "Unsupported usage of rsv bits on a control frame."
        )

    def test_claimed_rsv_bit_on_a_continuation_frame_is_refused(self) -> None:
        protocol = WebSocketProtocol(extensions=[_IdentityExtension()])
        stream = client_frame(OP_TEXT, "a", fin=False, rsv1=True)
        stream += client_frame(OP_CONT, "b", rsv1=True)
        events = protocol.receive(stream)
        assert_failed_with(
            protocol, events, 1002, "Unsupported usage of rsv bits on a continuation frame."
        )

    def test_decoded_text_is_utf8_checked(self) -> None:
        protocol = WebSocketProtocol(extensions=[_IdentityExtension()])
        events = protocol.receive(client_frame(OP_TEXT, b"\xff", rsv1=True))
        assert_failed_with(protocol, events, 1007, INVALID_UTF8)

    def test_outgoing_message_goes_through_the_extension(self) -> None:
        protocol = WebSocketProtocol(extensions=[_IdentityExtension()])
        assert protocol.encode_data(Opcode.TEXT, b"abc") == b"\xc1\x03cba"


# =============================================================================== sending


class TestSending:
    def test_encode_data_small_messages(self) -> None:
        protocol = WebSocketProtocol()
        assert protocol.encode_data(Opcode.TEXT, b"hello") == b"\x81\x05hello"
        assert protocol.encode_data(Opcode.BINARY, b"\x00\x01") == b"\x82\x02\x00\x01"
        assert protocol.encode_data(Opcode.TEXT, b"") == b"\x81\x00"

    def test_encode_data_fragments_at_the_fragment_size(self) -> None:
        protocol = WebSocketProtocol()
        assert protocol.fragment_size == 16384
        payload = b"t" * 40000
        frames = parse_frames(protocol.encode_data(Opcode.TEXT, payload))
        assert [(len(f.payload), f.opcode, f.fin) for f in frames] == [
            (16384, OP_TEXT, False),
            (16384, OP_CONT, False),
            (7232, OP_CONT, True),
        ]
        assert not any(frame.masked for frame in frames)

    def test_encode_data_without_fragment_size_is_one_frame(self) -> None:
        protocol = WebSocketProtocol(fragment_size=None)
        payload = b"t" * 40000
        assert protocol.encode_data(Opcode.BINARY, payload) == b"\x82\x7e\x9c\x40" + payload

    def test_encode_data_follows_a_changed_fragment_size(self) -> None:
        protocol = WebSocketProtocol(fragment_size=3)
        assert protocol.encode_data(Opcode.BINARY, b"abcd") == b"\x02\x03abc\x80\x01d"

    @settings(max_examples=200, deadline=None)
    @given(
        size=st.sampled_from([0, 1, 125, 126, 16383, 16384, 16385, 40000, 65536, 70001]),
        fragment_size=st.one_of(st.none(), st.sampled_from([1000, 16384, 65536, 70001])),
        kind=st.sampled_from([bytes, bytearray, memoryview]),
        opcode=st.sampled_from([Opcode.TEXT, Opcode.BINARY]),
    )
    def test_encode_data_parts_are_the_same_frames_without_copying(
        self, size: int, fragment_size: int | None, kind: type, opcode: Opcode
    ) -> None:
        protocol = WebSocketProtocol(fragment_size=fragment_size)
        payload = kind(bytes(range(256)) * (size // 256) + bytes(range(size % 256)))
        parts = protocol.encode_data_parts(opcode, payload)
        assert b"".join(parts) == protocol.encode_data(opcode, payload)
        # The payload pieces are views of the payload itself.
        assert all(
            isinstance(part, bytes) or part.obj is payload or part.obj is payload.obj
            for part in parts
        )

    def test_encode_data_parts_of_a_non_byte_memoryview_count_bytes(self) -> None:
        protocol = WebSocketProtocol(fragment_size=4)
        words = memoryview(bytes(range(12))).cast("I")  # 3 items of 4 bytes
        assert b"".join(protocol.encode_data_parts(Opcode.BINARY, words)) == (
            b"\x02\x04"
            + bytes(range(4))
            + b"\x00\x04"
            + bytes(range(4, 8))
            + b"\x80\x04"
            + bytes(range(8, 12))
        )

    def test_encode_data_parts_with_an_extension_is_its_one_encoding(self) -> None:
        protocol = WebSocketProtocol(extensions=[_IdentityExtension()])
        parts = protocol.encode_data_parts(Opcode.TEXT, b"abc")
        assert parts == [protocol.encode_data(Opcode.TEXT, b"abc")]

    def test_encoded_messages_parse_back(self) -> None:
        sender = WebSocketProtocol(fragment_size=5)
        receiver = WebSocketProtocol(require_mask=False)
        data = sender.encode_data(Opcode.TEXT, "€ uro €uro".encode())
        assert receiver.receive(data) == [MessageReceived("€ uro €uro")]

    @pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG])
    def test_encode_control_payload_up_to_125_bytes(self, opcode: Opcode) -> None:
        first = 0x80 | opcode
        assert WebSocketProtocol.encode_control(opcode) == bytes([first, 0])
        assert WebSocketProtocol.encode_control(opcode, b"abc") == bytes([first, 3]) + b"abc"
        payload = b"p" * 125
        assert WebSocketProtocol.encode_control(opcode, payload) == bytes([first, 125]) + payload

    @pytest.mark.parametrize("size", [126, 127, 1000])
    def test_encode_control_over_125_bytes_raises_value_error(self, size: int) -> None:
        protocol = WebSocketProtocol()
        with pytest.raises(ValueError, match="at most 125 bytes"):
            protocol.encode_control(Opcode.PING, b"p" * size)
        with pytest.raises(ValueError, match="at most 125 bytes"):
            protocol.encode_control(Opcode.PONG, b"p" * size)

    @pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, *range(1007, 1015), 3000, 4999])
    def test_check_close_accepts_codes_that_may_be_sent(self, code: int) -> None:
        assert WebSocketProtocol.check_close(code, None) == bytes([code >> 8, code & 0xFF])
        assert WebSocketProtocol.check_close(code, "") == bytes([code >> 8, code & 0xFF])
        assert WebSocketProtocol.check_close(code, "é") == bytes([code >> 8, code & 0xFF]) + (
            b"\xc3\xa9"
        )

    @pytest.mark.parametrize(
        "code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535, -1000]
    )
    def test_check_close_refuses_codes_that_may_not_be_sent(self, code: int) -> None:
        with pytest.raises(ValueError, match=f"Close code {code} is not valid."):
            WebSocketProtocol.check_close(code, None)

    @pytest.mark.parametrize("code", [True, False, 1000.0, "1000", None])
    def test_check_close_refuses_codes_that_are_not_ints(self, code: object) -> None:
        with pytest.raises(ValueError, match="is not valid"):
            WebSocketProtocol.check_close(code, None)  # type: ignore[arg-type]

    def test_check_close_reason_of_123_bytes_is_accepted(self) -> None:
        reason = "é" * 61 + "a"  # 123 bytes of UTF-8
        assert len(reason.encode()) == 123
        payload = WebSocketProtocol.check_close(1000, reason)
        assert payload == b"\x03\xe8" + reason.encode()

    @pytest.mark.parametrize("reason", ["a" * 124, "é" * 62, "€" * 41 + "a", "a" * 1000])
    def test_check_close_reason_over_123_bytes_raises_value_error(self, reason: str) -> None:
        assert len(reason.encode()) > 123
        with pytest.raises(ValueError, match="at most 123 bytes"):
            WebSocketProtocol.check_close(1000, reason)

    def test_start_close_returns_the_close_frame_and_moves_to_closing(self) -> None:
        protocol = WebSocketProtocol()
        assert protocol.state is State.OPEN
        assert protocol.start_close(1000, "bye") == b"\x88\x05\x03\xe8bye"
        assert protocol.state is State.CLOSING
        # A second call builds a frame again but stays CLOSING.
        assert protocol.start_close(4000, None) == b"\x88\x02\x0f\xa0"
        assert protocol.state is State.CLOSING

    def test_start_close_with_invalid_input_raises_and_stays_open(self) -> None:
        protocol = WebSocketProtocol()
        with pytest.raises(ValueError):
            protocol.start_close(1005, None)
        with pytest.raises(ValueError):
            protocol.start_close(1000, "x" * 124)
        assert protocol.state is State.OPEN

    def test_start_close_after_closed_does_not_reopen(self) -> None:
        protocol = WebSocketProtocol()
        protocol.receive(client_close(1000))
        protocol.start_close(1000, None)
        assert protocol.state is State.CLOSED

    def test_fail_returns_the_close_frame_and_closes(self) -> None:
        protocol = WebSocketProtocol()
        protocol.receive(client_frame(OP_TEXT, "partial")[:5])
        assert len(protocol._buffer) > 0
        assert protocol.fail(1011, "oops") == b"\x88\x06\x03\xf3oops"
        assert protocol.state is State.CLOSED
        assert len(protocol._buffer) == 0
        assert protocol.receive(client_frame(OP_TEXT, "x")) == []

    def test_fail_sends_any_code_and_an_empty_reason(self) -> None:
        protocol = WebSocketProtocol()
        assert protocol.fail(1006, "") == b"\x88\x02\x03\xee"

    def test_fail_keeps_a_reason_of_123_bytes(self) -> None:
        protocol = WebSocketProtocol()
        reason = "r" * 123
        assert protocol.fail(1002, reason) == b"\x88\x7d\x03\xea" + reason.encode()

    def test_fail_cuts_a_long_ascii_reason_to_123_bytes(self) -> None:
        protocol = WebSocketProtocol()
        frame = protocol.fail(1002, "a" * 300)
        assert frame == b"\x88\x7d\x03\xea" + b"a" * 123

    @pytest.mark.parametrize(
        ("reason", "kept"),
        [
            ("é" * 100, "é" * 61),  # 2-byte characters: 122 bytes
            ("€" * 100, "€" * 41),  # 3-byte characters: 123 bytes
            ("𝄞" * 100, "𝄞" * 30),  # 4-byte characters: 120 bytes
            ("a" + "𝄞" * 100, "a" + "𝄞" * 30),  # 121 bytes
            ("ab" + "𝄞" * 100, "ab" + "𝄞" * 30),  # 122 bytes
        ],
    )
    def test_fail_cuts_a_long_reason_on_a_character_boundary(self, reason: str, kept: str) -> None:
        protocol = WebSocketProtocol()
        frame = protocol.fail(1007, reason)
        encoded = kept.encode()
        assert len(encoded) <= 123
        assert frame == bytes([0x88, 2 + len(encoded), 0x03, 0xEF]) + encoded
        assert frame[4:].decode("utf-8") == kept

    def test_server_frames_are_never_masked(self) -> None:
        protocol = WebSocketProtocol(fragment_size=10)
        outputs = [
            protocol.encode_data(Opcode.TEXT, b"x" * 100),
            protocol.encode_control(Opcode.PING, b"p"),
            protocol.start_close(1000, "bye"),
            protocol.fail(1002, "bad"),
        ]
        for output in outputs:
            assert not any(frame.masked for frame in parse_frames(output))


# ========================================================================= properties

_messages = st.one_of(st.text(max_size=120), st.binary(max_size=120))
_masks = st.binary(min_size=4, max_size=4)


def _split(payload: bytes, size: int | None) -> list[bytes]:
    if size is None or len(payload) <= size:
        return [payload]
    return [payload[index : index + size] for index in range(0, len(payload), size)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.lists(
        st.tuples(
            _messages,
            st.one_of(st.none(), st.integers(min_value=1, max_value=40)),
            st.lists(_masks, min_size=1, max_size=4),
            st.one_of(st.none(), st.binary(max_size=125)),
        ),
        max_size=8,
    ),
    chunk_sizes=st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=6),
)
def test_property_parse_of_client_frames_gives_back_the_messages(
    messages: list[tuple[str | bytes, int | None, list[bytes], bytes | None]],
    chunk_sizes: list[int],
) -> None:
    stream = b""
    expected: list[Event] = []
    for data, fragment_size, masks, ping in messages:
        is_text = isinstance(data, str)
        payload = data.encode() if isinstance(data, str) else data
        pieces = _split(payload, fragment_size)
        for index, piece in enumerate(pieces):
            opcode = (OP_TEXT if is_text else OP_BINARY) if index == 0 else OP_CONT
            fin = index == len(pieces) - 1
            stream += client_frame(opcode, piece, fin=fin, mask=masks[index % len(masks)])
            if index == 0 and ping is not None:
                # A Ping after the first frame: before the message when it has more frames.
                stream += client_frame(OP_PING, ping, mask=masks[-1])
                if not fin:
                    expected.append(PingReceived(ping))
        expected.append(MessageReceived(data))
        if ping is not None and len(pieces) == 1:
            expected.append(PingReceived(ping))
    protocol = WebSocketProtocol()
    events = feed(protocol, chunked(stream, chunk_sizes))
    assert events == expected
    assert protocol.state is State.OPEN
    assert len(protocol._buffer) == 0


def _fuzz_piece() -> st.SearchStrategy[bytes]:
    frame = st.builds(
        lambda opcode, payload, fin, rsv, mask, declared: client_frame(
            opcode,
            payload,
            fin=fin,
            rsv1=rsv == 1,
            rsv2=rsv == 2,
            rsv3=rsv == 3,
            mask=mask,
            declared_length=declared,
        ),
        st.sampled_from([0, 1, 2, 8, 9, 10, 0, 1, 2, 8, 9, 10, 3, 0xB]),
        st.one_of(
            st.binary(max_size=60),
            st.text(max_size=30).map(str.encode),
            st.sampled_from([b"\x03\xe8", b"\x03\xe8ok", b"\x03\xed", b"\xf4\x90", b"\xed\xa0"]),
        ),
        st.booleans(),
        st.sampled_from([0, 0, 0, 0, 1, 2, 3]),
        st.one_of(_masks, _masks, _masks, st.none()),
        st.one_of(
            st.none(),
            st.none(),
            st.none(),
            st.integers(min_value=0, max_value=300),
            st.sampled_from([2**62, 2**63, 2**64 - 1, 65535, 65536]),
        ),
    )
    return st.one_of(frame, frame, frame, st.binary(min_size=1, max_size=20))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=st.one_of(st.binary(max_size=400), st.lists(_fuzz_piece(), max_size=10).map(b"".join)),
    chunk_sizes=st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=6),
    max_frame_size=st.integers(min_value=1, max_value=200),
    max_message_size=st.integers(min_value=1, max_value=400),
    assemble_fragments=st.booleans(),
    require_mask=st.booleans(),
    closing=st.booleans(),
)
def test_property_arbitrary_input_never_raises_and_keeps_the_buffer_bounded(
    stream: bytes,
    chunk_sizes: list[int],
    max_frame_size: int,
    max_message_size: int,
    assemble_fragments: bool,
    require_mask: bool,
    closing: bool,
) -> None:
    protocol = WebSocketProtocol(
        max_frame_size=max_frame_size,
        max_message_size=max_message_size,
        assemble_fragments=assemble_fragments,
        require_mask=require_mask,
    )
    if closing:
        protocol.start_close(1000, None)
    events: list[Event] = []
    for chunk in chunked(stream, chunk_sizes):
        was_closed = protocol.state is State.CLOSED
        new_events = protocol.receive(chunk)
        if was_closed:
            assert new_events == []
        events.extend(new_events)
        assert len(protocol._buffer) <= max_frame_size + 14 + len(chunk)
    for index, event in enumerate(events):
        if isinstance(event, ConnectionFailed | CloseReceived):
            assert index == len(events) - 1  # nothing after a failure or the peer's Close
            assert protocol.state is State.CLOSED
        if isinstance(event, ConnectionFailed):
            assert event.code in {1002, 1007, 1009}
            # Once our Close is out, failing sends no second Close (RFC 6455 7.1.7).
            expected = b"" if closing else server_close(event.code, event.reason)
            assert event.close_frame == expected
        if isinstance(event, CloseReceived):
            assert event.reply is None if closing else event.reply is not None
        if isinstance(event, MessageReceived) and assemble_fragments:
            size = len(event.data.encode() if isinstance(event.data, str) else event.data)
            assert size <= max_message_size
        if isinstance(event, PingReceived | PongReceived):
            assert len(event.payload) <= 125
        if isinstance(event, FrameReceived):
            assert not assemble_fragments
            assert event.frame.length <= max_frame_size


@settings(max_examples=300, deadline=None)
@given(
    stream=st.lists(_fuzz_piece(), max_size=8).map(b"".join),
    chunk_sizes=st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=6),
    assemble_fragments=st.booleans(),
)
def test_property_events_do_not_depend_on_how_input_is_cut(
    stream: bytes, chunk_sizes: list[int], assemble_fragments: bool
) -> None:
    def fresh() -> WebSocketProtocol:
        return WebSocketProtocol(
            max_frame_size=200, max_message_size=250, assemble_fragments=assemble_fragments
        )

    whole = fresh().receive(stream)
    assert feed(fresh(), chunked(stream, chunk_sizes)) == whole
    assert feed(fresh(), bytewise(stream)) == whole


_data_or_control = st.one_of(
    st.tuples(st.just(OP_TEXT), st.text(max_size=300).map(str.encode)),
    st.tuples(st.just(OP_BINARY), st.binary(max_size=300)),
    st.tuples(st.sampled_from([OP_PING, OP_PONG]), st.binary(max_size=125)),
    st.tuples(
        st.just(OP_CLOSE),
        st.one_of(
            st.just(b""),
            st.builds(
                lambda code, reason: code.to_bytes(2, "big") + reason,
                st.sampled_from([1000, 1001, 1003, 1008, 1011, 1014, 3000, 4321, 4999]),
                st.text(max_size=40).map(str.encode).filter(lambda reason: len(reason) <= 123),
            ),
        ),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    opcode_payload=_data_or_control,
    mask=_masks,
    chunk_size=st.integers(min_value=1, max_value=400),
)
def test_property_encode_frame_round_trips_through_the_protocol(
    opcode_payload: tuple[int, bytes], mask: bytes, chunk_size: int
) -> None:
    opcode, payload = opcode_payload
    encoded = encode_frame(0x80 | opcode, payload, mask)
    protocol = WebSocketProtocol(assemble_fragments=False)
    events = feed(protocol, chunked(encoded, [chunk_size]))
    frame_event = events[0]
    assert isinstance(frame_event, FrameReceived)
    frame = frame_event.frame
    assert frame.opcode == opcode
    assert frame.fin
    assert frame.masked
    assert not (frame.rsv1 or frame.rsv2 or frame.rsv3)
    if opcode == OP_CLOSE and payload:
        assert frame.close_status == int.from_bytes(payload[:2], "big")
        assert frame.payload == payload[2:]
    else:
        assert frame.close_status == -1
        assert frame.payload == payload
    assert frame.to_bytes(mask) == encoded
    rest = events[1:]
    if opcode == OP_TEXT:
        assert rest == [MessageReceived(payload.decode())]
    elif opcode == OP_BINARY:
        assert rest == [MessageReceived(payload)]
    elif opcode == OP_PING:
        assert rest == [PingReceived(payload)]
    elif opcode == OP_PONG:
        assert rest == [PongReceived(payload)]
    elif payload:
        code = int.from_bytes(payload[:2], "big")
        assert rest == [CloseReceived(code, payload[2:].decode(), b"\x88\x02" + payload[:2])]
    else:
        assert rest == [CloseReceived(1005, "Reason not provided", b"\x88\x00")]


def test_inside_frame_tells_whether_the_bytes_so_far_end_inside_a_frame():
    """The reader reads on at once while a frame is incomplete and waits for readiness
    first only between frames."""
    frame = client_frame(OP_TEXT, b"hello")  # 2 header bytes, 4 mask bytes, 5 payload bytes
    protocol = WebSocketProtocol()
    assert not protocol.inside_frame
    assert protocol.receive(frame[:1]) == []  # half a header: buffered
    assert protocol.inside_frame
    assert protocol.receive(frame[1:8]) == []  # header and mask read, payload awaited
    assert protocol.inside_frame
    assert protocol.receive(frame[8:]) == [MessageReceived("hello")]
    assert not protocol.inside_frame
    assert protocol.receive(frame + frame[:3]) == [MessageReceived("hello")]
    assert protocol.inside_frame
