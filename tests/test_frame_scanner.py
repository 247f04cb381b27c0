"""The C scanner of whole single-frame messages (``geventws._speedups.scan_messages``).

It takes the common case of ``WebSocketProtocol.receive`` and leaves every other frame to the
pure-Python parser, which stays the reference: the scanner is checked byte for byte on its
own, and a protocol using it must give exactly the events and state of one that does not.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_helpers import (
    DEFAULT_MASK,
    OP_BINARY,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    client_close,
    client_frame,
    reference_mask,
)

from geventws import protocol as protocol_module
from geventws.protocol import Event, MessageReceived, WebSocketProtocol

scan = protocol_module.accelerated_scan_messages
LIMIT = 1 << 20


def scanned(data: bytes | bytearray, position: int = 0, limit: int = LIMIT) -> tuple[list, int]:
    """Run the scanner; return the events it appended and the position it stopped at."""
    assert scan is not None
    events: list[Event] = []
    stop = scan(data, position, limit, events, MessageReceived)
    return events, stop


def masked_with_length_field(opcode: int, payload: bytes, seven_bits: int, extended: bytes):
    """A masked FIN frame whose length is written with the given (maybe longer) encoding."""
    header = bytes([0x80 | opcode, 0x80 | seven_bits]) + extended
    return header + DEFAULT_MASK + reference_mask(payload, DEFAULT_MASK)


def test_the_scanner_is_built_and_used_here():
    # This project's machines have gcc and the Python headers: a missing scanner means the
    # build broke, not that it is optional here.
    assert scan is not None
    assert WebSocketProtocol()._scan_messages is scan


def test_takes_consecutive_text_and_binary_messages_unmasked():
    data = client_frame(OP_TEXT, "héllo") + client_frame(OP_BINARY, b"\x00\xff\x10")
    events, stop = scanned(data)
    assert events == [MessageReceived("héllo"), MessageReceived(b"\x00\xff\x10")]
    assert type(events[1].data) is bytes
    assert stop == len(data)


@pytest.mark.parametrize(
    "payload_size, seven_bits, extended",
    [
        (0, 0, b""),
        (125, 125, b""),
        (126, 126, b"\x00\x7e"),
        (65535, 126, b"\xff\xff"),
        (65536, 127, b"\x00\x00\x00\x00\x00\x01\x00\x00"),
        (5, 126, b"\x00\x05"),  # longer encodings than needed are read as the parser reads them
        (5, 127, b"\x00\x00\x00\x00\x00\x00\x00\x05"),
    ],
)
def test_every_length_encoding(payload_size, seven_bits, extended):
    payload = bytes(range(256)) * (payload_size // 256) + bytes(range(payload_size % 256))
    frame = masked_with_length_field(OP_BINARY, payload, seven_bits, extended)
    events, stop = scanned(frame + b"\x81")
    assert events == [MessageReceived(payload)]
    assert stop == len(frame)


def test_starts_at_the_position_given_and_reads_bytearrays():
    first, second = client_frame(OP_TEXT, "a"), client_frame(OP_TEXT, "b")
    events, stop = scanned(bytearray(first + second), len(first))
    assert events == [MessageReceived("b")]
    assert stop == len(first + second)


@pytest.mark.parametrize(
    "frame",
    [
        client_frame(OP_PING, b"x"),
        client_close(1000),
        client_frame(OP_TEXT, "part", fin=False),
        client_frame(OP_CONT, "rest"),
        client_frame(OP_TEXT, "x", rsv1=True),
        client_frame(OP_BINARY, b"x", rsv3=True),
        client_frame(0x3, b"x"),  # reserved opcode
        client_frame(OP_TEXT, "unmasked", mask=None),
        client_frame(OP_TEXT, b"\xce\xba\xe1\xbd"),  # cut-off UTF-8: no exception, left alone
        client_frame(OP_TEXT, b"\xed\xa0\x80"),  # an encoded surrogate
        client_frame(OP_BINARY, b"x" * 101),  # over the limit below
        b"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00" + DEFAULT_MASK,  # 64-bit length, MSB set
    ],
    ids=lambda frame: frame[:12].hex(),
)
def test_stops_at_any_other_frame_without_taking_it(frame):
    before = client_frame(OP_TEXT, "ok")
    events, stop = scanned(before + frame + client_frame(OP_TEXT, "after"), limit=100)
    assert events == [MessageReceived("ok")]
    assert stop == len(before)


@pytest.mark.parametrize(
    "part",
    [
        client_frame(OP_BINARY, b"x" * 10)[:-1],  # payload
        client_frame(OP_BINARY, b"x" * 200)[:3],  # 16-bit length
        client_frame(OP_BINARY, b"x" * 70_000)[:9],  # 64-bit length
        client_frame(OP_BINARY, b"x")[:5],  # mask
        b"\x81",
    ],
    ids=["payload", "16-bit length", "64-bit length", "mask", "first byte"],
)
def test_stops_at_an_incomplete_frame(part):
    before = client_frame(OP_BINARY, b"ok")
    events, stop = scanned(before + part)
    assert events == [MessageReceived(b"ok")]
    assert stop == len(before)


def test_a_bad_position_is_refused_with_its_value():
    with pytest.raises(ValueError, match="position 9 is outside the buffer of 8 bytes"):
        scanned(client_frame(OP_TEXT, "ab"), 9)


def test_an_error_raised_by_the_event_type_comes_through():
    class RefusedError(Exception):
        pass

    def refuse(payload: object) -> None:
        raise RefusedError(payload)

    assert scan is not None
    with pytest.raises(RefusedError):
        scan(client_frame(OP_TEXT, "x"), 0, LIMIT, [], refuse)


# --------------------------------------------------------- the protocol with and without it


def pure_python_protocol(**options: object) -> WebSocketProtocol:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(protocol_module, "accelerated_scan_messages", None)
        protocol = WebSocketProtocol(**options)  # type: ignore[arg-type]
    assert protocol._scan_messages is None
    return protocol


TEXTS = st.sampled_from(["", "ok", "κόσμε", "x" * 126, "\U0001f600" * 40])
FRAMES = st.one_of(
    st.builds(lambda text: client_frame(OP_TEXT, text), TEXTS),
    st.builds(lambda data: client_frame(OP_BINARY, data), st.binary(max_size=300)),
    st.builds(lambda data: client_frame(OP_TEXT, data), st.binary(max_size=8)),  # often invalid
    st.builds(lambda text: client_frame(OP_TEXT, text, fin=False), TEXTS),
    st.builds(lambda text: client_frame(OP_CONT, text), TEXTS),
    st.builds(lambda data: client_frame(OP_PING, data), st.binary(max_size=20)),
    st.builds(lambda data: client_frame(OP_BINARY, data, rsv1=True), st.binary(max_size=4)),
    st.builds(lambda data: client_frame(OP_BINARY, data, mask=None), st.binary(max_size=4)),
    st.just(client_frame(OP_BINARY, b"y" * 70_000)),  # 64-bit length, over max_frame_size
    st.just(client_close(1000, "bye")),
)


@settings(max_examples=400, deadline=None)
@given(
    frames=st.lists(FRAMES, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=80_000), max_size=6),
    require_mask=st.booleans(),
)
def test_a_protocol_with_the_scanner_matches_the_pure_python_parser(frames, cuts, require_mask):
    data = b"".join(frames)
    bounds = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    chunks = [data[start:end] for start, end in itertools.pairwise(bounds)]
    accelerated = WebSocketProtocol(require_mask=require_mask)
    reference = pure_python_protocol(require_mask=require_mask)
    for chunk in chunks:
        assert accelerated.receive(chunk) == reference.receive(chunk)
        assert accelerated.state is reference.state
        assert bytes(accelerated._buffer) == bytes(reference._buffer)
        assert accelerated.inside_frame == reference.inside_frame


def test_message_events_are_made_as_their_init_would():
    # The scanner fills MessageReceived's one slot itself instead of running __init__: that
    # holds only while the dataclass does nothing more when made.
    assert MessageReceived.__slots__ == ("data",)
    assert not hasattr(MessageReceived, "__post_init__")
    events, _ = scanned(client_frame(OP_TEXT, "x") + client_frame(OP_BINARY, b"y"))
    assert [type(event) for event in events] == [MessageReceived, MessageReceived]
    assert events == [MessageReceived("x"), MessageReceived(b"y")]


def test_an_event_type_with_an_init_of_its_own_is_called():
    made: list[object] = []

    class Recorded:
        def __init__(self, data: object) -> None:
            made.append(data)
            self.data = data

    assert scan is not None
    events: list[object] = []
    frames = client_frame(OP_TEXT, "a") + client_frame(OP_BINARY, b"b")
    assert scan(frames, 0, LIMIT, events, Recorded) == len(frames)
    assert made == ["a", b"b"]
    assert [event.data for event in events] == ["a", b"b"]  # type: ignore[attr-defined]
    # Back to the usual type: made without __init__ again, and right.
    assert scanned(frames)[0] == [MessageReceived("a"), MessageReceived(b"b")]
