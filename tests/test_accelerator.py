"""The C masker and message encoder give the same bytes as their pure-Python counterparts,
which stay the reference. (The C frame scanner has tests/test_frame_scanner.py.)"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geventws import frames, masking

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


def test_the_c_unmasker_of_pieces_is_built_and_used_here():
    assert masking.accelerated_unmask_pieces is not None
    assert masking.unmask_pieces is masking.accelerated_unmask_pieces


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.binary(max_size=40), max_size=8),
    cut=st.integers(min_value=0, max_value=400),
    mask=MASKS,
    kind=BYTES_LIKE,
)
def test_c_and_python_unmaskers_of_pieces_agree(pieces, cut, mask, kind):
    accelerated = masking.accelerated_unmask_pieces
    assert accelerated is not None
    length = min(cut, sum(map(len, pieces)))
    expected = masking.python_unmask_pieces(pieces, length, mask)
    assert expected == masking.python_apply_mask(b"".join(pieces)[:length], mask)
    assert accelerated([kind(piece) for piece in pieces], length, mask) == expected


def test_unmaskers_of_pieces_refuse_too_few_bytes_and_bad_masks():
    for unmask in (masking.python_unmask_pieces, masking.accelerated_unmask_pieces):
        assert unmask is not None
        with pytest.raises(ValueError, match="the pieces hold 3 bytes, 4 are wanted"):
            unmask([b"ab", b"c"], 4, b"\x01\x02\x03\x04")
        with pytest.raises(ValueError, match="got 3 and 1"):
            unmask([b"ab"], 1, b"\x01\x02\x03")
