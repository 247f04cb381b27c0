"""apply_mask against a byte-at-a-time reference (RFC 6455 5.3)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_helpers import reference_mask

from geventws.masking import apply_mask

MASK = b"\x37\xfa\x21\x3d"


def test_rfc_example_hello_is_masked_to_the_published_bytes() -> None:
    # RFC 6455 5.7: "Hello" masked with 37 fa 21 3d.
    assert apply_mask(b"Hello", MASK) == bytes.fromhex("7f9f4d5158")


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 125, 126, 1000, 65537])
def test_matches_byte_at_a_time_reference_for_sizes_around_word_boundaries(size: int) -> None:
    data = bytes((index * 7 + 3) & 0xFF for index in range(size))
    assert apply_mask(data, MASK) == reference_mask(data, MASK)


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 4, 5, 6, 7, 1001])
def test_offset_starts_the_key_that_many_bytes_in(offset: int) -> None:
    data = bytes(range(50))
    assert apply_mask(data, MASK, offset) == reference_mask(data, MASK, offset)
    # An offset is the same as masking a longer payload and dropping its first bytes.
    padded = bytes(offset) + data
    assert apply_mask(data, MASK, offset) == apply_mask(padded, MASK)[offset:]


def test_result_is_bytes_for_bytearray_and_memoryview_input() -> None:
    data = bytes(range(20))
    for value in (bytearray(data), memoryview(data)):
        result = apply_mask(value, MASK)
        assert type(result) is bytes
        assert result == reference_mask(data, MASK)


def test_leading_zero_bytes_and_trailing_zero_results_are_kept() -> None:
    # Masking works on big integers internally: zero bytes at either end must not be lost.
    data = bytes(8)
    assert apply_mask(data, MASK) == MASK + MASK
    assert apply_mask(MASK * 2, MASK) == bytes(8)
    assert apply_mask(b"\x00\x00\x00\x01", b"\x00\x00\x00\x00") == b"\x00\x00\x00\x01"


def test_empty_input_gives_empty_bytes_at_every_offset() -> None:
    for offset in range(4):
        assert apply_mask(b"", MASK, offset) == b""


def test_zero_mask_is_the_identity() -> None:
    data = b"unchanged payload"
    assert apply_mask(data, b"\x00\x00\x00\x00") == data


@pytest.mark.parametrize("mask", [b"", b"\x01", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05"])
def test_mask_that_is_not_four_bytes_raises_value_error(mask: bytes) -> None:
    with pytest.raises(ValueError, match="mask is 4 bytes"):
        apply_mask(b"payload", mask)


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=300),
    mask=st.binary(min_size=4, max_size=4),
    offset=st.integers(min_value=0, max_value=10_000),
)
def test_property_matches_reference_and_is_an_involution(
    data: bytes, mask: bytes, offset: int
) -> None:
    masked = apply_mask(data, mask, offset)
    assert masked == reference_mask(data, mask, offset)
    assert len(masked) == len(data)
    assert apply_mask(masked, mask, offset) == data


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=300),
    mask=st.binary(min_size=4, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=8),
)
def test_property_pieces_masked_at_their_offsets_concatenate_to_the_whole(
    data: bytes, mask: bytes, cuts: list[int]
) -> None:
    bounds = sorted({0, len(data), *(min(cut, len(data)) for cut in cuts)})
    pieces = [apply_mask(data[start:end], mask, start) for start, end in itertools.pairwise(bounds)]
    assert b"".join(pieces) == apply_mask(data, mask)
