"""Coverage-guided fuzz target: :meth:`geventws.protocol.WebSocketProtocol.receive`.

Run (see README.md)::

    pip install atheris
    python tests/fuzz/fuzz_protocol.py -max_total_time=600 [corpus_dir]

Without atheris the same target runs on hypothesis-generated inputs for as long.

One input decides everything: the limits, whether fragments are assembled, whether masking
is required, whether our Close was already sent, how the stream is cut into chunks, and the
stream itself. The checks:

- ``receive`` never raises, whatever the bytes: a broken stream ends in one
  :class:`~geventws.protocol.ConnectionFailed` (1002, 1007 or 1009) and nothing after it;
- the buffered bytes stay bounded (at most one frame's header or payload, one message);
- delivered messages respect the limits, text is valid (already ``str``), control payloads
  are at most 125 bytes;
- the events do not depend on how the stream was cut.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fuzz_runner import load_atheris, run

# ruff: noqa: E402  (geventws is imported after atheris instruments it)
atheris = load_atheris("geventws.protocol")

from geventws.protocol import (
    CloseReceived,
    ConnectionFailed,
    FrameReceived,
    MessageReceived,
    PingReceived,
    PongReceived,
    State,
    WebSocketProtocol,
)

#: The largest frame header: 2 bytes, 8 of extended length, 4 of mask.
MAX_HEADER = 14
_LIMITS = (1, 2, 125, 126, 127, 1000, 65535, 65536, 0x10000, 0x100000)


class FuzzedInput:
    """Reads choices from the front of the fuzzer's bytes (zeros once they run out)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def byte(self) -> int:
        if self.position >= len(self.data):
            return 0
        value = self.data[self.position]
        self.position += 1
        return value

    def boolean(self) -> bool:
        return bool(self.byte() & 1)

    def integer(self, low: int, high: int) -> int:
        value = int.from_bytes(bytes(self.byte() for _ in range(3)), "big")
        return low + value % (high - low + 1)

    def limit(self) -> int:
        """A size limit: one of the interesting values, or any from 1 to 128 KiB."""
        choice = self.byte()
        if choice < len(_LIMITS) * 16:
            return _LIMITS[choice % len(_LIMITS)]
        return self.integer(1, 0x20000)

    def rest(self) -> bytes:
        rest = self.data[self.position :]
        self.position = len(self.data)
        return rest


def chunks(stream: bytes, sizes: list[int]) -> list[bytes]:
    """``stream`` cut into pieces of the given sizes, over and over."""
    pieces, position, index = [], 0, 0
    while position < len(stream):
        size = sizes[index % len(sizes)]
        pieces.append(stream[position : position + size])
        position += size
        index += 1
    return pieces


def test_one_input(data: bytes) -> None:
    source = FuzzedInput(data)
    max_frame, max_message = source.limit(), source.limit()
    assemble, require_mask, closing = source.boolean(), source.boolean(), source.boolean()
    sizes = [source.integer(1, 300) for _ in range(source.integer(1, 6))]
    stream = source.rest()

    def fresh() -> WebSocketProtocol:
        protocol = WebSocketProtocol(
            max_frame_size=max_frame,
            max_message_size=max_message,
            assemble_fragments=assemble,
            require_mask=require_mask,
        )
        if closing:
            protocol.start_close(1000, "bye")
        return protocol

    protocol = fresh()
    events = []
    for chunk in chunks(stream, sizes):
        was_closed = protocol.state is State.CLOSED
        new = protocol.receive(chunk)
        if was_closed:
            assert new == [], new
        events.extend(new)
        # At most one frame's header or payload, and one message, are held.
        assert len(protocol._buffer) <= max(MAX_HEADER, max_frame), len(protocol._buffer)
        if assemble:
            assert len(protocol._message_data) <= max_message, len(protocol._message_data)

    for index, event in enumerate(events):
        if isinstance(event, ConnectionFailed | CloseReceived):
            assert index == len(events) - 1, events[index:]
            assert protocol.state is State.CLOSED
        if isinstance(event, ConnectionFailed):
            assert event.code in (1002, 1007, 1009), event
            assert bool(event.close_frame) is not closing, event
        elif isinstance(event, CloseReceived):
            assert (event.reply is None) is closing, event
        elif isinstance(event, MessageReceived):
            assert isinstance(event.data, str | bytes)
            size = len(event.data.encode() if isinstance(event.data, str) else event.data)
            if assemble:
                assert size <= max_message, size
        elif isinstance(event, PingReceived | PongReceived):
            assert len(event.payload) <= 125
        elif isinstance(event, FrameReceived):
            assert not assemble
            assert len(event.frame.payload) <= max_frame
        else:
            raise AssertionError(f"unknown event {event!r}")

    # However the stream was cut, the same events (the whole stream at once, as reference).
    assert fresh().receive(stream) == events


def seeds() -> list[bytes]:
    """Valid streams to start from: a message, a fragmented one with a Ping between, a Close."""

    def frame(first: int, payload: bytes, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
        size = len(payload)
        if size < 126:
            header = bytes([first, 0x80 | size])
        else:
            header = bytes([first, 0x80 | 126]) + size.to_bytes(2, "big")
        body = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        return header + mask + body

    stream = (
        frame(0x81, "héllo".encode())
        + frame(0x02, b"a" * 200)
        + frame(0x89, b"ping")
        + frame(0x80, b"b" * 10)
        + frame(0x8A, b"")
        + frame(0x88, b"\x03\xe8bye")
    )
    settings = [bytes([9, 9, 1, 1, 0]), bytes([4, 5, 0, 1, 0]), bytes([2, 3, 1, 1, 1])]
    cuts = (0).to_bytes(3, "big") + (63).to_bytes(3, "big")
    return [prefix + cuts + stream for prefix in settings]


def main() -> None:
    run(atheris, test_one_input, seeds())


if __name__ == "__main__":
    main()
