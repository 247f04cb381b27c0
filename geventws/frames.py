"""The WebSocket frame (RFC 6455 5.2): opcodes, the frame value, and serialising frames to bytes.

Parsing lives in :mod:`geventws.protocol`, which reads frames incrementally and applies the limits
as soon as a header is known.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from .accelerator import accelerated
from .masking import apply_mask


class Opcode(IntEnum):
    """Frame opcodes of RFC 6455 (5.2); 3-7 and 0xB-0xF are reserved."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


DATA_OPCODES = frozenset({Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY})
CONTROL_OPCODES = frozenset({Opcode.CLOSE, Opcode.PING, Opcode.PONG})
KNOWN_OPCODES = DATA_OPCODES | CONTROL_OPCODES

# The opcodes again as plain ints, for the code that runs per frame: on CPython 3.11 every read
# of an Enum member through its class is a descriptor call (about 70 ns).
OP_CONTINUATION = int(Opcode.CONTINUATION)
OP_TEXT = int(Opcode.TEXT)
OP_BINARY = int(Opcode.BINARY)
OP_CLOSE = int(Opcode.CLOSE)
OP_PING = int(Opcode.PING)
OP_PONG = int(Opcode.PONG)

#: Largest payload of a control frame (RFC 6455 5.5).
MAX_CONTROL_PAYLOAD = 125

_FIN = 0x80
_RSV1 = 0x40
_RSV2 = 0x20
_RSV3 = 0x10
_MASK = 0x80

_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack


@dataclass(slots=True)
class Frame:
    """One WebSocket frame as the application sees it: payload already unmasked.

    ``close_status`` is the status code of a received Close frame with a code, else -1;
    for Close frames, ``payload`` holds only the reason bytes, as in WebSocket-Node.
    """

    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False
    masked: bool = False
    close_status: int = -1

    @property
    def is_control(self) -> bool:
        """True for Close, Ping and Pong (and reserved opcodes 0xB-0xF)."""
        return self.opcode >= 0x8

    @property
    def length(self) -> int:
        """Payload length in bytes (for Close frames, including the 2-byte status)."""
        extra = 2 if self.opcode == Opcode.CLOSE and self.close_status != -1 else 0
        return len(self.payload) + extra

    def to_bytes(self, mask: bytes | None = None) -> bytes:
        """Serialise the frame; ``mask`` (4 bytes) masks it, as a client must.

        ``masked=True`` with no ``mask`` draws a random key. A Close frame with a
        ``close_status`` gets that status in front of its payload.
        """
        payload = self.payload
        if self.opcode == Opcode.CLOSE and self.close_status != -1:
            payload = struct.pack("!H", self.close_status) + payload
        if mask is None and self.masked:
            mask = os.urandom(4)
        first = (
            (_FIN if self.fin else 0)
            | (_RSV1 if self.rsv1 else 0)
            | (_RSV2 if self.rsv2 else 0)
            | (_RSV3 if self.rsv3 else 0)
            | self.opcode
        )
        return encode_frame(first, payload, mask)


def encode_frame(
    first_byte: int, payload: bytes | bytearray | memoryview, mask: bytes | None = None
) -> bytes:
    """Return a frame whose first byte (FIN, RSV, opcode) is ``first_byte`` and whose payload
    is ``payload``, with the shortest length encoding; masked with ``mask`` when given."""
    header = frame_header(first_byte, len(payload), masked=mask is not None)
    if mask is not None:
        return header + mask + apply_mask(payload, mask)
    return header + payload


def frame_header(first_byte: int, size: int, *, masked: bool = False) -> bytes:
    """Return the header of a frame of ``size`` payload bytes whose first byte is
    ``first_byte``, with the shortest length encoding (without the masking key)."""
    mask_bit = _MASK if masked else 0
    if size <= 125:
        return bytes((first_byte, mask_bit | size))
    if size <= 0xFFFF:
        return _pack_short(first_byte, mask_bit | 126, size)
    return _pack_long(first_byte, mask_bit | 127, size)


def python_encode_message(
    opcode: int, payload: bytes | bytearray | memoryview, fragment_size: int | None
) -> bytes:
    """Return the unmasked frames of one data message, ready for a single write.

    With ``fragment_size`` set and a payload longer than it, the message is split into frames
    of ``fragment_size`` bytes (the last one shorter): the first frame carries ``opcode`` (with
    any RSV bits), the others are continuations, only the last has FIN. Otherwise one frame
    with FIN. ``ValueError`` for a ``fragment_size`` under 1.
    """
    return b"".join(message_parts(opcode, payload, fragment_size))


def message_parts(
    opcode: int, payload: bytes | bytearray | memoryview, fragment_size: int | None
) -> list[bytes | memoryview]:
    """Return the frames of :func:`encode_message` as buffers to write in order, for a
    gathering write: each frame's header, then a view of its piece of ``payload`` (not
    copied)."""
    if fragment_size is not None and fragment_size < 1:
        raise ValueError(f"fragment_size must be at least 1, got {fragment_size}")
    view = memoryview(payload)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")  # slices below count bytes
    size = len(view)
    if fragment_size is None or size <= fragment_size:
        return [frame_header(_FIN | opcode, size), view]
    parts: list[bytes | memoryview] = [frame_header(opcode, fragment_size)]
    middle = frame_header(OP_CONTINUATION, fragment_size)  # the same for all but the ends
    last = (size - 1) // fragment_size * fragment_size
    for start in range(0, last, fragment_size):
        if start:
            parts.append(middle)
        parts.append(view[start : start + fragment_size])
    first = OP_CONTINUATION if last else opcode
    parts.append(frame_header(_FIN | first, size - last))
    parts.append(view[last:])
    return parts


#: The C encoder (one copy of the payload, where :func:`python_encode_message` makes two), or
#: None where it did not build.
accelerated_encode_message: Callable[..., bytes] | None = accelerated("encode_message")
encode_message: Callable[..., bytes] = accelerated_encode_message or python_encode_message


def encode_close_payload(code: int | None, reason: bytes = b"") -> bytes:
    """Return the payload of a Close frame: nothing, or the 2-byte ``code`` then ``reason``."""
    if code is None:
        return b""
    return struct.pack("!H", code) + reason
