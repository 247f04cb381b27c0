"""The WebSocket protocol of one server-side connection, without any I/O (RFC 6455 5-7).

:class:`WebSocketProtocol` is fed the bytes a client sent and returns what happened as events;
it also turns messages, control frames and close requests into the bytes to send. It never
touches a socket, a clock or a greenlet, so every rule can be tested byte for byte.

Limits apply as soon as a frame header is complete, before any payload is buffered. Text is
checked for UTF-8 incrementally, also inside a frame that arrives in several pieces, so invalid
text fails the connection (1007) as soon as its first invalid byte is in.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .accelerator import accelerated
from .close_codes import MAX_CLOSE_REASON_BYTES, CloseCode, describe, is_valid_code
from .errors import ProtocolError
from .extensions import Extension
from .frames import (
    MAX_CONTROL_PAYLOAD,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Frame,
    encode_close_payload,
    encode_frame,
    encode_message,
    message_parts,
)
from .masking import PayloadBuffer, apply_mask

_FIN = 0x80
_RSV_BITS = 0x70
_OPCODE = 0x0F
_KNOWN_OPCODES = frozenset({0x0, 0x1, 0x2, 0x8, 0x9, 0xA})
_NO_FRAME = -1
#: Payloads from this size on are handed on as a view of the receive buffer, not a copy.
_VIEW_FROM = 1024
#: An unfinished masked binary payload from this size on is received into the memory of the
#: message itself (a payload buffer, unmasked read by read), not appended to a growing buffer.
_PAYLOAD_BUFFER_FROM = 0x10000
_INVALID_UTF8 = "Invalid UTF-8 Data Received"
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")

#: The C scanner of whole single-frame messages (``scan_messages`` in ``geventws._speedups``),
#: or None where it did not build. ``WebSocketProtocol`` reads it when made: setting it to None
#: makes new protocols parse every frame in Python, the reference the scanner is tested against.
accelerated_scan_messages: Callable[..., int] | None = accelerated("scan_messages")
#: What ``WebSocketProtocol`` receives a big payload into (read when it starts one): the C
#: ``PayloadBuffer`` where built, else the pure-Python reference.
payload_buffer_type: Any = PayloadBuffer


class State(Enum):
    """Where the closing handshake stands."""

    #: Messages flow both ways.
    OPEN = "open"
    #: We sent a Close and wait for the peer's.
    CLOSING = "closing"
    #: Both Close frames were exchanged, or the connection was failed: read nothing more.
    CLOSED = "closed"


# The states as module globals: reading an Enum member through its class costs a descriptor
# call on CPython 3.11 (see frames.OP_TEXT).
_OPEN = State.OPEN
_CLOSING = State.CLOSING
_CLOSED = State.CLOSED


@dataclass(slots=True)
class MessageReceived:
    """A complete message: ``str`` for text, ``bytes`` for binary."""

    data: str | bytes


@dataclass(slots=True)
class FrameReceived:
    """A frame as it arrived (payload unmasked); only when frames are delivered."""

    frame: Frame


@dataclass(slots=True)
class PingReceived:
    """A Ping; the answer is the application's to send (usually a Pong with ``payload``)."""

    payload: bytes


@dataclass(slots=True)
class PongReceived:
    """A Pong."""

    payload: bytes


@dataclass(slots=True)
class CloseReceived:
    """The peer's Close: ``code`` (1005 when it carried none) and ``reason``.

    ``reply`` is the Close frame to send back, or None when ours was already sent.
    """

    code: int
    reason: str
    reply: bytes | None


@dataclass(slots=True)
class ConnectionFailed:
    """The peer broke the protocol: send ``close_frame`` (empty when our Close was already
    sent), then close the TCP connection."""

    code: int
    reason: str
    close_frame: bytes


Event = (
    MessageReceived | FrameReceived | PingReceived | PongReceived | CloseReceived | ConnectionFailed
)


def _decode_utf8(decoder: codecs.IncrementalDecoder, data: bytes, final: bool) -> str:
    """Decode a piece of a text message, failing on the first byte that cannot be valid.

    CPython's decoder waits for the third byte before it refuses an encoded surrogate
    (ED A0..BF), so a pending ED is checked here to fail as early as other invalid input.
    """
    text: str = decoder.decode(data, final)
    if not final:
        pending = decoder.getstate()[0]
        if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
            raise UnicodeDecodeError("utf-8", pending, 0, 2, "encoded surrogate")
    return text


class WebSocketProtocol:
    """The sans-I/O state of one server-side WebSocket connection.

    Feed received bytes to :meth:`receive`; it returns events in order. Build outgoing bytes
    with :meth:`encode_data`, :meth:`encode_control`, :meth:`start_close` and :meth:`fail`.
    """

    __slots__ = (
        "_buffer",
        "_decoder",
        "_frame_checked",
        "_frame_first",
        "_frame_length",
        "_frame_mask",
        "_message_data",
        "_message_extension",
        "_message_opcode",
        "_message_size",
        "_payload",
        "_rsv_allowed",
        "_scan_messages",
        "assemble_fragments",
        "extensions",
        "fragment_size",
        "max_frame_size",
        "max_message_size",
        "require_mask",
        "state",
    )

    def __init__(
        self,
        *,
        max_frame_size: int = 0x10000,
        max_message_size: int = 0x100000,
        assemble_fragments: bool = True,
        fragment_size: int | None = 0x4000,
        require_mask: bool = True,
        extensions: Sequence[Extension] = (),
    ) -> None:
        self.max_frame_size = max_frame_size
        self.max_message_size = max_message_size
        self.assemble_fragments = assemble_fragments
        self.fragment_size = fragment_size
        self.require_mask = require_mask
        self.extensions = tuple(extensions)
        self._rsv_allowed = 0
        for extension in self.extensions:
            self._rsv_allowed |= extension.rsv_mask
        self.state = _OPEN
        self._scan_messages = accelerated_scan_messages
        # Bytes of a frame not complete yet; an idle connection holds the shared empty bytes.
        self._buffer: bytes | bytearray = b""
        # The frame whose header has been read and whose payload is awaited.
        self._frame_length = _NO_FRAME
        self._frame_first = 0
        self._frame_mask: bytes | None = None
        self._frame_checked = 0  # payload bytes of a text frame already UTF-8 checked
        # The buffer receiving the awaited payload (see _PAYLOAD_BUFFER_FROM), else None.
        self._payload: Any = None
        # The message being assembled from fragments.
        self._message_opcode = _NO_FRAME
        self._message_size = 0
        # One buffer, not a list of pieces: 1 MiB of 1-byte fragments costs 1 MiB, not 50.
        self._message_data: bytes | bytearray = b""
        self._decoder: codecs.IncrementalDecoder | None = None
        self._message_extension: Extension | None = None

    # ----------------------------------------------------------------- receiving

    @property
    def inside_frame(self) -> bool:
        """True while part of a frame has arrived and its rest has not: more bytes are due."""
        return self._frame_length != _NO_FRAME or bool(self._buffer)

    def receive(self, data: bytes | bytearray) -> list[Event]:
        """Take bytes from the peer and return the events they complete, in order.

        After a protocol violation the last event is :class:`ConnectionFailed`; after the
        peer's Close it is :class:`CloseReceived`. Once :attr:`state` is CLOSED, input is
        ignored.
        """
        events: list[Event] = []
        if self.state is _CLOSED or not data:
            return events
        if self._payload is not None:
            data = self._fill_payload(data, events)
            if not data or self.state is _CLOSED:
                return events
        buffer: bytes | bytearray
        if self._buffer:
            self._buffer += data
            buffer = self._buffer
        else:
            buffer = data
        end = len(buffer)
        position = 0
        # Whole single-frame messages, the common case, are taken in C; it stops at the first
        # frame of another kind (or incomplete, or invalid), which the code below then parses.
        scan = self._scan_messages if self.assemble_fragments else None
        limit = self.max_frame_size
        if self.max_message_size < limit:
            limit = self.max_message_size
        try:
            while True:
                length = self._frame_length
                if length == _NO_FRAME:
                    if scan is not None and self._message_opcode == _NO_FRAME:
                        position = scan(buffer, position, limit, events, MessageReceived)
                    if end - position < 2:
                        break
                    first = buffer[position]
                    second = buffer[position + 1]
                    length = second & 0x7F
                    header_size = 2
                    if length == 126:
                        header_size = 4
                        if end - position < 4:
                            break
                        length = (buffer[position + 2] << 8) | buffer[position + 3]
                    elif length == 127:
                        header_size = 10
                        if end - position < 10:
                            break
                        length = int.from_bytes(buffer[position + 2 : position + 10], "big")
                    masked = second & 0x80
                    if masked:
                        header_size += 4
                        if end - position < header_size:
                            break
                    self._check_header(first, bool(masked), length)
                    self._frame_mask = (
                        bytes(buffer[position + header_size - 4 : position + header_size])
                        if masked
                        else None
                    )
                    self._frame_first = first
                    self._frame_length = length
                    self._frame_checked = 0
                    position += header_size
                if end - position < length:
                    if self._is_streamed_text():
                        self._check_partial_text(buffer, position, end)
                    elif length >= _PAYLOAD_BUFFER_FROM and self._may_buffer_payload():
                        assert self._frame_mask is not None
                        self._payload = payload_buffer_type(length, self._frame_mask)
                        with memoryview(buffer) as view:
                            self._payload.write(view[position:end])
                        position = end
                    break
                start = position
                position += length
                self._frame_length = _NO_FRAME
                if length < _VIEW_FROM:
                    self._complete_frame(buffer[start:position], events)
                else:
                    # A big payload is read where it lies, not copied out first. The views are
                    # released on the way out: the buffer is resized below.
                    with memoryview(buffer) as view, view[start:position] as payload:
                        self._complete_frame(payload, events)
                if self.state is _CLOSED:
                    self._buffer = b""
                    return events
        except ProtocolError as error:
            self._report_failure(error, events)
            return events
        if buffer is self._buffer:
            if position == end:
                self._buffer = b""
            elif position:
                assert isinstance(buffer, bytearray)  # a kept buffer is never empty bytes
                del buffer[:position]
        elif position < end:
            with memoryview(buffer) as view:
                self._buffer = bytearray(view[position:])
        return events

    def _report_failure(self, error: ProtocolError, events: list[Event]) -> None:
        """Fail the connection for ``error`` and end ``events`` with :class:`ConnectionFailed`."""
        our_close_sent = self.state is _CLOSING
        close_frame = self.fail(error.code, error.reason)
        # RFC 6455 7.1.7: a Close is sent only if the closing handshake has not started.
        events.append(
            ConnectionFailed(error.code, error.reason, b"" if our_close_sent else close_frame)
        )

    def _may_buffer_payload(self) -> bool:
        """True when the awaited payload may go to a payload buffer: masked, not text
        (text is checked as it comes), not extension-encoded, and not handed on as frames."""
        return (
            self.assemble_fragments
            and self._frame_mask is not None
            and not self._frame_first & _RSV_BITS
        )

    def _fill_payload(self, data: bytes | bytearray, events: list[Event]) -> bytes | bytearray:
        """Add a read to the payload buffer; once the payload is complete, handle the frame
        (its events go to ``events``) and return what came after it, else return nothing."""
        taken = self._payload.write(data)
        if self._payload.remaining:
            return b""
        self._finish_payload(events)
        return data[taken:] if self.state is not _CLOSED else b""

    @property
    def payload_pending(self) -> bool:
        """True while a big payload is being received into its buffer: the next bytes from
        the peer may then go straight there (:meth:`payload_view`, :meth:`payload_received`)
        instead of through :meth:`receive`."""
        return self._payload is not None

    def payload_view(self) -> memoryview:
        """The writable memory awaiting the rest of the current payload (only while
        :attr:`payload_pending`): bytes from the peer written there, then reported with
        :meth:`payload_received`, are the same as passed to :meth:`receive`, without a copy.
        Release the view before reporting."""
        if self._payload is None:
            raise ValueError("no payload is being received")
        view: memoryview = self._payload.view()
        return view

    def payload_received(self, count: int) -> list[Event]:
        """Take the ``count`` bytes just written at the start of :meth:`payload_view`; return
        the events they complete (none until the payload is whole)."""
        events: list[Event] = []
        if self._payload is None:
            raise ValueError("no payload is being received")
        if self._payload.advance(count) == 0:
            self._finish_payload(events)
        return events

    def _finish_payload(self, events: list[Event]) -> None:
        """The payload buffer is full: handle its frame."""
        payload = self._payload.take()
        self._payload = None
        self._frame_length = _NO_FRAME
        self._frame_mask = None  # unmasked already
        try:
            self._complete_frame(payload, events)
        except ProtocolError as error:
            self._report_failure(error, events)

    def _check_header(self, first: int, masked: bool, length: int) -> None:
        opcode = first & _OPCODE
        rsv = first & _RSV_BITS
        if rsv & ~self._rsv_allowed:
            raise ProtocolError(
                CloseCode.PROTOCOL_ERROR,
                "Unsupported usage of rsv bits without negotiated extension.",
            )
        if opcode not in _KNOWN_OPCODES:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, f"Unrecognized Opcode: 0x{opcode:x}")
        if opcode >= 0x8:
            if length > MAX_CONTROL_PAYLOAD:
                raise ProtocolError(
                    CloseCode.PROTOCOL_ERROR, "Illegal control frame longer than 125 bytes."
                )
            if not first & _FIN:
                raise ProtocolError(
                    CloseCode.PROTOCOL_ERROR, "Control frames must not be fragmented."
                )
            if rsv:
                raise ProtocolError(
                    CloseCode.PROTOCOL_ERROR, "Unsupported usage of rsv bits on a control frame."
                )
        if self.require_mask and not masked:
            raise ProtocolError(
                CloseCode.PROTOCOL_ERROR, "Received an unmasked frame from the client."
            )
        if length >> 63:
            raise ProtocolError(
                CloseCode.PROTOCOL_ERROR, "Invalid 64-bit frame length (most significant bit set)."
            )
        if length > self.max_frame_size:
            raise ProtocolError(
                CloseCode.MESSAGE_TOO_BIG,
                f"Frame size of {length} bytes exceeds maximum accepted frame size",
            )
        if opcode >= 0x8:
            return
        if opcode == OP_CONTINUATION:
            if self._message_opcode == _NO_FRAME:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "Unexpected Continuation Frame")
            if rsv:
                raise ProtocolError(
                    CloseCode.PROTOCOL_ERROR,
                    "Unsupported usage of rsv bits on a continuation frame.",
                )
        elif self._message_opcode != _NO_FRAME:
            raise ProtocolError(
                CloseCode.PROTOCOL_ERROR,
                f"Illegal frame opcode 0x{opcode:x} received in middle of fragmented message.",
            )
        if self.assemble_fragments and self._message_extension is None and not rsv:
            size = (self._message_size if opcode == OP_CONTINUATION else 0) + length
            if size > self.max_message_size:
                raise ProtocolError(CloseCode.MESSAGE_TOO_BIG, "Maximum message size exceeded.")

    def _is_streamed_text(self) -> bool:
        """True when the awaited frame is plain (not extension-encoded) text to check early."""
        opcode = self._frame_first & _OPCODE
        if self._frame_first & _RSV_BITS:
            return False
        if opcode == OP_TEXT:
            return True
        return (
            opcode == OP_CONTINUATION
            and self._message_opcode == OP_TEXT
            and self._message_extension is None
        )

    def _check_partial_text(self, buffer: bytes | bytearray, start: int, end: int) -> None:
        """UTF-8-check the part of the awaited text frame that has arrived so far."""
        checked = self._frame_checked
        if end - start <= checked:
            return
        if self._decoder is None:
            self._decoder = _Utf8Decoder()
            if self._frame_first & _OPCODE == OP_TEXT:
                self._start_message(OP_TEXT, None)
        piece = buffer[start + checked : end]
        if self._frame_mask is not None:
            piece = apply_mask(piece, self._frame_mask, checked)
        try:
            _decode_utf8(self._decoder, bytes(piece), False)
        except UnicodeDecodeError:
            raise ProtocolError(CloseCode.INVALID_DATA, _INVALID_UTF8) from None
        if self.assemble_fragments:
            self._message_data += piece
        self._frame_checked = end - start

    def _start_message(self, opcode: int, extension: Extension | None) -> None:
        self._message_opcode = opcode
        self._message_size = 0
        self._message_data = bytearray()
        self._message_extension = extension

    def _complete_frame(self, raw: bytes | bytearray | memoryview, events: list[Event]) -> None:
        first = self._frame_first
        opcode = first & _OPCODE
        mask = self._frame_mask
        fin = bool(first & _FIN)
        if opcode >= 0x8:
            payload = apply_mask(raw, mask) if mask is not None else bytes(raw)
            if not self.assemble_fragments:
                events.append(FrameReceived(self._frame(first, payload, mask)))
            if opcode == OP_PING:
                events.append(PingReceived(payload))
            elif opcode == OP_PONG:
                events.append(PongReceived(payload))
            else:
                self._receive_close(payload, events)
            return

        checked = self._frame_checked
        rsv = first & _RSV_BITS
        if opcode != OP_CONTINUATION:
            if fin and not checked and not rsv:
                self._single_frame_message(opcode, raw, mask, first, events)
                return
            if not checked:  # else _check_partial_text has already started the message
                self._start_message(opcode, self._extension_for(rsv))

        extension = self._message_extension
        if extension is not None:
            payload = apply_mask(raw, mask) if mask is not None else bytes(raw)
            remaining = self.max_message_size - self._message_size
            decoded = extension.decode_frame(rsv, payload, fin, remaining)
            if len(decoded) > remaining and self.assemble_fragments:
                raise ProtocolError(CloseCode.MESSAGE_TOO_BIG, "Maximum message size exceeded.")
            self._message_size += len(decoded)
            tail = decoded
            checked = 0
        else:
            self._message_size += len(raw)
            if not self.assemble_fragments:
                payload = apply_mask(raw, mask) if mask is not None else bytes(raw)
                tail = payload[checked:]
            else:
                tail = bytes(raw[checked:])
                if mask is not None:
                    tail = apply_mask(tail, mask, checked)
                payload = b""

        if self._message_opcode == OP_TEXT:
            if self._decoder is None:
                self._decoder = _Utf8Decoder()
            try:
                _decode_utf8(self._decoder, bytes(tail), fin)
            except UnicodeDecodeError:
                raise ProtocolError(CloseCode.INVALID_DATA, _INVALID_UTF8) from None
        if self.assemble_fragments:
            self._message_data += tail

        if not self.assemble_fragments:
            # After the UTF-8 check, so that a frame with invalid text is never delivered,
            # whether it arrived at once or in pieces.
            frame_payload = payload if extension is None else tail
            events.append(FrameReceived(self._frame(first, frame_payload, mask)))

        if fin:
            data = self._message_data
            is_text = self._message_opcode == OP_TEXT
            self._message_opcode = _NO_FRAME
            self._message_data = b""
            self._message_size = 0
            self._message_extension = None
            self._decoder = None
            if self.assemble_fragments:
                # Text was validated piece by piece; decoding it whole cannot fail.
                events.append(MessageReceived(data.decode("utf-8") if is_text else bytes(data)))
            elif opcode != OP_CONTINUATION:
                # A single-frame message whose payload arrived in pieces (or went through an
                # extension): a message too, as when it arrives at once. Already UTF-8 checked.
                whole = bytes(payload if extension is None else tail)
                events.append(MessageReceived(whole.decode("utf-8") if is_text else whole))

    def _single_frame_message(
        self,
        opcode: int,
        raw: bytes | bytearray | memoryview,
        mask: bytes | None,
        first: int,
        events: list[Event],
    ) -> None:
        """The common case: a whole, unencoded message in one frame that arrived at once."""
        payload = apply_mask(raw, mask) if mask is not None else bytes(raw)
        data: str | bytes = payload
        if opcode == OP_TEXT:
            try:
                data = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError(CloseCode.INVALID_DATA, _INVALID_UTF8) from None
        if not self.assemble_fragments:
            events.append(FrameReceived(self._frame(first, payload, mask)))
        events.append(MessageReceived(data))

    def _extension_for(self, rsv: int) -> Extension | None:
        if not rsv:
            return None
        for extension in self.extensions:
            if rsv & extension.rsv_mask:
                return extension
        return None  # unreachable: _check_header refused unclaimed bits

    @staticmethod
    def _frame(first: int, payload: bytes, mask: bytes | None) -> Frame:
        opcode = first & _OPCODE
        close_status = -1
        if opcode == OP_CLOSE and len(payload) >= 2:
            close_status = (payload[0] << 8) | payload[1]
            payload = payload[2:]
        return Frame(
            opcode=opcode,
            payload=payload,
            close_status=close_status,
            fin=bool(first & _FIN),
            rsv1=bool(first & 0x40),
            rsv2=bool(first & 0x20),
            rsv3=bool(first & 0x10),
            masked=mask is not None,
        )

    def _receive_close(self, payload: bytes, events: list[Event]) -> None:
        if len(payload) == 1:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "Close frame with a 1-byte payload.")
        if payload:
            code = struct.unpack("!H", payload[:2])[0]
            if not is_valid_code(code):
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, f"Invalid close code {code}.")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError(CloseCode.INVALID_DATA, _INVALID_UTF8) from None
            reply_payload = payload[:2]
        else:
            code = CloseCode.NOT_PROVIDED
            reason = describe(code) or ""
            reply_payload = b""
        reply = None
        if self.state is _OPEN:
            reply = encode_frame(_FIN | OP_CLOSE, reply_payload)
        self.state = _CLOSED
        events.append(CloseReceived(int(code), reason, reply))

    # ------------------------------------------------------------------- sending

    def encode_data(self, opcode: int, payload: bytes | bytearray | memoryview) -> bytes:
        """Return the frames of one text (``Opcode.TEXT``) or binary message, fragmented at
        :attr:`fragment_size` when that is set."""
        if not self.extensions:
            size = len(payload)
            fragment_size = self.fragment_size
            if size <= 125 and (fragment_size is None or size <= fragment_size):
                return bytes((0x80 | opcode, size)) + payload  # one frame, 2-byte header
            return encode_message(opcode, payload, fragment_size)
        for extension in self.extensions:
            rsv, encoded = extension.encode_message(opcode, bytes(payload))
            if rsv:
                return encode_message(opcode | rsv, encoded, self.fragment_size)
        return encode_message(opcode, payload, self.fragment_size)

    def encode_data_parts(
        self, opcode: int, payload: bytes | bytearray | memoryview
    ) -> list[bytes | memoryview]:
        """Return the frames of :meth:`encode_data` as buffers to write in order, the payload
        not copied (with an extension, which makes a new payload anyway: one buffer)."""
        if self.extensions:
            return [self.encode_data(opcode, payload)]
        return message_parts(opcode, payload, self.fragment_size)

    @staticmethod
    def encode_control(opcode: int, payload: bytes = b"") -> bytes:
        """Return a Ping or Pong frame; ``ValueError`` if ``payload`` exceeds 125 bytes."""
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError(
                f"a control frame payload is at most 125 bytes, got {len(payload)} bytes"
            )
        return encode_frame(_FIN | opcode, payload)

    @staticmethod
    def check_close(code: int, reason: str | None) -> bytes:
        """Return the Close payload for ``code`` and ``reason``; ``ValueError`` when ``code``
        may not be sent or ``reason`` is over 123 bytes of UTF-8."""
        if isinstance(code, bool) or not isinstance(code, int) or not is_valid_code(code):
            raise ValueError(f"Close code {code!r} is not valid.")
        encoded = (reason or "").encode("utf-8")
        if len(encoded) > MAX_CLOSE_REASON_BYTES:
            raise ValueError(
                f"a close reason is at most {MAX_CLOSE_REASON_BYTES} bytes of UTF-8, "
                f"got {len(encoded)}: {reason!r}"
            )
        return encode_close_payload(code, encoded)

    def start_close(self, code: int, reason: str | None) -> bytes:
        """Begin the closing handshake: return our Close frame and move to CLOSING.

        Raises ``ValueError`` for a code or reason that may not be sent.
        """
        payload = self.check_close(code, reason)
        if self.state is _OPEN:
            self.state = _CLOSING
        return encode_frame(_FIN | OP_CLOSE, payload)

    def fail(self, code: int, reason: str) -> bytes:
        """Fail the connection (RFC 6455 7.1.7): return the Close frame to send; state CLOSED.

        The reason is cut, on a character boundary, to fit in a control frame.
        """
        encoded = reason.encode("utf-8")
        if len(encoded) > MAX_CLOSE_REASON_BYTES:
            encoded = encoded[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")
        self.state = _CLOSED
        self._buffer = b""
        self._payload = None
        return encode_frame(_FIN | OP_CLOSE, encode_close_payload(code, encoded))
