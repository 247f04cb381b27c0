"""Frame building and parsing written from RFC 6455 5.2, independently of geventws.frames.

The tests build client frames and parse server frames with these helpers, so that the code under
test is checked against a second, deliberately naive implementation and not against itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from geventws.protocol import Event, WebSocketProtocol

DEFAULT_MASK = b"\x37\xfa\x21\x3d"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


def reference_mask(data: bytes, mask: bytes, offset: int = 0) -> bytes:
    """XOR ``data`` with ``mask`` one byte at a time, starting ``offset`` bytes into the key."""
    return bytes(byte ^ mask[(index + offset) % 4] for index, byte in enumerate(data))


def length_field(length: int) -> tuple[int, bytes]:
    """Return the 7-bit length value and the extended length bytes for ``length``."""
    if length <= 125:
        return length, b""
    if length <= 0xFFFF:
        return 126, bytes([(length >> 8) & 0xFF, length & 0xFF])
    return 127, bytes((length >> shift) & 0xFF for shift in range(56, -1, -8))


def client_frame(
    opcode: int,
    payload: bytes | str = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bytes | None = DEFAULT_MASK,
    declared_length: int | None = None,
) -> bytes:
    """Build a frame as a client sends it: masked with ``mask`` (None: unmasked).

    ``declared_length`` overrides the length written in the header (the payload is still the
    one given), to build frames that lie about their size.
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0)
    first |= (0x10 if rsv3 else 0) | opcode
    length = len(payload) if declared_length is None else declared_length
    seven_bits, extended = length_field(length)
    second = (0x80 if mask is not None else 0) | seven_bits
    header = bytes([first, second]) + extended
    if mask is None:
        return header + payload
    return header + mask + reference_mask(payload, mask)


def client_close(code: int | None = None, reason: bytes | str = b"", **kwargs: object) -> bytes:
    """Build a client Close frame with ``code`` (None: empty payload) and ``reason``."""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    payload = b"" if code is None else bytes([code >> 8 & 0xFF, code & 0xFF]) + reason
    return client_frame(OP_CLOSE, payload, **kwargs)  # type: ignore[arg-type]


def server_close(code: int, reason: bytes | str = b"") -> bytes:
    """The exact bytes of an unmasked server Close frame with ``code`` and ``reason``."""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    payload = bytes([code >> 8, code & 0xFF]) + reason
    assert len(payload) <= 125
    return bytes([0x88, len(payload)]) + payload


@dataclass
class ParsedFrame:
    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int
    masked: bool
    mask: bytes | None
    payload: bytes  # unmasked
    header_size: int


def parse_frame(data: bytes) -> tuple[ParsedFrame, bytes]:
    """Parse one complete frame from the start of ``data``; return it and the bytes after it."""
    first, second = data[0], data[1]
    length = second & 0x7F
    position = 2
    if length == 126:
        length = (data[2] << 8) | data[3]
        position = 4
    elif length == 127:
        length = 0
        for byte in data[2:10]:
            length = (length << 8) | byte
        position = 10
    masked = bool(second & 0x80)
    mask = None
    if masked:
        mask = data[position : position + 4]
        position += 4
    raw = data[position : position + length]
    assert len(raw) == length, "truncated frame"
    payload = reference_mask(raw, mask) if mask is not None else raw
    frame = ParsedFrame(
        fin=bool(first & 0x80),
        rsv1=bool(first & 0x40),
        rsv2=bool(first & 0x20),
        rsv3=bool(first & 0x10),
        opcode=first & 0x0F,
        masked=masked,
        mask=mask,
        payload=payload,
        header_size=position,
    )
    return frame, data[position + length :]


def parse_frames(data: bytes) -> list[ParsedFrame]:
    """Parse a sequence of complete frames that makes up all of ``data``."""
    frames = []
    while data:
        frame, data = parse_frame(data)
        frames.append(frame)
    return frames


def feed(protocol: WebSocketProtocol, pieces: Iterable[bytes]) -> list[Event]:
    """Feed ``pieces`` one receive() call each; return all events in order."""
    events: list[Event] = []
    for piece in pieces:
        events.extend(protocol.receive(piece))
    return events


def bytewise(data: bytes) -> list[bytes]:
    """``data`` cut into one-byte pieces."""
    return [data[index : index + 1] for index in range(len(data))]


def chunked(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    """``data`` cut into pieces of the given sizes, cycling through them (each at least 1)."""
    pieces = []
    position = 0
    index = 0
    while position < len(data):
        size = max(1, sizes[index % len(sizes)]) if sizes else len(data)
        pieces.append(data[position : position + size])
        position += size
        index += 1
    return pieces
