"""Serialising frames and messages, byte for byte (RFC 6455 5.2, 5.4, WebSocket-Node 2(k))."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_helpers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    parse_frame,
    parse_frames,
    reference_mask,
)

from geventws.frames import (
    CONTROL_OPCODES,
    DATA_OPCODES,
    KNOWN_OPCODES,
    MAX_CONTROL_PAYLOAD,
    Frame,
    Opcode,
    encode_close_payload,
    encode_frame,
    encode_message,
)

MASK = b"\x37\xfa\x21\x3d"


# ------------------------------------------------------------------ opcodes


def test_opcode_values_are_those_of_rfc_6455() -> None:
    assert Opcode.CONTINUATION == 0x0
    assert Opcode.TEXT == 0x1
    assert Opcode.BINARY == 0x2
    assert Opcode.CLOSE == 0x8
    assert Opcode.PING == 0x9
    assert Opcode.PONG == 0xA
    assert {0, 1, 2} == DATA_OPCODES
    assert {8, 9, 10} == CONTROL_OPCODES
    assert DATA_OPCODES | CONTROL_OPCODES == KNOWN_OPCODES
    assert MAX_CONTROL_PAYLOAD == 125


# --------------------------------------------------------------- encode_frame


def test_rfc_examples_are_serialised_exactly() -> None:
    # RFC 6455 5.7.
    assert encode_frame(0x81, b"Hello") == bytes.fromhex("810548656c6c6f")
    assert encode_frame(0x81, b"Hello", MASK) == bytes.fromhex("818537fa213d7f9f4d5158")
    assert encode_frame(0x01, b"Hel") + encode_frame(0x80, b"lo") == bytes.fromhex(
        "010348656c80026c6f"
    )
    assert encode_frame(0x89, b"Hello") == bytes.fromhex("890548656c6c6f")
    assert encode_frame(0x8A, b"Hello", MASK) == bytes.fromhex("8a8537fa213d7f9f4d5158")
    assert encode_frame(0x82, bytes(256))[:4] == bytes.fromhex("827e0100")
    assert encode_frame(0x82, bytes(65536))[:10] == bytes.fromhex("827f0000000000010000")


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, b"\x82\x00"),
        (1, b"\x82\x01"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (127, b"\x82\x7e\x00\x7f"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        (70000, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x11\x70"),
    ],
)
def test_unmasked_frame_uses_shortest_length_encoding(size: int, header: bytes) -> None:
    payload = bytes((index * 31) & 0xFF for index in range(size))
    assert encode_frame(0x82, payload) == header + payload


@pytest.mark.parametrize(
    ("size", "length_bytes"),
    [
        (0, b"\x80"),
        (125, b"\xfd"),
        (126, b"\xfe\x00\x7e"),
        (65535, b"\xfe\xff\xff"),
        (65536, b"\xff\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_masked_frame_sets_mask_bit_then_key_then_masked_payload(
    size: int, length_bytes: bytes
) -> None:
    payload = bytes((index * 13 + 5) & 0xFF for index in range(size))
    expected = b"\x81" + length_bytes + MASK + reference_mask(payload, MASK)
    assert encode_frame(0x81, payload, MASK) == expected


def test_first_byte_is_written_as_given_including_rsv_bits_and_missing_fin() -> None:
    assert encode_frame(0x71, b"x") == b"\x71\x01x"
    assert encode_frame(0x00, b"") == b"\x00\x00"
    assert encode_frame(0xC2, b"ab") == b"\xc2\x02ab"


def test_encode_frame_accepts_bytearray_and_memoryview() -> None:
    assert encode_frame(0x82, bytearray(b"abc")) == b"\x82\x03abc"
    assert encode_frame(0x82, memoryview(b"abcdef")[1:4]) == b"\x82\x03bcd"
    assert encode_frame(0x82, memoryview(b"abc"), MASK) == b"\x82\x83" + MASK + reference_mask(
        b"abc", MASK
    )


@settings(max_examples=200, deadline=None)
@given(
    first=st.integers(min_value=0, max_value=255),
    payload=st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda size, fill: bytes([fill]) * size,
            st.sampled_from([65535, 65536, 65537]),
            st.integers(min_value=0, max_value=255),
        ),
    ),
    mask=st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
)
def test_property_encode_frame_parses_back_with_the_reference_parser(
    first: int, payload: bytes, mask: bytes | None
) -> None:
    encoded = encode_frame(first, payload, mask)
    frame, rest = parse_frame(encoded)
    assert rest == b""
    assert frame.payload == payload
    assert frame.fin == bool(first & 0x80)
    assert (frame.rsv1, frame.rsv2, frame.rsv3) == (
        bool(first & 0x40),
        bool(first & 0x20),
        bool(first & 0x10),
    )
    assert frame.opcode == first & 0x0F
    assert frame.masked == (mask is not None)
    assert frame.mask == mask
    expected_length_size = 0 if len(payload) <= 125 else 2 if len(payload) <= 0xFFFF else 8
    assert frame.header_size == 2 + expected_length_size + (4 if mask is not None else 0)


# ---------------------------------------------------------------------- Frame


def test_frame_defaults() -> None:
    frame = Frame(opcode=Opcode.TEXT)
    assert frame.payload == b""
    assert frame.fin is True
    assert (frame.rsv1, frame.rsv2, frame.rsv3) == (False, False, False)
    assert frame.masked is False
    assert frame.close_status == -1
    assert frame.to_bytes() == b"\x81\x00"


def test_frame_to_bytes_writes_flags_and_opcode() -> None:
    frame = Frame(opcode=Opcode.BINARY, payload=b"ab", fin=False, rsv1=True, rsv3=True)
    assert frame.to_bytes() == b"\x52\x02ab"
    assert Frame(opcode=Opcode.CONTINUATION, payload=b"z", rsv2=True).to_bytes() == b"\xa0\x01z"


def test_frame_to_bytes_with_close_status_puts_the_code_before_the_reason() -> None:
    frame = Frame(opcode=Opcode.CLOSE, payload=b"bye", close_status=1000)
    assert frame.to_bytes() == b"\x88\x05\x03\xe8bye"
    assert frame.length == 5
    assert Frame(opcode=Opcode.CLOSE, close_status=4999).to_bytes() == b"\x88\x02\x13\x87"


def test_close_frame_without_status_is_serialised_empty() -> None:
    frame = Frame(opcode=Opcode.CLOSE)
    assert frame.to_bytes() == b"\x88\x00"
    assert frame.length == 0


def test_close_status_is_ignored_on_frames_that_are_not_close() -> None:
    frame = Frame(opcode=Opcode.TEXT, payload=b"hi", close_status=1000)
    assert frame.to_bytes() == b"\x81\x02hi"
    assert frame.length == 2


def test_frame_to_bytes_with_explicit_mask() -> None:
    frame = Frame(opcode=Opcode.CLOSE, payload=b"bye", close_status=1001, masked=True)
    expected = b"\x88\x85" + MASK + reference_mask(b"\x03\xe9bye", MASK)
    assert frame.to_bytes(MASK) == expected


def test_frame_marked_masked_without_key_draws_a_random_key() -> None:
    frame = Frame(opcode=Opcode.TEXT, payload=b"hello", masked=True)
    encoded = frame.to_bytes()
    parsed, rest = parse_frame(encoded)
    assert rest == b""
    assert parsed.masked
    assert parsed.mask is not None
    assert len(parsed.mask) == 4
    assert parsed.payload == b"hello"
    # A fresh key every time: 20 serialisations practically never share one key.
    keys = {parse_frame(frame.to_bytes())[0].mask for _ in range(20)}
    assert len(keys) > 1


def test_frame_is_control_and_length() -> None:
    for opcode in (0x8, 0x9, 0xA, 0xB, 0xF):
        assert Frame(opcode=opcode).is_control
    for opcode in (0x0, 0x1, 0x2, 0x7):
        assert not Frame(opcode=opcode).is_control
    assert Frame(opcode=Opcode.PING, payload=b"abc").length == 3


# ------------------------------------------------------------- encode_message


def _lengths_opcodes_fins(data: bytes) -> list[tuple[int, int, bool]]:
    return [(len(frame.payload), frame.opcode, frame.fin) for frame in parse_frames(data)]


def test_forty_thousand_bytes_at_16384_make_three_frames() -> None:
    payload = bytes((index * 3) & 0xFF for index in range(40000))
    encoded = encode_message(Opcode.TEXT, payload, 16384)
    assert _lengths_opcodes_fins(encoded) == [
        (16384, OP_TEXT, False),
        (16384, OP_CONT, False),
        (7232, OP_CONT, True),
    ]
    frames = parse_frames(encoded)
    assert b"".join(frame.payload for frame in frames) == payload
    assert not any(frame.masked or frame.rsv1 or frame.rsv2 or frame.rsv3 for frame in frames)
    # Exact bytes of the headers.
    assert encoded[:4] == b"\x01\x7e\x40\x00"
    assert encoded[4 + 16384 : 8 + 16384] == b"\x00\x7e\x40\x00"
    assert encoded[8 + 2 * 16384 : 12 + 2 * 16384] == b"\x80\x7e\x1c\x40"
    assert len(encoded) == 40000 + 3 * 4


def test_message_of_exactly_the_fragment_size_is_one_frame() -> None:
    payload = b"a" * 16384
    assert encode_message(Opcode.BINARY, payload, 16384) == b"\x82\x7e\x40\x00" + payload


def test_message_one_byte_over_the_fragment_size_is_two_frames() -> None:
    payload = b"a" * 16385
    encoded = encode_message(Opcode.BINARY, payload, 16384)
    assert _lengths_opcodes_fins(encoded) == [(16384, OP_BINARY, False), (1, OP_CONT, True)]
    assert encoded[-3:] == b"\x80\x01a"


def test_empty_message_is_one_empty_frame() -> None:
    assert encode_message(Opcode.TEXT, b"", 16384) == b"\x81\x00"
    assert encode_message(Opcode.BINARY, b"", None) == b"\x82\x00"


def test_no_fragment_size_gives_one_frame_whatever_the_length() -> None:
    payload = b"b" * 40000
    assert encode_message(Opcode.BINARY, payload, None) == b"\x82\x7e\x9c\x40" + payload


def test_small_fragment_size_splits_multibyte_text_bytewise() -> None:
    payload = "€uro".encode()  # e2 82 ac 75 72 6f
    encoded = encode_message(Opcode.TEXT, payload, 2)
    assert encoded == b"\x01\x02\xe2\x82" + b"\x00\x02\xacu" + b"\x80\x02ro"


def test_encode_message_accepts_memoryview_and_bytearray() -> None:
    assert encode_message(Opcode.BINARY, memoryview(b"abcde"), 2) == (
        b"\x02\x02ab\x00\x02cd\x80\x01e"
    )
    assert encode_message(Opcode.BINARY, bytearray(b"abc"), 16) == b"\x82\x03abc"


@settings(max_examples=300, deadline=None)
@given(
    payload=st.binary(max_size=2000),
    fragment_size=st.one_of(st.none(), st.integers(min_value=1, max_value=700)),
    opcode=st.sampled_from([Opcode.TEXT, Opcode.BINARY]),
)
def test_property_encode_message_fragments(
    payload: bytes, fragment_size: int | None, opcode: Opcode
) -> None:
    frames = parse_frames(encode_message(opcode, payload, fragment_size))
    assert b"".join(frame.payload for frame in frames) == payload
    if fragment_size is None or len(payload) <= fragment_size:
        assert len(frames) == 1
    else:
        assert len(frames) == -(-len(payload) // fragment_size)
        assert all(len(frame.payload) == fragment_size for frame in frames[:-1])
    assert frames[0].opcode == opcode
    assert all(frame.opcode == OP_CONT for frame in frames[1:])
    assert [frame.fin for frame in frames] == [False] * (len(frames) - 1) + [True]
    assert not any(frame.masked for frame in frames)


# -------------------------------------------------------- encode_close_payload


def test_encode_close_payload() -> None:
    assert encode_close_payload(None) == b""
    assert encode_close_payload(1000) == b"\x03\xe8"
    assert encode_close_payload(3000, b"bye") == b"\x0b\xb8bye"
    assert encode_close_payload(4999, "é".encode()) == b"\x13\x87\xc3\xa9"


def test_control_opcodes_encode_like_any_frame() -> None:
    assert encode_frame(0x80 | OP_PING, b"") == b"\x89\x00"
    assert encode_frame(0x80 | OP_PONG, b"p") == b"\x8a\x01p"
    assert encode_frame(0x80 | OP_CLOSE, b"\x03\xe8") == b"\x88\x02\x03\xe8"
