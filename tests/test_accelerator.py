"""The C masker and message encoder give the same bytes as their pure-Python counterparts,
which stay the reference. (The C frame scanner has tests/test_frame_scanner.py.)"""

from __future__ import annotations

import contextlib
import errno
import socket

import pytest
from conftest import run_in_new_python
from hypothesis import given, settings
from hypothesis import strategies as st

from geventws import accelerator, frames, masking
from geventws import protocol as protocol_module

MASKS = st.binary(min_size=4, max_size=4)
#: The types a payload may come as.
BYTES_LIKE = st.sampled_from([bytes, bytearray, memoryview])


def test_the_c_masker_is_built_and_used_here():
    # This project's machines have gcc and the Python headers: a missing accelerator means
    # the build broke, not that it is optional here.
    assert masking.accelerated_apply_mask is not None
    assert masking.apply_mask is masking.accelerated_apply_mask


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=300),
    mask=MASKS,
    offset=st.integers(min_value=0, max_value=64),
    kind=BYTES_LIKE,
)
def test_c_and_python_maskers_agree(data, mask, offset, kind):
    accelerated = masking.accelerated_apply_mask
    assert accelerated is not None
    expected = masking.python_apply_mask(data, mask, offset)
    assert accelerated(kind(data), mask, offset) == expected
    assert type(accelerated(kind(data), mask, offset)) is bytes


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 4096, 1 << 20])
def test_c_masker_round_trips_large_and_odd_sizes(size):
    accelerated = masking.accelerated_apply_mask
    assert accelerated is not None
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    masked = accelerated(data, b"\x01\x02\x03\x04")
    assert masked == masking.python_apply_mask(data, b"\x01\x02\x03\x04")
    assert accelerated(masked, b"\x01\x02\x03\x04") == data


@pytest.mark.parametrize("implementation", ["python_apply_mask", "accelerated_apply_mask"])
@pytest.mark.parametrize("mask", [b"", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05"])
def test_both_maskers_refuse_a_mask_that_is_not_four_bytes(implementation, mask):
    function = getattr(masking, implementation)
    with pytest.raises(ValueError, match="a mask is 4 bytes"):
        function(b"payload", mask)
    with pytest.raises(ValueError, match="a mask is 4 bytes"):
        function(b"", mask)


def test_the_c_encoder_is_built_and_used_here():
    assert frames.accelerated_encode_message is not None
    assert frames.encode_message is frames.accelerated_encode_message


@settings(max_examples=300, deadline=None)
@given(
    opcode=st.sampled_from([0x1, 0x2, 0x1 | 0x40, 0x2 | 0x70]),
    size=st.sampled_from([0, 1, 125, 126, 127, 200, 65535, 65536, 70000]),
    fragment_size=st.one_of(st.none(), st.integers(min_value=1, max_value=70001)),
    kind=BYTES_LIKE,
)
def test_c_and_python_encoders_agree(opcode, size, fragment_size, kind):
    if fragment_size is not None and size // fragment_size > 2000:
        fragment_size = max(1, size // 2000)  # keeps each example quick
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    accelerated = frames.accelerated_encode_message
    assert accelerated is not None
    expected = frames.python_encode_message(opcode, payload, fragment_size)
    encoded = accelerated(opcode, kind(payload), fragment_size)
    assert encoded == expected
    assert type(encoded) is bytes


def test_encoders_split_exactly_at_the_fragment_size():
    # 16 KiB + 1 byte at 16 KiB: a 16,384-byte TEXT frame (16-bit length), then a 1-byte FIN
    # continuation; the last frame of an exact multiple is a full one with FIN.
    payload = b"a" * 16385
    expected = b"\x01\x7e\x40\x00" + b"a" * 16384 + b"\x80\x01a"
    exact = b"\x02\x7e\x40\x00" + b"b" * 16384 + b"\x80\x7e\x40\x00" + b"b" * 16384
    for encode in (frames.python_encode_message, frames.accelerated_encode_message):
        assert encode is not None
        assert encode(0x1, payload, 16384) == expected
        assert encode(0x2, b"b" * 32768, 16384) == exact


@pytest.mark.parametrize("fragment_size", [0, -1])
def test_encoders_refuse_a_fragment_size_under_one(fragment_size):
    for encode in (frames.python_encode_message, frames.accelerated_encode_message):
        assert encode is not None
        with pytest.raises(
            ValueError, match=f"fragment_size must be at least 1, got {fragment_size}"
        ):
            encode(0x2, b"xy", fragment_size)


def test_the_c_payload_buffer_is_built_and_used_here():
    assert masking.AcceleratedPayloadBuffer is not None
    assert masking.PayloadBuffer is masking.AcceleratedPayloadBuffer
    assert protocol_module.payload_buffer_type is masking.AcceleratedPayloadBuffer


PAYLOAD_BUFFERS = pytest.mark.parametrize(
    "buffer_type",
    [masking.PythonPayloadBuffer, masking.AcceleratedPayloadBuffer],
    ids=["Python", "C"],
)


def _fill(buffer, masked: bytes, steps: list[tuple[str, int]], kind) -> None:
    """Feed ``masked`` to ``buffer`` in steps: ("write", n) copies n bytes, ("view", n) writes
    n bytes through its view and advances."""
    done = 0
    for how, size in steps:
        piece = masked[done : done + size]
        if how == "write":
            assert buffer.write(kind(piece)) == len(piece)
        else:
            view = buffer.view()
            assert len(view) == len(masked) - done
            view[: len(piece)] = piece
            view.release()
            assert buffer.advance(len(piece)) == len(masked) - done - len(piece)
        done += len(piece)
        assert buffer.remaining == len(masked) - done


@PAYLOAD_BUFFERS
@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=300),
    mask=MASKS,
    steps=st.lists(
        st.tuples(st.sampled_from(["write", "view"]), st.integers(min_value=0, max_value=90)),
        max_size=12,
    ),
    kind=BYTES_LIKE,
)
def test_payload_buffers_unmask_a_payload_fed_in_any_steps(buffer_type, data, mask, steps, kind):
    assert buffer_type is not None
    buffer = buffer_type(len(data), mask)
    masked = masking.python_apply_mask(data, mask)
    _fill(buffer, masked, steps, kind)
    done = len(data) - buffer.remaining
    # the rest in one write, with bytes of the next frame after it: only the payload is taken
    assert buffer.write(kind(masked[done:] + b"next")) == len(data) - done
    assert buffer.remaining == 0
    payload = buffer.take()
    assert type(payload) is bytes
    assert payload == data


@PAYLOAD_BUFFERS
def test_payload_buffers_refuse_bad_use_with_the_offending_values(buffer_type):
    assert buffer_type is not None
    with pytest.raises(ValueError, match="got 3 and 10"):
        buffer_type(10, b"\x01\x02\x03")
    with pytest.raises(ValueError, match="got 4 and -1"):
        buffer_type(-1, b"\x01\x02\x03\x04")
    buffer = buffer_type(10, b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match=r"take\(\): 0 of 10 bytes have come"):
        buffer.take()
    with pytest.raises(ValueError, match=r"advance\(11\): 10 bytes are still to come"):
        buffer.advance(11)
    with pytest.raises(ValueError, match=r"advance\(-1\): 10 bytes are still to come"):
        buffer.advance(-1)
    assert buffer.write(b"\x01\x02\x03\x04" * 3) == 10
    assert buffer.take() == b"\x00" * 10
    assert buffer.remaining == 0
    for use in (buffer.take, buffer.view, lambda: buffer.write(b"x"), lambda: buffer.advance(0)):
        with pytest.raises(ValueError, match="the payload was taken already"):
            use()


def test_the_c_payload_buffer_is_not_given_away_while_a_view_is_open():
    buffer_type = masking.AcceleratedPayloadBuffer
    buffer = buffer_type(4, b"\x00\x00\x00\x00")
    view = buffer.view()
    view[:] = b"abcd"
    buffer.advance(4)
    with pytest.raises(BufferError, match="a view of the buffer is still open"):
        buffer.take()
    view.release()
    assert buffer.take() == b"abcd"


def test_send_each_sends_to_every_socket_and_reports_the_ones_that_did_not_take_it_all():
    send_each = accelerator.accelerated("send_each")
    assert send_each is not None
    pairs = [socket.socketpair() for _ in range(4)]
    try:
        for ours, _ in pairs:
            ours.setblocking(False)
        # pairs[2]'s peer is gone: its send fails (EPIPE). pairs[3]'s buffer is full.
        pairs[2][1].close()
        full = pairs[3][0]
        with contextlib.suppress(BlockingIOError):
            while True:
                full.send(b"\0" * 65536)
        sockets = [ours for ours, _ in pairs]
        data = b"the same frame for all"
        unfinished = send_each(sockets, data)
        assert unfinished == [(2, -errno.EPIPE), (3, 0)]
        for _, theirs in pairs[:2]:
            assert theirs.recv(100) == data
        # File descriptors do as well.
        assert send_each([pairs[0][0].fileno(), pairs[1][0].fileno()], data) == []
        for _, theirs in pairs[:2]:
            assert theirs.recv(100) == data
        assert send_each([], data) == []
        with pytest.raises(ValueError, match=r"not a socket: -1"):
            send_each([-1], data)
        with pytest.raises(TypeError, match=r"not a socket: 'sock'"):
            send_each([sockets[0], "sock"], data)
        closed = socket.socket()
        closed.close()
        with pytest.raises(ValueError, match=r"not a socket: <socket.socket \[closed\]"):
            send_each([closed], data)
        with pytest.raises(TypeError):
            send_each(sockets[0], data)
    finally:
        for pair in pairs:
            for sock in pair:
                sock.close()


# Spent payloads: the C buffer receives the next payload of the same size into a message the
# application has let go of (see _speedups.c); never into one that is still held.

_MASK = b"\x0f\x1e\x2d\x3c"


def _payload_of(size: int, fill: int) -> bytes:
    """A payload of ``size`` bytes ``fill`` received through the C buffer (in two steps)."""
    buffer = masking.AcceleratedPayloadBuffer(size, _MASK)
    masked = masking.python_apply_mask(bytes([fill]) * size, _MASK)
    _fill(buffer, masked, [("view", size // 3), ("write", size)], bytes)
    payload: bytes = buffer.take()
    return payload


@pytest.fixture
def spare_payloads():
    """The C module's list of spent payloads, empty before and after the test."""
    assert accelerator.accelerated("spare_payloads") is masking.spare_payloads
    masking.release_spare_payloads()
    assert masking.spare_payloads() == []
    yield masking.spare_payloads
    masking.release_spare_payloads()


def test_a_payload_nobody_holds_any_more_receives_the_next_one_of_its_size(spare_payloads):
    first = _payload_of(70_000, 0x41)
    first_id, first_hash = id(first), hash(first)
    del first  # the spare list now holds the only reference: the object stays, unseen
    second = _payload_of(70_000, 0x42)
    assert id(second) == first_id
    assert second == b"\x42" * 70_000
    assert hash(second) == hash(b"\x42" * 70_000) != first_hash  # not the old cached hash
    assert [id(spare) for spare in spare_payloads()] == [first_id]
    other_size = _payload_of(70_001, 0x43)
    assert id(other_size) != first_id  # sizes must match
    assert other_size == b"\x43" * 70_001


def test_a_payload_the_application_still_holds_is_never_written_again(spare_payloads):
    kept = [_payload_of(70_000, fill) for fill in range(5)]
    view = memoryview(_payload_of(70_000, 0x55))  # held through a view only
    newer = [_payload_of(70_000, 0x60 + fill) for fill in range(5)]
    assert [bytes(p) for p in kept] == [bytes([fill]) * 70_000 for fill in range(5)]
    assert view == b"\x55" * 70_000
    assert [bytes(p) for p in newer] == [bytes([0x60 + fill]) * 70_000 for fill in range(5)]
    assert len({id(p) for p in kept + newer} | {id(view.obj)}) == 11


def test_the_spent_payloads_kept_are_at_most_16_and_16_mib(spare_payloads):
    for fill in range(20):
        _payload_of(1 << 20, fill)  # each let go of at once: the next one reuses it
    assert len(spare_payloads()) == 1
    held = [_payload_of(100_000, fill) for fill in range(20)]
    spares = spare_payloads()
    assert len(spares) == 16
    assert [s[0] for s in spares] == [fill for fill in range(4, 20)]  # the oldest let go first
    del spares
    held += [_payload_of(3 << 20, fill) for fill in range(6)]
    assert sum(len(s) for s in spare_payloads()) <= 16 << 20
    assert len(_payload_of((16 << 20) + 1, 1)) == (16 << 20) + 1
    assert all(len(s) <= 16 << 20 for s in spare_payloads())  # too big to keep
    assert all(p == bytes([p[0]]) * len(p) for p in held)


# Run in a process of its own: a subinterpreter created and ended inside the test process could
# leave state behind for later tests (threads, TLS) that no test here is meant to exercise.
_SUBINTERPRETER_CHECK = r"""
import importlib, importlib.util
import _testcapi
from geventws import masking
masking.release_spare_payloads()
kept = masking.PayloadBuffer(70_000, bytes(4))
kept.write(b"\x21" * 70_000)
kept = kept.take()
kept_id = id(kept)
del kept
assert [id(spare) for spare in masking.spare_payloads()] == [kept_id]
path = importlib.import_module("geventws._speedups").__file__
# Loaded from its file: importing the package would import gevent, which refuses.
code = (
    "import importlib.util\n"
    f"spec = importlib.util.spec_from_file_location('geventws._speedups', {path!r})\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "buffer = module.PayloadBuffer(70_000, bytes(4))\n"
    "buffer.write(b'b' * 70_000)\n"
    "assert buffer.take() == b'b' * 70_000\n"
    "assert module.spare_payloads() == [], 'kept in a subinterpreter'\n"
)
assert _testcapi.run_in_subinterp(code) == 0, "the subinterpreter's checks failed"
# The main interpreter's spare is still there, and was not written by the other.
spares = masking.spare_payloads()
assert [(id(s), s) for s in spares] == [(kept_id, b"\x21" * 70_000)], "the main spare changed"
print("ok")
"""


def test_spent_payloads_are_kept_in_the_main_interpreter_only():
    """gevent itself refuses subinterpreters, but the C module loads there on its own: its
    payloads must not be kept for another interpreter (nor taken from this one's)."""
    pytest.importorskip("_testcapi")
    run_in_new_python(_SUBINTERPRETER_CHECK)
